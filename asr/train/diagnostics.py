"""Looking inside the recurrent network: gradient norms per layer (:func:`layer_grad_norms`,
logged in training), gate statistics (:func:`gate_statistics`) and the gradient of the loss
with respect to every hidden state h_t (:func:`hidden_state_gradients`: gradient flow through
time). Full context, one utterance at a time, no dropout (the model is put in eval mode).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from asr.train.model import CTCModel

__all__ = ["layer_grad_norms", "gate_statistics", "GATE_NAMES", "hidden_state_gradients", "HiddenGradients",
           "unrolled_log_probs"]

# rnn_type -> {gate: what it is}; the tanh RNN's row is |h_t| (no gates)
GATE_NAMES = {
    "gru": {"z": "update gate (1 = keep the old state)", "r": "reset gate"},
    "lstm": {"f": "forget gate (1 = keep the cell)", "i": "input gate", "o": "output gate"},
    "rnn": {"|h|": "tanh output magnitude (1 = saturated)"},
}
NEAR = 0.1  # "near 0": < NEAR, "near 1": > 1 - NEAR


def part_of(name: str) -> str:
    """A parameter's part of the model: ``subsampling``, ``rnn2.bwd``, ``head``, ..."""
    parts = name.split(".")
    if parts[0] == "rnns":
        return f"rnn{int(parts[1]) + 1}.{parts[2]}"
    return parts[0]


@torch.no_grad()
def layer_grad_norms(model: torch.nn.Module) -> dict[str, float]:
    """L2 norm of the gradient of each part of the model (see :func:`part_of`), in order."""
    sq: dict[str, torch.Tensor] = {}
    for name, p in model.named_parameters():
        if p.grad is not None:
            key = part_of(name)
            sq[key] = sq.get(key, 0.0) + p.grad.detach().float().pow(2).sum()
    return {k: float(v) ** 0.5 for k, v in sq.items()}


def _gate_values(rnn: torch.nn.RNNBase, x: torch.Tensor, y: torch.Tensor, hx) -> dict[str, torch.Tensor]:
    """Gate activations (B, T, H) of one single-layer, batch-first PyTorch RNN from its input x
    (B, T, I), its outputs y (B, T, H) and initial state ``hx`` (None = zeros)."""
    h0 = hx[0] if isinstance(hx, tuple) else hx
    h0 = torch.zeros_like(y[:, :1]) if h0 is None else h0.transpose(0, 1)
    h_prev = torch.cat([h0, y[:, :-1]], dim=1)
    if rnn.mode == "RNN_TANH":
        return {"|h|": y.abs()}
    gi = F.linear(x, rnn.weight_ih_l0, rnn.bias_ih_l0)
    gh = F.linear(h_prev, rnn.weight_hh_l0, rnn.bias_hh_l0)
    if rnn.mode == "GRU":
        (ir, iz, _), (hr, hz, _) = gi.chunk(3, -1), gh.chunk(3, -1)
        return {"z": torch.sigmoid(iz + hz), "r": torch.sigmoid(ir + hr)}
    i, f, _, o = (gi + gh).chunk(4, -1)
    return {"f": torch.sigmoid(f), "i": torch.sigmoid(i), "o": torch.sigmoid(o)}


@torch.no_grad()
def gate_statistics(model: CTCModel, feats: Sequence[torch.Tensor], chunk_size: Optional[int] = 0) -> list[dict]:
    """Gate statistics over utterances ``feats`` (each (T, n_mels), run one at a time so no
    padding enters): one row per layer, direction and gate with ``layer`` (1-based),
    ``direction``, ``gate``, ``mean``, ``near0``, ``near1`` (shares in [0, 1]) and ``values``
    (how many). ``chunk_size`` 0: full context; None: the model's serving condition.

    A GRU's update gate z near 1 keeps the old state, an LSTM's forget gate f near 1 carries the
    cell on; saturated gates (near 0 < 0.1, near 1 > 0.9) pass no gradient to their inputs. The
    tanh RNN has no gates: its row reports |h_t| (near 1 = saturated tanh). Computed from each
    layer's own inputs and outputs with the equations of :mod:`asr.train.reference`, so it works
    on any forward pass (full context or chunked)."""
    was_training = model.training
    model.eval()
    sums: dict[tuple, list] = {}
    hooks = []
    for li, layer in enumerate(model.rnns):
        for direction in ("fwd", "bwd"):
            rnn = getattr(layer, direction)
            if rnn is None:
                continue

            def hook(module, inputs, output, key=(li + 1, direction)):
                x, hx = inputs[0], (inputs[1] if len(inputs) > 1 else None)
                for gate, v in _gate_values(module, x, output[0], hx).items():
                    acc = sums.setdefault(key + (gate,), [0.0, 0.0, 0.0, 0])
                    acc[0] += float(v.sum())
                    acc[1] += float((v < NEAR).sum())
                    acc[2] += float((v > 1 - NEAR).sum())
                    acc[3] += v.numel()

            hooks.append(rnn.register_forward_hook(hook))
    try:
        for f in feats:
            if f.shape[0] >= model.cfg.subsampling:
                model(f[None].float(), torch.tensor([f.shape[0]]), chunk_size=chunk_size)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    order = {g: i for i, g in enumerate(GATE_NAMES[model.cfg.rnn_type])}
    rows = []
    for (layer, direction, gate), (s, n0, n1, n) in sorted(sums.items(), key=lambda kv: (kv[0][0], kv[0][1] == "bwd", order[kv[0][2]])):
        rows.append({"layer": layer, "direction": direction, "gate": gate, "mean": s / n, "near0": n0 / n,
                     "near1": n1 / n, "values": n})
    return rows


# --- gradient flow through time --------------------------------------------------------------
def unrolled_log_probs(model: CTCModel, feats: torch.Tensor, offsets: Optional[dict] = None):
    """The full-context forward pass of one utterance ``feats`` (T, n_mels), one recurrent step
    at a time, with ``offsets[(layer, direction)]`` (T', H) added to the hidden states h_t of
    that direction (zeros when absent). Returns (log-probs (T', V), {(layer, direction): list
    of the T' offset tensors, each (1, 1, H), in time order}, {(layer, direction): top-layer
    outputs (T', H)}). Equal to ``model(feats[None], ..., chunk_size=0)`` in eval mode."""
    lengths = torch.tensor([feats.shape[0]])
    x = model.subsampling(model.normalize(feats[None], lengths))
    t_out = x.shape[1]
    deltas: dict[tuple, list] = {}
    top: dict[tuple, torch.Tensor] = {}
    for li, layer in enumerate(model.rnns, start=1):
        outs = []
        for direction in ("fwd", "bwd"):
            rnn = getattr(layer, direction)
            if rnn is None:
                continue
            given = (offsets or {}).get((li, direction))
            ds: list = [None] * t_out
            ys: list = [None] * t_out
            state = None
            for t in (range(t_out) if direction == "fwd" else range(t_out - 1, -1, -1)):
                _, state = rnn(x[:, t : t + 1], state)
                d = (given[t].reshape(1, 1, -1).to(x.dtype).clone() if given is not None
                     else torch.zeros(1, 1, rnn.hidden_size, dtype=x.dtype)).requires_grad_(True)
                if isinstance(state, tuple):  # LSTM: (h, c); the offset perturbs h
                    state = (state[0] + d, state[1])
                    h = state[0]
                else:
                    state = state + d
                    h = state
                ds[t], ys[t] = d, h.transpose(0, 1)
            deltas[(li, direction)] = ds
            outs.append(torch.cat(ys, dim=1))
            if li == len(model.rnns):
                top[(li, direction)] = outs[-1][0]
        x = torch.cat(outs, dim=-1)
    return model.head(x).log_softmax(dim=-1)[0], deltas, top


@dataclass
class HiddenGradients:
    """dLoss/dh_t of one utterance: ``grads[(layer, direction)]`` (T', H) for every recurrent
    state; ``frame_shift_s`` seconds per model frame; ``measure`` "loss" or "reach"."""

    grads: dict
    frame_shift_s: float
    measure: str
    loss: float

    def norms(self) -> dict[str, np.ndarray]:
        """'layer1.fwd' -> (T',) L2 norms over the hidden units."""
        return {f"layer{k[0]}.{k[1]}": np.linalg.norm(g, axis=1) for k, g in self.grads.items()}


def hidden_state_gradients(model: CTCModel, feats: torch.Tensor, targets: Optional[Sequence[int]] = None,
                           measure: str = "loss", seed: int = 0, frame_shift_s: float = 0.0) -> HiddenGradients:
    """dLoss/dh_t for every time step t, layer and direction of one utterance: the model is
    unrolled one time step at a time with a zero offset added to every hidden state, so the
    gradient with respect to the offset at t is the total derivative (through the layers above
    and every later step of the recurrence: what backpropagation through time carries).
    ``measure="loss"``: the utterance's CTC loss (sum) against ``targets`` (token ids);
    ``measure="reach"``: u . y_end of the top layer, u a random unit vector (``seed``), y_end
    its output at the last frame (forward directions) or the first (backward directions), so
    the curve shows how much the far end still feels h_t: the memory span that gates are meant
    to extend."""
    if measure not in ("loss", "reach"):
        raise ValueError(f"measure must be 'loss' or 'reach', got {measure!r}")
    model.eval()
    logp, deltas, top = unrolled_log_probs(model, feats)
    grads: dict = {}
    if measure == "loss":
        if targets is None or len(targets) == 0:
            raise ValueError("measure 'loss' needs the utterance's targets (token ids)")
        y = torch.tensor([list(targets)])
        loss = F.ctc_loss(logp[:, None], y, torch.tensor([logp.shape[0]]), torch.tensor([y.shape[1]]),
                          reduction="sum", zero_infinity=True)
        keys = list(deltas)
        flat = [d for k in keys for d in deltas[k]]
        g = torch.autograd.grad(loss, flat, allow_unused=True)
        i = 0
        for k in keys:
            n = len(deltas[k])
            grads[k] = _stack(g[i : i + n], deltas[k])
            i += n
        value = float(loss.detach())
    else:
        gen = torch.Generator().manual_seed(seed)
        value = 0.0
        for direction in ("fwd", "bwd"):
            keys = [k for k in deltas if k[1] == direction]
            if not keys:
                continue
            out = top[(len(model.rnns), direction)]
            u = torch.randn(out.shape[1], generator=gen, dtype=out.dtype)
            probe = (out[-1 if direction == "fwd" else 0] * u / u.norm()).sum()
            flat = [d for k in keys for d in deltas[k]]
            g = torch.autograd.grad(probe, flat, retain_graph=True, allow_unused=True)
            i = 0
            for k in keys:
                n = len(deltas[k])
                grads[k] = _stack(g[i : i + n], deltas[k])
                i += n
            value += float(probe.detach())
    order = sorted(grads, key=lambda k: (k[0], k[1] == "bwd"))
    return HiddenGradients({k: grads[k] for k in order}, frame_shift_s, measure, value)


def _stack(grads, deltas) -> np.ndarray:
    return np.stack([np.zeros(d.shape[-1]) if g is None else g.detach().double().reshape(-1).numpy()
                     for g, d in zip(grads, deltas)])
