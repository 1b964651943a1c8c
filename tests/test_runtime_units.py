"""Runtime pieces that need no model: streaming resampler, endpoint rules, alignment to words."""

import tracemalloc

import numpy as np
import pytest

from asr.audio import resample
from asr.runtime import EndpointConfig, EndpointDetector, StreamingResampler, detect_endpoint
from asr.decoding.greedy import greedy_alignment
from asr.decoding.result import CtcStreamDecoder, words_from_tokens
from asr.decoding.confidence import token_confidences
from asr.text import BLANK, CharTokenizer
from asr.decoding.greedy import greedy_ids


def _pieces(rng, n):
    """Piece sizes: mostly tiny (0-50 samples), sometimes large."""
    out, i = [], 0
    while i < n:
        k = int(rng.integers(0, 50)) if rng.random() < 0.7 else int(rng.integers(300, 5000))
        out.append((i, min(n, i + k)))
        i += k
    return out


@pytest.mark.parametrize(
    "orig,new", [(16000, 8000), (8000, 16000), (44100, 16000), (22050, 8000), (8000, 8000), (48000, 44100), (44101, 16000), (4001, 8000)]
)
def test_streaming_resampler_matches_whole_signal(orig, new, rng):
    for n in (int(1.1 * orig), 7, 0):  # long, shorter than the filter, empty
        x = rng.standard_normal(n).astype(np.float32) * 0.3
        r = StreamingResampler(orig, new)
        got = np.concatenate([r.accept(x[a:b]) for a, b in _pieces(rng, n)] + [r.flush()])
        want = resample(x, orig, new)
        assert got.shape == want.shape, (n, got.shape, want.shape)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)  # measured: bit-identical (0.0)


@pytest.mark.parametrize("orig,new,max_lag_s", [(16000, 8000, 0.15), (48000, 16000, 0.06), (44101, 16000, 0.06)])
def test_streaming_resampler_emits_as_it_goes(orig, new, max_lag_s, rng):
    # libsoxr's filter delay: 10 ms pieces; measured lag 115, 37 and 40 ms
    r = StreamingResampler(orig, new)
    x, piece, lags = rng.standard_normal(orig).astype(np.float32), orig // 100, []
    for i in range(0, orig, piece):
        r.accept(x[i : i + piece])
        lags.append((i + piece) / orig - r.num_out / new)
    assert max(lags) < max_lag_s and r.num_out > 0
    with pytest.raises(ValueError, match="positive"):
        StreamingResampler(0, 8000)


@pytest.mark.parametrize("orig,new", [(44101, 16000), (4001, 8000), (384000, 16000), (1000, 16000)])
def test_streaming_resampler_any_rate_in_bounded_memory(orig, new, rng):
    tone = 300.0
    x = (0.3 * np.sin(2 * np.pi * tone * np.arange(orig) / orig)).astype(np.float32)  # 1 s
    tracemalloc.start()
    try:
        r = StreamingResampler(orig, new)
        out = np.concatenate([r.accept(x[a:b]) for a, b in _pieces(rng, orig)] + [r.flush()])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50e6, f"{orig} -> {new} Hz took {peak / 1e6:.0f} MB"  # measured at most 0.2 MB
    assert out.shape == (new,) and out.dtype == np.float32
    spec = np.abs(np.fft.rfft(out * np.hanning(new)))
    assert abs(np.argmax(spec) - tone) <= 1.0  # 1 s of output: bin k is k Hz


def _detector(**rules):
    return EndpointDetector(EndpointConfig(**rules), frame_shift_s=0.1)


def test_endpoint_rule1_silence_without_speech():
    d = _detector(rule1=0.5, rule2=0.3, rule3=None)
    d.accept(np.zeros(4, int))
    assert d.check() is None
    d.accept(np.zeros(1, int))
    assert d.check() == 1
    d.reset()
    assert d.check() is None and d.num_frames == 0


def test_endpoint_rule2_trailing_silence_after_speech():
    d = _detector(rule1=0.5, rule2=0.3, rule3=None)
    d.accept(np.array([0, 0, 0, 2, 2, 0, 0]))  # speech, then 2 blank frames
    assert d.has_speech and d.trailing_blanks == 2 and d.check() is None
    d.accept(np.array([0]))
    assert d.check() == 2
    d = _detector(rule1=0.5, rule2=0.3, rule3=None)
    d.accept(np.array([0, 0, 0, 0, 3]))  # 4 blanks then speech: rule 1 no longer applies
    d.accept(np.array([0, 0]))
    assert d.check() is None
    d.accept(np.array([0, 4, 0, 0]))  # speech resets the trailing count
    assert d.trailing_blanks == 2 and d.check() is None


def test_endpoint_rule3_max_length_and_rules_off():
    d = _detector(rule1=None, rule2=None, rule3=1.0)
    for _ in range(9):
        d.accept(np.array([1]))
        assert d.check() is None
    d.accept(np.array([2]))
    assert d.check() == 3
    d = _detector(rule1=None, rule2=None, rule3=None)
    d.accept(np.zeros(1000, int))
    assert d.check() is None


def test_detect_endpoint_function_and_config_validation():
    cfg = EndpointConfig(rule1=2.4, rule2=1.2, rule3=20)
    assert detect_endpoint(cfg, has_speech=False, trailing_silence_s=2.4, utterance_s=2.4) == 1
    assert detect_endpoint(cfg, has_speech=False, trailing_silence_s=2.0, utterance_s=2.0) is None
    assert detect_endpoint(cfg, has_speech=True, trailing_silence_s=1.2, utterance_s=5) == 2
    assert detect_endpoint(cfg, has_speech=True, trailing_silence_s=0.1, utterance_s=20) == 3
    for bad in (dict(rule1=0), dict(rule2=-1.0), dict(rule3=float("inf")), dict(rule1="2")):
        with pytest.raises(ValueError, match="EndpointConfig"):
            EndpointConfig(**bad)


def test_alignment_words_and_times():
    tok = CharTokenizer([BLANK, " ", "a", "b"])
    # frames: a a _ b _ ' ' _ b b a a  -> "ab ba"
    best = [2, 2, 0, 3, 0, 1, 0, 3, 3, 2, 2]
    lp = np.full((len(best), 4), -10.0, np.float32)
    lp[np.arange(len(best)), best] = 0.0
    tokens = greedy_alignment(lp)
    assert [t[0] for t in tokens] == greedy_ids(lp)
    assert tokens == [(2, 0, 1), (3, 3, 3), (1, 5, 5), (3, 7, 8), (2, 9, 10)]
    text, words = words_from_tokens(tok, tokens, 0.04, token_confidences(lp, tokens))
    assert text == "ab ba"
    assert [(w.word, w.start, w.end) for w in words] == [("ab", 0.0, 0.16), ("ba", 0.28, 0.44)]  # a word ends with its last token's run
    assert [w.confidence for w in words] == [1.0, 1.0]
    # the streaming decoder gives the same (confidences included), whatever the chunking
    dec = CtcStreamDecoder(tok, 0.04)
    for a, b in [(0, 1), (1, 4), (4, 4), (4, 11)]:
        dec.accept(lp[a:b])
    u = dec.finish_utterance()
    assert (u.text, u.start, u.end, u.words) == (text, 0.0, 0.44, words)
    assert dec.utterance_start == 11 and dec.tokens == []


def test_runtime_sources_never_import_torch():
    import pathlib
    import re

    import asr.runtime

    root = pathlib.Path(asr.runtime.__file__).parent
    pattern = re.compile(r"^\s*(import torch|from torch)", re.M)
    offenders = [p.name for p in root.glob("*.py") if pattern.search(p.read_text())]
    assert offenders == []


def test_word_units_each_token_is_a_word():
    from asr.text import WordTokenizer

    tok = WordTokenizer([BLANK, "one", "two"])
    text, words = words_from_tokens(tok, [(1, 2, 4), (2, 7, 7)], 0.02)
    assert text == "one two"
    assert [(w.word, w.start, w.end) for w in words] == [("one", 0.04, 0.1), ("two", 0.14, 0.16)]
