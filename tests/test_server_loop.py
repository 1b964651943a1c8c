"""The server's decoding loop (asr.server.loop): which streams each step decodes, driven step by
step in this thread (no sockets, no clock, no timing)."""

import numpy as np
from conftest import SR, synth_utterance

from asr.runtime import OnlineRecognizer
from asr.server.loop import DecodeLoop, Session
from asr.server.protocol import StreamConfig


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
            out, pending, fed, batch = loop._step(work)
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
