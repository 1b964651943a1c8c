"""The OpenAI-compatible audio API of ``asr serve``: ``POST /v1/audio/transcriptions`` and
``GET /v1/models``, what Open WebUI, AnythingLLM and scripts using the ``openai`` package speak.

A request is a multipart upload: the ``file`` part is streamed to a temporary file (at most
``max_upload_bytes``: 413 beyond), the form fields are checked (400 naming the field), the file's
header is read (415 when it is not audio), and the file is transcribed by one
:class:`~asr.runtime.offline.OfflineRecognizer` on the server's own model: files over 30 s take
the long-form path (voice activity segments, bounded memory) exactly as ``asr transcribe`` does,
and the reply is written by its writers (:mod:`asr.writers`). One transcription runs at a time
per server process, in a thread of its own at a lower CPU priority than the live streams'
decoding loops; ``queue`` more may wait, and one more is refused (503, Retry-After). Errors have
OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``. With an API key, every
``/v1`` request needs ``Authorization: Bearer KEY`` (401 without). docs/serving.md describes the
API and where it differs from OpenAI's.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hmac
import json
import logging
import math
import os
import re
import shutil
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Optional

from aiohttp import web

from asr.audio import FFMPEG_EXTRA, AudioBlocks, AudioError, AudioTooLong, decode_with_ffmpeg, has_ffmpeg
from asr.decoding.result import Result, Utterance
from asr.itn import TextOptions
from asr.runtime.offline import OfflineRecognizer
from asr.runtime.online import OnlineRecognizer, StreamingBackend
from asr.text import normalize_text
from asr.writers import get_writers

__all__ = ["ApiConfig", "OpenAIApi", "ApiError", "RESPONSE_FORMATS", "OWNER"]

log = logging.getLogger("asr.server")

RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
GRANULARITIES = ("word", "segment")
OWNER = "asr-toolkit"  # /v1/models: owned_by
LANGUAGE = "english"  # verbose_json's "language": the toolkit's models transcribe English
MAX_FIELD_BYTES = 64 << 10  # one form field other than the file
FORM_SLACK_BYTES = 1 << 20  # a request body may exceed the upload limit by this much (the other fields, part headers)
MAX_HOTWORDS = 224  # keywords[] phrases, and prompt words kept (its last ones; Whisper keeps a prompt's last 224 tokens)
DECODE_NICE = 10  # the transcription thread's CPU priority, below the live streams' (Linux: per thread)
RETRY_AFTER_S = 5  # Retry-After of a 503
_LANGUAGE_RE = re.compile(r"^[A-Za-z][A-Za-z_-]{0,31}$")
_EXT_RE = re.compile(r"^\.[A-Za-z0-9]{1,5}$")


@dataclass(frozen=True)
class ApiConfig:
    api_key: Optional[str] = None  # None: no key asked for (asr serve refuses that off loopback unless --no-api-key)
    max_upload_bytes: int = 200 << 20  # the file part of one request (--max-upload-mb)
    queue: int = 4  # requests that may wait (uploading or queued) beside the one being transcribed, per process

    def __post_init__(self):
        bad = [] if isinstance(self.max_upload_bytes, int) and self.max_upload_bytes > 0 else [
            f"max_upload_bytes={self.max_upload_bytes!r} (> 0)"]
        if not (isinstance(self.queue, int) and self.queue >= 0):
            bad.append(f"queue={self.queue!r} (>= 0)")
        if self.api_key is not None and not (isinstance(self.api_key, str) and self.api_key.strip() == self.api_key != ""):
            bad.append("api_key (a non-empty string without surrounding spaces)")
        if bad:
            raise ValueError(f"invalid ApiConfig: {', '.join(bad)}")


class ApiError(Exception):
    """A request refused: the HTTP status and OpenAI's error object."""

    TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
             405: "invalid_request_error", 408: "invalid_request_error", 413: "invalid_request_error",
             415: "invalid_request_error", 500: "server_error", 503: "server_error"}

    def __init__(self, status: int, message: str, param: Optional[str] = None, code: Optional[str] = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    def response(self) -> web.Response:
        body = {"error": {"message": self.message, "type": self.TYPES.get(self.status, "invalid_request_error"),
                          "param": self.param, "code": self.code}}
        headers = {"Retry-After": str(RETRY_AFTER_S)} if self.status == 503 else None
        response = web.json_response(body, status=self.status, headers=headers)
        if self.status == 408:  # what is left of a stalled upload is not read: the connection closes
            response.force_close()
        return response


class _Cancelled(Exception):
    """The transcription was given up (the server is stopping, or the client left)."""


@dataclass
class _Request:
    """A checked transcription request."""

    path: str  # the uploaded file
    filename: str  # as the client named it (for messages)
    response_format: str
    granularities: tuple
    hotwords: Optional[list]
    text: TextOptions = TextOptions()  # itn / punctuate for this request


class OpenAIApi:
    """The ``/v1`` routes of one server process: over the live recognizer's model (one ONNX
    session shared with the streams), or over an :class:`OfflineRecognizer` of its own (an
    offline graph: ``asr serve --model model.onnx``)."""

    def __init__(self, recognizer: "OnlineRecognizer | OfflineRecognizer", config: ApiConfig = ApiConfig(),
                 idle_timeout_s: float = 30.0, text: TextOptions = TextOptions()):
        self.cfg = config
        self.text = text  # the server's --itn / --punctuate: each request's default (fields itn, punctuate)
        self.idle_timeout_s = idle_timeout_s  # an upload that sends nothing this long is dropped (408): the server's --idle-timeout
        if isinstance(recognizer, OnlineRecognizer):  # the live streams' model and options, whole files through its graph
            recognizer = OfflineRecognizer(StreamingBackend(recognizer.model), recognizer.decoder.options)
        self.rec = recognizer
        path = recognizer.backend.path
        self.model_id = model_id(path)
        try:
            self.created = int(os.path.getmtime(path))
        except OSError:
            self.created = 0
        self.pending = 0  # requests admitted and not yet answered (uploading, waiting or being transcribed)
        self.slot = asyncio.Semaphore(1)  # one transcription at a time; waiters in arrival order
        self.pool: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self.jobs: set = set()  # cancel events of the transcriptions running
        self.stopping = False  # the server is shutting down: no transcription starts
        self.counts = {"requests": 0, "transcribed": 0, "refused_busy": 0, "cancelled": 0, "client_errors": 0,
                       "server_errors": 0, "audio_s": 0.0, "decode_s": 0.0}

    # lifecycle ------------------------------------------------------------------------------
    def add_routes(self, app: web.Application) -> None:
        app.add_routes([
            web.post("/v1/audio/transcriptions", self._guarded(self.transcriptions)),
            web.get("/v1/models", self._guarded(self.models)),
            web.get("/v1/models/{model}", self._guarded(self.model)),
            web.route("*", "/v1/{tail:.*}", self._guarded(self.unknown)),
        ])
        app.on_startup.append(self.start)
        app.on_shutdown.append(self.shutdown)
        app.on_cleanup.append(self.stop)

    async def start(self, app) -> None:
        self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="asr-api", initializer=_lower_priority)

    async def shutdown(self, app) -> None:
        self.stopping = True
        for job in list(self.jobs):
            job.set()

    async def stop(self, app) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)

    def metrics(self) -> dict:
        return {"pending": self.pending, **{k: (round(v, 2) if isinstance(v, float) else v) for k, v in self.counts.items()}}

    # HTTP -------------------------------------------------------------------------------------
    def _guarded(self, handler):
        """The handler behind the API-key check, its ApiError turned into OpenAI's error reply."""
        async def guarded(request: web.Request):
            try:
                self._authorize(request)
                return await handler(request)
            except ApiError as exc:
                kind = {"server_busy": "refused_busy", "cancelled": "cancelled"}.get(
                    exc.code, "server_errors" if exc.status >= 500 else "client_errors")
                self.counts[kind] += 1
                return exc.response()
        return guarded

    def _authorize(self, request: web.Request) -> None:
        key = self.cfg.api_key
        if key is None:
            return
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), key.encode()):
            what = "wrong API key" if scheme.lower() == "bearer" and given.strip() else "no API key"
            raise ApiError(401, f"{what}: send the server's key as 'Authorization: Bearer KEY' "
                                "(asr serve --api-key or ASR_API_KEY)", code="invalid_api_key")

    async def models(self, request: web.Request):
        return web.json_response({"object": "list", "data": [self._model_object()]})

    async def model(self, request: web.Request):
        name = request.match_info["model"]
        if name != self.model_id:
            raise ApiError(404, f"model {name!r} does not exist: this server has one, {self.model_id!r}", "model",
                           "model_not_found")
        return web.json_response(self._model_object())

    def _model_object(self) -> dict:
        return {"id": self.model_id, "object": "model", "created": self.created, "owned_by": OWNER}

    async def unknown(self, request: web.Request):
        raise ApiError(404, f"{request.method} {request.path} is not served here: this server answers "
                            "POST /v1/audio/transcriptions, GET /v1/models", code="not_found")

    async def transcriptions(self, request: web.Request):
        self.counts["requests"] += 1
        if self.pending > self.cfg.queue:
            raise ApiError(503, f"server busy: this process transcribes one request at a time and {self.cfg.queue} may "
                                f"wait (--api-queue), all taken; try again later", code="server_busy")
        self.pending += 1
        tmpdir = tempfile.mkdtemp(prefix="asr-upload-")
        try:
            try:
                form = await self._read_form(request, tmpdir)
            except ApiError as exc:
                if exc.status == 408:  # the rest of a stalled upload is not waited for (aiohttp would, 10 s): closed
                    request.content.feed_eof()
                raise
            req = self._check(*form)
            await asyncio.to_thread(self._probe, req)
            async with self.slot:
                if self.stopping:
                    raise ApiError(503, "the server is shutting down", code="cancelled")
                if _gone(request):  # the client left while its request waited
                    raise ApiError(400, "the client closed the connection", code="client_closed")
                cancel = threading.Event()
                self.jobs.add(cancel)
                watch = asyncio.get_running_loop().create_task(_watch_client(request, cancel))
                t0 = time.monotonic()
                try:
                    result, body, ctype = await asyncio.get_running_loop().run_in_executor(
                        self.pool, self._transcribe, req, tmpdir, cancel)
                finally:
                    watch.cancel()
                    self.jobs.discard(cancel)
            self.counts["transcribed"] += 1
            self.counts["audio_s"] += result.duration
            self.counts["decode_s"] += time.monotonic() - t0
            return web.Response(body=body.encode("utf-8"), content_type=ctype, charset="utf-8")
        finally:
            self.pending -= 1
            shutil.rmtree(tmpdir, ignore_errors=True)

    # the request --------------------------------------------------------------------------------
    async def _read_form(self, request: web.Request, tmpdir: str) -> tuple[dict, dict, Optional[str], str]:
        """The multipart form: (fields, list fields ``name[]``, the file's temporary path, the
        client's file name). The file is written as it arrives, at most ``max_upload_bytes``."""
        cfg = self.cfg
        if request.content_type != "multipart/form-data":
            raise ApiError(400, f"expected a multipart/form-data upload (a 'file' part and form fields), got "
                                f"{request.content_type or 'no body'}", code="invalid_request")
        limit = cfg.max_upload_bytes
        if request.content_length is not None and request.content_length > limit + FORM_SLACK_BYTES:
            raise ApiError(413, _too_large(limit), "file", "file_too_large")
        try:
            reader = await request.multipart()
        except (ValueError, AssertionError) as exc:
            raise ApiError(400, f"malformed multipart body: {exc}", code="invalid_request") from None
        fields: dict = {}
        lists: dict = {}
        path, filename = None, "file"
        while True:
            part = await self._timed(reader.next())
            if part is None:
                break
            if not hasattr(part, "read_chunk"):
                raise ApiError(400, "nested multipart parts are not accepted", code="invalid_request")
            name = part.name or ""
            if name == "file":
                if path is not None:
                    raise ApiError(400, "more than one 'file' part: send one audio file per request", "file")
                filename = part.filename or "file"
                ext = os.path.splitext(filename)[1]
                path = os.path.join(tmpdir, "upload" + (ext.lower() if _EXT_RE.match(ext) else ""))
                size = 0
                with open(path, "wb") as f:
                    while True:
                        chunk = await self._timed(part.read_chunk(1 << 16))
                        if not chunk:
                            break
                        size += len(chunk)
                        if size > limit:
                            raise ApiError(413, _too_large(limit), "file", "file_too_large")
                        f.write(chunk)
                continue
            data = bytearray()
            while True:
                chunk = await self._timed(part.read_chunk(1 << 14))
                if not chunk:
                    break
                data += chunk
                if len(data) > MAX_FIELD_BYTES:
                    raise ApiError(400, f"form field {name!r} is longer than {MAX_FIELD_BYTES} bytes", name)
            try:
                value = data.decode("utf-8")
            except UnicodeDecodeError:
                raise ApiError(400, f"form field {name!r} is not UTF-8 text", name) from None
            if name.endswith("[]"):
                lists.setdefault(name[:-2], []).append(value)
            else:
                fields[name] = value
        return fields, lists, path, filename

    async def _timed(self, coro):
        try:
            return await asyncio.wait_for(coro, self.idle_timeout_s)
        except asyncio.TimeoutError:
            raise ApiError(408, f"the upload sent nothing for {self.idle_timeout_s:g} s (--idle-timeout)", code="timeout") from None
        except ValueError as exc:  # aiohttp: a malformed part
            raise ApiError(400, f"malformed multipart body: {exc}", code="invalid_request") from None
        except ConnectionError:
            raise ApiError(400, "the client closed the connection during the upload", code="client_closed") from None

    def _check(self, fields: dict, lists: dict, path: Optional[str], filename: str) -> _Request:
        """The form's fields checked (400 naming the field); ``model``, ``language`` and
        ``temperature`` are accepted and do not change the decoding (docs/serving.md)."""
        if path is None:
            raise ApiError(400, "no 'file' part: send the audio as the multipart field 'file'", "file")
        fmt = fields.get("response_format", "json").strip() or "json"
        if fmt not in RESPONSE_FORMATS:
            raise ApiError(400, f"response_format {fmt!r} is not served: one of {', '.join(RESPONSE_FORMATS)}",
                           "response_format", "invalid_value")
        grains = lists.get("timestamp_granularities", []) + [g for g in fields.get("timestamp_granularities", "").split(",") if g]
        grains = [g.strip() for g in grains]
        for g in grains:
            if g not in GRANULARITIES:
                raise ApiError(400, f"timestamp_granularities[] {g!r}: expected 'word' and/or 'segment'",
                               "timestamp_granularities", "invalid_value")
        if "word" in grains and fmt != "verbose_json":
            raise ApiError(400, "timestamp_granularities[] 'word' needs response_format 'verbose_json'",
                           "timestamp_granularities", "invalid_value")
        language = fields.get("language", "").strip()
        if language and not _LANGUAGE_RE.match(language):
            raise ApiError(400, f"language {language!r}: expected an ISO-639-1 code such as 'en'", "language", "invalid_value")
        if "temperature" in fields:
            try:
                t = float(fields["temperature"])
            except ValueError:
                t = math.nan
            if not 0.0 <= t <= 1.0:
                raise ApiError(400, f"temperature {fields['temperature']!r}: expected a number from 0 to 1",
                               "temperature", "invalid_value")
        if fields.get("stream", "false").strip().lower() not in ("false", "0", ""):
            raise ApiError(400, "stream: streamed transcription events are not served; leave stream false "
                                "(the websocket at /ws streams)", "stream", "unsupported_value")
        prompt = [w for w in dict.fromkeys(normalize_text(fields.get("prompt", "")).split()) if self._unspellable(w) is None]
        keywords = list(dict.fromkeys(p for p in (normalize_text(k) for k in lists.get("keywords", [])) if p))
        for phrase in keywords:
            why = self._unspellable(phrase)
            if why is not None:
                raise ApiError(400, f"keywords: {phrase!r}: {why}", "keywords", "invalid_value")
        if len(keywords) > MAX_HOTWORDS:
            raise ApiError(400, f"keywords: {len(keywords)} phrases, at most {MAX_HOTWORDS}", "keywords", "invalid_value")
        hotwords = list(dict.fromkeys(keywords + prompt[-MAX_HOTWORDS:]))  # as Whisper, a long prompt's last words
        switches = {}
        for name in ("itn", "punctuate"):  # extensions: readable text for this request (default: the server's)
            if name in fields:
                value = fields[name].strip().lower()
                if value not in ("true", "false", "1", "0"):
                    raise ApiError(400, f"{name} {fields[name]!r}: expected true or false", name, "invalid_value")
                switches[name] = value in ("true", "1")
        text = self.text
        if switches:
            punctuate = switches.get("punctuate", text.punctuate)
            text = TextOptions(itn=switches.get("itn", text.itn), punctuate=punctuate,
                               punctuation_model=text.punctuation_model if punctuate else None)
        return _Request(path, filename, fmt, tuple(grains or ["segment"]), hotwords or None, text)

    def _unspellable(self, phrase: str) -> Optional[str]:
        """Why the model cannot spell ``phrase`` (a character outside its vocabulary, or a word its
        closed word list does not hold), or None."""
        tok = self.rec.tokenizer
        try:
            ids = tok.encode(phrase)
        except ValueError as exc:
            return str(exc)
        unk = getattr(tok, "unknown_id", None)
        if unk is not None and unk in ids:
            return "a word the model's vocabulary does not hold"
        return None if ids else "no token"

    def _probe(self, req: _Request) -> None:
        """415 unless the file opens as audio (its header: format, rate, length). What libsndfile
        does not read (m4a, mp4, webm, ...) is decoded by FFmpeg when PyAV (the ``ffmpeg`` extra)
        is installed, into a WAV at the model's rate that the request goes on with; at most as
        much audio as a WAV of the upload limit holds (413 beyond)."""
        try:
            AudioBlocks(req.path, warn=False)
            return
        except AudioError as exc:
            if not has_ffmpeg():
                raise ApiError(415, f"{req.filename}: {_reason(exc, req)}; send audio in a format libsndfile reads "
                                    f"(wav, flac, ogg/vorbis/opus, mp3, ...): m4a, mp4 and webm need FFmpeg on the server, "
                                    f"pip install 'asr-toolkit[{FFMPEG_EXTRA}]'", "file", "unsupported_file") from None
        rate = self.rec.backend.frontend.sample_rate
        wav = os.path.join(os.path.dirname(req.path), "decoded.wav")
        max_s = self.cfg.max_upload_bytes / (2 * rate)
        try:
            decode_with_ffmpeg(req.path, wav, rate, max_s)
        except AudioTooLong:
            raise ApiError(413, f"{req.filename} decodes to more than {max_s:g} s of audio, as much as a "
                                f"{self.cfg.max_upload_bytes / 2**20:g} MiB WAV at {rate} Hz holds, this server's limit "
                                "(asr serve --max-upload-mb)", "file", "file_too_large") from None
        except AudioError as exc:
            raise ApiError(415, f"{req.filename}: not audio that libsndfile or FFmpeg reads ({_reason(exc, req)})", "file",
                           "unsupported_file") from None
        req.path = wav

    # the transcription (in the API's thread) ----------------------------------------------------
    def _transcribe(self, req: _Request, tmpdir: str, cancel: threading.Event) -> tuple[Result, str, str]:
        def progress(seconds: float) -> None:
            if cancel.is_set():
                raise _Cancelled()

        try:
            result = req.text.apply(self.rec.transcribe(req.path, hotwords=req.hotwords, progress=progress))
        except _Cancelled:
            raise ApiError(503, "the transcription was stopped: the server is shutting down or the client left",
                           code="cancelled") from None
        except AudioError as exc:
            raise ApiError(415, f"{req.filename}: {_reason(exc, req)}", "file", "unsupported_file") from None
        except Exception as exc:  # noqa: BLE001 - the client gets a 500, the log the traceback
            log.exception("transcription of %s failed", req.filename)
            raise ApiError(500, f"transcription failed: {type(exc).__name__}: {exc}", code="internal_error") from None
        fmt = req.response_format
        if fmt == "json":
            return result, json.dumps({"text": result.text, "usage": _usage(result)}), "application/json"
        if fmt == "verbose_json":
            return result, json.dumps(self._verbose(result, req.granularities)), "application/json"
        (writer,) = get_writers({"text": "txt"}.get(fmt, fmt), tmpdir)
        with open(writer.write(result, stem="transcript"), encoding="utf-8") as f:
            text = f.read()
        return result, text, "text/vtt" if fmt == "vtt" else "text/plain"

    def _verbose(self, result: Result, granularities: tuple) -> dict:
        out = {"task": "transcribe", "language": LANGUAGE, "duration": result.duration, "text": result.text}
        utts = [u for u in result.utterances if u.text]
        if "segment" in granularities:
            out["segments"] = [self._segment(i, u) for i, u in enumerate(utts)]
        if "word" in granularities:
            out["words"] = [_word(w) for u in utts for w in u.words]
        out["usage"] = _usage(result)
        return out

    def _segment(self, i: int, utt: Utterance) -> dict:
        """An utterance as one of Whisper's segments: its times and text; ``tokens`` are the
        model's own token ids, ``avg_logprob`` the mean log confidence of its words,
        ``compression_ratio`` as Whisper computes it, ``no_speech_prob`` 0 (silence has no
        segment: the voice activity detector dropped it)."""
        try:
            tokens = [int(t) for t in self.rec.tokenizer.encode(utt.text)]
        except ValueError:
            tokens = []
        confs = [w.confidence for w in utt.words]
        avg = sum(math.log(max(c, 1e-10)) for c in confs) / len(confs) if confs and None not in confs else 0.0
        raw = utt.text.encode("utf-8")
        return {"id": i, "seek": int(round(utt.start * 100)), "start": utt.start, "end": utt.end, "text": utt.text,
                "tokens": tokens, "temperature": 0.0, "avg_logprob": round(avg, 4),
                "compression_ratio": round(len(raw) / len(zlib.compress(raw)), 4) if raw else 0.0, "no_speech_prob": 0.0}


def model_id(path: str) -> str:
    """The model's name in /v1/models: its file name without extension, after its folder's name
    when the file has one of the names recipes export to (``exp/fsdd/stream.onnx`` -> ``fsdd-stream``;
    the built-in model: ``digits-stream``)."""
    stem = os.path.splitext(os.path.basename(path))[0]
    folder = os.path.basename(os.path.dirname(os.path.abspath(path)))
    return f"{folder}-{stem}" if stem in ("stream", "model") and folder else stem


def _word(w) -> dict:
    d = {"word": w.word, "start": w.start, "end": w.end}
    if w.confidence is not None:
        d["probability"] = round(w.confidence, 4)  # an extension (faster-whisper's servers name it so)
    return d


def _reason(exc: AudioError, req: _Request) -> str:
    """Why the file is not audio, without the server's temporary path (libsndfile names the open file)."""
    reason = re.sub(r"<_io\.\w+ name=[^>]*>", "the file", exc.reason)
    return reason.replace(req.path, "the file").replace("Error opening the file: ", "")


def _usage(result: Result) -> dict:
    return {"type": "duration", "seconds": result.duration}


def _too_large(limit: int) -> str:
    return f"the file is larger than {limit / 2**20:g} MiB, this server's limit (asr serve --max-upload-mb)"


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def _watch_client(request: web.Request, cancel: threading.Event) -> None:
    """Give up the transcription when its client leaves (checked every half second)."""
    while not _gone(request):
        await asyncio.sleep(0.5)
    cancel.set()


def _lower_priority() -> None:
    """The API thread yields the CPU to the live streams (Linux: a thread has its own nice value)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), DECODE_NICE)
    except (AttributeError, OSError):
        pass
