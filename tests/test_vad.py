"""Voice activity detection: segments of a signal fed in pieces, bounded in length and memory."""

import numpy as np
import pytest

from asr.vad import EnergyVad, Segmenter, SileroVad, VadOptions, WebRtcVad

SR = 8000


def bursts(spans, total_s, rng, level=0.3, noise=1e-3):
    """Low noise with tone bursts at ``spans`` [(start s, end s), ...]."""
    x = noise * rng.standard_normal(int(total_s * SR))
    for a, b in spans:
        t = np.arange(int((b - a) * SR)) / SR
        x[int(a * SR): int(a * SR) + t.size] += level * np.sin(2 * np.pi * 440 * t)
    return x.astype(np.float32)


def run(seg, x, piece):
    out = []
    for i in range(0, x.size, piece):
        out += seg.accept(x[i: i + piece])
    return out + seg.flush()


@pytest.mark.parametrize("piece", [37, 800, 10_000, 10**6])
def test_energy_segments_find_the_bursts_whatever_the_pieces(rng, piece):
    spans = [(1.0, 1.5), (3.0, 4.2), (4.4, 4.9), (7.0, 7.05), (8.0, 9.0)]  # 4.2-4.4: a short pause; 7.0: too short
    x = bursts(spans, 10.0, rng)
    opts = VadOptions(method="energy", min_speech_s=0.1, min_silence_s=0.3, pad_s=0.1)
    segs = run(Segmenter(SR, opts), x, piece)
    got = [(s.start / SR, s.end / SR) for s in segs]
    want = [(0.9, 1.6), (2.9, 5.0), (7.9, 9.1)]  # padded, the short pause bridged, the click dropped
    assert len(got) == len(want)
    for (a, b), (c, d) in zip(got, want):
        assert abs(a - c) <= 0.05 and abs(b - d) <= 0.05
    for s in segs:  # each segment holds exactly the recording's samples at its place
        np.testing.assert_array_equal(s.samples, x[s.start: s.end])
    assert all(a.end <= b.start for a, b in zip(segs, segs[1:]))


def test_long_speech_is_cut_at_its_quietest_point(rng):
    # 30 s of "speech" whose level dips at 14 s: segments of at most 10 s, cut near the dip
    x = 0.3 * np.sin(2 * np.pi * 300 * np.arange(30 * SR) / SR).astype(np.float32)
    x[int(14.0 * SR): int(14.1 * SR)] *= 0.05
    opts = VadOptions(method="none", max_segment_s=10.0, pad_s=0.0)
    segs = run(Segmenter(SR, opts), x, 4000)
    assert all(s.samples.size <= 10.0 * SR for s in segs)
    assert segs[0].start == 0 and segs[-1].end == x.size
    assert all(a.end == b.start for a, b in zip(segs, segs[1:]))  # contiguous: nothing lost
    cuts = [s.end / SR for s in segs[:-1]]
    assert any(abs(c - 14.05) < 0.1 for c in cuts)


def test_memory_held_is_bounded_by_the_longest_segment(rng):
    opts = VadOptions(method="none", max_segment_s=5.0)
    seg = Segmenter(SR, opts)
    held = 0
    for _ in range(120):  # 2 minutes of speech in 1 s pieces
        seg.accept(0.1 * rng.standard_normal(SR).astype(np.float32))
        held = max(held, seg._buf.size)
    assert held <= (5.0 + 1.0) * SR + 2 * seg.frame


def test_silence_and_noise_give_no_segment(rng):
    quiet = (1e-3 * rng.standard_normal(20 * SR)).astype(np.float32)
    for method in ("energy", "silero"):
        assert run(Segmenter(SR, VadOptions(method=method)), quiet, 8000) == []
    assert run(Segmenter(SR, VadOptions(method="energy")), np.zeros(5 * SR, np.float32), 8000) == []


def test_detectors_give_probabilities_per_frame(rng):
    for det in (SileroVad(SR), SileroVad(16000), EnergyVad(SR)):
        frames = (0.01 * rng.standard_normal((7, det.frame_samples))).astype(np.float32)
        p = det(frames)
        assert p.shape == (7,) and np.all((p >= 0) & (p <= 1))
    with pytest.raises(ValueError, match="8 kHz or a multiple of 16 kHz"):
        SileroVad(22050)
    try:
        det = WebRtcVad(SR)
    except ValueError as exc:  # the optional package is not installed
        assert "webrtcvad-wheels" in str(exc)
    else:
        assert det(np.zeros((3, det.frame_samples), np.float32)).tolist() == [0.0, 0.0, 0.0]


def test_options_are_checked():
    for bad in (dict(method="magic"), dict(threshold=0.0), dict(max_segment_s=0.5), dict(pad_s=-1.0), dict(aggressiveness=7)):
        with pytest.raises(ValueError, match="VadOptions"):
            VadOptions(**bad)
