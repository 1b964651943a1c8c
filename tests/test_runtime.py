"""The torch-free ONNX runtime against PyTorch, on tiny random models exported once per session."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest
import soundfile as sf
import torch

from asr.audio import AudioError, resample
from asr.nn.checkpoint import save_checkpoint
from asr.nn.config import DataConfig, ExperimentConfig
from asr.decoding.greedy import greedy_ids
from asr.frontend import FrontendConfig, logmel
from asr.nn.model import CTCModel, ModelConfig
import asr
from asr.runtime import EndpointConfig, ModelError, OnlineRecognizer, OnnxBackend, OnnxModel
from asr.cli.stream import main as stream_main
from asr.text import BLANK, CharTokenizer
from conftest import synth_utterance
from export.onnx_export import export_onnx

SR = 8000
FRONTEND = FrontendConfig(sample_rate=SR, n_fft=256, win_length=200, hop_length=80, n_mels=24)
VOCAB = [BLANK, " ", "a", "b", "c"]
TOKENIZER = CharTokenizer(VOCAB)

STREAMING = {
    "gru-uni": dict(rnn_type="gru", bidirectional=False, subsampling=2, chunk_size=3),
    "lstm-uni": dict(rnn_type="lstm", bidirectional=False, subsampling=1, chunk_size=5),
    "gru-lc": dict(rnn_type="gru", bidirectional=True, subsampling=4, chunk_size=2, right_context=1),
    "lstm-lc": dict(rnn_type="lstm", bidirectional=True, subsampling=2, chunk_size=4, right_context=2),
}
OFFLINE = {"gru-offline": dict(rnn_type="gru", bidirectional=True, subsampling=2)}


def _random_model(seed: int, **kw) -> CTCModel:
    torch.manual_seed(seed)
    cfg = ModelConfig(input_dim=FRONTEND.n_mels, vocab_size=len(VOCAB), conv_dim=16, hidden_size=16, num_layers=2, dropout=0.0, **kw)
    m = CTCModel(cfg)
    with torch.no_grad():
        m.set_normalization(torch.full((FRONTEND.n_mels,), -7.0) + torch.randn(FRONTEND.n_mels), torch.rand(FRONTEND.n_mels) + 2.0)
        m.head.weight.mul_(6.0)  # varied argmax, so the decoded text has several symbols and words
        m.head.bias.zero_()
    return m.eval()


def _endpoint_model() -> CTCModel:
    """Hand-set weights: 'a' while the mean log-mel is above -12 (tone), blank in digital silence.
    One unidirectional GRU layer whose update gate is shut: h = tanh(4 * (mean(x) + 12))."""
    cfg = ModelConfig(input_dim=FRONTEND.n_mels, vocab_size=len(VOCAB), subsampling=1, rnn_type="gru", hidden_size=2,
                      num_layers=1, bidirectional=False, dropout=0.0, chunk_size=5)
    m = CTCModel(cfg)
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
        g, h = m.rnns[0].fwd, 2
        g.bias_ih_l0[h : 2 * h] = -20.0
        g.weight_ih_l0[2 * h :] = 4.0 / FRONTEND.n_mels
        g.bias_ih_l0[2 * h :] = 4.0 * 12.0
        m.head.weight[2] = 5.0
        m.head.bias[[1, 3, 4]] = -20.0
    return m.eval()


class Models:
    """Exports each test model on first use; keeps (onnx path, torch model, export report)."""

    def __init__(self, root):
        self.root, self.cache = root, {}

    def get(self, name):
        if name not in self.cache:
            if name == "endpoint":
                model, streaming = _endpoint_model(), True
            else:
                spec = {**STREAMING, **OFFLINE}[name]
                model, streaming = _random_model(len(self.cache) + 1, **spec), name in STREAMING
            cfg = ExperimentConfig(data=DataConfig(train="", dev=None), frontend=FRONTEND, model=model.cfg)
            ckpt = os.path.join(self.root, f"{name}.pt")
            save_checkpoint(ckpt, model, cfg, TOKENIZER)
            out = os.path.join(self.root, f"{name}.onnx")
            report = export_onnx(ckpt, out, streaming=streaming, parity_audio=[], parity_lengths_s=(0.6,))
            self.cache[name] = (out, model, report)
        return self.cache[name]


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    torch.set_num_threads(1)
    return Models(str(tmp_path_factory.mktemp("runtime_models")))


@pytest.fixture(scope="session")
def wavs(tmp_path_factory):
    """Two files: 8 kHz mono, and 16 kHz stereo; plus a bad one."""
    root = tmp_path_factory.mktemp("runtime_wavs")
    rng = np.random.default_rng(7)
    a = os.path.join(root, "a.wav")
    sf.write(a, synth_utterance("abc ca", rng), SR)
    b = os.path.join(root, "b.wav")
    w = resample(synth_utterance("cab b", rng), SR, 16000)
    sf.write(b, np.stack([w, 0.5 * w], axis=1), 16000)
    bad = os.path.join(root, "bad.wav")
    with open(bad, "w") as f:
        f.write("this is not audio")
    return {"a": a, "b": b, "bad": bad}


def _feed(rec, stream, wave, rng, rate=SR, tiny=0.7):
    """Feed in random piece sizes (tiny 1-50 samples, or big ones), decoding as frames arrive."""
    i = 0
    while i < wave.size:
        n = int(rng.integers(1, 51)) if rng.random() < tiny else int(rng.integers(200, 4000))
        stream.accept_waveform(rate, wave[i : i + n])
        i += n
        while rec.is_ready(stream):
            rec.decode_stream(stream)
    stream.input_finished()
    while rec.is_ready(stream):
        rec.decode_stream(stream)
    assert stream.done


def _torch_reference(model, wave):
    feats = torch.from_numpy(logmel(wave, FRONTEND))[None]
    with torch.no_grad():
        logp, n = model(feats, torch.tensor([feats.shape[1]]))  # chunked forward: model.cfg.chunk_size is set
    return logp[0, : int(n[0])].numpy()


@pytest.mark.parametrize("name", list(STREAMING))
def test_streaming_equals_pytorch_chunked_forward(name, models):
    path, model, _ = models.get(name)
    assert model.cfg.chunk_size > 0
    rec = OnlineRecognizer(path)
    rng = np.random.default_rng(3)
    for text, extra in (("abc ca", 0), ("b cab", 137)):  # the second ends in a partial chunk
        wave = np.concatenate([synth_utterance(text, rng), 0.01 * rng.standard_normal(extra).astype(np.float32)])
        stream = rec.create_stream(name, keep_log_probs=True)
        _feed(rec, stream, wave, rng)
        got = np.concatenate(stream.log_probs)
        ref = _torch_reference(model, wave)
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, atol=1e-4)
        result = rec.get_result(stream)
        assert result.final and result.text == TOKENIZER.decode(greedy_ids(ref))
        assert result.text  # the random models say something
        assert " ".join(w.word for w in result.words) == result.text
        frame_s = FRONTEND.hop_length * model.cfg.subsampling / SR
        assert all(0 <= w.start < w.end <= len(ref) * frame_s + 1e-9 for w in result.words)


def test_batched_streams_equal_each_alone(models):
    path, _, _ = models.get("lstm-lc")
    rng = np.random.default_rng(11)
    waves = [synth_utterance(t, rng) for t in ("abc a", "b", "ca cab bc")]
    rec = OnlineRecognizer(path)
    alone = []
    for i, w in enumerate(waves):
        s = rec.create_stream(f"alone-{i}", keep_log_probs=True)
        _feed(rec, s, w, np.random.default_rng(i))
        alone.append((rec.get_result(s), np.concatenate(s.log_probs)))

    calls = []
    session = rec.model.session

    class Counting:
        def run(self, *a, **k):
            calls.append(a[1]["feats"].shape[0])
            return session.run(*a, **k)

        def __getattr__(self, name):
            return getattr(session, name)

    rec.model.session = Counting()
    streams = [rec.create_stream(f"batch-{i}", keep_log_probs=True) for i in range(3)]
    pos = [0, 0, 0]
    while not all(s.done for s in streams):
        for i, s in enumerate(streams):
            if pos[i] < waves[i].size:
                n = int(rng.integers(1, 1500))
                s.accept_waveform(SR, waves[i][pos[i] : pos[i] + n])
                pos[i] += n
            elif not s.finished:
                s.input_finished()
        while rec.decode_streams(streams):
            pass
    assert max(calls) == 3  # one onnxruntime call stepped all three streams
    for s, (res, lp) in zip(streams, alone):
        r = rec.get_result(s)
        assert (r.text, r.words, r.duration) == (res.text, res.words, res.duration)
        np.testing.assert_allclose(np.concatenate(s.log_probs), lp, atol=1e-5)


def test_metadata_round_trip(models):
    for name in ("lstm-lc", "gru-offline"):
        path, model, report = models.get(name)
        info = OnnxModel(path).info
        assert info.frontend == FRONTEND
        assert info.tokenizer.vocab == VOCAB
        assert info.to_metadata() == report.info.to_metadata()  # what the exporter wrote is what the runtime reads
        assert info.subsampling == model.cfg.subsampling and info.vocab_size == len(VOCAB)
        assert info.graph == ("streaming" if name == "lstm-lc" else "offline")
    info = OnnxModel(models.get("lstm-lc")[0]).info
    assert (info.chunk_size, info.right_context, info.window_frames, info.hop_frames) == (4, 2, 12, 8)
    assert info.state_names == ("state_h", "state_c") and info.state_shapes["state_c"] == (2, 16)


def test_offline_recognizer_and_batch(models, wavs):
    path, model, _ = models.get("gru-offline")
    rec = asr.load_model(path)
    wave = synth_utterance("abc ca", np.random.default_rng(5))
    feats = torch.from_numpy(logmel(wave, FRONTEND))[None]
    with torch.no_grad():
        ref, n = model(feats, torch.tensor([feats.shape[1]]))
    one = rec.transcribe(wave)
    assert one.text == TOKENIZER.decode(greedy_ids(ref[0, : int(n[0])].numpy())) and one.final
    batch = rec.transcribe_batch([wavs["a"], wave, np.zeros(10, np.float32)])
    assert batch[0].name == wavs["a"] and batch[1].text == one.text and batch[2].text == ""
    assert rec.transcribe(resample(wave, SR, 16000), sample_rate=16000).text  # other rates are resampled
    with pytest.raises(ModelError, match="streaming graph"):
        OnnxBackend(models.get("gru-uni")[0])
    with pytest.raises(ModelError, match="offline graph"):
        OnlineRecognizer(path)


def test_runtime_runs_where_torch_cannot_be_imported(models, wavs):
    stream_path, offline_path = models.get("gru-uni")[0], models.get("gru-offline")[0]
    code = textwrap.dedent("""
        import json, sys

        class NoTorch:
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("torch is blocked in this process")

        sys.meta_path.insert(0, NoTorch())
        try:
            import torch
            raise SystemExit("torch was importable")
        except ImportError:
            pass
        import asr
        from asr.cli.stream import main
        texts = [asr.load_model(m).transcribe(sys.argv[3]).text for m in sys.argv[1:3]]
        assert main(["--model", sys.argv[1], sys.argv[3], "--no-partials"]) == 0
        assert not [m for m in sys.modules if m.split(".")[0] == "torch"]
        print(json.dumps(texts))
    """)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", code, stream_path, offline_path, wavs["a"]],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    texts = json.loads(proc.stdout.strip().splitlines()[-1])
    assert texts == [asr.load_model(stream_path).transcribe(wavs["a"]).text, asr.load_model(offline_path).transcribe(wavs["a"]).text]


def test_model_file_errors(models, tmp_path):
    with pytest.raises(ModelError, match="not found"):
        OnnxModel(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"definitely not a protobuf")
    with pytest.raises(ModelError, match=r"junk\.onnx: cannot load as an ONNX model"):
        OnnxModel(junk)
    proto = onnx.load(models.get("gru-uni")[0])
    bare = tmp_path / "bare.onnx"
    del proto.metadata_props[:]
    onnx.save(proto, str(bare))
    with pytest.raises(ModelError, match=r"bare\.onnx: no 'asr\.\*' metadata"):
        OnnxModel(bare)
    proto.metadata_props.add(key="asr.format", value=json.dumps("other/9"))
    onnx.save(proto, str(bare))
    with pytest.raises(ModelError, match="format is 'other/9', expected 'asr-onnx/1'"):
        OnnxModel(bare)
    with pytest.raises(ValueError, match="not found"):
        asr.load_model(tmp_path / "missing.onnx")


def test_stream_input_errors_and_resampling(models):
    path, _, _ = models.get("gru-uni")
    rec = OnlineRecognizer(path)
    s = rec.create_stream("mic-7")
    s.accept_waveform(SR, np.zeros(100, np.float32))
    with pytest.raises(AudioError, match=r"stream 'mic-7'.*NaN or infinite"):
        s.accept_waveform(SR, np.array([0.0, np.nan, 0.1], np.float32))
    with pytest.raises(AudioError, match=r"stream 'mic-7'.*NaN or infinite"):
        s.accept_waveform(SR, np.array([np.inf], np.float32))
    with pytest.raises(AudioError, match=r"stream 'mic-7'.*sample rate changed mid-stream from 8000 Hz to 16000 Hz"):
        s.accept_waveform(16000, np.zeros(100, np.float32))
    s.input_finished()
    with pytest.raises(ValueError, match="after input_finished"):
        s.accept_waveform(SR, np.zeros(10, np.float32))

    # a 16 kHz source on an 8 kHz model is resampled in the stream, like resample() on the whole signal
    wave = synth_utterance("abc ca", np.random.default_rng(9))
    w16 = resample(wave, SR, 16000)
    s16 = rec.create_stream("16k", keep_log_probs=True)
    _feed(rec, s16, w16, np.random.default_rng(1), rate=16000)
    s8 = rec.create_stream("8k", keep_log_probs=True)
    _feed(rec, s8, resample(w16, 16000, SR), np.random.default_rng(2))
    np.testing.assert_allclose(np.concatenate(s16.log_probs), np.concatenate(s8.log_probs), atol=1e-3)
    assert rec.get_result(s16).text == rec.get_result(s8).text
    other = OnlineRecognizer(path)
    with pytest.raises(ValueError, match="not created by this recognizer"):
        other.decode_stream(s16)


def _tone_and_silence():
    t = np.arange(int(0.3 * SR)) / SR
    tone = (0.4 * np.sin(2 * np.pi * 700 * t)).astype(np.float32)
    z = lambda s: np.zeros(int(s * SR), np.float32)  # noqa: E731
    return np.concatenate([z(1.0), tone, z(1.0), tone, z(0.3)])  # tones at 1.0-1.3 s and 2.3-2.6 s


def test_endpointing_end_to_end(models):
    path, model, _ = models.get("endpoint")
    wave = _tone_and_silence()
    assert TOKENIZER.decode(greedy_ids(_torch_reference(model, wave))) == "aa"  # the model does what it should
    rec = OnlineRecognizer(path, endpoint=EndpointConfig(rule1=0.5, rule2=0.6, rule3=None))
    s = rec.create_stream("ep")
    _feed(rec, s, wave, np.random.default_rng(0))
    r = rec.get_result(s)
    assert s.endpoint_rules == [1, 2]  # leading silence (dropped: no text), then silence after the first tone
    assert [u.text for u in r.utterances] == ["a", "a"] and r.text == "a a"
    first, second = r.utterances
    assert first.start == 0.5 and 1.85 <= first.end <= 1.95 and second.start == first.end and second.end > 2.6
    assert abs(first.words[0].start - 0.97) <= 0.03 and abs(second.words[0].start - 2.27) <= 0.03  # stream times

    rec3 = OnlineRecognizer(path, endpoint=EndpointConfig(rule1=None, rule2=None, rule3=0.5))
    s = rec3.create_stream()
    _feed(rec3, s, wave, np.random.default_rng(0))
    assert s.endpoint_rules and set(s.endpoint_rules) == {3}
    assert all(abs(u.end - u.start - 0.5) < 1e-9 for u in rec3.get_result(s).utterances[:-1])


def test_stream_convenience_transcribe(models, wavs):
    path, _, _ = models.get("gru-lc")
    rec = OnlineRecognizer(path)
    a = asr.load_model(path).transcribe(wavs["a"])
    s = rec.create_stream()
    from asr.audio import load_audio
    _feed(rec, s, load_audio(wavs["a"], SR), np.random.default_rng(4))
    assert a.final and a.text == rec.get_result(s).text and a.name == wavs["a"]
    assert a.words == rec.get_result(s).words
    results = asr.load_model(path).transcribe_batch([wavs["a"], wavs["bad"]])
    assert results[0].text == a.text and results[0].error is None
    assert results[1].text == "" and "cannot decode audio" in results[1].error and results[1].name == wavs["bad"]


def test_asr_stream_cli(models, wavs, capsys):
    path, _, _ = models.get("gru-lc")
    rc = stream_main(["--model", path, wavs["a"], wavs["bad"], wavs["b"], "--chunk-ms", "30", "--no-endpoint"])
    out, err = capsys.readouterr()
    assert rc == 1
    lines = [line.split("\t") for line in out.strip().splitlines()]
    assert [p for p, _, _ in lines] == [wavs["a"], wavs["b"]]
    assert lines[0][2] == asr.load_model(path).transcribe(wavs["a"]).text
    assert all(len(se.split("-")) == 2 for _, se, _ in lines)
    assert f"error: {wavs['bad']}: cannot decode audio" in err
    assert f"{wavs['a']}\tpartial\t" in err

    rc = stream_main(["--model", path, wavs["a"], "--json", "--no-partials", "--rule2", "0.2"])
    out, err = capsys.readouterr()
    assert rc == 0 and err == ""
    objs = [json.loads(line) for line in out.strip().splitlines()]
    assert objs and all(set(o) == {"path", "text", "start", "end", "words"} for o in objs)
    assert all(set(w) == {"word", "start", "end", "confidence"} for o in objs for w in o["words"])
    assert all(0.0 <= w["confidence"] <= 1.0 for o in objs for w in o["words"])

    off = models.get("gru-offline")[0]
    rc = stream_main(["--model", off, wavs["a"], wavs["b"]])
    out, err = capsys.readouterr()
    assert rc == 0 and len(out.strip().splitlines()) == 2 and "partial" not in err

    assert stream_main(["--model", wavs["bad"], wavs["a"]]) == 2
    assert "cannot load as an ONNX model" in capsys.readouterr().err
