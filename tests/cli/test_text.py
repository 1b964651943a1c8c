"""`asr text itn`: one line out per line in, flushed as it goes; empty, long, non-UTF-8 and
control-character lines pass through without a crash or a hang."""

import io
import json
import os
import re
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


# --- asr text punctuate ------------------------------------------------------------------------
def _punctuate(args, data: bytes) -> tuple[int, bytes]:
    out = io.BytesIO()
    ns = cli.build_parser().parse_args(["text", "punctuate", *args])
    return ns.func(ns, stdin=io.BytesIO(data), stdout=out), out.getvalue()


def _plain(line: bytes) -> bytes:
    """A punctuated line without the marks the tagger adds, in lower case."""
    return re.sub(rb"[,.?](?=\s|$)", b"", line).lower()


def test_punctuate_one_line_out_per_line_in(punct_model):
    data = (b"where is the cat\n\n  \nyes the dog is here tom has the key\r\nbad \xff\xfe bytes where is the cat\n"
            b"\x1b[31mwhere\x1b[0m is \x00 the cat\n\xe4\xba\x8c\xe5\x8d\x81 where is the cat\nAlready Punctuated.\nno newline cat")
    rc, out = _punctuate(["--model", punct_model[0]], data)
    lines = out.split(b"\n")
    assert rc == 0 and len(lines) == data.count(b"\n") + 2 and lines[-1] == b""
    assert lines[:4] == [b"Where is the cat?", b"", b"  ", b"Yes, the dog is here. Tom has the key.\r"]
    for i in (4, 5, 6):  # unknown words may take any labels; every byte is still there
        assert _plain(lines[i]) == data.split(b"\n")[i].lower() and lines[i].endswith((b"cat?", b"cat."))
    assert lines[7].startswith(b"Already Punctuated.")  # capitals and marks already there are kept
    assert _punctuate(["--model", punct_model[0]], b"") == (0, b"")


def test_punctuate_a_100000_character_line(punct_model):
    line = ("where is the cat tom has the key " * 3100)[:100_000]
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "asr", "text", "punctuate", "--model", punct_model[0]],
                          input=(line + "\n\n" + "y" * 100_000 + "\n").encode(), capture_output=True, env=ENV, cwd=ROOT,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.decode().split("\n")
    assert len(lines) == 4 and lines[1] == "" and lines[3] == ""
    assert len(lines[0].split()) == len(line.split()) and lines[0].startswith("Where is the cat?")
    assert lines[2].lower().rstrip(".?,") == "y" * 100_000
    assert time.monotonic() - t0 < 60


def test_punctuate_with_a_bad_model(tmp_path, capsys, models):
    (tmp_path / "bad.onnx").write_bytes(b"junk")
    for path, message in ((str(tmp_path / "none.onnx"), "punctuation model not found"),
                          (str(tmp_path / "bad.onnx"), "cannot load as an ONNX model"),
                          (models.get("gru-offline")[0], "not a punctuation model")):
        rc, out = _punctuate(["--model", path], b"where is the cat\n")
        assert rc == 2 and out == b""
        assert message in capsys.readouterr().err


def test_the_punctuate_command_uses_the_built_in_model_by_default(monkeypatch, capsysbinary):
    from asr.punctuation import DEFAULT_MODEL

    if not os.path.isfile(DEFAULT_MODEL):
        import pytest

        pytest.fail(f"{DEFAULT_MODEL}: the built-in punctuation model is missing")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"where are you going\n")))
    assert cli.main(["text", "punctuate"]) == 0
    assert capsysbinary.readouterr().out == b"Where are you going?\n"


def test_transcribe_flags_make_text_options(punct_model, capsys):
    import argparse

    import pytest

    opts = text_cli.text_options(argparse.Namespace(itn=True, punctuate=True, punctuation_model=punct_model[0]))
    assert (opts.itn, opts.punctuate, opts.punctuation_model) == (True, True, punct_model[0])
    opts = text_cli.text_options(argparse.Namespace(itn=False, punctuate=False, punctuation_model=None))
    assert not opts.punctuate and not opts.itn
    with pytest.raises(SystemExit) as exc:
        text_cli.text_options(argparse.Namespace(itn=False, punctuate=True, punctuation_model="/nonexistent.onnx"))
    assert exc.value.code == 2 and "punctuation model not found" in capsys.readouterr().err
