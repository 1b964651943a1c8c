"""Training-side front end: torchaudio log-mel from a :class:`FrontendConfig`, global
mean/variance statistics, and SpecAugment.

The numpy twin of :class:`LogMel` is ``asr.frontend.logmel``; tests hold them equal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import torch
import torchaudio

from asr.frontend import FrontendConfig

__all__ = ["LogMel", "compute_stats", "SpecAugmentConfig", "spec_augment", "vtlp", "random_gain", "random_eq", "random_noise"]


class LogMel(torch.nn.Module):
    """Waveform (..., samples) -> log-mel (..., frames, n_mels), exactly as ``frontend.logmel``."""

    def __init__(self, cfg: FrontendConfig):
        super().__init__()
        self.cfg = cfg
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=cfg.sample_rate,
            n_fft=cfg.n_fft,
            win_length=cfg.win_length,
            hop_length=cfg.hop_length,
            f_min=cfg.f_min,
            f_max=cfg.top_frequency,
            pad=0,
            n_mels=cfg.n_mels,
            window_fn=torch.hann_window,  # periodic
            power=2.0,
            normalized=False,
            center=False,
            norm=cfg.mel_norm,
            mel_scale=cfg.mel_scale,
        )

    @torch.no_grad()
    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.shape[-1] < self.cfg.n_fft:
            return wave.new_zeros(*wave.shape[:-1], 0, self.cfg.n_mels)
        mel = self.mel(wave.float())
        return torch.log(torch.clamp(mel, min=self.cfg.log_floor)).transpose(-1, -2)


def compute_stats(features: Iterable[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Global per-dimension mean and standard deviation over all frames of ``features``
    (each (frames, dims)), accumulated in float64."""
    total, total_sq, count = None, None, 0
    for f in features:
        f = f.double()
        s, sq = f.sum(0), (f * f).sum(0)
        total = s if total is None else total + s
        total_sq = sq if total_sq is None else total_sq + sq
        count += f.shape[0]
    if not count:
        raise ValueError("cannot compute normalization statistics from zero frames")
    mean = total / count
    var = (total_sq / count - mean * mean).clamp(min=1e-10)
    return mean.float(), var.sqrt().float()


@dataclass
class SpecAugmentConfig:
    freq_masks: int = 2
    freq_width: int = 15  # each mask up to this many mel bins
    time_masks: int = 2
    time_width: int = 20  # each mask up to this many frames...
    time_width_ratio: float = 0.1  # ...and at most this fraction of the utterance


def spec_augment(feats: torch.Tensor, lengths: torch.Tensor, cfg: SpecAugmentConfig, generator=None) -> torch.Tensor:
    """Zero random frequency bands and time spans of normalized features (B, T, F), in a copy.
    Each mask's width is uniform in [0, max width], its start uniform among the positions where
    it fits; time masks stay inside each utterance's own length. All masks of a batch are drawn
    and applied at once (no per-utterance Python loop)."""
    b, t, f = feats.shape
    keep = torch.ones(b, t, f, dtype=torch.bool, device=feats.device)

    def spans(n_masks: int, max_width: torch.Tensor, size: torch.Tensor, axis_len: int) -> torch.Tensor:
        """(B, axis_len) True where any of the n_masks random spans of each row falls."""
        u = torch.rand(2, b, n_masks, generator=generator)
        width = (u[0] * (max_width[:, None] + 1).float()).floor().long()
        width = torch.where(width < size[:, None], width, torch.zeros_like(width))  # a mask never covers all
        start = (u[1] * (size[:, None] - width + 1).clamp(min=1).float()).floor().long()
        pos = torch.arange(axis_len)[None, None, :]
        hit = (pos >= start[..., None]) & (pos < (start + width)[..., None])
        return hit.any(dim=1).to(feats.device)

    lengths = lengths.cpu().long()
    if cfg.freq_masks > 0:
        fw = torch.full((b,), cfg.freq_width, dtype=torch.long)
        inside = (torch.arange(t)[None, :] < lengths[:, None]).to(feats.device)  # padding stays as it is
        keep &= ~(spans(cfg.freq_masks, fw, torch.full((b,), f, dtype=torch.long), f)[:, None, :] & inside[:, :, None])
    if cfg.time_masks > 0:
        tw = torch.minimum(torch.full((b,), cfg.time_width, dtype=torch.long), (lengths.float() * cfg.time_width_ratio).long())
        keep &= ~spans(cfg.time_masks, tw, lengths, t)[:, :, None]
    return feats * keep


def random_gain(feats: torch.Tensor, lengths: torch.Tensor, low_db: float, high_db: float, log_floor: float,
                generator=None) -> torch.Tensor:
    """Recording-level perturbation on log-mel features (B, T, F), in a copy: each utterance
    as if played ``g`` dB louder, ``g`` uniform in [low_db, high_db]. A gain multiplies the
    mel power, so its log moves by g * ln(10) / 10; the front end's floor (``log_floor``) still
    holds, as it would for the quieter recording, and what sits on the floor (digital silence)
    stays there. Padding frames stay as they are."""
    db = low_db + (high_db - low_db) * torch.rand(feats.shape[0], generator=generator)
    return _filter(feats, lengths, db[:, None, None], log_floor)


def _inside(feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, T, 1): True for an utterance's own frames, False for padding."""
    t = feats.shape[1]
    return (torch.arange(t, device=feats.device)[None, :] < lengths.to(feats.device)[:, None])[:, :, None]


def _filter(feats: torch.Tensor, lengths: torch.Tensor, db: torch.Tensor, log_floor: float) -> torch.Tensor:
    """Log-mel features as heard through a gain of ``db`` dB (broadcast against (B, T, F)):
    a gain multiplies the mel power, so its log moves by db * ln(10) / 10; the front end's
    floor still holds, what sits on it (digital silence) stays there, and padding frames stay
    as they are."""
    shift = (db * (math.log(10) / 10)).to(feats.device, feats.dtype)
    floor = math.log(log_floor)
    out = torch.where(feats <= floor + 1e-4, feats, torch.clamp(feats + shift, min=floor))
    return torch.where(_inside(feats, lengths), out, feats)


def vtlp(feats: torch.Tensor, low: float, high: float, boundary: float = 0.8, generator=None) -> torch.Tensor:
    """Vocal tract length perturbation on log-mel features (B, T, F), in a copy: each utterance's
    frequency axis is warped by its own factor a, uniform in [low, high]. Bin i reads the
    spectrum at position a * i (linear interpolation between bins) up to ``boundary`` of the
    axis, then a straight line to the last bin, so the warped axis still ends at the top bin
    (the piecewise-linear warp of Jaitly & Hinton, here on the mel axis). Padding frames (all
    zero) stay zero."""
    b, t, f = feats.shape
    alpha = low + (high - low) * torch.rand(b, generator=generator)
    top = float(f - 1)
    knee = boundary * top / max(1.0, high)  # a * knee < top for every a in range
    i = torch.arange(f, dtype=torch.float32)[None, :]
    a = alpha[:, None]
    src = torch.where(i <= knee, a * i, a * knee + (top - a * knee) * (i - knee) / (top - knee))
    src = src.clamp(0, top).to(feats.device)
    lo = src.floor().long().clamp(max=f - 2)
    w = (src - lo).to(feats.dtype)[:, None, :]
    lo = lo[:, None, :].expand(b, t, f)
    return torch.gather(feats, 2, lo) * (1 - w) + torch.gather(feats, 2, lo + 1) * w


def random_eq(feats: torch.Tensor, lengths: torch.Tensor, max_db: float, log_floor: float,
              generator=None) -> torch.Tensor:
    """Channel perturbation on log-mel features (B, T, F), in a copy: each utterance as if
    heard through its own microphone and room, a smooth random equalizer curve over the mel
    axis plus, for half of the utterances, a low cut. The curve is a sum of the first four
    cosines over the axis (a tilt and broad bumps) scaled so that it spans at most ``max_db``
    dB either way; the low cut attenuates the lowest bins (up to a tenth of the axis) by up to
    ``2 * max_db`` dB, tapering to nothing at its edge (the thin sound of a small microphone
    or a high-pass filter). A filter multiplies each band's power, so its log moves by
    db * ln(10) / 10, as in :func:`random_gain`: the floor still holds and what sits on it
    stays. Padding frames stay as they are."""
    b, f = feats.shape[0], feats.shape[2]
    pos = torch.arange(f, dtype=torch.float32)[None, :] / max(1, f - 1)  # 0 .. 1 along the axis
    k = torch.arange(1, 5, dtype=torch.float32)[None, :, None]
    coef = torch.rand(b, 4, 1, generator=generator) * 2 - 1
    curve = (coef * torch.cos(math.pi * k * pos[:, None, :])).sum(1)  # (B, F)
    curve = curve / curve.abs().amax(1, keepdim=True).clamp(min=1e-6) * (max_db * torch.rand(b, 1, generator=generator))
    edge = (1 + torch.rand(b, 1, generator=generator) * (0.1 * f - 1)) / max(1, f - 1)  # low-cut width
    depth = 2 * max_db * torch.rand(b, 1, generator=generator) * (torch.rand(b, 1, generator=generator) < 0.5)
    curve = curve - depth * (1 - pos / edge).clamp(min=0)
    return _filter(feats, lengths, curve[:, None, :], log_floor)


def random_noise(feats: torch.Tensor, lengths: torch.Tensor, low_db: float, high_db: float, log_floor: float,
                 share: float = 0.5, generator=None) -> torch.Tensor:
    """Background noise on log-mel features (B, T, F), in a copy: ``share`` of the utterances
    get stationary noise at an SNR uniform in [low_db, high_db] against the utterance's mean
    power. The noise's spectrum is a random tilt along the mel axis (+5 to -25 dB from the
    lowest to the highest bin: white to brown) and its power fluctuates from frame to frame
    and bin to bin as a mel band of noise does (gamma, shape 4). Noise and speech powers add
    (their cross term averages out over a band), so the front end's floor still holds and
    noise fills what was digital silence. Padding frames stay as they are."""
    b, t, f = feats.shape
    dev, dt = feats.device, feats.dtype
    inside = _inside(feats, lengths)
    power = feats.exp() * inside
    mean_power = power.sum((1, 2)) / (lengths.to(dev).clamp(min=1) * f)  # (B,)
    snr = low_db + (high_db - low_db) * torch.rand(b, generator=generator)
    tilt = 5.0 - 30.0 * torch.rand(b, 1, generator=generator)  # dB across the axis
    shape = 10 ** (tilt * torch.linspace(0, 1, f)[None, :] / 10)  # (B, F)
    shape = shape / shape.mean(1, keepdim=True)
    level = (10 ** (-snr / 10))[:, None] * shape
    fluct = -torch.log(torch.rand(4, b, t, f, generator=generator).clamp(min=1e-12)).mean(0)  # gamma(4), mean 1
    noise = level[:, None, :].to(dev, dt) * mean_power[:, None, None] * fluct.to(dev, dt)
    noisy = torch.log(torch.clamp(power + noise, min=log_floor))
    pick = (torch.rand(b, generator=generator) < share).to(dev)[:, None, None]
    return torch.where(pick & inside, noisy, feats)
