"""The acoustic model: global normalization -> convolutional subsampling -> a stack of
(bi)directional GRU/LSTM/tanh-RNN layers -> a linear CTC head over the tokenizer's vocabulary.

Each recurrent layer keeps its two directions as two unidirectional RNNs: one code path for
full context (offline); latency-controlled streaming of a bidirectional model (chunks of C
model frames, each seen with R frames of right context: the forward RNN carries its state from
chunk to chunk, taken after the C chunk frames, not after the right context, and the backward
RNN starts afresh at the end of each chunk plus its right context); and unidirectional models
(chunked output equals full-context output exactly).

Padded batches give the outputs of single utterances: features past each length are zeroed,
subsampling kernels do not overlap (no frame sees its neighbour's padding), the forward RNN is
causal, and the backward RNN reads each sequence reversed *within its own length*. No packing
is needed, which keeps the graph exportable to ONNX.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn

__all__ = ["ModelConfig", "CTCModel", "RNN_TYPES"]

# model.rnn_type -> the PyTorch layer of one direction; "rnn" is the plain tanh recurrence
RNN_TYPES = {"gru": nn.GRU, "lstm": nn.LSTM, "rnn": nn.RNN}


@dataclass
class ModelConfig:
    input_dim: int = 80  # n_mels of the front end
    vocab_size: int = 0  # set from the tokenizer
    subsampling: int = 2  # 1, 2 or 4: frames per model output step
    conv_dim: int = 256  # channels of the subsampling convolutions (2d: output size of its projection)
    # Subsampling front end: "1d" = Conv1d over stacked frames (each stage joins 2 frames of all
    # mel bins); "2d" = Conv2d stages over (time, mel) with 3-bin frequency kernels, so the same
    # detector applies at every frequency (formants shift with speaker), then a projection.
    # Both use non-overlapping time kernels, so chunked streaming stays exact.
    subsampling_conv: str = "1d"
    conv_channels: int = 32  # "2d" only: channels of each Conv2d stage
    # "gru", "lstm" or "rnn" (a plain tanh RNN, no gates: the baseline that shows what gates change)
    rnn_type: str = "gru"
    hidden_size: int = 256  # per direction
    num_layers: int = 3
    bidirectional: bool = True
    dropout: float = 0.1
    # Streaming: chunk_size C > 0 serves (and evaluates) the model chunk by chunk, with
    # right_context R frames of look-ahead for the backward direction (model frames, i.e. after
    # subsampling). 0 = full context. Unidirectional models need no right context.
    chunk_size: int = 0
    right_context: int = 0
    # Subtract each utterance's own mean log-mel (over its frames) before the global
    # normalization: removes per-recording gain and channel colouring. Needs the whole
    # utterance, so full-context bidirectional models only (streams cannot know the mean).
    utterance_cmn: bool = False
    # Intermediate CTC (Lee & Watanabe 2021): a second CTC head after this many recurrent
    # layers (0: none), trained with weight train.inter_ctc_weight; a regularizer, unused when
    # decoding and not exported.
    inter_ctc_layer: int = 0
    inter_vocab_size: int = 0  # its output units: 0 = the model's own; else set from data.aux_lexicon (phones)

    def validate(self) -> None:
        problems = self.problems()
        if problems:
            raise ValueError("invalid ModelConfig: " + "; ".join(problems))

    def problems(self, vocab: bool = True) -> list[str]:
        """What is wrong with these settings, each problem naming its field first. ``vocab``
        False leaves out vocab_size, which the tokenizer sets when training starts, so an
        experiment's config is checked as soon as it is read."""
        problems = []
        if self.subsampling not in (1, 2, 4, 8):
            problems.append(f"subsampling must be 1, 2, 4 or 8, got {self.subsampling}")
        if self.subsampling_conv not in ("1d", "2d"):
            problems.append(f"subsampling_conv must be '1d' or '2d', got {self.subsampling_conv!r}")
        if self.subsampling_conv == "2d" and self.subsampling < 2:
            problems.append("subsampling_conv '2d' needs subsampling >= 2")
        if self.subsampling_conv == "2d" and self.conv_channels <= 0:
            problems.append(f"conv_channels must be positive, got {self.conv_channels}")
        if self.rnn_type not in RNN_TYPES:
            problems.append(f"rnn_type must be 'gru', 'lstm' or 'rnn', got {self.rnn_type!r}")
        if vocab and self.vocab_size < 2:
            problems.append(f"vocab_size must be at least 2 (blank + one symbol), got {self.vocab_size}")
        if self.inter_vocab_size < 0:
            problems.append(f"inter_vocab_size must be >= 0, got {self.inter_vocab_size}")
        for name in ("input_dim", "conv_dim", "hidden_size", "num_layers"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("chunk_size", "right_context"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.right_context and not self.bidirectional:
            problems.append("right_context needs a bidirectional model (a unidirectional one streams exactly without it)")
        if self.right_context and not self.chunk_size:
            problems.append("right_context needs chunk_size > 0")
        if self.utterance_cmn and (self.chunk_size > 0 or not self.bidirectional):
            problems.append("utterance_cmn needs the whole utterance: full-context bidirectional models only (chunk_size 0)")
        if not 0 <= self.inter_ctc_layer < self.num_layers:
            problems.append(f"inter_ctc_layer must be in [0, num_layers), got {self.inter_ctc_layer}")
        if not 0 <= self.dropout < 1:
            problems.append(f"dropout must be in [0, 1), got {self.dropout}")
        return problems

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def serving(self, chunk_size: Optional[int] = None, right_context: Optional[int] = None) -> tuple[int, int]:
        """The latency condition (chunk size C, right context R) in model frames, with optional
        overrides, resolved in this one place: C <= 0 is full context (R = 0); a
        unidirectional model needs no right context (R = 0)."""
        chunk = self.chunk_size if chunk_size is None else int(chunk_size)
        if chunk <= 0:
            return 0, 0
        right = self.right_context if right_context is None else int(right_context)
        return chunk, (max(0, right) if self.bidirectional else 0)


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


class Subsampling2d(nn.Module):
    """log2(factor) stages of Conv2d(kernel=(2 frames, 3 mel bins), stride=(2, 2)) + ReLU over
    (time, mel), then a linear projection of channels x remaining bins to ``out_dim``. Frequency
    kernels overlap (a local spectral pattern is found wherever it sits); time kernels do not,
    so a chunk's output depends on its own frames only, as in :class:`Subsampling`."""

    def __init__(self, input_dim: int, channels: int, out_dim: int, factor: int):
        super().__init__()
        self.factor = factor
        layers: list[nn.Module] = []
        c, f = 1, input_dim
        for _ in range(int(math.log2(factor))):
            layers += [nn.Conv2d(c, channels, kernel_size=(2, 3), stride=(2, 2), padding=(0, 1)), nn.ReLU()]
            c, f = channels, (f - 1) // 2 + 1
        self.convs = nn.Sequential(*layers)
        self.proj = nn.Linear(c * f, out_dim)
        self.out_dim = out_dim

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return torch.div(lengths, self.factor, rounding_mode="floor")

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, F) -> (B, T // factor, D)
        t = x.shape[1] // self.factor * self.factor
        y = self.convs(x[:, :t].unsqueeze(1))  # (B, C, T', F')
        b, c, tt, f = y.shape
        return self.proj(y.permute(0, 2, 1, 3).reshape(b, tt, c * f))


def utterance_cmn(feats: torch.Tensor, lengths: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Subtract each utterance's mean feature vector over its own frames (B, T, F)."""
    if mask is None:
        mask = (torch.arange(feats.shape[1], device=feats.device)[None, :] < lengths[:, None]).unsqueeze(-1)
    mean = (feats * mask).sum(dim=1, keepdim=True) / lengths.clamp(min=1).to(feats.dtype)[:, None, None]
    return feats - mean


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence of a padded batch (B, T, D) inside its own length; padding stays
    where it is. Its own inverse."""
    t = torch.arange(x.shape[1], device=x.device).unsqueeze(0)
    lengths = lengths.unsqueeze(1)
    idx = torch.where(t < lengths, lengths - 1 - t, t)
    return torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, x.shape[2]))


State = Optional[object]  # GRU and tanh RNN: h (1, B, H); LSTM: (h, c)


class RecurrentLayer(nn.Module):
    def __init__(self, rnn_type: str, input_dim: int, hidden: int, bidirectional: bool):
        super().__init__()
        cls = RNN_TYPES[rnn_type]
        self.fwd = cls(input_dim, hidden, batch_first=True)
        self.bwd = cls(input_dim, hidden, batch_first=True) if bidirectional else None

    def _backward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        y, _ = self.bwd(reverse_within_length(x, lengths))
        return reverse_within_length(y, lengths)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Full context over a padded batch."""
        y, _ = self.fwd(x)
        if self.bwd is not None:
            y = torch.cat([y, self._backward(x, lengths)], dim=-1)
        return y

    def step(self, window: torch.Tensor, lengths: torch.Tensor, chunk: int, state: State):
        """One latency-controlled step over ``window`` = C chunk frames + right context.
        ``lengths``: valid frames of each window. Returns the outputs for the whole window and
        the forward state after the first ``chunk`` frames (carried to the next window)."""
        y, new_state = self.fwd(window[:, :chunk], state)
        if window.shape[1] > chunk:
            y_right, _ = self.fwd(window[:, chunk:], new_state)
            y = torch.cat([y, y_right], dim=1)
        if self.bwd is not None:
            y = torch.cat([y, self._backward(window, lengths)], dim=-1)
        return y, new_state


class CTCModel(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        # Global mean/variance normalization, set from training statistics and saved with the model.
        self.register_buffer("feat_mean", torch.zeros(cfg.input_dim))
        self.register_buffer("feat_std", torch.ones(cfg.input_dim))
        if cfg.subsampling_conv == "2d":
            self.subsampling = Subsampling2d(cfg.input_dim, cfg.conv_channels, cfg.conv_dim, cfg.subsampling)
        else:
            self.subsampling = Subsampling(cfg.input_dim, cfg.conv_dim, cfg.subsampling)
        dirs = 2 if cfg.bidirectional else 1
        self.rnns = nn.ModuleList()
        dim = self.subsampling.out_dim
        for _ in range(cfg.num_layers):
            self.rnns.append(RecurrentLayer(cfg.rnn_type, dim, cfg.hidden_size, cfg.bidirectional))
            dim = cfg.hidden_size * dirs
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(dim, cfg.vocab_size)
        self.inter_head = (nn.Linear(cfg.hidden_size * dirs, cfg.inter_vocab_size or cfg.vocab_size)
                           if cfg.inter_ctc_layer else None)
        self.intermediate: Optional[torch.Tensor] = None  # training: the last forward's intermediate log-probs

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.feat_mean.copy_(mean)
        self.feat_std.copy_(std.clamp(min=1e-5))

    def normalize(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = (torch.arange(feats.shape[1], device=feats.device)[None, :] < lengths[:, None]).unsqueeze(-1)
        if self.cfg.utterance_cmn:
            feats = utterance_cmn(feats, lengths, mask)
        x = (feats - self.feat_mean) / self.feat_std
        return x * mask

    def forward(
        self,
        feats: torch.Tensor,
        lengths: torch.Tensor,
        augment: Optional[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = None,
        chunk_size: Optional[int] = None,
        right_context: Optional[int] = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-mel features (B, T, F) with lengths (B,) -> CTC log-probabilities (B, T', V)
        and output lengths (B,). ``augment`` (e.g. SpecAugment) acts on normalized features.
        ``chunk_size``/``right_context`` default to the config's serving condition; pass
        ``chunk_size=0`` for full context."""
        x = self.normalize(feats, lengths)
        if augment is not None:
            x = augment(x, lengths)
        x = self.subsampling(x)
        if x.shape[1] == 0:
            raise ValueError(f"input of {feats.shape[1]} frames is too short for subsampling x{self.cfg.subsampling}")
        out_lengths = self.subsampling.output_lengths(lengths).clamp(min=1)
        chunk, right = self.cfg.serving(chunk_size, right_context)
        self.intermediate = None
        if chunk <= 0:
            for i, layer in enumerate(self.rnns):
                x = layer(self.dropout(x) if i else x, out_lengths)
                if self.inter_head is not None and self.training and i + 1 == self.cfg.inter_ctc_layer:
                    self.intermediate = self.inter_head(self.dropout(x)).log_softmax(dim=-1)
        else:
            x = self._chunked(x, out_lengths, chunk, right)
        logits = self.head(self.dropout(x))
        return logits.log_softmax(dim=-1), out_lengths

    def _chunked(self, x: torch.Tensor, lengths: torch.Tensor, chunk: int, right: int) -> torch.Tensor:
        """Latency-controlled processing of a whole (padded) batch, chunk by chunk: exactly what
        a stream computes, so training can see the serving condition."""
        states: list[State] = [None] * len(self.rnns)
        outs, inters = [], []
        inter_layer = self.cfg.inter_ctc_layer if self.inter_head is not None and self.training else 0
        for start in range(0, x.shape[1], chunk):
            h = x[:, start : start + chunk + right]
            valid = (lengths - start).clamp(min=0, max=h.shape[1])
            for i, layer in enumerate(self.rnns):
                h, states[i] = layer.step(self.dropout(h) if i else h, valid, chunk, states[i])
                if i + 1 == inter_layer:
                    inters.append(h[:, :chunk])
            outs.append(h[:, :chunk])
        if inters:
            self.intermediate = self.inter_head(self.dropout(torch.cat(inters, dim=1))).log_softmax(dim=-1)
        return torch.cat(outs, dim=1)

    def initial_state(self, batch: int = 1) -> list[torch.Tensor]:
        """Zero streaming state: [h] for GRU and tanh RNN, [h, c] for LSTM, each (num_layers, B, hidden)."""
        z = torch.zeros(self.cfg.num_layers, batch, self.cfg.hidden_size)
        return [z, z.clone()] if self.cfg.rnn_type == "lstm" else [z]

    def stream_step(self, feats: torch.Tensor, lengths: torch.Tensor, *state: torch.Tensor):
        """One streaming step on raw log-mel features of a window of (C + R) * subsampling
        frames (zero padded at the end of input; ``lengths`` = valid frames). Returns the
        log-probabilities of the C chunk frames and the next state (same layout as
        :meth:`initial_state`). This is the graph ``asr export --streaming`` writes."""
        chunk = self.cfg.chunk_size
        if chunk <= 0:
            raise ValueError("stream_step needs a model with chunk_size > 0")
        x = self.subsampling(self.normalize(feats, lengths))
        valid = self.subsampling.output_lengths(lengths)
        lstm = self.cfg.rnn_type == "lstm"
        new_h, new_c = [], []
        for i, layer in enumerate(self.rnns):
            st = (state[0][i : i + 1], state[1][i : i + 1]) if lstm else state[0][i : i + 1]
            x, ns = layer.step(x, valid, chunk, st)
            if lstm:
                new_h.append(ns[0])
                new_c.append(ns[1])
            else:
                new_h.append(ns)
        logp = self.head(x[:, :chunk]).log_softmax(dim=-1)
        out = [torch.cat(new_h, 0)] + ([torch.cat(new_c, 0)] if lstm else [])
        return (logp, *out)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
