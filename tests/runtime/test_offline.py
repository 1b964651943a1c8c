"""asr.runtime.offline: one pipeline over every backend (a checkpoint run with PyTorch, an offline
ONNX graph, a streaming ONNX graph run chunk by chunk): the same input rules, the same rule for
inputs shorter than one model frame, per-item errors in batches, and the same text for the same
file whichever file of a model is loaded."""

import json

import numpy as np
import pytest
import torch

import asr
import asr.train
from asr.audio import AudioError, resample
from asr.decoding.greedy import greedy_ids
from asr.frontend import logmel
from asr.runtime import ModelError, OnlineRecognizer, OnnxBackend
from tests.conftest import FRONTEND, SR, TOKENIZER, run_without_torch, synth_utterance


def test_offline_recognizer_and_batch(models, wavs):
    path, model, _ = models.get("gru-offline")
    rec = asr.train.load_model(path)
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
    proc = run_without_torch("""
        import json, sys
        try:
            import torch
            raise SystemExit("torch was importable")
        except ImportError:
            pass
        import asr
        from asr.cli.stream import main
        texts = [asr.load_model(m).transcribe(sys.argv[3]).text for m in sys.argv[1:3]]
        assert main(["--model", sys.argv[1], sys.argv[3], "--no-partials"]) == 0
        print(json.dumps(texts))
    """, stream_path, offline_path, wavs["a"])
    texts = json.loads(proc.stdout.strip().splitlines()[-1])
    assert texts == [asr.train.load_model(stream_path).transcribe(wavs["a"]).text,
                     asr.train.load_model(offline_path).transcribe(wavs["a"]).text]


BACKENDS = {
    "checkpoint": ("gru-offline", ".pt"),
    "onnx-offline": ("gru-offline", ".onnx"),
    "checkpoint-chunked": ("gru-lc", ".pt"),
    "onnx-streaming": ("gru-lc", ".onnx"),
}


def _path(models, backend):
    name, ext = BACKENDS[backend]
    onnx_path = models.get(name)[0]
    return onnx_path[: -len(".onnx")] + ext


@pytest.fixture(scope="module")
def recognizers(models):
    return {b: asr.train.load_model(_path(models, b)) for b in BACKENDS}


def _same(a, b):
    """Two results say the same thing (names aside)."""
    return (a.text, a.words, a.utterances, a.duration, a.error) == (b.text, b.words, b.utterances, b.duration, b.error)


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_int_pcm_is_scaled_like_float(backend, recognizers):
    rec = recognizers[backend]
    wave = synth_utterance("abc ca", np.random.default_rng(21))
    pcm16 = np.round(wave * 32767).astype(np.int16)
    as_float = pcm16.astype(np.float32) / 32768.0  # the same samples as floats
    ref = rec.transcribe(as_float)
    assert ref.text  # the random model says something, so the comparison means something
    assert _same(rec.transcribe(pcm16), ref)
    assert _same(rec.transcribe(pcm16.astype(np.int32) << 16), ref)  # int32 PCM: scaled by 1/2**31
    assert _same(rec.transcribe(as_float.astype(np.float64)), ref)


BAD_ARRAYS = {
    "stereo": (np.zeros((800, 2), np.float32), r"input 0: expected a 1-D array .*got shape \(800, 2\)"),
    "nan": (np.array([0.0, np.nan, 0.1] * 300, np.float32), r"input 0: 300 sample\(s\) are NaN or infinite"),
    "inf": (np.r_[np.zeros(799), np.inf].astype(np.float32), r"input 0: 1 sample\(s\) are NaN or infinite"),
    "empty": (np.zeros(0, np.float32), r"input 0: no samples"),
    "uint8": (np.full(800, 128, np.uint8), r"input 0: samples of type uint8 are not accepted"),
    "complex": (np.zeros(800, np.complex64), r"input 0: samples of type complex64 are not accepted"),
    "object": (np.array([0.1] * 800, dtype=object), r"input 0: samples of type object are not accepted"),
}


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("case", list(BAD_ARRAYS))
def test_arrays_outside_the_input_rules_are_refused(backend, case, recognizers):
    samples, message = BAD_ARRAYS[case]
    with pytest.raises(AudioError, match=message):
        recognizers[backend].transcribe(samples)


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("rate", [0, -8000, 2.5, True, np.True_, "8000", float("nan"), float("inf"), 384_001, 10**14])
def test_bad_sample_rates_are_refused(backend, rate, recognizers):
    """Above 384 kHz (the server's bound too) is refused: 10**14 once resampled for minutes."""
    with pytest.raises(AudioError, match=r"input 0: sample rate must be a whole number of Hz in 1\.\.384000, got"):
        recognizers[backend].transcribe(np.zeros(4000, np.float32), sample_rate=rate)


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_whole_number_float_rate_is_a_rate(backend, recognizers):
    rec = recognizers[backend]
    wave = synth_utterance("ab", np.random.default_rng(4))
    assert _same(rec.transcribe(wave, sample_rate=float(SR)), rec.transcribe(wave))


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_input_shorter_than_one_model_frame_gives_empty_text(backend, recognizers):
    rec = recognizers[backend]
    fe, sub = rec.backend.frontend, rec.backend.subsampling
    too_short = fe.n_fft + (sub - 1) * fe.hop_length - 1  # one sample short of a model frame
    for n in (1, too_short):
        samples = np.full(n, 0.3, np.float32)
        r = rec.transcribe(samples)
        assert (r.text, r.words, r.error, r.final) == ("", [], None, True), (backend, n)
        assert r.duration == round(n / SR, 3) and r.utterances[0].end == 0.0
    r = rec.transcribe(np.array([7], np.int16))  # one integer sample: the same rule
    assert r.text == "" and r.words == []


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_batch_reports_a_bad_item_and_transcribes_the_others_as_alone(backend, recognizers, wavs):
    rec = recognizers[backend]
    short = synth_utterance("b", np.random.default_rng(8))  # shorter than wavs["a"]: padded in the batch
    results = rec.transcribe_batch([wavs["a"], wavs["bad"], short])
    assert len(results) == 3
    good, bad, array = results
    assert bad.name == wavs["bad"] and bad.text == "" and bad.words == [] and "cannot decode audio" in bad.error
    assert good.name == wavs["a"] and good.error is None and array.name == "input 2" and array.error is None
    assert _same(good, rec.transcribe(wavs["a"]))
    assert _same(array, rec.transcribe(short))
    assert good.text  # the comparisons are between real transcripts


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_batch_of_arrays_with_bad_ones(backend, recognizers):
    rec = recognizers[backend]
    rng = np.random.default_rng(12)
    waves = [synth_utterance(t, rng) for t in ("ab ca", "c")]
    results = rec.transcribe_batch([waves[0], np.zeros((10, 2), np.float32), np.array([np.nan], np.float32), waves[1]],
                                   sample_rate=SR)
    assert [r.name for r in results] == ["input 0", "input 1", "input 2", "input 3"]
    assert "shape (10, 2)" in results[1].error and "NaN" in results[2].error
    assert results[1].text == results[2].text == ""
    assert _same(results[0], rec.transcribe(waves[0])) and _same(results[3], rec.transcribe(waves[1]))


@pytest.mark.parametrize("name", ["gru-offline", "gru-lc", "lstm-lc", "gru-uni"])
def test_checkpoint_and_onnx_give_the_same_text(name, models, wavs):
    """The same file through asr.train.load_model(checkpoint) and asr.train.load_model(onnx): the offline
    graph for a full-context model, the streaming graph for a streaming one (the checkpoint
    then runs its chunked forward)."""
    onnx_path = models.get(name)[0]
    import asr.train

    ckpt = asr.train.load_model(onnx_path[: -len(".onnx")] + ".pt")
    graph = asr.train.load_model(onnx_path)
    assert ("streaming" in graph.backend.description) == (name != "gru-offline")
    rng = np.random.default_rng(5)
    for audio in (wavs["a"], wavs["b"], synth_utterance("cab bc a", rng)):
        a, b = ckpt.transcribe(audio), graph.transcribe(audio)
        assert _same(a, b), (name, a.text, b.text)
    said = [graph.transcribe(w).text for w in (wavs["a"], wavs["b"])]
    assert any(said)  # at least one says something
