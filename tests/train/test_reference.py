"""The numpy recurrences of asr.train.reference (the textbook gate equations, PyTorch's reset-gate
placement) against PyTorch's GRU, LSTM and tanh RNN layers and against the same layers exported
to ONNX and run by onnxruntime: all three agree to 1e-5 on random weights and inputs. The
reference is the oracle; the gate statistics of asr.train.diagnostics are held to its gates. A
whole model of tanh RNN layers streams through the runtime as GRU and LSTM models do."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from asr.train import reference
from asr.train.diagnostics import _gate_values
from asr.train.model import RNN_TYPES

TYPES = ["gru", "lstm", "rnn"]


def random_layer(rnn_type, inp=5, hidden=7, seed=0):
    torch.manual_seed(seed)
    layer = RNN_TYPES[rnn_type](inp, hidden, batch_first=True)
    with torch.no_grad():
        for p in layer.parameters():  # larger than the default init: gates well away from 0.5
            p.uniform_(-0.8, 0.8)
    return layer.eval()


def weights(layer):
    return {k: v.detach().double().numpy() for k, v in layer.state_dict().items()}


def inputs(rnn_type, t=11, inp=5, hidden=7, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, t, inp, generator=g)
    h0 = 0.5 * torch.randn(1, 1, hidden, generator=g)
    c0 = 0.5 * torch.randn(1, 1, hidden, generator=g)
    return x, h0, c0


def numpy_outputs(rnn_type, layer, x, h0, c0):
    c = c0[0, 0].double().numpy() if rnn_type == "lstm" else None
    return reference.recurrence(rnn_type, x[0].double().numpy(), weights(layer), h0[0, 0].double().numpy(), c)


@pytest.mark.parametrize("rnn_type", TYPES)
def test_reference_matches_pytorch(rnn_type):
    for seed in range(3):
        layer = random_layer(rnn_type, seed=seed)
        x, h0, c0 = inputs(rnn_type, seed=seed + 10)
        with torch.no_grad():
            y, _ = layer(x, (h0, c0) if rnn_type == "lstm" else h0)
        ref = numpy_outputs(rnn_type, layer, x, h0, c0)
        np.testing.assert_allclose(y[0].double().numpy(), ref, atol=1e-5, rtol=0)


def test_reset_gate_placement_is_pytorchs():
    """The paper's form, r * h_{t-1} inside the product, differs: the test would notice."""
    layer = random_layer("gru")
    x, h0, _ = inputs("gru")
    w = weights(layer)
    (wr, wz, wn), (ur, uz, un) = np.split(w["weight_ih_l0"], 3), np.split(w["weight_hh_l0"], 3)
    (br, bz, bn), (cr, cz, cn) = np.split(w["bias_ih_l0"], 3), np.split(w["bias_hh_l0"], 3)
    h = h0[0, 0].double().numpy()
    paper = []
    for xt in x[0].double().numpy():
        r = 1 / (1 + np.exp(-(wr @ xt + br + ur @ h + cr)))
        z = 1 / (1 + np.exp(-(wz @ xt + bz + uz @ h + cz)))
        n = np.tanh(wn @ xt + bn + un @ (r * h) + cn)
        h = (1 - z) * n + z * h
        paper.append(h)
    with torch.no_grad():
        y, _ = layer(x, h0)
    assert np.abs(y[0].numpy() - np.array(paper)).max() > 1e-3


class _Wrap(torch.nn.Module):
    def __init__(self, layer, lstm):
        super().__init__()
        self.layer, self.lstm = layer, lstm

    def forward(self, x, h0, c0):
        y, _ = self.layer(x, (h0, c0) if self.lstm else h0)
        return y


@pytest.mark.parametrize("rnn_type", TYPES)
def test_reference_matches_the_exported_onnx_graph(rnn_type, tmp_path):
    import warnings

    layer = random_layer(rnn_type, seed=4)
    path = str(tmp_path / f"{rnn_type}.onnx")
    x, h0, c0 = inputs(rnn_type, seed=5)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Wrap(layer, rnn_type == "lstm"), (x, h0, c0), path, input_names=["x", "h0", "c0"],
                          output_names=["y"], dynamic_axes={"x": {1: "time"}}, opset_version=17, dynamo=False)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    ops = {n.op_type for n in __import__("onnx").load(path).graph.node}
    assert {"gru": "GRU", "lstm": "LSTM", "rnn": "RNN"}[rnn_type] in ops  # the ONNX recurrent op, not an unrolled loop
    for t in (11, 23):
        x, h0, c0 = inputs(rnn_type, t=t, seed=t)
        feed = {"x": x.numpy(), "h0": h0.numpy(), "c0": c0.numpy()}
        feed = {i.name: feed[i.name] for i in sess.get_inputs()}
        (y,) = sess.run(None, feed)
        np.testing.assert_allclose(y[0], numpy_outputs(rnn_type, layer, x, h0, c0), atol=1e-5, rtol=0)


@pytest.mark.parametrize("rnn_type", TYPES)
def test_gate_statistics_use_the_reference_gates(rnn_type):
    layer = random_layer(rnn_type, seed=7)
    x, h0, c0 = inputs(rnn_type, seed=8)
    hx = (h0, c0) if rnn_type == "lstm" else h0
    with torch.no_grad():
        y, _ = layer(x, hx)
        got = _gate_values(layer, x, y, hx)
    w = weights(layer)
    xs, h, c = x[0].double().numpy(), h0[0, 0].double().numpy(), c0[0, 0].double().numpy()
    names = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
    if rnn_type == "gru":
        ref = reference.gru(xs, h, *(w[k] for k in names))[1]
    elif rnn_type == "lstm":
        ref = reference.lstm(xs, h, c, *(w[k] for k in names))[2]
    else:
        ref = {"|h|": np.abs(reference.rnn_tanh(xs, h, *(w[k] for k in names)))}
    assert set(got) <= set(ref)
    for gate, v in got.items():
        np.testing.assert_allclose(v[0].double().numpy(), ref[gate], atol=1e-5, rtol=0)


def test_tanh_rnn_streams_through_the_runtime(tmp_path):
    """model.rnn_type=rnn: the streaming graph, fed in random piece sizes through
    OnlineRecognizer, gives PyTorch's chunked log-probs and the same greedy text."""
    import numpy as np

    from asr.frontend import logmel
    from asr.runtime import OnlineRecognizer
    from asr.train.checkpoint import build_model, load_checkpoint
    from asr.train.export import export_onnx
    from tests.conftest import _feed, synth_utterance
    from tests.train.test_export import FE, make_checkpoint

    ckpt = make_checkpoint(tmp_path / "rnn.pt", rnn_type="rnn", chunk_size=3, right_context=2)
    export_onnx(ckpt, str(tmp_path / "rnn.onnx"), streaming=True)
    model = build_model(load_checkpoint(ckpt))[0].eval()
    rng = np.random.default_rng(3)
    wave = synth_utterance("ab ca", rng)
    rec = OnlineRecognizer(str(tmp_path / "rnn.onnx"))
    s = rec.create_stream(keep_log_probs=True)
    _feed(rec, s, wave, rng)
    got = np.concatenate(s.log_probs)
    feats = torch.from_numpy(logmel(wave, FE))[None]
    with torch.no_grad():
        ref, n = model(feats, torch.tensor([feats.shape[1]]))
    assert got.shape[0] == int(n[0])
    assert np.abs(got - ref[0, : got.shape[0]].numpy()).max() < 1e-4
