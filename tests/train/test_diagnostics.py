"""asr.train.diagnostics: the unrolled forward pass equals the model's, the per-time-step
gradients dLoss/dh_t equal finite differences, and gate statistics and per-layer gradient
norms say what they should."""

import numpy as np
import pytest
import torch

from asr.train.diagnostics import gate_statistics, hidden_state_gradients, layer_grad_norms, unrolled_log_probs
from asr.train.model import CTCModel, ModelConfig


def tiny(rnn_type="gru", bidirectional=True, layers=2, hidden=4, seed=0, double=False):
    torch.manual_seed(seed)
    m = CTCModel(ModelConfig(input_dim=6, vocab_size=4, subsampling=2, conv_dim=5, rnn_type=rnn_type, hidden_size=hidden,
                             num_layers=layers, bidirectional=bidirectional, dropout=0.3))
    m.set_normalization(torch.randn(6), torch.rand(6) + 0.5)
    return (m.double() if double else m).eval()


@pytest.mark.parametrize("rnn_type", ["gru", "lstm", "rnn"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_unrolled_forward_equals_the_model(rnn_type, bidirectional):
    m = tiny(rnn_type, bidirectional)
    feats = torch.randn(29, 6)
    with torch.no_grad():
        ref, _ = m(feats[None], torch.tensor([29]), chunk_size=0)
    got, deltas, _ = unrolled_log_probs(m, feats)
    torch.testing.assert_close(got, ref[0], atol=1e-5, rtol=1e-5)
    assert len(deltas) == 2 * (2 if bidirectional else 1) and all(len(d) == 14 for d in deltas.values())


@pytest.mark.parametrize("rnn_type", ["gru", "lstm", "rnn"])
@pytest.mark.parametrize("measure", ["loss", "reach"])
def test_per_time_step_gradients_equal_finite_differences(rnn_type, measure):
    """Perturb one unit of one hidden state h_t by +-eps (the offset the unrolled pass adds),
    rerun the whole model, and compare (f(+eps) - f(-eps)) / 2 eps with the gradient."""
    m = tiny(rnn_type, double=True, seed=3)
    feats = torch.randn(20, 6, dtype=torch.float64)
    targets = [1, 2, 1]
    got = hidden_state_gradients(m, feats, targets, measure=measure, seed=5)
    assert set(got.grads) == {(1, "fwd"), (1, "bwd"), (2, "fwd"), (2, "bwd")}

    def objective(offsets, direction):
        with torch.no_grad():
            logp, _, top = unrolled_log_probs(m, feats, offsets)
            if measure == "loss":
                y = torch.tensor([targets])
                return float(torch.nn.functional.ctc_loss(logp[:, None], y, torch.tensor([logp.shape[0]]),
                                                          torch.tensor([3]), reduction="sum"))
            # a direction's states are differentiated against its own probe: the top layer's
            # output at its far end, projected on the same random unit vector
            gen = torch.Generator().manual_seed(5)
            probes = {}
            for d in ("fwd", "bwd"):
                out = top[(2, d)]
                u = torch.randn(out.shape[1], generator=gen, dtype=out.dtype)
                probes[d] = float((out[-1 if d == "fwd" else 0] * u / u.norm()).sum())
            return probes[direction]

    rng = np.random.default_rng(0)
    eps = 1e-6
    checked = 0
    for key in got.grads:
        for t in (0, 4, 9):
            unit = int(rng.integers(4))
            off = torch.zeros(10, 4, dtype=torch.float64)
            off[t, unit] = eps
            fd = (objective({key: off}, key[1]) - objective({key: -off}, key[1])) / (2 * eps)
            np.testing.assert_allclose(got.grads[key][t, unit], fd, rtol=1e-5, atol=1e-8 if measure == "loss" else 1e-7)
            checked += 1
    assert checked == 12
    norms = got.norms()
    assert set(norms) == {"layer1.fwd", "layer1.bwd", "layer2.fwd", "layer2.bwd"} and norms["layer1.fwd"].shape == (10,)


def test_reach_shows_memory_span():
    """A GRU whose update gate is shut (z = 1: h_t = h_{t-1}) carries the probe's gradient back
    to the first frame undiminished; a tanh RNN with small recurrent weights loses it within a
    few frames."""
    keep = tiny("gru", bidirectional=False, layers=1, double=True, seed=1)
    with torch.no_grad():
        keep.rnns[0].fwd.bias_ih_l0[4:8] = 40.0
    n = hidden_state_gradients(keep, torch.randn(30, 6, dtype=torch.float64), measure="reach").norms()["layer1.fwd"]
    np.testing.assert_allclose(n, 1.0, rtol=1e-9)  # |u| = 1 at every distance
    forget = tiny("rnn", bidirectional=False, layers=1, double=True, seed=1)
    with torch.no_grad():
        forget.rnns[0].fwd.weight_hh_l0.mul_(0.05)
    n = hidden_state_gradients(forget, torch.randn(30, 6, dtype=torch.float64), measure="reach").norms()["layer1.fwd"]
    assert n[-1] > 0.1 and n[-5] < 1e-4 * n[-1] and np.all(np.diff(n) > 0)


def test_gate_statistics_see_a_shut_update_gate():
    m = tiny("gru", seed=2)
    with torch.no_grad():
        m.rnns[0].fwd.bias_ih_l0[4:8] = 30.0  # update gate z of layer 1 forward: always 1
    rows = gate_statistics(m, [torch.randn(30, 6), torch.randn(17, 6)])
    assert [(r["layer"], r["direction"], r["gate"]) for r in rows[:4]] == [(1, "fwd", "z"), (1, "fwd", "r"), (1, "bwd", "z"),
                                                                         (1, "bwd", "r")]
    z = rows[0]
    assert z["near1"] == 1.0 and z["near0"] == 0.0 and z["mean"] > 0.99 and z["values"] == (15 + 8) * 4
    for r in rows:
        assert 0 <= r["near0"] <= 1 and 0 <= r["near1"] <= 1 and r["near0"] + r["near1"] <= 1
    lstm = gate_statistics(tiny("lstm"), [torch.randn(12, 6)])
    assert {r["gate"] for r in lstm} == {"f", "i", "o"}
    assert {r["gate"] for r in gate_statistics(tiny("rnn"), [torch.randn(12, 6)])} == {"|h|"}


def test_gate_statistics_in_the_chunked_condition():
    m = tiny("lstm", seed=4)
    m.cfg.chunk_size, m.cfg.right_context = 3, 1
    rows = gate_statistics(m, [torch.randn(30, 6)], chunk_size=None)
    # forward: 15 frames + 1 right-context frame recomputed in each of 5 windows (the last has none)
    fwd = [r for r in rows if r["direction"] == "fwd" and r["layer"] == 1 and r["gate"] == "f"][0]
    assert fwd["values"] == (15 + 4) * 4


def test_layer_grad_norms_add_up_to_the_total():
    m = tiny("gru")
    m.train()
    logp, n = m(torch.randn(2, 20, 6), torch.tensor([20, 14]))
    logp.sum().backward()
    norms = layer_grad_norms(m)
    assert list(norms) == ["subsampling", "rnn1.fwd", "rnn1.bwd", "rnn2.fwd", "rnn2.bwd", "head"]
    total = torch.nn.utils.clip_grad_norm_(m.parameters(), 1e9)
    assert abs(sum(v ** 2 for v in norms.values()) ** 0.5 - float(total)) < 1e-4 * float(total)
