"""The streaming runtime (OnlineRecognizer and its streams) against PyTorch's chunked forward pass, on tiny random models
exported once per session; whole files through the recognizer over each kind of graph."""

import numpy as np
import pytest
import torch

import asr
import asr.train
from asr.audio import AudioError, resample
from asr.decoding.greedy import greedy_ids
from asr.frontend import logmel
from asr.runtime import EndpointConfig, OnlineRecognizer, OnnxModel
from tests.conftest import FRONTEND, SR, STREAMING, TOKENIZER, VOCAB, _feed, _torch_reference, synth_utterance


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
    a = asr.train.load_model(path).transcribe(wavs["a"])
    s = rec.create_stream()
    from asr.audio import load_audio
    _feed(rec, s, load_audio(wavs["a"], SR), np.random.default_rng(4))
    assert a.final and a.text == rec.get_result(s).text and a.name == wavs["a"]
    assert a.words == rec.get_result(s).words
    results = asr.train.load_model(path).transcribe_batch([wavs["a"], wavs["bad"]])
    assert results[0].text == a.text and results[0].error is None
    assert results[1].text == "" and "cannot decode audio" in results[1].error and results[1].name == wavs["bad"]


def test_an_endpoint_restarts_the_rnn_state(models):
    """After an endpoint the next utterance starts from zero RNN states: its scores are those of
    the model run on the features from the endpoint on, as if a new stream had started there."""
    path, model, _ = models.get("gru-uni")  # unidirectional: chunked output = full-context output
    info = OnnxModel(path).info
    steps = 4  # rule 3 (maximum length) fires after this many chunks, whatever the audio says
    rec = OnlineRecognizer(path, endpoint=EndpointConfig(rule1=None, rule2=None, rule3=steps * info.chunk_size * info.frame_shift_s))
    wave = synth_utterance("abc ca bb", np.random.default_rng(13))
    s = rec.create_stream(keep_log_probs=True)
    _feed(rec, s, wave, np.random.default_rng(1))
    feats = logmel(wave, FRONTEND)
    per_utterance = steps * info.hop_frames  # feature frames
    ref = []
    for start in range(0, feats.shape[0] - info.subsampling + 1, per_utterance):
        f = torch.from_numpy(feats[start : start + per_utterance])[None]
        with torch.no_grad():
            lp, n = model(f, torch.tensor([f.shape[1]]))
        ref.append(lp[0, : int(n[0])].numpy())
    assert len(ref) >= 3 and s.endpoint_rules == [3] * (len(ref) - 1)
    got = np.concatenate(s.log_probs)
    assert got.shape == (sum(r.shape[0] for r in ref), len(VOCAB))
    np.testing.assert_allclose(got, np.concatenate(ref), atol=1e-4)


def test_stream_in_pieces_equals_a_stream_fed_at_random(models):
    """stream_in_pieces: the result a live source sending fixed pieces gets, the same as any
    other way of feeding the stream, endpoints included."""
    from asr.runtime.online import stream_in_pieces

    path, _, _ = models.get("lstm-lc")
    rng = np.random.default_rng(5)
    wave = np.concatenate([synth_utterance("abc a", rng), np.zeros(SR * 2, np.float32), synth_utterance("ca b", rng)])
    rec = OnlineRecognizer(path, endpoint=EndpointConfig(rule1=None, rule2=1.0, rule3=None))
    want_stream = rec.create_stream("random")
    _feed(rec, want_stream, wave, np.random.default_rng(1))
    want = rec.get_result(want_stream)
    for piece_s in (0.01, 0.1, 0.37):
        got = stream_in_pieces(rec, wave, SR, piece_s, name="pieces")
        assert got.final and got.name == "pieces"
        assert [(u.text, u.start, u.end) for u in got.utterances] == [(u.text, u.start, u.end) for u in want.utterances]
    assert want.utterances and want.final


@pytest.mark.parametrize("name", ["gru-lc", "lstm-uni"])
def test_ready_exactly_when_a_window_is_full(name, models):
    """A stream is ready the moment it holds a whole window of feature frames (the k-th step's
    window ends at window_frames + k * hop_frames), not a frame or a hop later."""
    path, _, _ = models.get(name)
    rec = OnlineRecognizer(path)
    info = rec.info
    stream = rec.create_stream("s")
    wave = synth_utterance("abc ca b", np.random.default_rng(5))
    steps = flips = 0
    for i in range(0, wave.size, FRONTEND.hop_length // 2):  # half a hop: at most one new frame per piece
        stream.accept_waveform(SR, wave[i : i + FRONTEND.hop_length // 2])
        needed = info.window_frames + steps * info.hop_frames
        assert rec.is_ready(stream) == (stream.num_feature_frames >= needed), (stream.num_feature_frames, needed)
        if rec.is_ready(stream):
            flips += stream.num_feature_frames == needed
            rec.decode_stream(stream)
            steps += 1
    assert steps >= 3 and flips == steps  # each step was taken as soon as its window was complete


def test_an_utterance_after_silence_starts_its_chunks_at_its_first_word(models):
    """EndpointConfig.onset_lead: while an utterance has no token, a chunk whose first token
    comes later than the lead is run again from the lead before it, with fresh states; its
    blank frames before that point are kept, so times and endpoints stay those of the stream.
    Off (None), after a rule-3 cut, or for a character model, the chunks run on the stream's own grid."""
    path, _, _ = models.get("endpoint-words")
    info = OnnxModel(path).info
    wave = _tone_and_silence()
    results = {}
    for lead in (None, 0.0, 2 * info.frame_shift_s):
        rec = OnlineRecognizer(path, endpoint=EndpointConfig(rule1=0.5, rule2=0.6, rule3=None, onset_lead=lead))
        s = rec.create_stream(keep_log_probs=True)
        _feed(rec, s, wave, np.random.default_rng(0))
        results[lead] = (rec.get_result(s), s)
    plain, plain_s = results[None]
    assert [u.text for u in plain.utterances] == ["a", "a"] and plain_s.endpoint_rules == [1, 2]
    for lead in (0.0, 2 * info.frame_shift_s):
        r, s = results[lead]
        assert [u.text for u in r.utterances] == ["a", "a"] and s.endpoint_rules == [1, 2]
        assert r.utterances[0].start == plain.utterances[0].start  # the endpoint after the leading silence
        assert abs(r.utterances[1].start - plain.utterances[1].start) < info.chunk_size * info.frame_shift_s  # the grid moved
        for w, p in zip(r.words, plain.words):
            assert abs(w.start - p.start) <= 0.03
        # each tone begins inside a chunk: that chunk is cut short at the lead before its token and run again
        frames = int(round(lead / info.frame_shift_s))
        pieces = [lp.argmax(axis=1) for lp in s.log_probs]
        short = [i for i, p in enumerate(pieces) if p.size < info.chunk_size and i + 1 < len(pieces)]
        assert short  # the first tone begins 3 frames into a chunk: that chunk was run again
        for i in short:
            assert not pieces[i].any()  # only blank frames are kept of the chunk run again
            assert np.flatnonzero(pieces[i + 1])[0] == frames  # the word now begins `lead` into its chunk
        firsts = [np.flatnonzero(p)[0] for i, p in enumerate(pieces) if p.any() and not pieces[i - 1].any()]
        assert len(firsts) == 2 and max(firsts) <= frames  # each utterance's word begins at most `lead` into its chunk
        assert sum(p.size for p in pieces) == sum(lp.shape[0] for lp in plain_s.log_probs)  # every frame once
    # a character model with the same weights keeps the grid: its first letter may come late into its word
    rec = OnlineRecognizer(models.get("endpoint")[0], endpoint=EndpointConfig(rule1=0.5, rule2=0.6, rule3=None,
                                                                             onset_lead=0.0))
    s = rec.create_stream(keep_log_probs=True)
    _feed(rec, s, wave, np.random.default_rng(0))
    assert [lp.shape[0] for lp in s.log_probs] == [lp.shape[0] for lp in plain_s.log_probs]
    # a rule-3 cut lands mid-speech: the next utterance keeps the grid
    rec3 = OnlineRecognizer(path, endpoint=EndpointConfig(rule1=None, rule2=None, rule3=0.5))
    s = rec3.create_stream()
    _feed(rec3, s, wave, np.random.default_rng(0))
    assert all(abs(u.end - u.start - 0.5) < 1e-9 for u in rec3.get_result(s).utterances[:-1])
