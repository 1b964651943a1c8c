"""The streaming resampler: the same samples as resampling the whole signal, emitted as they come, in bounded memory."""

import tracemalloc

import numpy as np
import pytest

from asr.audio import resample
from asr.runtime import StreamingResampler


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
