"""Long recordings: read in blocks, segmented by voice activity, decoded in batches, in bounded memory."""

import os
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

import asr
import asr.train
from asr.frontend import FrontendConfig
from asr.runtime.longform import LONG_FORM_MIN_S, LongFormOptions, iter_utterances, transcribe_long
from asr.runtime.offline import OfflineRecognizer
from asr.text import BLANK, CharTokenizer
from asr.vad import VadOptions
from tests.conftest import TONES, run_without_torch

SR = 8000
FRONTEND = FrontendConfig(sample_rate=SR, n_fft=256, win_length=200, hop_length=80, n_mels=24)
TOKENIZER = CharTokenizer([BLANK, " ", "a", "b", "c"])
ENERGY = LongFormOptions(vad=VadOptions(method="energy"), block_s=3.0, batch_s=8.0)


class ToneBackend:
    """A stand-in model that is always right: each 10 ms frame is the letter whose tone
    (conftest.TONES) is loudest in it, or blank when nothing is loud."""

    path, description, details = "tones", "tone detector", {}
    frontend, tokenizer, subsampling = FRONTEND, TOKENIZER, 1

    def __init__(self):
        self.calls = []

    def log_probs(self, waves):
        self.calls.append([w.size for w in waves])
        out = []
        for w in waves:
            n = FRONTEND.num_frames(w.size)
            frames = np.lib.stride_tricks.sliding_window_view(w, FRONTEND.n_fft)[:: FRONTEND.hop_length][:n]
            t = np.arange(FRONTEND.n_fft) / SR
            power = np.stack([np.abs(frames @ np.exp(-2j * np.pi * f * t)) for f in TONES.values()], axis=1)
            best = np.where(power.max(axis=1) > 5.0, power.argmax(axis=1) + 2, 0)
            lp = np.full((n, len(TOKENIZER.vocab)), -12.0, np.float32)
            lp[np.arange(n), best] = 0.0
            out.append(lp)
        return out


def tone_word(word, rng):
    parts = []
    for ch in word:
        t = np.arange(int(0.12 * SR)) / SR
        parts.append(0.4 * np.sin(2 * np.pi * TONES[ch] * t + rng.uniform(0, 6.28)))
    return np.concatenate(parts)


def long_recording(path, n_words, rng, noise=1e-3):
    """Words of tones (no letter twice in a row) separated by 0.6-2 s pauses of low noise,
    written in pieces; returns [(word, start s, end s)]."""
    truth = []
    with sf.SoundFile(path, "w", samplerate=SR, channels=1, subtype="PCM_16") as f:
        pos = 0
        for _i in range(n_words):
            gap = (noise * rng.standard_normal(int(rng.uniform(0.6, 2.0) * SR))).astype(np.float32)
            f.write(gap)
            pos += gap.size
            word = "".join(rng.choice(["ab", "ca", "b", "cab", "bc"], 1))
            w = tone_word(word, rng).astype(np.float32)
            f.write(w)
            truth.append((word, pos / SR, (pos + w.size) / SR))
            pos += w.size
        f.write((noise * rng.standard_normal(SR)).astype(np.float32))
    return truth


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("long") / "long.wav")
    truth = long_recording(path, 60, np.random.default_rng(3))
    return path, truth


def test_known_words_at_their_times_through_blocks_and_batches(recording):
    path, truth = recording
    backend = ToneBackend()
    rec = OfflineRecognizer(backend)
    result = rec.transcribe(path, options=ENERGY)  # longer than LONG_FORM_MIN_S: the long-form path by default
    assert sf.info(path).duration > max(LONG_FORM_MIN_S, 10 * ENERGY.block_s)
    assert [u.text for u in result.utterances] == [w for w, _, _ in truth]
    assert result.text == " ".join(w for w, _, _ in truth) and result.final
    for u, (_word, start, end) in zip(result.utterances, truth):
        (w,) = u.words
        assert abs(w.start - start) <= 0.04 and abs(w.end - end) <= 0.04 and w.confidence == 1.0
        assert u.start <= w.start and w.end <= u.end
    assert abs(result.duration - sf.info(path).duration) < 1e-3
    # batches of about batch_s seconds of audio, never the whole file
    assert len(backend.calls) > 1 and max(len(c) * max(c) for c in backend.calls) <= ENERGY.batch_s * SR
    # the same through iter_utterances, and with the short path when forced
    assert [u.text for u in iter_utterances(rec, path, options=ENERGY)] == [u.text for u in result.utterances]


def test_reads_in_blocks_never_the_whole_file(recording, monkeypatch):
    """A reader that fails when asked for more than a block: the long path still transcribes."""
    path, truth = recording
    real_read = sf.SoundFile.read
    asked = []

    def read(self, frames=-1, *args, **kwargs):
        asked.append(frames)
        if frames < 0 or frames > ENERGY.block_s * SR:
            raise AssertionError(f"asked for {frames} frames at once")
        return real_read(self, frames, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", read)
    monkeypatch.setattr(sf, "read", lambda *a, **k: (_ for _ in ()).throw(AssertionError("sf.read reads everything")))
    result = OfflineRecognizer(ToneBackend()).transcribe(path, options=ENERGY)
    assert result.text.split() == [w for w, _, _ in truth]
    assert len(asked) >= sf.info(path).duration / ENERGY.block_s


def test_memory_does_not_grow_with_the_length(tmp_path):
    """numpy's peak allocation (tracemalloc sees it) while transcribing 2 and 6 minutes."""
    peaks = []
    for minutes in (2, 6):
        path = str(tmp_path / f"{minutes}.wav")
        long_recording(path, int(minutes * 60 / 1.6), np.random.default_rng(minutes))
        rec = OfflineRecognizer(ToneBackend())
        tracemalloc.start()
        n = sum(1 for _ in iter_utterances(rec, path, options=ENERGY))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert n > 0
    assert peaks[1] < 1.2 * peaks[0], peaks


def test_silence_gives_no_words(tmp_path, rng):
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, (1e-3 * rng.standard_normal(40 * SR)).astype(np.float32), SR)
    zeros = tmp_path / "zeros.wav"
    sf.write(zeros, np.zeros(3 * SR, np.float32), SR)
    rec = OfflineRecognizer(ToneBackend())
    for method in ("silero", "energy"):
        opts = LongFormOptions(vad=VadOptions(method=method))
        r = rec.transcribe(str(quiet), options=opts)
        assert (r.text, r.words, r.utterances) == ("", [], []) and r.duration == 40.0
        assert rec.transcribe(str(zeros), long_form=True, options=opts).words == []


def test_arrays_and_short_files(recording, rng):
    path, truth = recording
    rec = OfflineRecognizer(ToneBackend())
    wave, _ = sf.read(path, dtype="float32")
    from_array = rec.transcribe(wave, options=ENERGY)  # a long array is segmented too
    assert from_array.text == " ".join(w for w, _, _ in truth) and from_array.name == "input 0"
    short = wave[: int(5 * SR)]
    one = rec.transcribe(short)  # short: one utterance, the whole input in one call (as before)
    assert len(one.utterances) == 1 and one.utterances[0].start == 0.0
    assert rec.transcribe(short, long_form=True, options=ENERGY).text.split() == ["cab", "ab", "cab"]  # the segments
    assert one.text == "cababcab"  # the stand-in never says a space


def test_streaming_graph_takes_the_streaming_path_with_endpointing(models, tmp_path, rng):
    """The hand-set model says 'a' during a tone, blank in silence: each burst one utterance."""
    path, _, _ = models.get("endpoint")
    rec = asr.train.load_model(path)
    assert getattr(rec.backend, "online", None) is not None
    x = np.zeros(int(45 * SR), np.float32)
    starts = np.arange(1.0, 44.0, 3.0)
    t = np.arange(int(0.5 * SR)) / SR
    for s in starts:
        x[int(s * SR): int(s * SR) + t.size] = 0.5 * np.sin(2 * np.pi * 700 * t)
    wav = tmp_path / "bursts.wav"
    sf.write(wav, x, SR, subtype="FLOAT")
    r = rec.transcribe(str(wav), options=ENERGY)
    assert [u.text for u in r.utterances] == ["a"] * len(starts)
    for u, s in zip(r.utterances, starts):
        assert s - 0.25 <= u.start <= s and abs(u.words[0].start - s) < 0.1 and 0 < u.words[0].confidence <= 1
    # the whole file as one stream gives the same words (the VAD only dropped silence)
    whole = rec.transcribe(str(wav), long_form=False)
    assert whole.text.replace(" ", "") == "a" * len(starts)


def test_offline_graph_and_checkpoint_take_the_segment_path(models, recording):
    path, _, _ = models.get("gru-offline")
    for model in (path, path[: -len(".onnx")] + ".pt"):
        rec = asr.train.load_model(model)
        r = transcribe_long(rec, recording[0], options=ENERGY)
        assert r.final and r.duration > 60 and all(u.text for u in r.utterances)
        assert all(a.end <= b.start + 1e-6 for a, b in zip(r.utterances, r.utterances[1:]))
        assert all(0.0 <= w.confidence <= 1.0 for w in r.words)


def test_long_path_runs_where_torch_cannot_be_imported(models, recording, tmp_path):
    """Silero VAD, the streaming and offline graphs, the writers and alignment: no torch."""
    import json

    code = """
        import json, sys
        import asr
        from asr.cli import main
        texts = [asr.load_model(m).transcribe(sys.argv[3]).text for m in sys.argv[1:3]]
        assert main(["transcribe", "--model", sys.argv[2], "--write", "all", "--output-dir", sys.argv[4], sys.argv[3]]) == 0
        assert main(["align", "--model", sys.argv[2], "--text", "abc", sys.argv[3]]) in (0, 1)
        print(json.dumps(texts))
    """
    stream, offline = models.get("gru-uni")[0], models.get("gru-offline")[0]
    proc = run_without_torch(code, stream, offline, recording[0], str(tmp_path), timeout=300)
    assert len(json.loads(proc.stdout.strip().splitlines()[-1])) == 2
    assert len(os.listdir(tmp_path)) == 5


class SpikeBackend(ToneBackend):
    """Like a bidirectional CTC model: the whole word's letters on the first frames of the
    input, blank after, whatever padding comes first."""

    def log_probs(self, waves):
        out = []
        for lp in super().log_probs(waves):
            letters = [t for i, t in enumerate(lp.argmax(axis=1)) if t and (i == 0 or lp[i - 1].argmax() != t)]
            spiky = np.full_like(lp, -12.0)
            spiky[:, 0] = 0.0
            for i, t in enumerate(letters):
                spiky[2 * i] = -12.0
                spiky[2 * i, t] = 0.0
            out.append(spiky)
        return out


def test_word_times_are_bounded_by_the_detected_speech(recording):
    path, truth = recording
    rec = OfflineRecognizer(SpikeBackend())
    bounded = rec.transcribe(path, options=ENERGY)
    raw = rec.transcribe(path, options=ENERGY.replace(vad_word_bounds=False))
    assert [u.text for u in bounded.utterances] == [u.text for u in raw.utterances] == [w for w, _, _ in truth]
    for b, r, (_, start, end) in zip(bounded.words, raw.words, truth):
        assert r.start < start - 0.05 and r.end < start + 0.1  # the spike sits in the padding
        assert abs(b.start - start) <= 0.05 and abs(b.end - end) <= 0.05  # where the detector heard the word


class EchoBackend(ToneBackend):
    """Like a bidirectional CTC model that emits a segment's first word twice: its letters on
    the first frames of the input (in the padding before the speech), then a word break, then
    again where its tones are."""

    def log_probs(self, waves):
        out = []
        for lp in super().log_probs(waves):
            best = lp.argmax(axis=1)
            letters = [t for i, t in enumerate(best) if t and (i == 0 or best[i - 1] != t)]
            onset = int(np.flatnonzero(best)[0]) if letters else 0
            first = letters[: next((i for i, t in enumerate(letters) if t == 1), len(letters))]
            if first and 2 * len(first) + 1 < onset:
                for i, t in enumerate(first):
                    lp[2 * i] = -12.0
                    lp[2 * i, t] = 0.0
                lp[2 * len(first)] = -12.0
                lp[2 * len(first), 1] = 0.0  # the word break
            out.append(lp)
        return out


def test_a_first_word_echoed_in_the_padding_counts_once(recording):
    path, truth = recording
    rec = OfflineRecognizer(EchoBackend())
    echoed = rec.transcribe(path, options=ENERGY.replace(merge_lead_echo=False))
    assert [u.text for u in echoed.utterances] == [f"{w} {w}" for w, _, _ in truth]  # the stand-in echoes every word
    merged = rec.transcribe(path, options=ENERGY)
    assert [u.text for u in merged.utterances] == [w for w, _, _ in truth]
    for w, (_, start, end) in zip(merged.words, truth):
        assert abs(w.start - start) <= 0.05 and abs(w.end - end) <= 0.05


def test_merge_lead_echo_keeps_words_said_twice_and_other_words():
    from asr.decoding.result import Utterance, Word
    from asr.runtime.longform import merge_lead_echo

    def utts(*words):
        ws = [Word(w, s, e, c) for w, s, e, c in words]
        return [Utterance(" ".join(w.word for w in ws), 0.0, 2.0, ws)]

    # the first copy in the padding (before the speech at 0.5 s): one word, the higher confidence
    (u,) = merge_lead_echo(utts(("one", 0.0, 0.02, 0.6), ("one", 0.52, 0.54, 0.9), ("two", 1.0, 1.02, 0.8)), 0.5)
    assert u.text == "one two" and [(w.start, w.confidence) for w in u.words] == [(0.52, 0.9), (1.0, 0.8)]
    assert merge_lead_echo(utts(("one", 0.0, 0.02, 0.9), ("one", 0.52, 0.54, 0.6)), 0.5)[0].words[0].confidence == 0.9
    # said twice: the first copy in the speech
    assert merge_lead_echo(utts(("one", 0.5, 0.52, 1.0), ("one", 0.9, 0.92, 1.0)), 0.5)[0].text == "one one"
    # another word in the padding, or a lone word there: kept
    assert merge_lead_echo(utts(("two", 0.0, 0.02, 1.0), ("one", 0.52, 0.54, 1.0)), 0.5)[0].text == "two one"
    assert merge_lead_echo(utts(("one", 0.0, 0.02, 1.0)), 0.5)[0].text == "one"
    assert merge_lead_echo([], 0.5) == []
    # across utterances (a streaming graph's endpoint between them): the first utterance goes
    a, b = Utterance("one", 0.0, 0.3, [Word("one", 0.0, 0.02)]), Utterance("one", 0.3, 1.0, [Word("one", 0.52, 0.54)])
    assert merge_lead_echo([a, b], 0.5) == [b]
