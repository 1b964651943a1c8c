"""asr.server.app (with asr.server.loop and asr.server.client): the server gives exactly what
``asr-stream`` gives, speaks Vosk's protocol, and survives hostile clients while the
well-behaved ones keep their transcripts. Tiny random models, loopback only, short runs."""

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

import aiohttp
import numpy as np
import pytest
import soundfile as sf

from asr.server.app import ServerConfig
from asr.server.client import file_pieces, stream_file, stream_pieces
from tests.conftest import SR, synth_utterance
from tests.server_helpers import ServerThread, run, stream_texts


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    """long.wav: three utterances with pauses (several endpoints), 4.5 s; short.wav: 1.3 s."""
    root = tmp_path_factory.mktemp("server_wavs")
    rng = np.random.default_rng(3)
    parts = []
    for t in ["abc ca", "b cc", "a"]:
        parts += [synth_utterance(t, rng), 0.003 * rng.standard_normal(int(0.6 * SR)).astype(np.float32)]
    long = os.path.join(root, "long.wav")
    sf.write(long, np.concatenate(parts), SR)
    short = os.path.join(root, "short.wav")
    sf.write(short, synth_utterance("cab ba", rng), SR)
    return {"long": long, "short": short}


@pytest.fixture(scope="module")
def lc_model(models):
    return models.get("lstm-lc")[0]


# --- correctness: the server's text is asr-stream's text ---------------------------------------

@pytest.mark.parametrize("name", ["lstm-lc", "gru-uni"])
def test_file_through_server_equals_asr_stream(models, audio, name):
    """Real-time paced and as fast as possible, in random piece sizes: exactly asr-stream's utterances."""
    path = models.get(name)[0]
    want = stream_texts(path, audio["long"])
    assert want, "the test model should recognize something"
    samples, rate = sf.read(audio["long"], dtype="int16")
    with ServerThread(path) as srv:
        async def both():
            fast = stream_pieces(srv.url, file_pieces(samples, rate, rng=np.random.default_rng(1)), rate)
            paced = stream_pieces(srv.url, file_pieces(samples, rate, rng=np.random.default_rng(2), max_piece_s=0.3), rate,
                                  realtime=True)
            return await asyncio.gather(fast, paced)
        fast, paced = run(both())
        assert srv.metrics()["decode_loop"]["steps"] > 0
    for r in (fast, paced):
        assert r.error is None and r.final
        assert r.texts == want
        assert len(r.latencies) == len(r.partials) + len(r.results) - 1  # one reply per message, then the eof's
    assert max(lat for _, lat in paced.latencies) < 2.0


def test_vosk_client_lockstep(lc_model, audio):
    """A client written like Vosk's websocket/test.py: config, send a piece, read one reply, ...,
    eof, read the final result; the server then closes the connection."""
    samples, rate = sf.read(audio["long"], dtype="int16")
    want = stream_texts(lc_model, audio["long"])

    async def vosk_client(url):
        replies = []
        async with aiohttp.ClientSession() as s, s.ws_connect(url) as ws:
            await ws.send_str('{ "config" : { "sample_rate" : %d } }' % rate)
            for i in range(0, samples.size, int(rate * 0.2)):
                await ws.send_bytes(samples[i : i + int(rate * 0.2)].tobytes())
                replies.append(json.loads((await ws.receive(timeout=10)).data))
            await ws.send_str('{"eof" : 1}')
            replies.append(json.loads((await ws.receive(timeout=10)).data))
            closing = await ws.receive(timeout=10)
            return replies, closing.type

    with ServerThread(lc_model) as srv:
        replies, closing = run(vosk_client(srv.url.rsplit("/", 1)[0]))  # ws://host:port, as Vosk clients use it
    assert closing in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    assert all(("partial" in r) != ("text" in r) for r in replies)
    results = [r for r in replies if "text" in r]
    assert "text" in replies[-1] and [r["text"] for r in results if r["text"]] == want
    for r in results:
        assert set(r) == {"result", "text"}
        for w in r["result"]:
            assert set(w) == {"word", "start", "end", "conf"} and 0.0 <= w["conf"] <= 1.0 and 0 <= w["start"] < w["end"]
        assert (" ".join(w["word"] for w in r["result"]) == r["text"]
                or "".join(w["word"] for w in r["result"]) == r["text"].replace(" ", ""))


def test_reset_answers_the_final_result_and_the_stream_goes_on(lc_model, audio):
    """{"reset" : 1} as Vosk's server takes it: the reply is the final result of what was sent,
    the connection stays open, and the next audio is recognized afresh; the eof ends it."""
    samples, rate = sf.read(audio["short"], dtype="int16")

    async def client(url):
        replies = []
        async with aiohttp.ClientSession() as s, s.ws_connect(url) as ws:
            await ws.send_str('{"config" : {"sample_rate" : %d}}' % rate)
            for message in (samples.tobytes(), '{"reset" : 1}', samples.tobytes(), '{"eof" : 1}'):
                await (ws.send_bytes(message) if isinstance(message, bytes) else ws.send_str(message))
                replies.append(json.loads((await ws.receive(timeout=10)).data))
            closing = await ws.receive(timeout=10)
            return replies, closing.type

    with ServerThread(lc_model) as srv:
        replies, closing = run(client(srv.url))
    assert closing in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    assert len(replies) == 4 and all("error" not in r for r in replies)
    first, second = replies[1], replies[3]  # the reset's final result, the eof's
    assert first["text"] and second["text"] == first["text"]  # the same audio twice, each recognized afresh
    shift = samples.size / rate
    assert [w["start"] for w in second["result"]] == [round(w["start"] + shift, 3) for w in first["result"]]


def test_endpoint_rules_per_stream(lc_model, audio):
    """config.endpoint sets the stream's own rules: with utterances of at most 0.5 s (rule3), the
    long file, one utterance under the server's rules, comes in several, exactly as asr stream
    gives it with those rules; a bad rule is refused naming the field."""
    from asr.runtime import EndpointConfig

    samples, rate = sf.read(audio["long"], dtype="int16")
    server_rules = stream_texts(lc_model, audio["long"])
    short = stream_texts(lc_model, audio["long"], endpoint=EndpointConfig(0.5, 0.3, 0.5))
    assert len(short) > len(server_rules)

    async def client(url, rules):
        results = []
        async with aiohttp.ClientSession() as s, s.ws_connect(url) as ws:
            await ws.send_str(json.dumps({"config": {"sample_rate": rate, "endpoint": rules}}))
            if rules.get("rule3", 0) > 20:  # refused: the error is the only reply
                return [json.loads((await ws.receive(timeout=10)).data)]
            for i in range(0, samples.size, rate // 10):
                await ws.send_bytes(samples[i : i + rate // 10].tobytes())
                results.append(json.loads((await ws.receive(timeout=10)).data))
            await ws.send_str('{"eof" : 1}')
            results.append(json.loads((await ws.receive(timeout=10)).data))
        return results

    with ServerThread(lc_model) as srv:
        replies = run(client(srv.url, {"rule3": 0.5}))
        assert [r["text"] for r in replies if r.get("text")] == short
        replies = run(client(srv.url, {"rule3": 25}))
    assert "error" in replies[0] and "config.endpoint.rule3 must be seconds in (0, 20]" in replies[0]["error"]


def test_words_false_float32_and_rate(lc_model, audio):
    """words=false gives {"text"} only; float32 frames (extension) at another rate decode like the runtime fed the same samples."""
    from asr.runtime import OnlineRecognizer
    from tests.server_helpers import ENDPOINT

    x, rate = sf.read(audio["long"], dtype="float32")
    import soxr

    y = soxr.resample(x, rate, 16000).astype(np.float32)
    rec = OnlineRecognizer(lc_model, endpoint=ENDPOINT)
    s = rec.create_stream()
    s.accept_waveform(16000, y)
    s.input_finished()
    while rec.decode_streams([s]):
        pass
    want = [u.text for u in rec.get_result(s).utterances if u.text]

    async def client(url):
        replies = []
        async with aiohttp.ClientSession() as ses, ses.ws_connect(url) as ws:
            await ws.send_str(json.dumps({"config": {"sample_rate": 16000.0, "words": 0, "format": "float32"}}))
            for i in range(0, y.size, 3000):
                await ws.send_bytes(y[i : i + 3000].astype("<f4").tobytes())
            await ws.send_str('{"eof": 1}')
            async for msg in ws:
                replies.append(json.loads(msg.data))
        return replies

    with ServerThread(lc_model) as srv:
        replies = run(client(srv.url))
    results = [r for r in replies if "partial" not in r]
    assert all(set(r) == {"text"} for r in results)
    assert [r["text"] for r in results if r["text"]] == want


async def vosk_lockstep(url, path, config, piece_s=0.2):
    """A client written from Vosk's documentation (websocket/test.py, test_alternatives.py): the
    config, then a piece and one reply at a time, the eof and its reply; every reply, in order,
    and how the connection ended."""
    samples, rate = sf.read(path, dtype="int16")
    replies = []
    async with aiohttp.ClientSession() as s, s.ws_connect(url) as ws:
        await ws.send_str(json.dumps({"config": {"sample_rate": rate, **config}}))
        for i in range(0, samples.size, int(rate * piece_s)):
            await ws.send_bytes(samples[i : i + int(rate * piece_s)].tobytes())
            msg = await ws.receive(timeout=10)
            if msg.type != aiohttp.WSMsgType.TEXT:
                return replies, msg.type
            replies.append(json.loads(msg.data))
            if "error" in replies[-1]:
                return replies, (await ws.receive(timeout=10)).type
        await ws.send_str('{"eof" : 1}')
        replies.append(json.loads((await ws.receive(timeout=10)).data))
        return replies, (await ws.receive(timeout=10)).type


def test_phrase_list_restricts_as_vosk_and_hotwords_bias(lc_model, audio):
    """phrase_list restricts each utterance's final text to its phrases (any sequence; "[unk]"
    for the rest), as Vosk's does; a word the model cannot spell is left out and named in a
    "warning" of the first reply, and the stream goes on to its final result; a list with
    nothing left is a clear error. Biasing is "hotwords" (an extension), whose phrases must be
    spellable."""
    closed = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    with ServerThread(lc_model) as srv:
        restricted, end1 = run(vosk_lockstep(srv.url, audio["long"], {"phrase_list": ["abc ca", "[unk]"]}))
        warned, end2 = run(vosk_lockstep(srv.url, audio["long"], {"phrase_list": ["b", "xyz", "a", "cab"]}))
        empty, end3 = run(vosk_lockstep(srv.url, audio["long"], {"phrase_list": ["xyz", "zz"]}))
        hot, _ = run(vosk_lockstep(srv.url, audio["short"], {"hotwords": ["ab"]}))
        bad_hot, _ = run(vosk_lockstep(srv.url, audio["short"], {"hotwords": ["xyz"]}))
    assert end1 in closed and end2 in closed and end3 in closed
    finals = [r for r in restricted if "text" in r]
    assert restricted[-1] is finals[-1] and any(r["text"] for r in finals)
    for r in finals:
        assert set(r["text"].split()) <= {"abc", "ca", "[unk]"}
        assert [w["word"] for w in r["result"]] == r["text"].split()
    assert "warning" in warned[0] and "xyz" in warned[0]["warning"] and "phrase_list" in warned[0]["warning"]
    assert all("warning" not in r for r in warned[1:]) and "error" not in warned[-1]
    texts = [r["text"] for r in warned if "text" in r and r["text"]]
    assert texts and all(set(t.split()) <= {"b", "a", "cab"} for t in texts)
    assert "error" in empty[-1] and "config.phrase_list" in empty[-1]["error"] and "'xyz', 'zz'" in empty[-1]["error"]
    assert "text" in hot[-1] and all("error" not in r for r in hot)
    assert "error" in bad_hot[-1] and "config.hotwords" in bad_hot[-1]["error"] and "xyz" in bad_hot[-1]["error"]


def test_max_alternatives_gives_vosk_nbest_results(lc_model, audio):
    """{"max_alternatives": 3}, as Vosk's test_alternatives.py sends it: partials stay
    {"partial"}; every result, the final one too, is {"alternatives": [...]}, at most 3, best
    first, each {"confidence", "result": [{"word", "start", "end"}], "text"} (plus our "acoustic"
    and "lm"); the best ones' texts are what the same beam search writes without n-best; with
    words false there is no "result"."""
    with ServerThread(lc_model) as srv:
        nbest, _ = run(vosk_lockstep(srv.url, audio["long"], {"max_alternatives": 3}))
        beam, _ = run(vosk_lockstep(srv.url, audio["long"], {"hotwords": ["c"]}))  # a beam search of the same width
        no_words, _ = run(vosk_lockstep(srv.url, audio["long"], {"max_alternatives": 2, "words": False}))
    results = [r for r in nbest if "partial" not in r]
    assert results and results[-1] is nbest[-1]
    for r in results:
        assert set(r) == {"alternatives"} and 1 <= len(r["alternatives"]) <= 3
        scores = [a["confidence"] for a in r["alternatives"]]
        assert scores == sorted(scores, reverse=True)
        for a in r["alternatives"]:
            if a["text"]:
                assert set(a) == {"confidence", "result", "text", "acoustic", "lm"}
                assert all(set(w) == {"word", "start", "end"} and w["start"] < w["end"] for w in a["result"])
    best = [r["alternatives"][0]["text"] for r in results if r["alternatives"][0]["text"]]
    assert best and len(best) == len([r for r in beam if r.get("text")])
    for r in [r for r in no_words if "partial" not in r]:
        assert all("result" not in a for a in r["alternatives"])



def test_max_alternatives_over_our_bound_is_cut_not_refused(lc_model, audio):
    """Vosk's max_alternatives is a maximum with no upper bound (its test_alternatives.py asks for
    20): a number over ours (10) gives at most 10 alternatives and a "warning" in the first
    reply, and the stream runs to its final result; a negative or fractional one is an error."""
    closed = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    with ServerThread(lc_model) as srv:
        many, end = run(vosk_lockstep(srv.url, audio["long"], {"max_alternatives": 20}))
        bad, _ = run(vosk_lockstep(srv.url, audio["short"], {"max_alternatives": -1}))
    assert end in closed and all("error" not in r for r in many)
    assert "warning" in many[0] and "max_alternatives: 20 asked, at most 10 given" in many[0]["warning"]
    assert all("warning" not in r for r in many[1:])
    results = [r for r in many if "partial" not in r]
    assert results and results[-1] is many[-1]
    assert all(1 <= len(r["alternatives"]) <= 10 for r in results)
    assert "error" in bad[-1] and "max_alternatives must be a whole number >= 0" in bad[-1]["error"]


def test_health_metrics_info_and_page(lc_model):
    async def get(http):
        async with aiohttp.ClientSession() as s:
            out = {}
            for path in ("/health", "/metrics", "/info", "/", "/static/app.js", "/static/capture-worklet.js"):
                async with s.get(http + path) as r:
                    out[path] = (r.status, await r.text())
            return out

    with ServerThread(lc_model) as srv:
        out = run(get(srv.http))
    assert all(status == 200 for status, _ in out.values())
    assert json.loads(out["/health"][1])["status"] == "ok"
    m = json.loads(out["/metrics"][1])
    for key in ("live_streams", "decode_loop", "rss_mb", "open_fds", "refused", "connections"):
        assert key in m
    for key in ("steps", "mean_batch", "rtf", "last_10s"):
        assert key in m["decode_loop"]
    for key in ("step_ms_p95", "reply_ms_p50", "reply_ms_p95", "busy_fraction", "rtf"):
        assert key in m["decode_loop"]["last_10s"]
    assert json.loads(out["/info"][1])["sample_rate"] == SR
    assert "getUserMedia" in out["/static/app.js"][1] and "<html" in out["/"][1]


# --- hostile clients -----------------------------------------------------------------------------

def _until(condition, timeout=5.0):
    """Wait for the server to finish closing (its handler ends after the client saw the close)."""
    t0 = time.monotonic()
    while not condition():
        assert time.monotonic() - t0 < timeout, "server state did not settle"
        time.sleep(0.02)


async def _raw(url, messages, read_timeout=5.0):
    """Send messages (str or bytes) and return (replies, close code)."""
    replies = []
    async with aiohttp.ClientSession() as s, s.ws_connect(url) as ws:
        for m in messages:
            if ws.closed:
                break
            await (ws.send_str(m) if isinstance(m, str) else ws.send_bytes(m))
        while True:
            msg = await ws.receive(timeout=read_timeout)
            if msg.type != aiohttp.WSMsgType.TEXT:
                return replies, ws.close_code
            replies.append(json.loads(msg.data))


MALFORMED = {
    "bad json": ['{"config": {"sample_rate": 8000'],
    "odd byte count": [b"\x00\x01\x02"],
    "unknown text message": ['{"hello": 1}'],
    "wrong type": ['{"config": {"sample_rate": "fast"}}'],
    "unknown config field": ['{"config": {"sample_rate": 8000, "smaple_rate": 1}}'],
    "nan floats": ['{"config": {"format": "float32"}}', np.array([0.1, np.nan, 0.2], "<f4").tobytes()],
    "second config mid-stream": ['{"config": {"sample_rate": 8000}}', b"\x00\x00" * 800, '{"config": {"sample_rate": 16000}}'],
    "json constant": ['{"eof": NaN}'],
    "deep nesting": ["[" * 100_000],  # issue 30: RecursionError in the handler, close 1006, not counted
    "rate too low": ['{"config": {"sample_rate": 1}}', b"\x00\x00" * 1000],
}


def test_malformed_messages_end_only_that_connection(lc_model, audio):
    want = stream_texts(lc_model, audio["long"])
    with ServerThread(lc_model) as srv:
        async def scenario():
            good = asyncio.create_task(stream_file(srv.url, audio["long"], chunk_s=0.1, realtime=True))
            await asyncio.sleep(0.3)
            bad = {}
            for name, msgs in MALFORMED.items():
                bad[name] = await _raw(srv.url, msgs)
            return await good, bad
        good, bad = run(scenario())
        assert srv.metrics()["errors"] == len(MALFORMED)
    assert good.error is None and good.texts == want
    for name, (replies, code) in bad.items():
        assert code == 1008, name
        assert len(replies) == 1 and set(replies[0]) == {"error"}, (name, replies)
    assert "JSON" in bad["bad json"][0][0]["error"]
    assert "3 bytes" in bad["odd byte count"][0][0]["error"]
    assert "NaN" in bad["nan floats"][0][0]["error"]
    assert "config after audio" in bad["second config mid-stream"][0][0]["error"]
    assert "smaple_rate" in bad["unknown config field"][0][0]["error"]
    assert "nests too deeply" in bad["deep nesting"][0][0]["error"]
    assert "config.sample_rate must be a whole number of Hz in 8000..384000, got 1" in bad["rate too low"][0][0]["error"]


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads resident memory from /proc")
def test_amplification_is_refused_and_memory_stays_bounded(lc_model, audio):
    """Issue 30 #1: {"sample_rate": 1} and a 2 KB message made the shared decoding thread
    resample to the model's rate (930 MB resident, seconds of delay for everyone). Now the rate
    is refused by name and range before any work, and the largest messages at the extreme rates
    the server accepts (1 MiB at 8 kHz: 65 s; at 384 kHz; float32) leave resident memory
    (server and clients share this process) within 100 MB of where it was, while a real-time
    client gets exactly its transcript."""
    want = stream_texts(lc_model, audio["long"])
    big = b"\x01\x00" * (1 << 19)  # 1 MiB of int16, the largest message
    big_f32 = np.full(1 << 18, 0.01, "<f4").tobytes()
    with ServerThread(lc_model) as srv:
        async def scenario():
            base, peak, done = _rss_mb(), [], asyncio.Event()

            async def watch():
                while not done.is_set():
                    peak.append(_rss_mb())
                    await asyncio.sleep(0.005)

            watcher = asyncio.create_task(watch())
            good = asyncio.create_task(stream_file(srv.url, audio["long"], chunk_s=0.1, realtime=True))
            attacks = [await _raw(srv.url, ['{"config": {"sample_rate": %d}}' % rate, b"\x01\x00" * 1000])
                       for rate in (1, 99, 7999)]
            floods = [await _raw(srv.url, [cfg, msg, msg, '{"eof": 1}'], read_timeout=60)
                      for cfg, msg in [('{"config": {"sample_rate": 8000}}', big),
                                       ('{"config": {"sample_rate": 384000}}', big),
                                       ('{"config": {"sample_rate": 8000, "format": "float32"}}', big_f32)]]
            report = await good
            done.set()
            await watcher
            return base, max(peak), attacks, floods, report

        base, peak, attacks, floods, report = run(scenario())
        health = _health(srv)[0]
        m = srv.metrics()
    for (replies, code), rate in zip(attacks, (1, 99, 7999)):
        assert code == 1008 and replies == [{"error": f"config.sample_rate must be a whole number of Hz in 8000..384000, got {rate}"}]
    for replies, code in floods:
        assert code == 1000 and "error" not in str(replies) and "text" in replies[-1]  # served, the final result last
    assert peak - base < 100, (base, peak)
    assert report.error is None and report.texts == want
    assert health["status"] == "ok" and m["errors"] == 3 and m["live_streams"] == 0


def test_message_of_exactly_the_limit_is_accepted(lc_model):
    """Issue 30 #10: "up to 1 MiB" means a message of 1,048,576 bytes is served; one byte more is refused."""
    with ServerThread(lc_model) as srv:
        ok, code_ok = run(_raw(srv.url, [b"\x00\x00" * (1 << 19), '{"eof": 1}'], read_timeout=60))
        big, code_big = run(_raw(srv.url, [b"\x00" * ((1 << 20) + 1)]))
    assert code_ok == 1000 and len(ok) == 2 and "error" not in str(ok) and "text" in ok[-1]  # its reply, the final result
    assert code_big == 1009 and big == [{"error": "message larger than 1048576 bytes (--max-message-bytes)"}]


def test_idle_client_times_out_and_silent_one_too(lc_model):
    with ServerThread(lc_model, ServerConfig(idle_timeout_s=0.5)) as srv:
        t0 = time.monotonic()
        replies, code = run(_raw(srv.url, []))
        waited = time.monotonic() - t0
        replies2, code2 = run(_raw(srv.url, ['{"config": {"sample_rate": 8000}}', b"\x00\x00" * 400]))
        _until(lambda: srv.live == 0)
    assert code == 1008 and "idle" in replies[0]["error"] and 0.4 < waited < 5
    assert code2 == 1008 and "idle" in replies2[-1]["error"] and all("partial" in r for r in replies2[:-1])


def test_disconnect_mid_utterance_and_10x_client(lc_model, audio):
    """One client leaves without eof mid-utterance, one sends 10x faster than real time: the
    real-time client's transcript is unchanged, the server stays up, nothing is left live."""
    want = stream_texts(lc_model, audio["long"])
    samples, rate = sf.read(audio["long"], dtype="int16")
    with ServerThread(lc_model) as srv:
        async def leaver():
            async with aiohttp.ClientSession() as s:
                ws = await s.ws_connect(srv.url)
                await ws.send_str(json.dumps({"config": {"sample_rate": rate}}))
                for i in range(0, rate, 800):  # 1 s of speech, no eof
                    await ws.send_bytes(samples[i : i + 800].tobytes())
                    await asyncio.sleep(0.05)
                ws._response.connection.transport.abort()  # vanish: no close frame
                await ws.close()

        async def fast():
            pieces = file_pieces(samples, rate, chunk_s=0.1)
            t0 = time.monotonic()
            out = []
            for _k in range(3):  # 10x: 0.1 s of audio every 10 ms
                async def paced(t0=t0):  # t0 bound now: this round's start
                    for i, p in enumerate(pieces):
                        await asyncio.sleep(max(0, t0 + i * 0.01 - time.monotonic()))
                        yield p
                out.append(await stream_pieces(srv.url, paced(), rate))
                t0 = time.monotonic()
            return out

        async def scenario():
            good = asyncio.create_task(stream_file(srv.url, audio["long"], chunk_s=0.2, realtime=True))
            results = await asyncio.gather(leaver(), fast())
            return await good, results[1]
        good, fast_reports = run(scenario())
        _until(lambda: srv.live == 0)
        assert srv.metrics()["disconnects"] == 1
    assert good.error is None and good.texts == want
    for r in fast_reports:
        assert r.error is None and r.texts == want


def test_backpressure_bounds_undecoded_audio(lc_model, audio):
    """A client that sends a long recording as fast as it can: the server stops reading it while
    its undecoded audio is over the bound, so the backlog never grows with the input."""
    samples, rate = sf.read(audio["long"], dtype="int16")
    long = np.tile(samples, 6)  # 27 s
    cfg = ServerConfig(max_backlog_s=0.5)
    with ServerThread(lc_model, cfg) as srv:
        peak = []

        async def watch(task):
            while not task.done():
                peak.append(max([s.backlog_s for loop in srv.server.loops for s in loop.sessions] or [0.0]))
                await asyncio.sleep(0.002)

        async def go():
            t = asyncio.create_task(stream_pieces(srv.url, file_pieces(long, rate, chunk_s=0.25), rate))
            await watch(t)
            return await t
        report = run(go())
    assert report.error is None and report.final
    window_s = srv.server.window_s
    assert max(peak) <= window_s + cfg.max_backlog_s + 0.25 + 1e-6, (max(peak), window_s)
    assert max(peak) > 0.25  # it did run ahead of the decoder


def test_connections_past_the_limit_are_refused(lc_model, audio):
    with ServerThread(lc_model, ServerConfig(max_streams=2)) as srv:
        async def scenario():
            async with aiohttp.ClientSession() as s:
                held = [await s.ws_connect(srv.url) for _ in range(2)]
                for ws in held:
                    await ws.send_str('{"config": {"sample_rate": 8000}}')
                await asyncio.sleep(0.1)
                refused = await _raw(srv.url, [])
                await held[0].close()
                await asyncio.sleep(0.1)
                again = await stream_file(srv.url, audio["short"])
                await held[1].close()
                return refused, again
        (replies, code), again = run(scenario())
        m = srv.metrics()
    assert code == 1013 and "server full" in replies[0]["error"] and "2 streams" in replies[0]["error"]
    assert again.error is None and again.final and m["refused"] == 1


def test_message_too_big_and_session_limit(lc_model, audio):
    with ServerThread(lc_model, ServerConfig(max_message_bytes=1000, max_session_s=1.0)) as srv:
        big, code = run(_raw(srv.url, [b"\x00\x00" * 1000]))
        report = run(stream_file(srv.url, audio["long"], chunk_s=0.05, realtime=True))
        assert srv.metrics()["session_limits"] == 1
    assert code == 1009 and "larger than 1000 bytes" in big[0]["error"]
    # everything up to the limit as a last result, then the reason; not the reply to an eof
    assert report.results and not report.final and "session longer than 1 s" in report.error


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs openssl to make a self-signed certificate")
def test_tls_wss(lc_model, audio, tmp_path):
    """--certfile/--keyfile: https and wss on the same port (what browsers need for the microphone off localhost)."""
    import ssl

    from asr.cli.serve import tls_context

    key, cert = str(tmp_path / "key.pem"), str(tmp_path / "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    client_ctx = ssl.create_default_context(cafile=cert)
    client_ctx.check_hostname = False
    with ServerThread(lc_model, ssl_context=tls_context(cert, key)) as srv:
        async def go():
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ctx)) as s:
                async with s.get(srv.http + "/health") as r:
                    health = await r.json()
                return health, await stream_file(srv.url, audio["short"], session=s)
        health, report = run(go())
    assert srv.url.startswith("wss://") and health["status"] == "ok"
    assert report.error is None and report.final
    with pytest.raises(ValueError, match="go together"):
        tls_context(cert, None)


def test_server_imports_no_torch():
    code = ("import sys; sys.modules['torch'] = None; import asr.server.app, asr.server.loop, asr.server.client, "
            "asr.cli.serve, asr.cli.client, asr.cli.mic; from asr.cli import main; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


# --- slots are freed in every state; a failing stream fails alone ---------------------------------

def test_clients_that_leave_while_not_read_free_their_slots(lc_model, audio):
    """Issue 30 #2: while the server does not read a socket (backpressure: here the decoding
    thread is held busy, so nothing decodes), a client that leaves -- close frame, reset, or
    TCP close without a close frame -- must free its slot within seconds, not at the session
    limit; a client that stays is closed after the idle timeout. Then a new client is admitted
    and served."""
    samples, rate = sf.read(audio["long"], dtype="int16")
    cfg = ServerConfig(max_streams=3, max_backlog_s=0.2, idle_timeout_s=1.5)
    with ServerThread(lc_model, cfg) as srv:
        gate = threading.Event()
        srv.server.loops[0]._pool.submit(gate.wait)  # the one decoding thread is busy until the gate opens
        try:
            async def scenario():
                async with aiohttp.ClientSession() as s:
                    conns = [await s.ws_connect(srv.url) for _ in range(3)]
                    for ws in conns:
                        await ws.send_str('{"config": {"sample_rate": %d}}' % rate)
                        for i in range(0, samples.size, 800):  # 4.5 s in 0.1 s messages: over the backlog bound
                            await ws.send_bytes(samples[i : i + 800].tobytes())
                    await asyncio.sleep(0.5)
                    full = await _raw(srv.url, [])
                    stuck = [s.backlog_s for loop in srv.server.loops for s in loop.sessions]
                    closing = asyncio.create_task(conns[0].close())  # a close frame, queued behind unread audio
                    conns[1]._response.connection.transport.abort()  # a reset
                    conns[2]._response.connection.transport.close()  # TCP close, no close frame
                    t0 = time.monotonic()
                    while srv.live and time.monotonic() - t0 < 10:
                        await asyncio.sleep(0.05)
                    freed_s, left = time.monotonic() - t0, srv.live
                    await closing
                    # one that stays while nothing decodes: closed after the idle timeout
                    stays = await _raw(srv.url, ['{"config": {"sample_rate": %d}}' % rate, samples[:8000].tobytes()],
                                       read_timeout=10)
                    return full, stuck, freed_s, left, stays

            (full, full_code), stuck, freed_s, left, (stays, stays_code) = run(scenario())
            _until(lambda: srv.live == 0)  # the one that stayed
        finally:
            gate.set()
        again = run(stream_file(srv.url, audio["short"]))
        m = srv.metrics()
    assert full_code == 1013 and len(stuck) == 3 and min(stuck) > 0.2  # all three held, none of them being read
    assert left == 0 and freed_s < 5, freed_s
    assert stays_code == 1008 and "no decoding progress for 1.5 s (idle timeout)" in stays[-1]["error"]
    assert again.error is None and again.final
    assert m["disconnects"] == 3 and m["idle_timeouts"] == 1


def _health(srv):
    """GET /health -> (body, status code)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(srv.http + "/health", timeout=5) as r:
            return json.loads(r.read()), r.status
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read()), exc.code


def test_a_stream_that_fails_in_decoding_fails_alone_and_health_tells(lc_model, audio, monkeypatch):
    """Issue 30 #3: a decoding step that raises for one stream used to fail every stream of its
    batch and turn /health red for good. Now only that stream gets the error (close 1011); the
    others keep their transcripts; /health says "recovered" with the counts, then "ok" once
    recovery_s has passed; "degraded" (503) while nothing has decoded since a failure."""
    want = stream_texts(lc_model, audio["long"])
    with ServerThread(lc_model, ServerConfig(recovery_s=1.0)) as srv:
        real = srv.rec.decode_streams

        def flaky(streams):  # the stream with a phrase list breaks the model call of any batch it is in
            if any(s.grammar is not None for s in streams):
                raise RuntimeError("boom")
            return real(streams)

        monkeypatch.setattr(srv.rec, "decode_streams", flaky)

        async def scenario():
            goods = [asyncio.create_task(stream_file(srv.url, audio["long"], chunk_s=0.1, realtime=True)) for _ in range(2)]
            await asyncio.sleep(0.3)
            bad = await stream_file(srv.url, audio["long"], chunk_s=0.1, realtime=True, phrase_list=["ab"])
            t0 = time.monotonic()
            while _health(srv)[0]["status"] != "recovered" and time.monotonic() - t0 < 5:
                await asyncio.sleep(0.02)
            during = _health(srv)
            return bad, during, await asyncio.gather(*goods)

        bad, (during, during_code), goods = run(scenario())
        _until(lambda: _health(srv)[0]["status"] == "ok", timeout=5)
        after, after_code = _health(srv)

        # every model call fails: degraded (503) until a stream decodes again
        monkeypatch.setattr(srv.rec, "decode_streams", lambda streams: (_ for _ in ()).throw(RuntimeError("all down")))
        down = run(stream_file(srv.url, audio["short"]))
        degraded, degraded_code = _health(srv)
        monkeypatch.setattr(srv.rec, "decode_streams", real)
        up = run(stream_file(srv.url, audio["short"]))
        recovered, recovered_code = _health(srv)
    assert bad.close_code == 1011 and "internal error while decoding: RuntimeError: boom" in bad.error
    for g in goods:
        assert g.error is None and g.texts == want
    assert during_code == 200 and during["status"] == "recovered" and during["failed_streams"] == 1
    assert "boom" in during["last_error"]
    assert after_code == 200 and after["failed_streams"] == 1
    assert "all down" in down.error and not down.final
    assert degraded_code == 503 and degraded["status"] == "degraded" and degraded["failed_streams"] == 2
    assert up.error is None and up.final
    assert recovered_code == 200 and recovered["status"] == "recovered"


def test_newcomers_are_refused_while_decoding_is_saturated(lc_model, audio):
    """Issue 30 #12: admission by what the server measures, not only a stream count. With the
    decoding thread held busy (a step that does not end), a new stream is refused with Vosk's
    "try again later" (1013) and the reason; once it is free, admitted. (The rule's
    arithmetic: tests/server/test_admission.py.)"""
    samples, rate = sf.read(audio["long"], dtype="int16")
    with ServerThread(lc_model, admission=True) as srv:
        gate = threading.Event()
        try:
            async def scenario():
                async with aiohttp.ClientSession() as s:
                    ws = await s.ws_connect(srv.url)
                    await ws.send_bytes(samples[:800].tobytes())
                    await ws.receive(timeout=10)  # decoded: the loop works
                    srv.server.loops[0]._pool.submit(gate.wait)  # now its thread is taken
                    await ws.send_bytes(samples[800:1600].tobytes())  # a step waits for it
                    await asyncio.sleep(2.5)  # more than Admission.min_measured_s of history
                    refused = await _raw(srv.url, [])
                    gate.set()
                    await ws.receive(timeout=10)
                    await ws.close()
                    return refused
            replies, code = run(scenario())
        finally:
            gate.set()
        _until(lambda: srv.live == 0)
        again = run(stream_file(srv.url, audio["short"]))
        m = srv.metrics()
    assert code == 1013 and re.fullmatch(r"server busy: a reply has been due for \d+ ms \(limit 500 ms\): decoding is behind; "
                                         r"try again later", replies[0]["error"])
    assert m["refused_busy"] == 1
    assert again.error is None and again.final


def test_itn_and_punctuation_per_stream_final_results_only(lc_model, audio):
    """config.punctuate / config.itn (extensions): a stream's final results come with marks and
    capitals (the built-in tagger) and in written form, each word keeping its times; partial
    results stay as spoken; a bad value is refused naming the field."""
    from asr.punctuation import default_punctuator

    samples, rate = sf.read(audio["short"], dtype="int16")

    async def client(url, extra):
        replies = []
        async with aiohttp.ClientSession() as s, s.ws_connect(url) as ws:
            await ws.send_str(json.dumps({"config": {"sample_rate": rate, **extra}}))
            for message in (samples[: rate // 2].tobytes(), samples[rate // 2:].tobytes(), '{"eof" : 1}'):
                await (ws.send_bytes(message) if isinstance(message, bytes) else ws.send_str(message))
                msg = await ws.receive(timeout=10)
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                replies.append(json.loads(msg.data))
        return replies

    with ServerThread(lc_model) as srv:
        plain = run(client(srv.url, {}))
        marked = run(client(srv.url, {"punctuate": True, "itn": True}))
        bad = run(client(srv.url, {"punctuate": "yes"}))
    final, final_marked = plain[-1], marked[-1]
    assert final["text"] and final_marked["text"] == default_punctuator().punctuate(final["text"]) != final["text"]
    assert [(w["start"], w["end"]) for w in final_marked["result"]] == [(w["start"], w["end"]) for w in final["result"]]
    assert " ".join(w["word"] for w in final_marked["result"]) == final_marked["text"]
    assert [r.get("partial") for r in marked[:-1]] == [r.get("partial") for r in plain[:-1]]  # partials plain
    assert "config.punctuate must be true/false" in bad[0]["error"]
