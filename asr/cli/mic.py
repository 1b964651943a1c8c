"""``asr mic``: live transcription from the default microphone with an exported streaming model
(no server), and :class:`Microphone`, the capture that ``asr client --mic`` shares.

Capture is sounddevice (PortAudio), an optional dependency: ``pip install 'asr-toolkit[mic]'``
(and the PortAudio library, e.g. Debian's ``libportaudio2``). Blocks of int16 samples are
taken at the device's own rate; the stream resamples them.
"""

from __future__ import annotations

import asyncio
import queue
import sys
import time
from typing import Optional

import numpy as np

__all__ = ["add_parser", "run", "Microphone", "MicrophoneError", "open_input_stream", "transcribe_microphone"]


class MicrophoneError(RuntimeError):
    pass


def _sounddevice():
    try:
        import sounddevice
    except ImportError:
        raise MicrophoneError("microphone capture needs the sounddevice package: pip install 'asr-toolkit[mic]' "
                              "(or pip install sounddevice)") from None
    except OSError as exc:  # sounddevice is there but PortAudio is not
        raise MicrophoneError(f"sounddevice cannot load PortAudio ({exc}): install it, e.g. apt-get install libportaudio2") from None
    return sounddevice


def open_input_stream(**kw):
    """``sounddevice.InputStream(**kw)``: what opens the device (tests put a fake here)."""
    return _sounddevice().InputStream(**kw)


def default_input_rate(device=None) -> int:
    sd = _sounddevice()
    try:
        return int(sd.query_devices(device, "input")["default_samplerate"])
    except Exception as exc:  # no device, a bad index: PortAudio's own errors
        raise MicrophoneError(f"no usable input device ({exc})") from None


class Microphone:
    """Mono int16 blocks from an input device: iterate (blocking) or ``async for`` them.

    ``rate``: capture rate (default: the device's). ``block_s``: seconds per block.
    ``seconds``: stop after this much audio (default: until :meth:`stop` or Ctrl-C)."""

    def __init__(self, rate: Optional[int] = None, block_s: float = 0.1, device=None, seconds: Optional[float] = None):
        self.rate = int(rate) if rate else default_input_rate(device)
        self.block = max(1, int(round(self.rate * block_s)))
        self.seconds = seconds
        self._device = device
        self._queue: "queue.Queue" = queue.Queue()
        self._stream = None
        self.overflows = 0
        self.captured = 0  # samples

    def _callback(self, indata, frames, time_info, status) -> None:  # PortAudio's thread
        if status:
            self.overflows += 1
        self._queue.put(np.array(indata[:, 0] if np.ndim(indata) == 2 else indata, dtype=np.int16))

    def start(self) -> "Microphone":
        try:
            self._stream = open_input_stream(samplerate=self.rate, channels=1, dtype="int16", blocksize=self.block,
                                             device=self._device, callback=self._callback)
            self._stream.start()
        except MicrophoneError:
            raise
        except Exception as exc:
            raise MicrophoneError(f"cannot open the microphone ({type(exc).__name__}: {exc})") from None
        return self

    def stop(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            stream.stop()
            stream.close()
        self._queue.put(None)

    def _done(self) -> bool:
        return self.seconds is not None and self.captured >= self.seconds * self.rate

    def _take(self, block):
        if block is None or self._done():
            return None
        if self.seconds is not None:
            block = block[: int(self.seconds * self.rate) - self.captured]
        self.captured += block.size
        return block

    def __iter__(self):
        if self._stream is None:
            self.start()
        try:
            while not self._done():
                block = self._take(self._queue.get())
                if block is None:
                    return
                yield block
        finally:
            self.stop()

    async def __aiter__(self):
        if self._stream is None:
            self.start()
        loop = asyncio.get_running_loop()
        try:
            while not self._done():
                block = self._take(await loop.run_in_executor(None, self._queue.get))
                if block is None:
                    return
                yield block
        finally:
            self.stop()


def add_parser(sub) -> None:
    from asr.cli.options import add_decoding_args, add_endpoint_args, add_format_arg, positive

    sp = sub.add_parser("mic", help="live transcription from the microphone with a streaming ONNX model (needs sounddevice)")
    sp.add_argument("--model", help="streaming ONNX model (`asr export --streaming`; default: the built-in English digits model)")
    sp.add_argument("--device", help="input device (index or name; default: the system's default input)")
    sp.add_argument("--sample-rate", type=positive(int), help="capture rate, Hz (default: the device's); the stream resamples")
    sp.add_argument("--piece-ms", type=positive(float), default=100.0, help="audio per captured piece, ms (default 100)")
    sp.add_argument("--seconds", type=positive(float), help="stop after this much audio (default: Ctrl-C)")
    add_format_arg(sp, "'start-end<TAB>text' a finished utterance", "one JSON object a finished utterance")
    sp.add_argument("--threads", type=positive(int), default=1, help="onnxruntime threads (default 1)")
    add_endpoint_args(sp)
    add_decoding_args(sp, alternatives=False)
    sp.set_defaults(func=run)


def transcribe_microphone(rec, mic: Microphone, as_json: bool = False, out=None, err=None) -> int:
    """Decode ``mic`` live with the OnlineRecognizer ``rec``: partial text on ``err`` (one
    rewritten line), each finished utterance on ``out``. Returns the number of utterances."""
    import json

    out, err = out or sys.stdout, err or sys.stderr
    stream = rec.create_stream("mic")
    printed, last = 0, ""
    tty = err.isatty() if hasattr(err, "isatty") else False

    def report():
        nonlocal printed, last
        result = rec.get_result(stream)
        finals = [u for u in result.utterances if u.final]
        for u in finals[printed:]:
            if tty and last:
                err.write("\r\033[K")
            line = json.dumps({"text": u.text, "start": u.start, "end": u.end, "words": [w.__dict__ for w in u.words]}) \
                if as_json else f"{u.start:.2f}-{u.end:.2f}\t{u.text}"
            print(line, file=out, flush=True)
            last = ""
        printed = len(finals)
        partial = result.utterances[-1].text if result.utterances and not result.utterances[-1].final else ""
        if partial != last:
            err.write(("\r\033[K" if tty else "") + f"partial\t{partial}" + ("" if tty else "\n"))
            err.flush()
            last = partial

    try:
        for block in mic:
            stream.accept_waveform(mic.rate, block)
            while rec.is_ready(stream):
                rec.decode_stream(stream)
            report()
    except KeyboardInterrupt:
        mic.stop()
    stream.input_finished()
    while rec.is_ready(stream):
        rec.decode_stream(stream)
    report()
    if tty and last:
        err.write("\n")
    if mic.overflows:
        print(f"warning: {mic.overflows} capture block(s) overflowed (audio lost): is the machine too busy?", file=err)
    return printed


def run(args) -> int:
    from asr.cli.options import decoding_options, endpoint_config
    from asr.runtime import OnlineRecognizer
    from asr.runtime.builtin import builtin_model

    (options,) = decoding_options(args)
    rec = OnlineRecognizer(args.model or builtin_model(streaming=True), num_threads=args.threads, endpoint=endpoint_config(args),
                           decoding=options)
    device = int(args.device) if args.device and args.device.isdigit() else args.device
    try:
        mic = Microphone(args.sample_rate, args.piece_ms / 1000, device, args.seconds).start()
    except MicrophoneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"listening at {mic.rate} Hz (Ctrl-C to stop)", file=sys.stderr, flush=True)
    t0 = time.monotonic()
    n = transcribe_microphone(rec, mic, args.format == "json")
    print(f"{n} utterance(s), {mic.captured / mic.rate:.1f} s of audio in {time.monotonic() - t0:.1f} s", file=sys.stderr)
    return 0
