"""asr.server.loop: the work of one decoding step is bounded whatever a client sends, and a
stream that fails while being decoded fails alone. The loop's steps are run directly (no
sockets, no timing)."""

import numpy as np
import pytest

from asr.runtime import OnlineRecognizer
from asr.server.loop import FEED_PIECE_S, DecodeLoop, LoopStats, Session
from asr.server.protocol import StreamConfig
from tests.conftest import SR, synth_utterance


@pytest.fixture(scope="module")
def lc_model(models):
    return models.get("lstm-lc")[0]


def _session(loop, rate=SR, **stream_kw):
    s = Session(loop.rec.create_stream(**stream_kw), StreamConfig(sample_rate=rate), loop.rec.info.frame_shift_s)
    loop.add(s)
    return s


def _run(loop, sessions, max_steps=10_000):
    """Step until every session has its final reply or has failed: (replies per session, failed
    sessions -> error, input seconds fed per step)."""
    replies = {id(s): [] for s in sessions}
    failed, feds = {}, []
    for _ in range(max_steps):
        work = [s for s in sessions if id(s) not in failed and None not in replies[id(s)]]
        if not work:
            return replies, failed, feds
        out, pending, fed, batch, bad = loop._step(work)
        feds.append(fed)
        for s, rs in out:
            replies[id(s)] += rs
        for s, exc in bad:
            failed[id(s)] = exc
    raise AssertionError("the streams did not finish")


def _final_text(replies):
    import json

    return json.loads(replies[-2])["text"]


@pytest.mark.parametrize("rate", [SR, 48_000, 8_000 * 48])
def test_a_long_message_is_fed_one_piece_per_step(lc_model, rate):
    """One message of 60 s (what 1 MiB carries at 8 kHz) is not resampled and framed in one
    step: at most FEED_PIECE_S of it per step, so a step's work is bounded for every stream in
    it. The message still gets exactly one reply, then the eof the final result."""
    loop = DecodeLoop(OnlineRecognizer(lc_model))
    s = _session(loop, rate)
    s.push(np.zeros(60 * rate, np.int16))
    s.finish()
    replies, failed, feds = _run(loop, [s])
    assert not failed
    assert max(feds) <= FEED_PIECE_S + 1e-9 and sum(feds) == pytest.approx(60.0)
    assert len(replies[id(s)]) == 3 and replies[id(s)][-1] is None  # the message's reply, the final result, the end


def test_a_failing_stream_fails_alone(lc_model, monkeypatch):
    """Three streams in one batch; the model call fails whenever one of them is in it, and
    another one's feeding raises MemoryError: those two fail, and the third gets exactly the
    text it gets alone."""
    rng = np.random.default_rng(5)
    wave = (synth_utterance("abc ca", rng) * 32767).astype(np.int16)
    ref_loop = DecodeLoop(OnlineRecognizer(lc_model))
    ref = _session(ref_loop)
    ref.push(wave)
    ref.finish()
    want = _final_text(_run(ref_loop, [ref])[0][id(ref)])
    assert want

    loop = DecodeLoop(OnlineRecognizer(lc_model))
    good, poison, hungry = (_session(loop) for _ in range(3))
    for s in (good, poison, hungry):
        s.push(wave)
        s.finish()
    real = loop.rec.decode_streams

    def flaky(streams):
        if poison.stream in streams:
            raise RuntimeError("boom")
        return real(streams)

    def no_memory(*args):
        raise MemoryError("resampling")

    monkeypatch.setattr(loop.rec, "decode_streams", flaky)
    monkeypatch.setattr(hungry.stream, "accept_waveform", no_memory)
    replies, failed, _ = _run(loop, [good, poison, hungry])
    assert set(failed) == {id(poison), id(hungry)}
    assert "boom" in str(failed[id(poison)]) and isinstance(failed[id(hungry)], MemoryError)
    assert _final_text(replies[id(good)]) == want


def test_an_error_while_taking_outputs_fails_that_stream_only(lc_model, monkeypatch):
    """If the batched call raises after some streams took their outputs, those are not run
    again (that would decode a window twice); the one that raised fails, the rest are retried."""
    loop = DecodeLoop(OnlineRecognizer(lc_model))
    rng = np.random.default_rng(6)
    wave = (synth_utterance("cab", rng) * 32767).astype(np.int16)
    a, b, c = (_session(loop) for _ in range(3))
    for s in (a, b, c):
        s.push(wave)
        s.finish()
    real_advance = type(b.stream)._advance

    def bad_advance(self, *args):
        real_advance(self, *args)
        raise ValueError("decoder bug")

    monkeypatch.setattr(b.stream, "_advance", bad_advance.__get__(b.stream))
    replies, failed, _ = _run(loop, [a, b, c])
    assert set(failed) == {id(b)}
    assert _final_text(replies[id(a)]) == _final_text(replies[id(c)]) != ""


def test_load_over_a_window_counts_the_step_in_progress():
    """What admission measures (asr.server.admission): seconds in steps over the last window,
    the part of a step inside it, and the step still running; the audio those steps fed."""
    st = LoopStats(started=0.0)
    st.recent.extend([(1.0, 0.5, 1, 0.1), (4.5, 1.0, 1, 0.2), (9.5, 0.2, 1, 0.4)])  # (start, seconds, batch, audio)
    assert st.load(5.0, now=10.0) == pytest.approx((0.5 + 0.2, 0.6, 5.0))
    st.step_started = 9.8
    assert st.load(5.0, now=10.0) == pytest.approx((0.5 + 0.2 + 0.2, 0.6, 5.0))
    st.started = 8.0  # only 2 s observed
    assert st.load(5.0, now=10.0) == pytest.approx((0.2 + 0.2, 0.4, 2.0))


def test_max_batch_one_takes_the_streams_in_turn(models):
    """With room for one stream per step, streams that all have windows to decode are stepped
    in turn: a stepped stream goes behind every stream that was waiting, none starves."""
    path, _, _ = models.get("gru-uni")
    rec = OnlineRecognizer(path)
    loop = DecodeLoop(rec, max_batch=1)
    rng = np.random.default_rng(0)
    try:
        sessions = []
        for i in range(3):
            s = Session(rec.create_stream(f"s{i}"), StreamConfig(sample_rate=SR), rec.info.frame_shift_s)
            loop.add(s)
            s.push(synth_utterance("abc cab bca", rng))  # one message holding many windows
            sessions.append(s)
        stepped = []
        decode = rec.decode_streams

        def record(streams):
            stepped.append([x.name for x in streams])
            return decode(streams)

        rec.decode_streams = record
        for _ in range(12):
            work = [s for s in loop.sessions if s.inbox or s.waiting_since is not None]
            out, pending, fed, batch, failed = loop._step(work)
            assert not failed
            assert batch == 1 and pending
        assert all(len(names) == 1 for names in stepped)
        order = [names[0] for names in stepped]
        assert order == ["s0", "s1", "s2"] * 4, order
        # a stream that becomes ready later queues behind those already waiting
        late = Session(rec.create_stream("late"), StreamConfig(sample_rate=SR), rec.info.frame_shift_s)
        loop.add(late)
        late.push(synth_utterance("abc", rng))
        for _ in range(4):
            loop._step([s for s in loop.sessions if s.inbox or s.waiting_since is not None])
        assert [names[0] for names in stepped[12:]] == ["s0", "s1", "s2", "late"]
    finally:
        loop._pool.shutdown(wait=True)


def test_reset_gives_the_final_result_and_a_fresh_stream(lc_model):
    """{"reset" : 1}: its reply is the final result of the audio so far, exactly what an eof would
    give; the next audio goes to a fresh stream (decoder and states), whose times run on from
    the connection's start, as Vosk's server does."""
    import json

    from asr.server.loop import open_stream
    from tests.server_helpers import ENDPOINT

    rec = OnlineRecognizer(lc_model, endpoint=ENDPOINT)
    loop = DecodeLoop(rec)
    rng = np.random.default_rng(5)
    a, b = synth_utterance("abc ca", rng), synth_utterance("b cc", rng)
    try:
        def alone(wave):
            s = _session(loop)
            s.push(wave)
            s.finish()
            replies, failed, _ = _run(loop, [s])
            return json.loads(replies[id(s)][-2])

        want_a, want_b = alone(a), alone(b)
        assert want_a["text"] and want_b["text"], "the test model should recognize something"
        cfg = StreamConfig(sample_rate=SR)
        stream, _, again = open_stream(rec, "r", cfg)
        s = Session(stream, cfg, rec.info.frame_shift_s, restart=again)
        loop.add(s)
        s.push(a)
        s.reset()
        s.push(b)
        s.finish()
        replies, failed, _ = _run(loop, [s])
        replies = [json.loads(r) for r in replies[id(s)][:-1]]
        assert not failed and len(replies) == 4  # one reply per message: audio, reset, audio, eof
        assert replies[1] == want_a  # the reset's reply: a's final result, as if a had ended with the eof
        assert s.stream is not stream  # a fresh stream after the reset
        final = replies[3]
        assert final["text"] == want_b["text"]
        shift = a.size / SR
        assert [w["start"] for w in final["result"]] == [round(w["start"] + shift, 3) for w in want_b["result"]]
    finally:
        loop._pool.shutdown(wait=True)


def test_a_session_without_restart_refuses_reset(lc_model):
    from asr.server.protocol import ProtocolError

    loop = DecodeLoop(OnlineRecognizer(lc_model))
    try:
        with pytest.raises(ProtocolError, match="reset"):
            _session(loop).reset()
    finally:
        loop._pool.shutdown(wait=True)
