"""One front end, two implementations: numpy (runtime) and torchaudio (training)."""

import numpy as np
import pytest
import torch
import torchaudio

from asr.nn.features import LogMel
from asr.frontend import FrontendConfig, OnlineLogMel, logmel, mel_filterbank

from conftest import synth_utterance

CONFIGS = [
    FrontendConfig(),  # 16 kHz default
    FrontendConfig(sample_rate=8000, n_fft=512, win_length=200, hop_length=80, n_mels=80),  # FSDD recipe
    FrontendConfig(sample_rate=16000, n_fft=400, win_length=400, hop_length=160, n_mels=40, mel_scale="htk", mel_norm=None, f_min=20, f_max=7600),
]


def torch_logmel(x: np.ndarray, cfg: FrontendConfig) -> np.ndarray:
    return LogMel(cfg)(torch.from_numpy(x.astype(np.float32))).numpy()


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
    np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)


@pytest.mark.parametrize("cfg", CONFIGS[:2], ids=["16k", "8k-fsdd"])
def test_edges(cfg, rng):
    # exactly one frame, one sample short of a frame, one sample short of a second frame
    for n, frames in [(cfg.n_fft, 1), (cfg.n_fft - 1, 0), (cfg.n_fft + cfg.hop_length - 1, 1), (cfg.n_fft + cfg.hop_length, 2)]:
        x = (0.1 * rng.standard_normal(n)).astype(np.float32)
        a, b = logmel(x, cfg), torch_logmel(x, cfg)
        assert a.shape[0] == b.shape[0] == frames == cfg.num_frames(n)
        if frames:
            np.testing.assert_allclose(a, b, atol=1e-4)


def test_online_equals_offline_with_random_pieces(rng):
    cfg = CONFIGS[1]
    x = (0.2 * rng.standard_normal(8000)).astype(np.float32)
    ref = logmel(x, cfg)
    for trial in range(5):
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
