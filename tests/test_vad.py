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


class Scripted:
    """A detector that says what it is told: one probability per frame of 125 samples (1/64 s
    at 8 kHz, so frame counts of the options below are exact)."""

    frame_samples = 125

    def __init__(self, speech_frames, total):
        """``speech_frames``: frame numbers of speech (probability 1, else 0), or a dict of
        frame number -> probability."""
        if not isinstance(speech_frames, dict):
            speech_frames = {f: 1.0 for f in speech_frames}
        self.probs = [speech_frames.get(f, 0.0) for f in range(total)]
        self.next = 0

    def __call__(self, frames):
        out = self.probs[self.next: self.next + len(frames)]
        self.next += len(frames)
        return np.array(out)


def scripted_segments(speech_frames, total, extra=0, x=None, seg=None, **options):
    """Segments (start, end, speech start, speech end) of ``total`` frames (and ``extra``
    samples short of a frame) whose speech the scripted detector gives."""
    opts = VadOptions(method="energy", **options)
    if x is None:
        x = np.arange(total * 125 + extra, dtype=np.float32)  # sample value = sample index
    speech = speech_frames if isinstance(speech_frames, dict) else set(speech_frames)
    seg = seg or Segmenter(SR, opts, Scripted(speech, total))
    segs = run(seg, x, 1000)
    for s in segs:
        np.testing.assert_array_equal(s.samples, x[s.start: s.end])
    return [(s.start, s.end, s.speech_start, s.speech_end) for s in segs]


def test_min_silence_is_exact_to_the_frame():
    five = 5 / 64  # min_silence_s of exactly 5 frames
    a, b = list(range(10, 20)), list(range(24, 34))  # 4 silent frames between: bridged
    assert scripted_segments(a + b, 60, min_silence_s=five, min_speech_s=0.0, pad_s=0.0) == [(1250, 4250, 1250, 4250)]
    b = list(range(25, 35))  # exactly 5 silent frames: the pause ends the segment
    assert scripted_segments(a + b, 60, min_silence_s=five, min_speech_s=0.0, pad_s=0.0) == [
        (1250, 2500, 1250, 2500), (3125, 4375, 3125, 4375)]


def test_padding_is_capped_by_min_silence():
    # pad_s 1 s but min_silence_s 5 frames: at most 5 frames (625 samples) of padding each side
    got = scripted_segments(range(20, 30), 100, min_silence_s=5 / 64, min_speech_s=0.0, pad_s=1.0)
    assert got == [(20 * 125 - 625, 30 * 125 + 625, 2500, 3750)]
    # below the cap, pad_s itself (2 frames)
    got = scripted_segments(range(20, 30), 100, min_silence_s=5 / 64, min_speech_s=0.0, pad_s=2 / 64)
    assert got == [(20 * 125 - 250, 30 * 125 + 250, 2500, 3750)]


def test_thresholds_minimum_speech_and_the_open_segment_at_the_end():
    opts = dict(threshold=0.5, neg_threshold=0.3, min_speech_s=4 / 64, min_silence_s=5 / 64, pad_s=2 / 64)
    probs = {10: 0.5, 11: 0.3, 12: 0.3, 13: 0.3}  # exactly the start, then exactly the stop threshold
    probs.update({f: 1.0 for f in (20, 21, 22)})  # 3 frames: shorter than min_speech_s, dropped
    probs.update({f: 1.0 for f in range(30, 36)})  # speech to the end of the input
    seg = Segmenter(SR, VadOptions(method="energy", **opts), Scripted(probs, 36))
    got = scripted_segments(probs, 36, extra=60, seg=seg, **opts)
    # 4 frames of speech kept (exactly min_speech), padded by 2 frames; the last segment is
    # padded to the end of the input, the 60 samples short of a frame included
    assert got == [(1000, 2000, 1250, 1750), (3500, 36 * 125 + 60, 3750, 4500)]
    assert (seg.num_frames, seg.speech_frames) == (36, 1 + 3 + 3 + 6)


def test_one_frame_minimums_and_padding_that_would_overlap():
    # min_speech_s and min_silence_s of 0 mean one frame: one frame of speech is kept, one
    # silent frame ends it
    got = scripted_segments([10, 12], 20, min_speech_s=0.0, min_silence_s=0.0, pad_s=0.0)
    assert got == [(1250, 1375, 1250, 1375), (1500, 1625, 1500, 1625)]
    # 5 frames of padding each side of a 5-frame pause: the second segment starts where the
    # first ends (segments never overlap), at its speech
    got = scripted_segments(list(range(10, 20)) + list(range(25, 35)), 60, min_speech_s=0.0,
                            min_silence_s=5 / 64, pad_s=1.0)
    assert got == [(625, 3125, 1250, 2500), (3125, 5000, 3125, 4375)]


def test_long_speech_cuts_leave_no_gap_and_no_padding_at_the_cut():
    # all speech from frame 20 to 260, getting quieter all the time: each cut falls near the
    # longest a segment may be (max_segment_s with its padding), and the pieces join exactly
    total = 300
    t = np.arange(total * 125) / SR
    x = (np.linspace(0.5, 0.01, t.size) * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    opts = dict(max_segment_s=2.0, pad_s=0.25, min_silence_s=0.5, min_speech_s=0.0)
    got = scripted_segments(range(20, 260), total, x=x, **opts)
    pad, longest = 2000, 2 * SR
    assert len(got) >= 3
    assert got[0][0] == 20 * 125 - pad and got[-1][1] == 260 * 125 + pad  # padded outside the speech
    for (_a, b, _sa, sb), nxt in zip(got, got[1:]):
        assert b == sb == nxt[0] == nxt[2]  # cut: no padding after, none before the rest, no gap
    for i, (a, b, _, _) in enumerate(got[:-1]):
        assert b - a <= longest - (pad if i == 0 else 2 * pad)  # room for the padding it may have
        assert b - a >= longest - 2 * pad - 0.1 * SR  # the cut is at the quietest point: near the end
    # a deeper dip in the first half of a segment is not a cut point (it would leave a short piece)
    dipped = x.copy()
    dipped[60 * 125: 64 * 125] *= 0.01  # frames 60-63: 40-44 of the 96 frames a piece may hold
    got = scripted_segments(range(20, 260), total, x=dipped, **opts)
    assert all(b - a >= longest - 2 * pad - 0.1 * SR for a, b, _, _ in got[:-1])
    # digital silence in the second half: the cut falls inside it (where the smoothed energy is lowest)
    gap = x.copy()
    gap[90 * 125: 98 * 125] = 0.0
    got = scripted_segments(range(20, 260), total, x=gap, **opts)
    assert 90 * 125 <= got[0][1] <= 98 * 125
    # a cut during a short pause (shorter than min_silence_s), then more pause: one piece after another
    speech = [f for f in range(20, 260) if not 114 <= f <= 116]
    got = scripted_segments(speech, total, x=x, **opts)
    assert all(b == c for (_, b, _, _), (c, _, _, _) in zip(got, got[1:])) and got[-1][1] == 260 * 125 + pad


def test_memory_held_in_silence_is_bounded():
    seg = Segmenter(SR, VadOptions(method="energy"))
    held = 0
    rng = np.random.default_rng(0)
    for _ in range(120):  # 2 minutes of near silence in 1 s pieces
        assert seg.accept(1e-4 * rng.standard_normal(SR).astype(np.float32)) == []
        held = max(held, seg._buf.size)
    assert held <= SR + seg.pad + seg.frame


def test_options_bounds_are_inclusive_and_every_problem_is_named():
    for good in (dict(threshold=1.0, neg_threshold=1.0), dict(neg_threshold=0.0), dict(aggressiveness=0),
                 dict(aggressiveness=1), dict(aggressiveness=2), dict(aggressiveness=3),
                 dict(pad_s=0.25, max_segment_s=1.5)):
        VadOptions(**good)
    for bad in (dict(threshold=1.5), dict(threshold=0.5, neg_threshold=0.6), dict(neg_threshold=-0.1),
                dict(aggressiveness=4), dict(pad_s=0.25, max_segment_s=1.49)):
        with pytest.raises(ValueError, match="invalid VadOptions"):
            VadOptions(**bad)
    with pytest.raises(ValueError) as err:
        VadOptions(method="magic", threshold=0.0, neg_threshold=0.5)
    assert str(err.value) == ("invalid VadOptions: method must be one of silero, webrtc, energy, none, got 'magic'; "
                              "threshold must be in (0, 1], got 0.0; neg_threshold must be in [0, threshold], got 0.5")


def test_energy_vad_line_is_margin_above_the_floor_of_the_last_seconds():
    def at(db, n):  # n frames of 20 ms whose energy is db dBFS
        return np.full((n, 160), 10 ** (db / 20), np.float32)

    vad = EnergyVad(SR)  # margin 12 dB over the quietest frame of the last 10 s, at least -55 dBFS
    assert vad.frame_samples == 160
    vad(at(-40.0, 50))  # one second at -40 dB: the floor
    p = [vad(at(-28.0, 1))[0], vad(at(-26.5, 1))[0]]
    assert p == pytest.approx([0.5, 1 / (1 + np.exp(-1))], abs=1e-4)  # on the line; 1.5 dB above it
    vad(at(-30.0, 50 * 9 - 1))  # 9 s louder (and the frame above): the quiet second is still in the window
    assert vad(at(-28.0, 1))[0] == pytest.approx(0.5, abs=1e-4)
    vad(at(-30.0, 50 * 1 - 3))  # 10 s: the quiet second is forgotten, the floor is now -30 dB
    assert vad(at(-18.0, 1))[0] == pytest.approx(0.5, abs=1e-4)
    quiet = EnergyVad(SR)
    quiet(np.zeros((50, 160), np.float32))  # digital silence: the line stops at -55 dBFS
    assert quiet(at(-55.0, 1))[0] == pytest.approx(0.5, abs=1e-4)


def test_silero_feeds_the_model_as_its_reference_wrapper_does(tmp_path):
    """16 kHz: 512-sample chunks, each after the previous chunk's last 64 samples, the recurrent
    state carried (the loop of Silero's own ONNX wrapper); 8 kHz: upsampled by linear
    interpolation, continuous across frames; 32 kHz: every other sample."""
    import onnxruntime as ort

    from asr.vad import SILERO_MODEL

    rng = np.random.default_rng(1)
    x16 = (0.1 * rng.standard_normal(512 * 6)).astype(np.float32)
    sess = ort.InferenceSession(SILERO_MODEL, providers=["CPUExecutionProvider"])
    state, context, want = np.zeros((2, 1, 128), np.float32), np.zeros(64, np.float32), []
    for chunk in x16.reshape(-1, 512):
        inp = np.concatenate([context, chunk])
        out, state = sess.run(None, {"input": inp[None], "state": state, "sr": np.array(16000, np.int64)})
        context = inp[-64:]
        want.append(out[0, 0])
    vad = SileroVad(16000)
    assert vad.frame_samples == 512 and SileroVad(32000).frame_samples == 1024 and SileroVad(8000).frame_samples == 256
    np.testing.assert_array_equal(vad(x16.reshape(-1, 512)), np.array(want, np.float32))
    vad.reset()  # a fresh state gives the same again
    np.testing.assert_array_equal(vad(x16.reshape(-1, 512)), np.array(want, np.float32))

    x8 = (0.1 * rng.standard_normal(256 * 3)).astype(np.float32)
    v8 = SileroVad(8000)
    up = np.concatenate([v8._to_16k(f) for f in x8.reshape(-1, 256)])
    prev = np.concatenate([[0.0], x8[:-1]])  # the sample before each (0 before the first)
    np.testing.assert_array_equal(up[1::2], x8)
    np.testing.assert_allclose(up[0::2], 0.5 * (prev + x8), rtol=1e-6)
    np.testing.assert_array_equal(SileroVad(32000)._to_16k(np.arange(1024, dtype=np.float32)), np.arange(0, 1024, 2))

    with pytest.raises(ValueError, match=r"missing\.onnx: silero VAD model file not found"):
        Segmenter(SR, VadOptions(model=str(tmp_path / "missing.onnx")))
    with pytest.raises(ValueError, match=r"not 22050 Hz: use the webrtc or energy VAD$"):
        SileroVad(22050)


def test_speech_span_is_first_speech_to_last_without_padding(rng):
    from asr.vad import speech_span

    x = bursts([(1.0, 1.5), (2.5, 3.0), (4.0, 4.6)], 6.0, rng)
    opts = VadOptions(method="energy", pad_s=0.2)
    a, b = speech_span(x, SR, opts)
    assert abs(a / SR - 1.0) <= 0.03 and abs(b / SR - 4.6) <= 0.03  # first to last, the padding left out
    assert speech_span(np.zeros(5 * SR, np.float32), SR, opts) is None
    assert VadOptions().replace(pad_s=0.3) == VadOptions(pad_s=0.3)


def test_open_speech_at_the_end_needs_min_speech_too():
    opts = dict(min_speech_s=4 / 64, min_silence_s=5 / 64, pad_s=0.0)
    assert scripted_segments(range(26, 30), 30, **opts) == [(3250, 3750, 3250, 3750)]  # exactly min_speech
    assert scripted_segments(range(27, 30), 30, **opts) == []  # one frame short
    seg = Segmenter(SR, detector=Scripted([], 1))
    assert seg.options == VadOptions() and seg.frame == 125
