"""Beam search, LM and hotwords wired through the user-facing paths: the runtime recognizers
(offline, and streaming where the final text is decoded again), `asr evaluate` (with a grid
search over LM weight and insertion bonus), `asr transcribe` and `asr-stream`."""

import json
import os

import numpy as np
import pytest

from asr import cli
from asr.decoding.beam_search import CtcBeamSearch, BeamSearchOptions, build_aligner, read_hotwords
from asr.decoding.greedy import greedy_alignment
from asr.decoding.lm import train_ngram
from asr.runtime import OfflineRecognizer, OnlineRecognizer
from asr.cli.stream import main as stream_main
from asr.decoding.result import words_from_tokens

from test_runtime import TOKENIZER, models, wavs  # noqa: F401  (session fixtures)


@pytest.fixture(scope="module")
def arpa(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("lm") / "lm.arpa")
    train_ngram(["abc ca", "cab b", "a b c", "ab ab"], order=2).write_arpa(path)
    return path


def test_read_hotwords(tmp_path):
    p = tmp_path / "hot.txt"
    p.write_text("# names\nNew York\t3.5\ncat  # a comment\n\n")
    hot = read_hotwords(str(p))
    assert hot["new york"] == 3.5 and np.isnan(hot["cat"])  # NaN: the default bonus
    p.write_text("cat\tlots\n")
    with pytest.raises(ValueError, match=r"hot.txt:1: bonus 'lots'"):
        read_hotwords(str(p))


def test_build_aligner_checks():
    assert build_aligner(TOKENIZER) is greedy_alignment
    with pytest.raises(ValueError, match="beam search"):
        build_aligner(TOKENIZER, 0, hotwords=["ab"])
    with pytest.raises(ValueError, match="hotword"):
        build_aligner(TOKENIZER, 4, hotwords=["xyz"])  # not spellable with this vocabulary: at once


def test_offline_recognizer_with_beam_search(models, wavs, arpa):
    path, _, _ = models.get("gru-offline")
    greedy = OfflineRecognizer(path).transcribe(wavs["a"])
    graph = OfflineRecognizer(path).model  # the same scores the recognizer decodes
    align = build_aligner(TOKENIZER, 8, lm=arpa, alpha=0.5, beta=1.0)
    rec = OfflineRecognizer(path, aligner=align)
    result = rec.transcribe(wavs["a"])
    # the same as running the beam search on the graph's scores by hand
    from asr.frontend import logmel
    from asr.runtime.inputs import read_input

    samples, _ = read_input(wavs["a"], None, rec.info.sample_rate, 0)
    f = logmel(samples, rec.info.frontend)[None]
    scores, n = graph.forward(f, np.array([f.shape[1]]))
    text, words = words_from_tokens(TOKENIZER, align(scores[0, : int(n[0])]), rec.info.frame_shift_s)
    assert (result.text, result.words) == (text, words)
    assert all(w.end > w.start for w in result.words)
    assert greedy.text == OfflineRecognizer(path, aligner=None).transcribe(wavs["a"]).text


def test_streaming_final_text_is_beam_decoded(models, wavs):
    path, _, _ = models.get("gru-lc")
    align = CtcBeamSearch(TOKENIZER, None, BeamSearchOptions(beam_size=8), hotwords=["cab"]).align
    rec = OnlineRecognizer(path, aligner=align)
    stream = rec.create_stream(keep_log_probs=True)
    import soundfile as sf

    wave, rate = sf.read(wavs["a"], dtype="float32")
    stream.accept_waveform(rate, wave[: len(wave) // 2])
    while rec.is_ready(stream):
        rec.decode_stream(stream)
    partial = rec.get_result(stream)
    assert not partial.final
    seen = np.concatenate(stream.log_probs)  # partials stay greedy
    assert partial.text == TOKENIZER.decode([t for t, _, _ in greedy_alignment(seen)])
    stream.accept_waveform(rate, wave[len(wave) // 2 :])
    stream.input_finished()
    while rec.is_ready(stream):
        rec.decode_stream(stream)
    final = rec.get_result(stream)
    scores = np.concatenate(stream.log_probs)
    text, words = words_from_tokens(TOKENIZER, align(scores), rec.info.frame_shift_s)
    assert final.final and (final.text, final.words) == (text, words)


def test_evaluate_with_lm_grid(tmp_path, models, arpa, capsys):
    from test_runtime import SR
    import soundfile as sf
    from conftest import synth_utterance

    rng = np.random.default_rng(3)
    manifest = tmp_path / "m.jsonl"
    with open(manifest, "w") as f:
        for i, text in enumerate(["abc ca", "cab b", "a b"]):
            p = tmp_path / f"{i}.wav"
            w = synth_utterance(text, rng)
            sf.write(p, w, SR)
            f.write(json.dumps({"audio_filepath": str(p), "duration": len(w) / SR, "text": text}) + "\n")
    path, model, _ = models.get("gru-offline")
    ckpt = path[: -len(".onnx")] + ".pt"
    argv = ["evaluate", "--checkpoint", ckpt, "--manifest", str(manifest), "--no-progress"]
    assert cli.main(argv + ["--lm", arpa, "--alpha", "0.2,0.8", "--beta", "0,1", "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert "grid search" in out and out.count("\n  ") >= 4
    result = json.loads(out.strip().splitlines()[-1])
    assert result["decoder"] == "beam" and result["beam_size"] == 16 and result["alpha"] in (0.2, 0.8)
    assert result["details"].endswith("decode_m_beam_lm.txt") and os.path.isfile(result["details"])
    # the ONNX model through the runtime takes the same options (one setting, no grid)
    assert cli.main(["evaluate", "--model", path, "--manifest", str(manifest), "--lm", arpa,
                     "--alpha", str(result["alpha"]), "--beta", str(result["beta"])]) == 0
    onnx_result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert onnx_result["wer"] == pytest.approx(result["wer"]) and onnx_result["cer"] == pytest.approx(result["cer"])
    assert cli.main(["evaluate", "--model", path, "--manifest", str(manifest), "--alpha", "0.1,0.2", "--lm", arpa]) == 2
    # a character LM, alone (grid over its weight) and beside the word LM
    from asr.decoding.lm import char_tokens

    chars = str(tmp_path / "chars.arpa")
    train_ngram([char_tokens(t) for t in ["abc ca", "cab b", "a b c", "ab ab"]], order=4).write_arpa(chars)
    assert cli.main(argv + ["--char-lm", chars, "--char-alpha", "0.3,1.0"]) == 0
    out = capsys.readouterr().out
    assert "char" in out and json.loads(out.strip().splitlines()[-1])["char_alpha"] in (0.3, 1.0)
    assert cli.main(["evaluate", "--model", path, "--manifest", str(manifest), "--lm", arpa, "--char-lm", chars,
                     "--char-alpha", "0.5"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["char_lm"] == chars and result["details"].endswith("_beam_lm_charlm.txt")
    assert cli.main(argv + ["--beam-size", "0", "--lm", arpa]) == 2  # an LM needs beam search


def test_transcribe_and_stream_with_hotwords(models, wavs, arpa, tmp_path, capsys):
    path, _, _ = models.get("gru-lc")
    ckpt = path[: -len(".onnx")] + ".pt"
    hot = tmp_path / "hot.txt"
    hot.write_text("cab\t4\n")
    for source in (["--checkpoint", ckpt], ["--model", path]):
        assert cli.main(["transcribe", *source, "--format", "json", "--hotwords", str(hot), "--lm", arpa, wavs["a"]]) == 0
        d = json.loads(capsys.readouterr().out.strip())
        assert "words" in d and all(w["end"] > w["start"] for w in d["words"])
    assert stream_main(["--model", path, "--json", "--no-partials", "--hotword", "cab", "--lm", arpa, wavs["a"]]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["path"] == wavs["a"]
    assert stream_main(["--model", path, "--hotword", "xyz", wavs["a"]]) == 2  # cannot be spelled: says so
    assert "hotword 'xyz'" in capsys.readouterr().err
