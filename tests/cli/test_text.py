"""`asr text itn`: one line out per line in, flushed as it goes; empty, long, non-UTF-8 and
control-character lines pass through without a crash or a hang."""

import io
import json
import os
import subprocess
import sys
import threading
import time

from asr import cli
from asr.cli import text as text_cli
from asr.itn import inverse_normalize

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))


def _filter(data: bytes) -> bytes:
    out = io.BytesIO()
    text_cli.filter_lines(inverse_normalize, io.BytesIO(data), out)
    return out.getvalue()


def test_one_line_out_per_line_in():
    data = (b"it costs five dollars and twenty cents\n\none of them\r\n"
            b"bad \xff\xfe bytes twenty one\n\x1b[31mtwenty\x1b[0m \x00 \x07seven p m\n\xe4\xba\x8c\xe5\x8d\x81 twenty\nno newline ten")
    out = _filter(data)
    assert out.split(b"\n") == [b"it costs $5.20", b"", b"one of them\r", b"bad \xff\xfe bytes 21",
                                b"\x1b[31mtwenty\x1b[0m \x00 \x077 p.m.", "二十 20".encode(), b"no newline 10", b""]
    assert _filter(b"") == b""
    assert _filter(b"\n\n\n") == b"\n\n\n"


def test_a_line_too_long_passes_through_unchanged(monkeypatch):
    monkeypatch.setattr(text_cli, "MAX_LINE", 16)
    long = b"twenty one " * 10  # 110 bytes: passed through in pieces
    assert _filter(long + b"\ntwenty one\n") == long + b"\n21\n"
    assert _filter(long) == long + b"\n"
    assert _filter(b"twenty one\n" + b"x" * 16 + b"\n") == b"21\n" + b"x" * 16 + b"\n"  # 16 bytes + newline: normalized


def test_the_command_is_registered_and_reads_stdin(monkeypatch, capsysbinary):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"seven thirty p m\n")))
    assert cli.main(["text", "itn"]) == 0
    assert capsysbinary.readouterr().out == b"7:30 p.m.\n"


def test_a_100000_character_line_through_the_command():
    line = ("call five five five one two three four at seven thirty p m for twenty dollars " * 1300)[:100_000]
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "asr", "text", "itn"], input=(line + "\n\n" + line).encode(),
                          capture_output=True, env=ENV, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.decode().split("\n")
    assert len(lines) == 4 and lines[1] == "" and lines[3] == ""
    assert lines[0] == lines[2] == inverse_normalize(line)
    assert "call 555-1234 at 7:30 p.m. for $20 call" in lines[0]
    assert time.monotonic() - t0 < 30


def test_each_line_is_written_as_soon_as_it_is_read():
    """In an open pipe: the answer to a line comes before the next line is sent."""
    proc = subprocess.Popen([sys.executable, "-m", "asr", "text", "itn"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=ENV, cwd=ROOT)
    got = []
    try:
        for spoken, written in (("twenty one", b"21\n"), ("half past three", b"3:30\n")):
            proc.stdin.write(spoken.encode() + b"\n")
            proc.stdin.flush()
            reader = threading.Thread(target=lambda: got.append(proc.stdout.readline()), daemon=True)
            reader.start()
            reader.join(30)
            assert got and got[-1] == written
    finally:
        proc.stdin.close()
        proc.wait(30)
    assert proc.returncode == 0


def test_a_reader_that_goes_away_is_no_error():
    lines = b"twenty one\n" * 200_000
    proc = subprocess.run(f"{sys.executable} -m asr text itn | head -n 1", shell=True, input=lines, capture_output=True,
                          env=ENV, cwd=ROOT, timeout=60)
    assert proc.stdout == b"21\n"
    assert b"Traceback" not in proc.stderr and b"Error" not in proc.stderr


DIGITS_WAV = os.path.join(ROOT, "tests", "data", "fsdd_four_zero_seven_two_nine.wav")  # the built-in model: "four zero seven two nine"


def test_transcribe_itn_gives_the_written_form_everywhere(tmp_path, capsys):
    assert cli.main(["transcribe", DIGITS_WAV]) == 0
    assert capsys.readouterr().out == f"{DIGITS_WAV}\tfour zero seven two nine\n"  # off by default: the spoken form
    assert cli.main(["transcribe", "--itn", "--format", "json", "--write", "txt,srt,vtt,json", "--output-dir", str(tmp_path),
                     DIGITS_WAV]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["text"] == "40729" and [w["word"] for w in d["words"]] == ["40729"]
    (word,) = d["words"]
    assert word["start"] == 0.0 and word["end"] > 2.0  # the five spoken words' span
    stem = tmp_path / "fsdd_four_zero_seven_two_nine"
    assert stem.with_suffix(".txt").read_text().strip() == "40729"
    assert "40729" in stem.with_suffix(".srt").read_text() and "four" not in stem.with_suffix(".srt").read_text()
    assert "40729" in stem.with_suffix(".vtt").read_text()
    assert json.loads(stem.with_suffix(".json").read_text())["text"] == "40729"


def test_stream_itn_writes_finished_utterances_in_written_form(capsys):
    assert cli.main(["stream", "--itn", "--format", "json", DIGITS_WAV]) == 0
    out = capsys.readouterr()
    finals = [json.loads(line) for line in out.out.splitlines()]
    assert [f["text"] for f in finals] == ["40729"] and finals[0]["words"][0]["word"] == "40729"
    assert "\tpartial\tfour zero" in out.err  # partial results stay spoken
