"""The three recurrences of the model, written out in numpy from the textbook equations: the
oracle that PyTorch's layers, the exported ONNX graph and the gate statistics are held to
(tests/train/test_reference.py, 1e-5 on random weights and inputs). Numpy only: no torch here.

Weights are laid out as PyTorch stores one direction of one layer (``weight_ih_l0`` etc.):
``w_ih`` (G*H, I), ``w_hh`` (G*H, H), ``b_ih`` and ``b_hh`` (G*H,), with the G gate blocks in
PyTorch's order (:data:`GATES`). Each function takes one input sequence ``x`` (T, I) and the
initial state ``h0`` (H,).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

__all__ = ["GATES", "gru", "lstm", "rnn_tanh", "recurrence"]

# rnn_type -> the gate blocks of its weights, in PyTorch's order
GATES = {"gru": ("r", "z", "n"), "lstm": ("i", "f", "g", "o"), "rnn": ("h",)}


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * a))  # no overflow warnings for large |a|


def _split(w: np.ndarray, blocks: int) -> list[np.ndarray]:
    return np.split(np.asarray(w, np.float64), blocks, axis=0)


def gru(x, h0, w_ih, w_hh, b_ih, b_hh) -> tuple[np.ndarray, dict]:
    """Outputs h_1..h_T (T, H) and the gates {"r", "z", "n"}: (T, H) each::

        r_t = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)       reset gate
        z_t = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)       update gate
        n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))  candidate
        h_t = (1 - z_t) * n_t + z_t * h_{t-1}

    The reset gate multiplies ``W_hn h_{t-1} + b_hn`` (PyTorch and cuDNN; ONNX's GRU with
    ``linear_before_reset=1``), not ``h_{t-1}`` before the product (the original paper's form).
    z_t near 1 keeps the old state (memory), near 0 overwrites it."""
    x = np.asarray(x, np.float64)
    (wr, wz, wn), (ur, uz, un) = _split(w_ih, 3), _split(w_hh, 3)
    (br, bz, bn), (cr, cz, cn) = _split(b_ih, 3), _split(b_hh, 3)
    h = np.asarray(h0, np.float64)
    out, gates = [], {k: [] for k in GATES["gru"]}
    for xt in x:
        r = _sigmoid(wr @ xt + br + ur @ h + cr)
        z = _sigmoid(wz @ xt + bz + uz @ h + cz)
        n = np.tanh(wn @ xt + bn + r * (un @ h + cn))
        h = (1 - z) * n + z * h
        out.append(h)
        for k, v in zip("rzn", (r, z, n)):
            gates[k].append(v)
    return np.array(out).reshape(len(x), -1), {k: np.array(v).reshape(len(x), -1) for k, v in gates.items()}


def lstm(x, h0, c0, w_ih, w_hh, b_ih, b_hh) -> tuple[np.ndarray, np.ndarray, dict]:
    """Outputs h_1..h_T (T, H), cells c_1..c_T (T, H) and the gates {"i", "f", "g", "o"}::

        i_t = sigmoid(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)       input gate
        f_t = sigmoid(W_if x_t + b_if + W_hf h_{t-1} + b_hf)       forget gate
        g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)          candidate
        o_t = sigmoid(W_io x_t + b_io + W_ho h_{t-1} + b_ho)       output gate
        c_t = f_t * c_{t-1} + i_t * g_t
        h_t = o_t * tanh(c_t)

    f_t near 1 carries the cell on (memory), near 0 forgets it."""
    x = np.asarray(x, np.float64)
    w, u, b, c_ = _split(w_ih, 4), _split(w_hh, 4), _split(b_ih, 4), _split(b_hh, 4)
    h, c = np.asarray(h0, np.float64), np.asarray(c0, np.float64)
    hs, cs, gates = [], [], {k: [] for k in GATES["lstm"]}
    for xt in x:
        a = [w[k] @ xt + b[k] + u[k] @ h + c_[k] for k in range(4)]
        i, f, g, o = _sigmoid(a[0]), _sigmoid(a[1]), np.tanh(a[2]), _sigmoid(a[3])
        c = f * c + i * g
        h = o * np.tanh(c)
        hs.append(h)
        cs.append(c)
        for k, v in zip("ifgo", (i, f, g, o)):
            gates[k].append(v)
    shape = (len(x), -1)
    return np.array(hs).reshape(shape), np.array(cs).reshape(shape), {k: np.array(v).reshape(shape) for k, v in gates.items()}


def rnn_tanh(x, h0, w_ih, w_hh, b_ih, b_hh) -> np.ndarray:
    """Outputs h_1..h_T (T, H) of ``h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``. No
    gates: the only path from h_{t-1} to h_t goes through W_hh and tanh', which is why its
    gradients through time shrink (or grow) geometrically."""
    x = np.asarray(x, np.float64)
    w, u = np.asarray(w_ih, np.float64), np.asarray(w_hh, np.float64)
    h = np.asarray(h0, np.float64)
    out = []
    for xt in x:
        h = np.tanh(w @ xt + b_ih + u @ h + b_hh)
        out.append(h)
    return np.array(out).reshape(len(x), -1)


def recurrence(rnn_type: str, x, weights: dict, h0: Optional[np.ndarray] = None, c0: Optional[np.ndarray] = None) -> np.ndarray:
    """h_1..h_T (T, H) of one direction of one layer; ``weights`` maps PyTorch's names
    (``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``) to arrays."""
    w = [np.asarray(weights[k], np.float64) for k in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")]
    hidden = w[1].shape[1]
    h0 = np.zeros(hidden) if h0 is None else h0
    if rnn_type == "gru":
        return gru(x, h0, *w)[0]
    if rnn_type == "lstm":
        return lstm(x, h0, np.zeros(hidden) if c0 is None else c0, *w)[0]
    if rnn_type == "rnn":
        return rnn_tanh(x, h0, *w)
    raise ValueError(f"rnn_type must be 'gru', 'lstm' or 'rnn', got {rnn_type!r}")
