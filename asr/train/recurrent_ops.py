"""The exported graphs' recurrent layers as onnxruntime's own GRU / LSTM / RNN operators.

PyTorch's exporter writes each direction of :class:`asr.train.model.RecurrentLayer` as its own
recurrent operator and the backward direction's reversal *within each window's valid length*
as a dozen index operators before and after it: at batch 1 those cost a third of a streaming
step. ONNX recurrent operators have both built in: ``direction="reverse"`` with
``sequence_lens`` reads each sequence backwards from its own last valid frame, which is exactly
``reverse_within_length`` + RNN + reverse.

:func:`native_ops` makes a model's layers export that way: :func:`native_forward` (full
context, the offline graph) and :func:`native_step` (the streaming graph). In PyTorch each
*is* the layer's own method, so tracing sees the same numbers; the export's parity check
compares the written graph with PyTorch on every valid frame.
"""

from __future__ import annotations

import contextlib
import functools

import torch
from torch import nn

__all__ = ["native_ops", "native_step", "native_forward", "onnx_weights"]

# PyTorch gate order -> ONNX gate order, as indices into PyTorch's blocks
_GATE_ORDER = {"gru": [1, 0, 2],  # (r, z, n) -> (z, r, h)
               "lstm": [0, 3, 1, 2],  # (i, f, g, o) -> (i, o, f, c)
               "rnn": [0]}
_ONNX_OP = {"gru": "GRU", "lstm": "LSTM", "rnn": "RNN"}


def _kind(rnn: nn.RNNBase) -> str:
    return {nn.GRU: "gru", nn.LSTM: "lstm", nn.RNN: "rnn"}[type(rnn)]


def onnx_weights(*directions: nn.RNNBase) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """W (D, G*H, I), R (D, G*H, H), B (D, 2*G*H) of one-layer unidirectional PyTorch RNNs
    (one per direction), in ONNX's gate order."""
    kind = _kind(directions[0])
    order = _GATE_ORDER[kind]

    def reorder(t: torch.Tensor) -> torch.Tensor:
        blocks = t.chunk(len(order), 0)
        return torch.cat([blocks[i] for i in order])

    w, r, b = [], [], []
    for d in directions:
        if d.num_layers != 1 or d.bidirectional or not d.bias or getattr(d, "proj_size", 0):
            raise ValueError(f"expected one-layer unidirectional {kind} with biases, got {d}")
        if kind == "rnn" and d.nonlinearity != "tanh":
            raise ValueError(f"only tanh RNNs export, got nonlinearity={d.nonlinearity!r}")
        w.append(reorder(d.weight_ih_l0))
        r.append(reorder(d.weight_hh_l0))
        b.append(torch.cat([reorder(d.bias_ih_l0), reorder(d.bias_hh_l0)]))
    return torch.stack(w).detach(), torch.stack(r).detach(), torch.stack(b).detach()


def _const(g, values, dtype=torch.int64):
    return g.op("Constant", value_t=torch.tensor(values, dtype=dtype))


def _to_batch_major(g, y):
    """ONNX Y (T, D, B, H) -> (B, T, D*H)."""
    y = g.op("Transpose", y, perm_i=[2, 0, 1, 3])
    return g.op("Reshape", y, _const(g, [0, 0, -1]))


def _rnn(g, kind, x, w, r, b, lens, h0, c0, hidden, direction, outputs):
    from torch.onnx.symbolic_opset9 import unused

    args = [x, w, r, b, lens if lens is not None else unused(g), h0]
    attrs = {"hidden_size_i": hidden, "direction_s": direction}
    if kind == "gru":
        attrs["linear_before_reset_i"] = 1  # PyTorch's placement of the reset gate
    if kind == "lstm":
        args += [c0]
    return g.op(_ONNX_OP[kind], *args, outputs=outputs, **attrs)


_LAYERS: dict[int, nn.Module] = {}  # the layers being exported, by id (an apply() argument must not be a Module)


def _untraced(layer: int, method: str, *args):
    """The layer's own ``method`` (its class's, not the stand-in :func:`native_ops` puts on the
    instance) with the exporter's tracer off: the traced graph gets our symbolic, and the
    tracer cannot follow module calls made inside a Function's forward."""
    tracing = torch._C._get_tracing_state()
    torch._C._set_tracing_state(None)
    try:
        return getattr(type(_LAYERS[layer]), method)(_LAYERS[layer], *args)
    finally:
        torch._C._set_tracing_state(tracing)


class _GruRnnStep(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, valid, h0, w, r, b, layer, chunk, kind, hidden, bidirectional):
        return _untraced(layer, "step", x, valid, chunk, h0)

    @staticmethod
    def symbolic(g, x, valid, h0, w, r, b, layer, chunk, kind, hidden, bidirectional):
        xt = g.op("Transpose", x, perm_i=[1, 0, 2])  # (T, B, I)
        lens = g.op("Cast", valid, to_i=6)  # INT32
        init = g.op("Concat", h0, g.op("Mul", h0, _const(g, 0.0, torch.float32)), axis_i=0) if bidirectional else h0
        y, _ = _rnn(g, kind, xt, w, r, b, lens, init, None, hidden,
                    "bidirectional" if bidirectional else "forward", outputs=2)
        at_chunk_end = g.op("Gather", y, _const(g, chunk - 1), axis_i=0)  # (D, B, H)
        state = g.op("Slice", at_chunk_end, _const(g, [0]), _const(g, [1]), _const(g, [0]))  # forward direction
        return _to_batch_major(g, y), state


class _LstmStep(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, valid, h0, c0, w, r, b, layer, chunk, right, kind, hidden, bidirectional):
        y, (h, c) = _untraced(layer, "step", x, valid, chunk, (h0, c0))
        return y, h, c

    @staticmethod
    def symbolic(g, x, valid, h0, c0, w, r, b, layer, chunk, right, kind, hidden, bidirectional):
        xt = g.op("Transpose", x, perm_i=[1, 0, 2])
        fw, fr, fb = (g.op("Slice", t, _const(g, [0]), _const(g, [1]), _const(g, [0])) for t in (w, r, b))
        y, h, c = _rnn(g, kind, g.op("Slice", xt, _const(g, [0]), _const(g, [chunk]), _const(g, [0])),
                       fw, fr, fb, None, h0, c0, hidden, "forward", outputs=3)
        parts = [y]
        if right > 0:
            y_right, _, _ = _rnn(g, kind, g.op("Slice", xt, _const(g, [chunk]), _const(g, [2**62]), _const(g, [0])),
                                 fw, fr, fb, None, h, c, hidden, "forward", outputs=3)
            parts.append(y_right)
        y = g.op("Concat", *parts, axis_i=0) if len(parts) > 1 else y  # (T, 1, B, H)
        if bidirectional:
            bw, br, bb = (g.op("Slice", t, _const(g, [1]), _const(g, [2]), _const(g, [0])) for t in (w, r, b))
            zero = g.op("Mul", h0, _const(g, 0.0, torch.float32))
            y_back, _, _ = _rnn(g, kind, xt, bw, br, bb, g.op("Cast", valid, to_i=6), zero, zero, hidden,
                                "reverse", outputs=3)
            y = g.op("Concat", y, y_back, axis_i=1)
        return _to_batch_major(g, y), h, c


class _FullContext(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lengths, w, r, b, layer, kind, hidden, bidirectional):
        return _untraced(layer, "forward", x, lengths)

    @staticmethod
    def symbolic(g, x, lengths, w, r, b, layer, kind, hidden, bidirectional):
        from torch.onnx.symbolic_opset9 import unused

        xt = g.op("Transpose", x, perm_i=[1, 0, 2])
        lens = g.op("Cast", lengths, to_i=6)
        no_state = unused(g)
        y = _rnn(g, kind, xt, w, r, b, lens, no_state, no_state, hidden,
                 "bidirectional" if bidirectional else "forward", outputs=3 if kind == "lstm" else 2)[0]
        return _to_batch_major(g, y)


def native_forward(layer, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``layer.forward`` (full context over a padded batch), exported as one onnxruntime
    recurrent operator per layer (both directions, ``sequence_lens`` = the lengths; frames past
    a length come out as zeros)."""
    w, r, b = onnx_weights(*_directions(layer))
    _LAYERS[id(layer)] = layer
    return _FullContext.apply(x, lengths, w, r, b, id(layer), _kind(layer.fwd), layer.fwd.hidden_size, layer.bwd is not None)


def _directions(layer) -> list:
    return [layer.fwd] + ([layer.bwd] if layer.bwd is not None else [])


@contextlib.contextmanager
def native_ops(model):
    """While exporting ``model``: its recurrent layers' ``forward`` and ``step`` write
    onnxruntime's recurrent operators (PyTorch results unchanged)."""
    try:
        for layer in model.rnns:
            layer.forward = functools.partial(native_forward, layer)
            layer.step = functools.partial(native_step, layer)
        yield model
    finally:
        for layer in model.rnns:
            layer.__dict__.pop("forward", None)
            layer.__dict__.pop("step", None)
            _LAYERS.pop(id(layer), None)


def native_step(layer, x: torch.Tensor, valid: torch.Tensor, chunk: int, state):
    """``layer.step`` (same arguments and results), exported as onnxruntime's recurrent
    operators:

    - GRU and tanh RNN: one bidirectional operator over the window (the forward direction from
      the carried state, the reverse one from zeros, both stopping at the window's valid
      length); the carried state is the forward output at the chunk's last frame (for these
      cells output and state are the same vector);
    - LSTM: the forward direction over the chunk (its final h and c are carried), again over the
      right context from there, and the reverse direction with ``sequence_lens``.

    Frames past a window's valid length come out as zeros rather than as the RNN run over zero
    padding; no valid frame depends on them (the forward direction is causal, the reverse one
    starts at the valid end), and the state they would change is never carried, since a window
    shorter than chunk + right context only happens at the end of input."""
    kind, hidden = _kind(layer.fwd), layer.fwd.hidden_size
    w, r, b = onnx_weights(*_directions(layer))
    bidirectional = layer.bwd is not None
    _LAYERS[id(layer)] = layer
    layer = id(layer)
    if kind == "lstm":
        h0, c0 = state
        y, h, c = _LstmStep.apply(x, valid, h0, c0, w, r, b, layer, chunk, int(x.shape[1]) - chunk, kind, hidden, bidirectional)
        return y, (h, c)
    return _GruRnnStep.apply(x, valid, state, w, r, b, layer, chunk, kind, hidden, bidirectional)
