"""asr.server.openai_api: the official ``openai`` client transcribes through ``asr serve`` in every
response format, exactly what ``asr transcribe`` writes (the same long-form path and writers);
verbose_json has word and segment times; each refusal has its status and OpenAI's error shape.
The built-in digits model, loopback only."""

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time

import aiohttp
import numpy as np
import pytest
import soundfile as sf

from asr.cli import main as asr_main
from asr.runtime.builtin import builtin_model
from asr.server.openai_api import ApiConfig
from tests.server_helpers import ServerThread, stream_texts

openai = pytest.importorskip("openai", reason="the API tests use the official openai package (pip install '.[dev]')")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DIGITS_WAV = os.path.join(ROOT, "tests", "data", "fsdd_four_zero_seven_two_nine.wav")
DIGITS = "four zero seven two nine"
FORMATS = ["json", "text", "srt", "vtt", "verbose_json"]
REPEATS = 50  # the long file: the digits recording this many times, with pauses (about 3 minutes)


@pytest.fixture(scope="module")
def model():
    return builtin_model(streaming=True)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """short.wav (the five digits, 2.6 s), short.mp3 (the same, if libsndfile writes MP3) and
    long.wav (REPEATS copies with 0.8-2 s of low noise between them: over 30 s, so the long-form
    path), and a text file."""
    root = tmp_path_factory.mktemp("api_files")
    x, rate = sf.read(DIGITS_WAV, dtype="float32")
    rng = np.random.default_rng(5)
    parts = []
    for _ in range(REPEATS):
        parts += [x, 0.002 * rng.standard_normal(int(rng.uniform(0.8, 2.0) * rate)).astype(np.float32)]
    out = {"short": DIGITS_WAV, "long": str(root / "long.wav"), "text": str(root / "notes.txt")}
    sf.write(out["long"], np.concatenate(parts), rate)
    with open(out["text"], "w") as f:
        f.write("these are not audio samples\n" * 100)
    if "MP3" in sf.available_formats():
        out["mp3"] = str(root / "short.mp3")
        sf.write(out["mp3"], x, rate, format="MP3")
    return out


@pytest.fixture(scope="module")
def server(model):
    with ServerThread(model) as srv:
        yield srv


def client(srv, key: str = "unused", **kw):
    return openai.OpenAI(base_url=srv.http + "/v1", api_key=key, max_retries=0, timeout=120, **kw)


def transcribe(srv, path, key: str = "unused", **kw):
    with open(path, "rb") as f:
        return client(srv, key).audio.transcriptions.create(file=f, model="whisper-1", **kw)


@pytest.fixture(scope="module")
def written(model, files, tmp_path_factory):
    """What `asr transcribe --write all` writes for the short and the long file."""
    out = {}
    for name in ("short", "long"):
        d = str(tmp_path_factory.mktemp(f"written_{name}"))
        assert asr_main(["transcribe", "--model", model, "--write", "all", "--output-dir", d, "--no-progress", files[name]]) == 0
        stem = os.path.splitext(os.path.basename(files[name]))[0]
        out[name] = {ext: open(os.path.join(d, f"{stem}.{ext}"), encoding="utf-8").read() for ext in ("txt", "srt", "vtt", "json")}
    return out


# --- every format: what asr transcribe writes ----------------------------------------------------

@pytest.mark.parametrize("name", ["short", "long"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_is_what_asr_transcribe_writes(server, files, written, name, fmt):
    want = written[name]
    doc = json.loads(want["json"])
    extra = {"timestamp_granularities": ["word", "segment"]} if fmt == "verbose_json" else {}
    got = transcribe(server, files[name], response_format=fmt, **extra)
    if fmt in ("text", "srt", "vtt"):
        assert isinstance(got, str)
        assert got == want[{"text": "txt"}.get(fmt, fmt)]
        return
    assert got.text == doc["text"]
    if name == "short":
        assert got.text == DIGITS
    if fmt == "json":
        assert got.usage.seconds == doc["duration"]
        return
    assert got.duration == doc["duration"] and got.language == "english"
    utts = doc["utterances"]
    assert [(s.id, s.start, s.end, s.text) for s in got.segments] == [(i, u["start"], u["end"], u["text"]) for i, u in enumerate(utts)]
    assert [(w.word, w.start, w.end) for w in got.words] == [(w["word"], w["start"], w["end"]) for u in utts for w in u["words"]]
    if name == "long":  # the long-form path: one segment per speech segment, every copy of the digits heard
        assert len(got.segments) >= REPEATS // 2
        assert got.text.split().count("nine") >= REPEATS * 0.9
    for w in got.words:
        assert 0 <= w.start <= w.end <= got.duration
    assert all(a.start <= b.start for a, b in zip(got.words, got.words[1:]))


@pytest.mark.parametrize("grains, segments, words", [
    (None, True, False), (["segment"], True, False), (["word"], False, True), (["word", "segment"], True, True),
])
def test_verbose_json_granularities(server, files, grains, segments, words):
    """As OpenAI: segments by default, words when asked for, both when both are asked for."""
    extra = {"timestamp_granularities": grains} if grains else {}
    got = transcribe(server, files["short"], response_format="verbose_json", **extra)
    assert (got.segments is not None) == segments and (got.words is not None) == words
    if segments:
        (s,) = got.segments
        assert s.text == DIGITS and s.temperature == 0.0 and s.no_speech_prob == 0.0 and len(s.tokens) == 5
        assert s.avg_logprob <= 0 and s.compression_ratio > 0 and s.seek == 0
    if words:
        assert [w.word for w in got.words] == DIGITS.split()


def test_mp3(server, files):
    if "mp3" not in files:
        pytest.skip("this libsndfile cannot write MP3 (it needs 1.1 or later with LAME)")
    assert transcribe(server, files["mp3"]).text == DIGITS
    got = transcribe(server, files["mp3"], response_format="verbose_json", timestamp_granularities=["word"])
    assert [w.word for w in got.words] == DIGITS.split()


def test_readable_text_per_request_and_by_default(model, server, files):
    """Fields itn / punctuate (extensions) make one request's text readable, in every format;
    asr serve --itn --punctuate makes it the default, which a request can turn off."""
    from asr.itn import TextOptions, inverse_normalize
    from asr.punctuation import default_punctuator

    # what the built-in tagger makes of the words (its marks are the model's business, not the server's)
    marked = default_punctuator().punctuate(DIGITS)
    readable = inverse_normalize(marked)  # punctuation first, then ITN
    assert marked.startswith("Four") and marked.endswith(".")
    assert readable == "40729."  # a digit string said word by word stays one number (no comma inside it)
    assert transcribe(server, files["short"]).text == DIGITS
    assert transcribe(server, files["short"], extra_body={"punctuate": "true", "itn": "true"}).text == readable
    srt = transcribe(server, files["short"], response_format="srt", extra_body={"punctuate": "true"})
    assert marked in srt
    got = transcribe(server, files["short"], response_format="verbose_json", timestamp_granularities=["word"],
                     extra_body={"punctuate": "1"})
    assert [w.word for w in got.words] == marked.split()
    with pytest.raises(openai.BadRequestError, match="punctuate 'yes': expected true or false"):
        transcribe(server, files["short"], extra_body={"punctuate": "yes"})

    with ServerThread(model, text=TextOptions(itn=True, punctuate=True)) as readable_server:
        assert transcribe(readable_server, files["short"]).text == readable
        assert transcribe(readable_server, files["short"], extra_body={"itn": "false"}).text == marked


def test_models(server):
    c = client(server)
    (m,) = c.models.list().data
    assert (m.id, m.object, m.owned_by) == ("digits-stream", "model", "asr-toolkit") and m.created > 0
    assert c.models.retrieve("digits-stream").id == "digits-stream"
    with pytest.raises(openai.NotFoundError) as e:
        c.models.retrieve("whisper-1")
    assert e.value.body["code"] == "model_not_found"


def test_prompt_and_keywords_are_hotwords(server, files):
    """The prompt's words the model can spell become hotwords (the others are left out); a
    keywords[] phrase it cannot spell is refused. language and temperature are accepted."""
    got = transcribe(server, files["short"], prompt="Digits: nine, four, and others.", language="en", temperature=0.0)
    assert got.text == DIGITS
    assert transcribe(server, files["short"], keywords=["seven two"]).text == DIGITS
    with pytest.raises(openai.BadRequestError) as e:
        transcribe(server, files["short"], keywords=["hello"])
    assert e.value.body["param"] == "keywords"


# --- refusals: status and OpenAI's error shape --------------------------------------------------------

def _error(exc) -> dict:
    body = exc.body
    assert set(body) == {"message", "type", "param", "code"}, body  # the SDK unwraps {"error": {...}}
    assert exc.response.json() == {"error": body}
    return body


@pytest.mark.parametrize("kw, param", [
    ({"response_format": "diarized_json"}, "response_format"),
    ({"response_format": "json", "timestamp_granularities": ["word"]}, "timestamp_granularities"),
    ({"response_format": "verbose_json", "timestamp_granularities": ["sentence"]}, "timestamp_granularities"),
    ({"temperature": 1.5}, "temperature"),
    ({"language": "en glish!"}, "language"),
])
def test_bad_parameter_400(server, files, kw, param):
    with pytest.raises(openai.BadRequestError) as e:
        transcribe(server, files["short"], **kw)
    body = _error(e.value)
    assert e.value.status_code == 400 and body["param"] == param and body["type"] == "invalid_request_error"
    assert param.split("_")[0] in body["message"]


def _http(method: str, url: str, fields=None, file=None, **kw) -> tuple[int, dict]:
    """(status, JSON body) of one request made without the SDK; ``fields``: a multipart form."""
    async def go():
        data = None
        if fields is not None:
            data = aiohttp.FormData(fields, default_to_multipart=True)
            if file is not None:
                data.add_field("file", open(file, "rb"), filename=os.path.basename(file))
        async with aiohttp.ClientSession() as s, s.request(method, url, data=data, **kw) as r:
            return r.status, await r.json()
    return asyncio.run(go())


def test_bad_request_400_without_the_sdk(server):
    url = server.http + "/v1/audio/transcriptions"
    status, body = _http("POST", url, fields={"model": "whisper-1"})
    assert status == 400 and body["error"]["param"] == "file"
    status, body = _http("POST", url, json={"model": "whisper-1"})
    assert status == 400 and "multipart/form-data" in body["error"]["message"]
    status, body = _http("POST", url, fields={"stream": "true"}, file=DIGITS_WAV)
    assert status == 400 and body["error"]["param"] == "stream"
    status, body = _http("POST", url, fields={"prompt": "x" * 70000}, file=DIGITS_WAV)
    assert status == 400 and body["error"]["param"] == "prompt"
    status, body = _http("GET", server.http + "/v1/audio/translations")
    assert status == 404 and body["error"]["code"] == "not_found"


def test_api_key_401(model, files):
    with ServerThread(model, api=ApiConfig(api_key="sesame")) as srv:
        with pytest.raises(openai.AuthenticationError) as e:
            client(srv, "wrong").models.list()
        assert e.value.status_code == 401 and _error(e.value)["code"] == "invalid_api_key"
        status, body = _http("GET", srv.http + "/v1/models")  # no Authorization header
        assert status == 401 and body["error"]["message"].startswith("no API key")
        with pytest.raises(openai.AuthenticationError):
            transcribe(srv, files["short"], key="wrong")
        assert transcribe(srv, files["short"], key="sesame").text == DIGITS
        assert client(srv, "sesame").models.list().data[0].id == "digits-stream"
        assert _http("GET", srv.http + "/health")[0] == 200  # only /v1 asks for the key


def test_too_large_413(model, files, tmp_path):
    """Over the limit by a little (found while the file streams in) and by far (its
    Content-Length says so before a byte is read): 413 either way, and the server goes on."""
    far = str(tmp_path / "far.wav")
    sf.write(far, np.zeros(8000 * 120, np.float32), 8000)  # 1.9 MB: over the limit plus the form's slack
    limit = os.path.getsize(DIGITS_WAV) - 1000
    with ServerThread(model, api=ApiConfig(max_upload_bytes=limit)) as srv:
        for path in (DIGITS_WAV, far):
            with pytest.raises(openai.APIStatusError) as e:
                transcribe(srv, path)
            assert e.value.status_code == 413 and _error(e.value)["code"] == "file_too_large"
        assert transcribe(srv, files["mp3"] if "mp3" in files else files["short"]).text == DIGITS


def test_not_audio_415(server, files, tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    for path, name in ((files["text"], "notes.txt"), (str(empty), "empty.wav")):
        with pytest.raises(openai.APIStatusError) as e:
            transcribe(server, path)
        body = _error(e.value)
        assert e.value.status_code == 415 and body["param"] == "file" and body["message"].startswith(name)
        assert "asr-upload" not in body["message"]  # the server's temporary path is not shown


def test_m4a_without_ffmpeg_415_names_the_extra(server, tmp_path, monkeypatch):
    """m4a, mp4 and webm are not what libsndfile reads: without PyAV (the ffmpeg extra) the 415
    says what to install."""
    import asr.server.openai_api as api

    monkeypatch.setattr(api, "has_ffmpeg", lambda: False)
    m4a = tmp_path / "voice.m4a"
    m4a.write_bytes(b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00M4A isomiso2" + bytes(200))
    with pytest.raises(openai.APIStatusError) as e:
        transcribe(server, str(m4a))
    body = _error(e.value)
    assert e.value.status_code == 415 and body["param"] == "file" and body["message"].startswith("voice.m4a")
    assert "m4a, mp4 and webm need FFmpeg on the server, pip install 'asr-toolkit[ffmpeg]'" in body["message"]


def _encode(src: str, dst: str, container: str, codec: str, rate: int) -> str:
    """``src`` written by FFmpeg (PyAV) as ``codec`` in ``container`` at ``rate`` Hz."""
    import av

    x, r = sf.read(src, dtype="int16")
    with av.open(dst, "w", format=container) as out:
        st = out.add_stream(codec, rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(x.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = r
        resampler = av.AudioResampler(format=st.format.name, layout="mono", rate=rate)
        for f in resampler.resample(frame) + resampler.resample(None):
            for packet in st.encode(f):
                out.mux(packet)
        for packet in st.encode(None):
            out.mux(packet)
    return dst


def test_m4a_and_webm_with_ffmpeg(server, model, tmp_path):
    """With the ffmpeg extra, AAC in m4a and Opus in webm (what browsers record) are decoded by
    FFmpeg and transcribed like the WAV; the decoded audio is bounded as a WAV upload is (413)."""
    pytest.importorskip("av", reason="the ffmpeg extra (PyAV): pip install '.[ffmpeg]'")
    m4a = _encode(DIGITS_WAV, str(tmp_path / "digits.m4a"), "mp4", "aac", 16000)
    webm = _encode(DIGITS_WAV, str(tmp_path / "digits.webm"), "webm", "libopus", 48000)
    for path in (m4a, webm):
        assert transcribe(server, path).text == DIGITS
        assert transcribe(server, path, response_format="verbose_json").duration == pytest.approx(2.6, abs=0.1)
    limit = 30_000  # bytes: the m4a fits, its 2.6 s do not (a 30 kB WAV at 8 kHz holds 1.875 s)
    assert os.path.getsize(m4a) < limit
    with ServerThread(model, api=ApiConfig(max_upload_bytes=limit)) as srv:
        with pytest.raises(openai.APIStatusError) as e:
            transcribe(srv, m4a)
    body = _error(e.value)
    assert e.value.status_code == 413 and body["code"] == "file_too_large"
    assert body["message"].startswith("digits.m4a decodes to more than 1.875 s of audio")


def _stalled_upload(port: int) -> socket.socket:
    """A request whose upload has begun and sends nothing more: it holds its place."""
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=B\r\n"
              b"Content-Length: 100000\r\n\r\n--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\nRIFF")
    return s


def test_busy_503(model, files):
    """One transcription at a time and --api-queue waiting: one more gets 503 with Retry-After;
    once a place is free, requests are served again. The live streams are not touched."""
    with ServerThread(model, api=ApiConfig(queue=1)) as srv:
        held = [_stalled_upload(srv.port) for _ in range(2)]
        try:
            until = time.monotonic() + 10
            while srv.metrics()["api"]["pending"] < 2 and time.monotonic() < until:
                time.sleep(0.05)
            with pytest.raises(openai.InternalServerError) as e:
                transcribe(srv, files["short"])
            assert e.value.status_code == 503 and _error(e.value)["code"] == "server_busy"
            assert e.value.response.headers["retry-after"] == "5"
            assert stream_texts(model, DIGITS_WAV) == [t for t in _stream(srv, DIGITS_WAV) if t]
        finally:
            for s in held:
                s.close()
        until = time.monotonic() + 10
        while srv.metrics()["api"]["pending"] and time.monotonic() < until:
            time.sleep(0.05)
        assert transcribe(srv, files["short"]).text == DIGITS
        m = srv.metrics()["api"]
        assert m["refused_busy"] == 1 and m["transcribed"] == 1 and m["pending"] == 0


def test_stalled_upload_408(model):
    """An upload that sends nothing for --idle-timeout is answered 408 and its place freed."""
    from asr.server.app import ServerConfig

    with ServerThread(model, ServerConfig(idle_timeout_s=0.5)) as srv:
        s = _stalled_upload(srv.port)
        try:
            s.settimeout(10)
            head = s.recv(65536).decode()
        finally:
            s.close()
        assert head.startswith("HTTP/1.1 408") and '"code": "timeout"' in head, head
        assert srv.metrics()["api"]["pending"] == 0


def _stream(srv, path):
    from asr.server.client import stream_file

    return asyncio.run(stream_file(srv.url, path)).texts


def test_live_streams_go_on_during_a_long_transcription(model, files, written):
    """While the long file is transcribed, a websocket stream gets its exact transcript."""
    with ServerThread(model) as srv:
        got = {}
        t = threading.Thread(target=lambda: got.update(r=transcribe(srv, files["long"], response_format="verbose_json")))
        t.start()
        until = time.monotonic() + 20
        while not srv.metrics()["api"]["pending"] and time.monotonic() < until:
            time.sleep(0.01)
        busy = srv.metrics()["api"]["pending"]
        texts = _stream(srv, DIGITS_WAV)
        t.join(120)
    assert busy == 1  # the stream ran while the transcription was under way
    assert [x for x in texts if x] == stream_texts(model, DIGITS_WAV)
    assert got["r"].text == json.loads(written["long"]["json"])["text"]


# --- asr serve: workers, the key rule ---------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_every_worker_serves_the_api(files):
    """--workers 2: whichever process gets the connection transcribes (a new connection each time)."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "asr", "serve", "--workers", "2", "--port", str(port)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": ROOT}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        pids = set()
        until = time.monotonic() + 60
        while len(pids) < 2 and time.monotonic() < until:
            try:
                pids.add(_http("GET", f"http://127.0.0.1:{port}/health")[1]["worker"]["pid"])
            except (aiohttp.ClientError, KeyError):
                time.sleep(0.2)
        assert len(pids) == 2
        for _ in range(6):
            c = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0, timeout=60)
            with open(files["short"], "rb") as f:
                assert c.audio.transcriptions.create(file=f, model="whisper-1", response_format="text") == DIGITS + "\n"
            c.close()
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.mark.parametrize("argv, env, result", [
    (["--host", "0.0.0.0"], {}, "--host 0.0.0.0 serves other machines"),
    (["--host", "192.168.1.5"], {}, "serves other machines"),
    (["--host", "0.0.0.0", "--no-api-key"], {}, None),
    (["--host", "0.0.0.0"], {"ASR_API_KEY": "k1"}, "k1"),
    (["--host", "::", "--api-key", "k2"], {"ASR_API_KEY": "k1"}, "k2"),
    (["--host", "localhost"], {}, None),
    (["--host", "::1"], {}, None),
    (["--host", "127.0.0.2"], {}, None),
    (["--api-key", "k2", "--no-api-key"], {}, "--api-key gives a key and --no-api-key"),
    (["--no-api-key"], {"ASR_API_KEY": "k1"}, "$ASR_API_KEY gives a key"),
])
def test_a_key_is_needed_off_loopback(monkeypatch, argv, env, result):
    from asr.cli import build_parser
    from asr.cli.serve import api_config

    monkeypatch.delenv("ASR_API_KEY", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    args = build_parser().parse_args(["serve", *argv])
    if result is None or result.startswith("k"):
        assert api_config(args).api_key == result
    else:
        with pytest.raises(ValueError, match=result.replace("$", r"\$")):
            api_config(args)


def test_serve_refuses_to_start_open_to_all():
    out = subprocess.run([sys.executable, "-m", "asr", "serve", "--host", "0.0.0.0", "--port", "0"], capture_output=True,
                         text=True, timeout=60, cwd=ROOT, env={k: v for k, v in {**os.environ, "PYTHONPATH": ROOT}.items()
                                                                if k != "ASR_API_KEY"})
    assert out.returncode == 2 and "--no-api-key" in out.stderr and "Traceback" not in out.stderr, out.stderr
