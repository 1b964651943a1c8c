import json

import onnx
import pytest
import torch

from asr import cli
from asr.frontend import FrontendConfig
from asr.text import CharTokenizer
from asr.train.checkpoint import save_checkpoint
from asr.train.config import ExperimentConfig
from asr.train.export import ExportError, export_onnx
from asr.train.model import CTCModel, ModelConfig

FE = FrontendConfig(sample_rate=8000, n_fft=256, win_length=200, hop_length=80, n_mels=24)


def make_checkpoint(path, **model_kwargs):
    tok = CharTokenizer.build(["abc de"])
    cfg = ExperimentConfig(frontend=FE, model=ModelConfig(input_dim=24, vocab_size=len(tok.vocab), conv_dim=16,
                                                          hidden_size=16, num_layers=2, **model_kwargs))
    cfg.data.dev = None
    torch.manual_seed(0)
    model = CTCModel(cfg.model)
    model.set_normalization(torch.randn(24), torch.rand(24) + 0.5)
    save_checkpoint(str(path), model, cfg, tok)
    return str(path)


def metadata(path):
    return {p.key: json.loads(p.value) for p in onnx.load(path).metadata_props if p.key.startswith("asr.")}


@pytest.mark.parametrize("kwargs", [{}, {"utterance_cmn": True, "subsampling_conv": "2d", "conv_channels": 4, "inter_ctc_layer": 1}])
def test_offline_export_metadata_and_parity(tmp_path, kwargs):
    ckpt = make_checkpoint(tmp_path / "m.pt", **kwargs)
    r = export_onnx(ckpt, str(tmp_path / "m.onnx"))
    assert r.max_abs_diff <= 1e-4
    meta = metadata(tmp_path / "m.onnx")
    assert meta["asr.format"] == "asr-onnx/1" and meta["asr.graph"] == "offline"
    assert FrontendConfig.from_dict(meta["asr.frontend"]) == FE
    assert meta["asr.tokenizer"]["vocab"][0] == "<blank>" and meta["asr.subsampling"] == 2
    assert len(meta["asr.normalization"]["mean"]) == 24
    ops = [n.op_type for n in onnx.load(tmp_path / "m.onnx").graph.node]
    assert ops.count("GRU") == 2 and "GatherElements" not in ops  # one bidirectional operator per layer


@pytest.mark.parametrize("rnn_type,kwargs", [("gru", {"bidirectional": False}), ("lstm", {"chunk_size": 4, "right_context": 2}),
                                             ("gru", {"chunk_size": 4, "right_context": 2, "subsampling_conv": "2d", "conv_channels": 4}),
                                             ("rnn", {"chunk_size": 4, "right_context": 2}), ("rnn", {"bidirectional": False}),
                                             ("lstm", {"bidirectional": False})])
def test_streaming_export(tmp_path, rnn_type, kwargs):
    ckpt = make_checkpoint(tmp_path / "m.pt", rnn_type=rnn_type, **kwargs)
    r = export_onnx(ckpt, str(tmp_path / "s.onnx"), streaming=True, int8=(rnn_type == "lstm" and "chunk_size" in kwargs))
    assert r.max_abs_diff <= 1e-4
    meta = metadata(tmp_path / "s.onnx")
    assert meta["asr.graph"] == "streaming"
    names = ["state_h"] + (["state_c"] if rnn_type == "lstm" else [])
    assert meta["asr.state_names"] == names and meta["asr.state_shapes"]["state_h"] == [2, "batch", 16]
    c = meta["asr.chunk_size"]
    assert meta["asr.hop_frames"] == c * 2 and meta["asr.window_frames"] == (c + meta["asr.right_context"]) * 2
    # onnxruntime's own recurrent operators, reversing within each window's valid length
    # themselves: none of the index operators PyTorch writes for reverse_within_length
    ops = [n.op_type for n in onnx.load(tmp_path / "s.onnx").graph.node]
    per_layer = 1 if rnn_type != "lstm" else (1 if kwargs.get("bidirectional") is False else 3)
    assert ops.count(rnn_type.upper()) == 2 * per_layer and "GatherElements" not in ops
    if rnn_type == "lstm" and "chunk_size" in kwargs:
        assert r.int8_path and metadata(r.int8_path)["asr.graph"] == "streaming"
        ops = {n.op_type for n in onnx.load(r.int8_path).graph.node}
        assert "DynamicQuantizeLSTM" in ops


def test_full_context_bidirectional_cannot_stream(tmp_path, capsys):
    ckpt = make_checkpoint(tmp_path / "m.pt")
    with pytest.raises(ExportError, match="cannot stream"):
        export_onnx(ckpt, str(tmp_path / "s.onnx"), streaming=True)
    assert cli.main(["export", "--checkpoint", ckpt, "--out", str(tmp_path / "s.onnx"), "--streaming"]) == 2
    assert "cannot stream" in capsys.readouterr().err
    assert not (tmp_path / "s.onnx").exists()


def test_parity_failure_is_loud(tmp_path, monkeypatch):
    import asr.train.export as ex

    ckpt = make_checkpoint(tmp_path / "m.pt")
    monkeypatch.setattr(ex, "PARITY_TOLERANCE", -1.0)  # nothing can pass
    with pytest.raises(ExportError, match="parity check failed"):
        export_onnx(ckpt, str(tmp_path / "m.onnx"))
    assert not (tmp_path / "m.onnx").exists()


def test_export_cli(tmp_path, capsys):
    ckpt = make_checkpoint(tmp_path / "m.pt", bidirectional=False)
    assert cli.main(["export", "--checkpoint", ckpt, "--out", str(tmp_path / "u.onnx"), "--streaming", "--chunk-size", "8"]) == 0
    out = capsys.readouterr().out
    assert "streaming graph" in out and "parity" in out
    assert metadata(tmp_path / "u.onnx")["asr.chunk_size"] == 8


def test_export_cli_writes_and_sets_the_model_card(tmp_path, capsys):
    """``--card CARD.json`` with the export, or on an exported file in place (``--model``);
    the other keys stay; a bad card or a wrong mix of options is an error, exit 2."""
    ckpt = make_checkpoint(tmp_path / "m.pt", bidirectional=False)
    card = tmp_path / "card.json"
    card.write_text(json.dumps({"name": "Test letters", "language": "en", "description": "a to e"}))
    out = str(tmp_path / "m.onnx")
    assert cli.main(["export", "--checkpoint", ckpt, "--out", out, "--card", str(card)]) == 0
    assert metadata(out)["asr.card"] == {"name": "Test letters", "language": "en", "description": "a to e"}
    before = metadata(out)
    card.write_text(json.dumps({"name": "Letters", "language": "en-GB", "description": ""}))
    capsys.readouterr()
    assert cli.main(["export", "--model", out, "--card", str(card)]) == 0
    assert capsys.readouterr().out.strip() == f"{out}: model card set: Letters (en-GB)"
    after = metadata(out)
    assert after.pop("asr.card") == {"name": "Letters", "language": "en-GB", "description": ""}
    assert after == {k: v for k, v in before.items() if k != "asr.card"}
    card.write_text(json.dumps({"name": "Letters", "lang": "en"}))
    for argv, words in ([["--model", out, "--card", str(card)], "card.json: model card: unknown keys ['lang']"],
                        [["--model", out], "--model sets the card"],
                        [["--model", out, "--out", out], "--model sets the card"],
                        [["--out", out], "give --checkpoint CKPT --out FILE.onnx"]):
        assert cli.main(["export", *argv]) == 2
        assert words in capsys.readouterr().err
    assert metadata(out)["asr.card"]["name"] == "Letters"


def test_transcribe_cli_with_onnx_model(tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    ckpt = make_checkpoint(tmp_path / "m.pt")
    export_onnx(ckpt, str(tmp_path / "m.onnx"))
    sf.write(tmp_path / "a.wav", 0.1 * np.random.default_rng(0).standard_normal(16000).astype(np.float32), 16000)
    assert cli.main(["transcribe", "--model", str(tmp_path / "m.onnx"), "--format", "json",
                     str(tmp_path / "a.wav"), str(tmp_path / "no.wav")]) == 1
    captured = capsys.readouterr()
    line = json.loads(captured.out.strip().splitlines()[0])
    assert line["path"].endswith("a.wav") and "words" in line and abs(line["duration"] - 1.0) < 0.01
    assert "no.wav" in captured.err
    assert cli.main(["transcribe", "--model", str(tmp_path / "m.pt"), str(tmp_path / "a.wav")]) == 2  # a checkpoint is no ONNX model
    assert "m.pt" in capsys.readouterr().err


def test_evaluate_cli_with_onnx_model(tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    ckpt = make_checkpoint(tmp_path / "m.pt", bidirectional=False)
    export_onnx(ckpt, str(tmp_path / "u.onnx"), streaming=True, chunk_size=4)
    lines = []
    for i in range(3):
        sf.write(tmp_path / f"{i}.wav", 0.1 * np.random.default_rng(i).standard_normal(6000).astype(np.float32), 8000)
        lines.append(json.dumps({"audio_filepath": f"{i}.wav", "duration": 0.75, "text": "ab c"}))
    lines.append(json.dumps({"audio_filepath": "missing.wav", "duration": 1.0, "text": "ab"}))
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
    argv = ["evaluate", "--model", str(tmp_path / "u.onnx"), "--manifest", str(tmp_path / "m.jsonl")]
    assert cli.main(argv) == 3  # a WER over 3 of 4 entries is refused unless accepted
    captured = capsys.readouterr()
    assert "only 3 of 4 manifest entries were scored" in captured.err and "--allow-skipped" in captured.err
    assert cli.main(argv + ["--allow-skipped", "--out", str(tmp_path / "utts.txt")]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime, streaming graph, chunks of 4" in out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["num_utts"] == 3 and result["skipped"] == 1 and result["chunk_size"] == 4
    assert (result["manifest_entries"], result["unreadable_audio"], result["complete"]) == (4, 1, False)
    assert (tmp_path / "utts.txt").read_text().count("REF:") == 3 and not (tmp_path / "decode_m_u.txt").exists()


@pytest.mark.parametrize("streaming", [False, True])
def test_parity_check_compares_the_runtime_with_pytorch(tmp_path, monkeypatch, streaming):
    """A runtime whose log-probs drift from PyTorch's by more than the tolerance fails the
    export: the check compares what the written file gives through the runtime with PyTorch."""
    import asr.train.export as ex
    from asr.runtime.offline import OfflineRecognizer

    real = ex.load_model

    class Drifting:
        def __init__(self, backend):
            self.backend = backend

        def __getattr__(self, name):
            return getattr(self.backend, name)

        def log_probs(self, waves):
            return [lp + 1e-3 for lp in self.backend.log_probs(waves)]

    ckpt = make_checkpoint(tmp_path / "m.pt", bidirectional=False)
    assert export_onnx(ckpt, str(tmp_path / "ok.onnx"), streaming=streaming).max_abs_diff <= 1e-4
    monkeypatch.setattr(ex, "load_model", lambda path: OfflineRecognizer(Drifting(real(path).backend)))
    with pytest.raises(ExportError, match=r"parity check failed: the runtime differs from PyTorch by 1\.0\de-03"):
        export_onnx(ckpt, str(tmp_path / "m.onnx"), streaming=streaming)
    assert not (tmp_path / "m.onnx").exists()
