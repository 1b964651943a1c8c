"""The acoustic model: global normalization -> convolutional subsampling -> a stack of
(bi)directional GRU/LSTM layers -> a linear CTC head over the tokenizer's vocabulary.

Padded batches give the same outputs as single utterances: features past each length are
zeroed, subsampling uses non-overlapping kernels (no frame sees its neighbour's padding), and
the recurrent layers run on packed sequences.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = ["ModelConfig", "CTCModel"]


@dataclass
class ModelConfig:
    input_dim: int = 80  # n_mels of the front end
    vocab_size: int = 0  # set from the tokenizer
    subsampling: int = 2  # 1, 2 or 4: frames per model output step
    conv_dim: int = 256  # channels of the subsampling convolutions
    rnn_type: str = "gru"  # "gru" or "lstm"
    hidden_size: int = 256  # per direction
    num_layers: int = 3
    bidirectional: bool = True
    dropout: float = 0.1

    def validate(self) -> None:
        problems = []
        if self.subsampling not in (1, 2, 4, 8):
            problems.append(f"subsampling must be 1, 2, 4 or 8, got {self.subsampling}")
        if self.rnn_type not in ("gru", "lstm"):
            problems.append(f"rnn_type must be 'gru' or 'lstm', got {self.rnn_type!r}")
        if self.vocab_size < 2:
            problems.append(f"vocab_size must be at least 2 (blank + one symbol), got {self.vocab_size}")
        for name in ("input_dim", "conv_dim", "hidden_size", "num_layers"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            problems.append(f"dropout must be in [0, 1), got {self.dropout}")
        if problems:
            raise ValueError("invalid ModelConfig: " + "; ".join(problems))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model setting(s): {sorted(unknown)}")
        return cls(**d)


class Subsampling(nn.Module):
    """log2(factor) stages of Conv1d(kernel=2, stride=2) + ReLU, then a projection (factor 1:
    the projection alone). Non-overlapping kernels make chunked streaming exact."""

    def __init__(self, input_dim: int, conv_dim: int, factor: int):
        super().__init__()
        self.factor = factor
        layers: list[nn.Module] = []
        dim = input_dim
        for _ in range(int(math.log2(factor))):
            layers += [nn.Conv1d(dim, conv_dim, kernel_size=2, stride=2), nn.ReLU()]
            dim = conv_dim
        self.convs = nn.Sequential(*layers)
        self.out_dim = dim

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return torch.div(lengths, self.factor, rounding_mode="floor")

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, F) -> (B, T // factor, D)
        if self.factor == 1:
            return x
        t = x.shape[1] // self.factor * self.factor
        return self.convs(x[:, :t].transpose(1, 2)).transpose(1, 2)


class CTCModel(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        # Global mean/variance normalization, set from training statistics and saved with the model.
        self.register_buffer("feat_mean", torch.zeros(cfg.input_dim))
        self.register_buffer("feat_std", torch.ones(cfg.input_dim))
        self.subsampling = Subsampling(cfg.input_dim, cfg.conv_dim, cfg.subsampling)
        rnn_cls = nn.GRU if cfg.rnn_type == "gru" else nn.LSTM
        dirs = 2 if cfg.bidirectional else 1
        self.rnns = nn.ModuleList()
        dim = self.subsampling.out_dim
        for _ in range(cfg.num_layers):
            self.rnns.append(rnn_cls(dim, cfg.hidden_size, batch_first=True, bidirectional=cfg.bidirectional))
            dim = cfg.hidden_size * dirs
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(dim, cfg.vocab_size)

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.feat_mean.copy_(mean)
        self.feat_std.copy_(std.clamp(min=1e-5))

    def normalize(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = (feats - self.feat_mean) / self.feat_std
        mask = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]
        return x * mask.unsqueeze(-1)

    def forward(
        self,
        feats: torch.Tensor,
        lengths: torch.Tensor,
        augment: Optional[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-mel features (B, T, F) with lengths (B,) -> CTC log-probabilities (B, T', V)
        and output lengths (B,). ``augment`` (e.g. SpecAugment) acts on normalized features."""
        x = self.normalize(feats, lengths)
        if augment is not None:
            x = augment(x, lengths)
        x = self.subsampling(x)
        out_lengths = self.subsampling.output_lengths(lengths).clamp(min=1)
        if x.shape[1] == 0:
            raise ValueError(f"input of {feats.shape[1]} frames is too short for subsampling x{self.cfg.subsampling}")
        lengths_cpu = out_lengths.cpu()
        for i, rnn in enumerate(self.rnns):
            if i:
                x = self.dropout(x)
            packed = pack_padded_sequence(x, lengths_cpu, batch_first=True, enforce_sorted=False)
            y, _ = rnn(packed)
            x, _ = pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])
        logits = self.head(self.dropout(x))
        return logits.log_softmax(dim=-1), out_lengths

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
