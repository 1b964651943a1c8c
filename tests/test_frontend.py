"""One front end, two implementations: numpy (runtime) and torchaudio (training)."""

import numpy as np
import pytest
import torch
import torchaudio

from asr.frontend import FrontendConfig, OnlineLogMel, logmel, mel_filterbank
from asr.train.features import LogMel
from tests.conftest import synth_utterance

CONFIGS = [
    FrontendConfig(),  # 16 kHz default
    FrontendConfig(sample_rate=8000, n_fft=512, win_length=200, hop_length=80, n_mels=80),  # FSDD recipe
    FrontendConfig(sample_rate=16000, n_fft=400, win_length=400, hop_length=160, n_mels=40,
                   mel_scale="htk", mel_norm=None, f_min=20, f_max=7600),
]


def torch_logmel(x: np.ndarray, cfg: FrontendConfig) -> np.ndarray:
    return LogMel(cfg)(torch.from_numpy(x.astype(np.float32))).numpy()


def assert_same_logmel(a: np.ndarray, b: np.ndarray) -> None:
    """numpy's log-mel (float64 inside) against torchaudio's (float32), compared as powers: a
    bin may differ by 1e-4 of itself plus float32 rounding of its frame's FFT, whose error is
    relative to the frame's whole energy, not to the bin (a bin 100 dB under its frame's peak
    carries that absolute error: in log space near the floor it reads as 1e-4 or more, and how
    much depends on the day's torch and numpy builds)."""
    pa, pb = np.exp(a.astype(np.float64)), np.exp(b.astype(np.float64))
    top = np.maximum(pa, pb)
    tol = 1e-4 * top + 64 * np.finfo(np.float32).eps * top.sum(axis=1, keepdims=True)
    bad = np.abs(pa - pb) > tol
    assert not bad.any(), (f"{int(bad.sum())} of {bad.size} bins differ beyond float32 rounding; worst at "
                           f"{np.unravel_index(np.argmax(np.abs(pa - pb) / tol), bad.shape)}: "
                           f"{np.abs(pa - pb).max():.3g}")


@pytest.mark.parametrize("cfg", CONFIGS, ids=["16k", "8k-fsdd", "htk"])
def test_filterbank_matches_torchaudio(cfg):
    ref = torchaudio.functional.melscale_fbanks(
        cfg.n_fft // 2 + 1, cfg.f_min, cfg.top_frequency, cfg.n_mels, cfg.sample_rate, cfg.mel_norm, cfg.mel_scale
    ).numpy()
    np.testing.assert_allclose(mel_filterbank(cfg), ref, atol=1e-5)  # torchaudio builds it in float32


@pytest.mark.parametrize("cfg", CONFIGS, ids=["16k", "8k-fsdd", "htk"])
@pytest.mark.parametrize("kind", ["noise", "speechlike", "silence", "loud"])
def test_numpy_equals_torch(cfg, kind, rng):
    n = int(cfg.sample_rate * 0.73) + 17  # not a multiple of the hop
    if kind == "noise":
        x = 0.1 * rng.standard_normal(n)
    elif kind == "speechlike":
        x = np.resize(synth_utterance("ab ca", rng, sr=cfg.sample_rate), n)
    elif kind == "silence":
        x = np.zeros(n)
    else:
        x = np.clip(rng.standard_normal(n), -1, 1)
    x = x.astype(np.float32)
    a, b = logmel(x, cfg), torch_logmel(x, cfg)
    assert a.shape == b.shape == (cfg.num_frames(n), cfg.n_mels)
    assert_same_logmel(a, b)


@pytest.mark.parametrize("cfg", CONFIGS[:2], ids=["16k", "8k-fsdd"])
def test_edges(cfg, rng):
    # exactly one frame, one sample short of a frame, one sample short of a second frame
    for n, frames in [(cfg.n_fft, 1), (cfg.n_fft - 1, 0), (cfg.n_fft + cfg.hop_length - 1, 1), (cfg.n_fft + cfg.hop_length, 2)]:
        x = (0.1 * rng.standard_normal(n)).astype(np.float32)
        a, b = logmel(x, cfg), torch_logmel(x, cfg)
        assert a.shape[0] == b.shape[0] == frames == cfg.num_frames(n)
        if frames:
            assert_same_logmel(a, b)


@pytest.mark.parametrize("bug", ["mel bin shifted", "window off by one sample", "floor doubled"])
def test_comparison_catches_real_differences(bug, rng):
    """The power comparison is loose only where float32 rounding is: each of these slips fails it."""
    cfg = CONFIGS[1]
    x = np.resize(synth_utterance("ab ca", rng, sr=cfg.sample_rate), cfg.sample_rate // 2).astype(np.float32)
    ref = torch_logmel(x, cfg)
    if bug == "mel bin shifted":
        got = np.roll(logmel(x, cfg), 1, axis=1)
    elif bug == "window off by one sample":
        got = logmel(np.concatenate([[0.0], x[:-1]]).astype(np.float32), cfg)
    else:
        got = logmel(x, FrontendConfig(**{**cfg.to_dict(), "log_floor": 2 * cfg.log_floor}))
    with pytest.raises(AssertionError, match="beyond float32 rounding"):
        assert_same_logmel(got, ref)


def test_online_equals_offline_with_random_pieces(rng):
    cfg = CONFIGS[1]
    x = (0.2 * rng.standard_normal(8000)).astype(np.float32)
    ref = logmel(x, cfg)
    for _trial in range(5):
        online = OnlineLogMel(cfg)
        outs, pos = [], 0
        while pos < len(x):
            k = int(rng.integers(1, 700))
            outs.append(online.accept(x[pos : pos + k]))
            pos += k
        got = np.concatenate(outs)
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, atol=1e-5)


def test_config_validation():
    with pytest.raises(ValueError, match="win_length"):
        FrontendConfig(n_fft=256, win_length=400)
    with pytest.raises(ValueError, match="f_max"):
        FrontendConfig(sample_rate=8000, f_max=6000)
    with pytest.raises(ValueError, match="mel_scale"):
        FrontendConfig(mel_scale="bark")
    with pytest.raises(ValueError, match="cover no FFT bin"):
        mel_filterbank(FrontendConfig(sample_rate=8000, n_fft=128, win_length=100, hop_length=80, n_mels=80, mel_scale="htk"))


def test_config_round_trip():
    cfg = CONFIGS[2]
    assert FrontendConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown"):
        FrontendConfig.from_dict({**cfg.to_dict(), "dither": 1.0})
