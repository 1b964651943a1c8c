import math

import pytest
import torch

from asr.train.model import CTCModel, ModelConfig, RecurrentLayer


def make(rnn_type="gru", subsampling=2, bidirectional=True, layers=2, conv="1d"):
    torch.manual_seed(0)
    m = CTCModel(ModelConfig(input_dim=12, vocab_size=7, subsampling=subsampling, conv_dim=16,
                             rnn_type=rnn_type, hidden_size=16, num_layers=layers, bidirectional=bidirectional, dropout=0.2,
                             subsampling_conv=conv, conv_channels=4))
    m.set_normalization(torch.randn(12), torch.rand(12) + 0.5)
    return m.eval()


@pytest.mark.parametrize("rnn_type", ["gru", "lstm", "rnn"])
@pytest.mark.parametrize("subsampling,conv", [(1, "1d"), (2, "1d"), (4, "1d"), (2, "2d"), (4, "2d")])
def test_padded_batch_equals_single_utterances(rnn_type, subsampling, conv):
    m = make(rnn_type, subsampling, conv=conv)
    lengths = [37, 64, 9, 50]
    feats = [torch.randn(n, 12) for n in lengths]
    x = torch.full((4, 64, 12), 7.0)  # padding with garbage must not matter
    for i, f in enumerate(feats):
        x[i, : f.shape[0]] = f
    with torch.no_grad():
        out, out_len = m(x, torch.tensor(lengths))
        for i, f in enumerate(feats):
            single, single_len = m(f[None], torch.tensor([f.shape[0]]))
            assert int(out_len[i]) == int(single_len[0]) == max(1, lengths[i] // subsampling)
            torch.testing.assert_close(out[i, : single.shape[1]], single[0], atol=1e-5, rtol=1e-5)


def test_outputs_are_log_probabilities():
    m = make()
    with torch.no_grad():
        out, _ = m(torch.randn(2, 20, 12), torch.tensor([20, 20]))
    torch.testing.assert_close(out.exp().sum(-1), torch.ones(2, 10))


@pytest.mark.parametrize("kwargs,match", [
    ({"rnn_type": "transformer"}, "rnn_type"),
    ({"subsampling": 3}, "subsampling"),
    ({"vocab_size": 1}, "vocab_size"),
    ({"dropout": 1.5}, "dropout"),
    ({"subsampling_conv": "3d"}, "subsampling_conv"),
    ({"subsampling_conv": "2d", "subsampling": 1}, "needs subsampling"),
    ({"utterance_cmn": True, "chunk_size": 4}, "utterance_cmn"),
    ({"utterance_cmn": True, "bidirectional": False}, "utterance_cmn"),
    ({"inter_ctc_layer": 3}, "inter_ctc_layer"),
])
def test_config_validation(kwargs, match):
    cfg = ModelConfig(vocab_size=5)
    for k, v in kwargs.items():
        setattr(cfg, k, v)
    with pytest.raises(ValueError, match=match):
        CTCModel(cfg)


def test_unidirectional_is_causal():
    m = make(bidirectional=False)
    x = torch.randn(1, 40, 12)
    y = x.clone()
    y[:, 30:] = torch.randn(1, 10, 12)
    with torch.no_grad():
        a, _ = m(x, torch.tensor([40]))
        b, _ = m(y, torch.tensor([40]))
    torch.testing.assert_close(a[:, :15], b[:, :15])
    assert not torch.allclose(a[:, 15:], b[:, 15:])


def test_spec_augment_masks_inside_lengths_only():
    from asr.train.features import SpecAugmentConfig, spec_augment

    x = torch.ones(2, 50, 20)
    lengths = torch.tensor([50, 30])
    g = torch.Generator().manual_seed(0)
    y = spec_augment(x, lengths, SpecAugmentConfig(freq_masks=2, freq_width=5, time_masks=2, time_width=10, time_width_ratio=0.2), g)
    assert torch.equal(x, torch.ones(2, 50, 20))  # input untouched
    assert (y == 0).any() and (y == 1).any()
    assert torch.equal(y[1, 30:], x[1, 30:])  # nothing masked past the length
    assert int((y[1] == 0).all(dim=1).sum()) <= 2 * 6  # time masks at most 20% of 30 frames each
    # over many draws: frequency bands and time spans of every width up to the maximum appear
    ys = spec_augment(torch.ones(200, 50, 20), torch.full((200,), 50), SpecAugmentConfig(1, 5, 1, 10, 0.2), g)
    band = (ys == 0).all(dim=1).sum(dim=1)  # masked frequency bins per utterance
    assert set(band.tolist()) == set(range(6))
    span = (ys == 0).all(dim=2).sum(dim=1)  # masked frames per utterance
    assert set(span.tolist()) == set(range(11))
    y = spec_augment(x, lengths, SpecAugmentConfig(freq_masks=3, freq_width=20, time_masks=0), g)
    assert torch.equal(y[1, 30:], x[1, 30:]) and (y[1, :30] == 0).any()  # padding untouched by frequency masks


def test_2d_subsampling_shares_frequency_detectors():
    """The 2d front end's first stage applies one kernel at every mel position: a pattern moved
    up by two bins (one stride) gives the same first-stage response, moved by one output bin."""
    m = make(subsampling=2, conv="2d")
    first = m.subsampling.convs[0]
    x = torch.zeros(1, 1, 2, 12)
    x[..., 3:5] = 1.0
    shifted = torch.roll(x, 2, dims=-1)
    with torch.no_grad():
        a, b = first(x), first(shifted)
    torch.testing.assert_close(b[..., 2:5], a[..., 1:4])
    assert sum(p.numel() for p in first.parameters()) == 4 * 2 * 3 + 4  # one (2 x 3) kernel per channel


def test_utterance_cmn_removes_a_per_recording_gain():
    """A recording made 10 dB louder (a constant added to every log-mel value) or through another
    channel (a constant per mel bin) gives the same output; padded batches still agree."""
    torch.manual_seed(0)
    m = CTCModel(ModelConfig(input_dim=12, vocab_size=7, subsampling=2, conv_dim=16, hidden_size=16, num_layers=2,
                             utterance_cmn=True)).eval()
    m.set_normalization(torch.randn(12), torch.rand(12) + 0.5)
    a, b = torch.randn(30, 12), torch.randn(20, 12)
    x = torch.full((2, 30, 12), 5.0)
    x[0], x[1, :20] = a, b
    with torch.no_grad():
        out, _ = m(x, torch.tensor([30, 20]))
        single, _ = m(b[None], torch.tensor([20]))
        louder, _ = m((a + 2.3 + torch.randn(12))[None], torch.tensor([30]))
    torch.testing.assert_close(out[1, :10], single[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(louder[0], out[0], atol=1e-5, rtol=1e-5)
    plain = make()
    with torch.no_grad():  # without it the gain does matter
        assert not torch.allclose(plain(a[None], torch.tensor([30]))[0], plain((a + 2.3)[None], torch.tensor([30]))[0])


@pytest.mark.parametrize("chunk", [0, 3])
def test_intermediate_ctc_head_in_training_only(chunk):
    torch.manual_seed(0)
    m = CTCModel(ModelConfig(input_dim=12, vocab_size=7, subsampling=2, conv_dim=16, hidden_size=16, num_layers=3,
                             inter_ctc_layer=1, chunk_size=chunk, right_context=1 if chunk else 0))
    x, lengths = torch.randn(2, 30, 12), torch.tensor([30, 22])
    out, out_len = m.train()(x, lengths)
    inter = m.intermediate
    assert inter is not None and inter.shape == out.shape
    torch.testing.assert_close(inter.exp().sum(-1), torch.ones(2, 15))
    (out.sum() + inter.sum()).backward()
    assert m.inter_head.weight.grad is not None and m.inter_head.weight.grad.abs().sum() > 0
    with torch.no_grad():
        m.eval()(x, lengths)
    assert m.intermediate is None


def test_random_gain_is_the_front_end_of_louder_or_quieter_audio():
    """train.gain_db shifts log-mel features exactly as scaling the waveform would (the floor
    included), per utterance, leaving padding alone."""
    import numpy as np

    from asr.frontend import FrontendConfig, logmel
    from asr.train.features import random_gain

    fe = FrontendConfig(sample_rate=8000, n_fft=256, win_length=200, hop_length=80, n_mels=20, log_floor=1e-6)
    rng = np.random.default_rng(0)
    wave = (0.05 * rng.standard_normal(4000)).astype(np.float32)
    wave[1000:2000] = 0.0  # digital silence: at the floor, and staying there when quieter
    x = torch.from_numpy(logmel(wave, fe))[None]
    for db in (-20.0, 6.0):
        got = random_gain(x, torch.tensor([x.shape[1]]), db, db, fe.log_floor)
        want = torch.from_numpy(logmel(wave * np.float32(10 ** (db / 20)), fe))[None]
        above = x > np.log(fe.log_floor) + 1e-4  # on the floor, the power below it is lost: it stays there
        assert above.float().mean() > 0.7 and torch.all(got[~above] == x[~above])
        torch.testing.assert_close(got[above], want[above], atol=2e-3, rtol=0)
    batch = torch.randn(4, 30, 20)
    batch[1, 20:] = 0.0
    y = random_gain(batch, torch.tensor([30, 20, 30, 30]), -24, 6, 1e-6, generator=torch.Generator().manual_seed(1))
    assert torch.equal(y[1, 20:], torch.zeros(10, 20))
    shifts = (y - batch)[:, 0, 0]
    assert len(set(shifts.tolist())) == 4 and all(-24 * 0.2303 - 1e-4 <= s <= 6 * 0.2303 + 1e-4 for s in shifts.tolist())
    assert torch.allclose(y - batch, shifts[:, None, None].expand_as(y).masked_fill(y == batch, 0.0), atol=1e-5)


def test_random_eq_is_a_smooth_bounded_filter_that_keeps_the_floor_and_padding():
    from asr.train.features import random_eq

    floor = math.log(1e-6)
    x = torch.full((64, 12, 40), -3.0)
    x[:, :, 30:] = floor  # bands on the floor (digital silence there) stay on it
    x[5, 8:] = 0.0  # padding
    lengths = torch.full((64,), 12)
    lengths[5] = 8
    y = random_eq(x, lengths, 12.0, 1e-6, generator=torch.Generator().manual_seed(0))
    assert torch.equal(y[5, 8:], x[5, 8:]) and torch.equal(y[:, :, 30:], x[:, :, 30:])
    db = (y - x)[:, 0, :30] / (math.log(10) / 10)
    torch.testing.assert_close((y - x)[:, 0], (y - x)[:, 7])  # one curve per utterance, the same in every frame
    cut = db[:, :4].mean(1) < db[:, 10:30].mean(1) - 6  # a low cut on some, not all
    assert 5 < int(cut.sum()) < 59
    # above the low cut, within +-12 dB, smooth: neighbouring bins differ by little
    assert db[:, 5:].abs().max() <= 12.0 + 1e-3 and db.abs().max() <= 36.0 + 1e-3
    assert (db[:, 6:] - db[:, 5:-1]).abs().mean() < 1.5
    assert db.std(0).mean() > 2.0  # utterances get different curves
    assert not torch.equal(y, random_eq(x, lengths, 12.0, 1e-6, generator=torch.Generator().manual_seed(1)))


def test_random_noise_adds_coloured_noise_at_the_asked_snr():
    from asr.train.features import random_noise

    g = torch.Generator().manual_seed(0)
    x = torch.full((40, 50, 30), math.log(1e-6))  # digital silence ...
    x[:, :30] = torch.randn(40, 30, 30) * 0.5 - 2.0  # ... after 30 frames of "speech"
    lengths = torch.full((40,), 50)
    lengths[3] = 40
    x[3, 40:] = 0.0  # padding
    y = random_noise(x, lengths, 10.0, 10.0, 1e-6, share=1.0, generator=g)
    assert torch.equal(y[3, 40:], x[3, 40:]) and torch.all(y[:, :40] >= math.log(1e-6) - 1e-5)
    inside = torch.arange(50)[None, :, None] < lengths[:, None, None]
    speech, added = (x.exp() * inside).sum((1, 2)), ((y.exp() - x.exp()) * inside).sum((1, 2))
    snr = 10 * torch.log10(speech / added)
    assert torch.all((snr > 9.0) & (snr < 11.0)), snr  # power adds: the SNR asked for, per utterance
    assert torch.all(y[:, 35:40] > math.log(1e-6) + 1.0)  # the silence is filled
    tilt = (y[:, 30:40, :5].mean((1, 2)) - y[:, 30:40, -5:].mean((1, 2)))
    assert tilt.std() > 0.5  # colours differ between utterances
    half = random_noise(x, lengths, 10.0, 10.0, 1e-6, generator=torch.Generator().manual_seed(1))
    changed = (half != x).flatten(1).any(1)
    assert 8 < int(changed.sum()) < 32  # share 0.5: some utterances left clean


def test_vtlp_warps_the_mel_axis():
    from asr.train.features import vtlp

    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 20, 40)
    x[2, 15:] = 0  # padding
    torch.testing.assert_close(vtlp(x, 1.0, 1.0), x)  # factor 1: unchanged
    y = vtlp(x, 0.9, 1.1, generator=g)
    assert y.shape == x.shape and torch.equal(y[2, 15:], torch.zeros(5, 40)) and not torch.allclose(y, x)
    torch.testing.assert_close(y[:, :, 0], x[:, :, 0])  # both ends of the axis stay put
    torch.testing.assert_close(y[:, :, -1], x[:, :, -1])
    # a peak at bin 20 read with factor 1.1: output bin k shows the input at 1.1 k, so the peak
    # appears near bin 20 / 1.1 = 18.2; with 0.9 near 22.2
    peak = torch.zeros(1, 1, 40)
    peak[..., 20] = 1.0
    assert int(vtlp(peak, 1.1, 1.1).argmax()) == 18
    assert int(vtlp(peak, 0.9, 0.9).argmax()) == 22


def stream_through_steps(m, feats, chunk, right):
    """Feed one utterance's features through stream_step window by window, as a runtime does."""
    sub = m.cfg.subsampling
    win, hop = (chunk + right) * sub, chunk * sub
    n = feats.shape[0] // sub * sub
    state = m.initial_state(1)
    outs = []
    for start in range(0, n, hop):
        w = feats[start : start + win]
        valid = w.shape[0]
        w = torch.cat([w, torch.zeros(win - valid, feats.shape[1])]) if valid < win else w
        logp, *state = m.stream_step(w[None], torch.tensor([valid]), *state)
        outs.append(logp[0, : min(chunk, (n - start) // sub)])
    return torch.cat(outs)


@pytest.mark.parametrize("rnn_type", ["gru", "lstm", "rnn"])
def test_unidirectional_chunked_equals_full_context(rnn_type):
    m = make(rnn_type, 2, bidirectional=False)
    x = torch.randn(2, 70, 12)
    lengths = torch.tensor([70, 45])
    with torch.no_grad():
        full, _ = m(x, lengths, chunk_size=0)
        for chunk in (1, 4, 7, 100):
            chunked, _ = m(x, lengths, chunk_size=chunk)
            torch.testing.assert_close(chunked[0], full[0], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(chunked[1, :22], full[1, :22], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("rnn_type", ["gru", "lstm", "rnn"])
@pytest.mark.parametrize("bidirectional,chunk,right,conv", [(True, 4, 2, "1d"), (True, 5, 0, "1d"), (True, 3, 7, "1d"),
                                                            (False, 4, 0, "1d"), (True, 4, 2, "2d"), (False, 3, 0, "2d")])
def test_stream_steps_equal_chunked_forward(rnn_type, bidirectional, chunk, right, conv):
    torch.manual_seed(1)
    m = CTCModel(ModelConfig(input_dim=12, vocab_size=7, subsampling=2, conv_dim=16, rnn_type=rnn_type,
                             hidden_size=16, num_layers=2, bidirectional=bidirectional, dropout=0.0,
                             chunk_size=chunk, right_context=right, subsampling_conv=conv, conv_channels=4)).eval()
    m.set_normalization(torch.randn(12), torch.rand(12) + 0.5)
    for n in (9, 40, 53):
        feats = torch.randn(n, 12)
        with torch.no_grad():
            ref, ref_len = m(feats[None], torch.tensor([n]))
            got = stream_through_steps(m, feats, chunk, right)
        assert got.shape[0] == int(ref_len[0])
        torch.testing.assert_close(got, ref[0, : got.shape[0]], atol=1e-5, rtol=1e-5)


def test_latency_controlled_differs_from_full_context_but_padded_batches_agree():
    torch.manual_seed(2)
    m = CTCModel(ModelConfig(input_dim=12, vocab_size=7, subsampling=1, conv_dim=16, hidden_size=16, num_layers=2,
                             dropout=0.0, chunk_size=5, right_context=2)).eval()
    x = torch.randn(2, 30, 12)
    lengths = torch.tensor([30, 17])
    with torch.no_grad():
        lc, _ = m(x, lengths)
        full, _ = m(x, lengths, chunk_size=0)
        single, _ = m(x[1:, :17], torch.tensor([17]))
    assert not torch.allclose(lc, full, atol=1e-3)
    torch.testing.assert_close(lc[1, :17], single[0], atol=1e-5, rtol=1e-5)


def test_problems_can_leave_out_the_vocabulary():
    """An experiment's config is checked before the tokenizer sets vocab_size: every other
    setting is still checked, and building a model still needs the vocabulary."""
    cfg = ModelConfig(rnn_type="lstm", dropout=1.0)
    assert cfg.problems(vocab=False) == ["dropout must be in [0, 1), got 1.0"]
    assert any(p.startswith("vocab_size") for p in cfg.problems())
    with pytest.raises(ValueError, match="vocab_size"):
        CTCModel(ModelConfig())


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_forward_direction_carries_its_state_from_after_the_chunk(rnn_type):
    """Latency-controlled steps: the forward RNN reads the right context from the state after
    the chunk, and carries that state (not the one after the right context) to the next chunk,
    so over chunk frames and right context alike its outputs are one continuous pass."""
    torch.manual_seed(3)
    layer = RecurrentLayer(rnn_type, 8, 6, bidirectional=True).eval()
    n, chunk, right = 23, 4, 3
    x = torch.randn(2, n, 8)
    lengths = torch.tensor([n, n])
    with torch.no_grad():
        full, _ = layer.fwd(x)  # one pass over the whole sequence
        state = None
        for start in range(0, n, chunk):
            w = x[:, start : start + chunk + right]
            y, state = layer.step(w, (lengths - start).clamp(0, w.shape[1]), chunk, state)
            torch.testing.assert_close(y[..., :6], full[:, start : start + w.shape[1]], atol=1e-6, rtol=1e-5)
    h = state if rnn_type == "gru" else state[0]
    torch.testing.assert_close(h[0], full[:, -1], atol=1e-6, rtol=1e-5)  # the state after the last frame
