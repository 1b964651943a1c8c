"""asr.cli.stream (`asr stream`, also `asr-stream`): pipes are refused, not waited on; standard input is read as
'-'; the text is the streaming recognizer's (the command and asr.load_model share one loop);
the decoding options of the command line reach the decoder, for streaming and offline graphs."""

import json
import math
import os
import subprocess
import sys

import pytest

import asr
import asr.train
from asr.cli.stream import main as stream_main
from asr.decoding.lm import train_ngram
from asr.decoding.options import DecodingOptions
from tests.conftest import STREAMING


def test_asr_stream_cli(models, wavs, capsys):
    path, _, _ = models.get("gru-lc")
    rc = stream_main(["--model", path, wavs["a"], wavs["bad"], wavs["b"], "--piece-ms", "30", "--no-endpoint"])
    out, err = capsys.readouterr()
    assert rc == 1
    lines = [line.split("\t") for line in out.strip().splitlines()]
    assert [p for p, _, _ in lines] == [wavs["a"], wavs["b"]]
    assert lines[0][2] == asr.train.load_model(path).transcribe(wavs["a"]).text
    assert all(len(se.split("-")) == 2 for _, se, _ in lines)
    assert f"error: {wavs['bad']}: cannot decode audio" in err
    assert f"{wavs['a']}\tpartial\t" in err

    rc = stream_main(["--model", path, wavs["a"], "--format", "json", "--no-partials", "--rule2", "0.2"])
    out, err = capsys.readouterr()
    assert rc == 0 and err == ""
    objs = [json.loads(line) for line in out.strip().splitlines()]
    assert objs and all(set(o) == {"path", "text", "start", "end", "words"} for o in objs)
    assert all(set(w) == {"word", "start", "end", "confidence"} for o in objs for w in o["words"])
    assert all(0.0 <= w["confidence"] <= 1.0 for o in objs for w in o["words"])

    off = models.get("gru-offline")[0]
    rc = stream_main(["--model", off, wavs["a"], wavs["b"]])
    out, err = capsys.readouterr()
    assert rc == 0 and len(out.strip().splitlines()) == 2 and "partial" not in err

    assert stream_main(["--model", wavs["bad"], wavs["a"]]) == 2
    assert "cannot load as an ONNX model" in capsys.readouterr().err


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(asr.__file__)))  # the asr these tests import


def run_stream(args, **kwargs):
    """`asr stream ARGS` in a child process (bounded in time: a regression that waits on a pipe
    fails instead of hanging the suite)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "asr", "stream", *args], capture_output=True, timeout=90, env=env,
                          cwd=ROOT, **kwargs)


@pytest.fixture(scope="module")
def arpa(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("lm") / "lm.arpa")
    train_ngram(["abc ca", "cab b", "a b c", "ab ab"], order=2).write_arpa(path)
    return path


def test_a_fifo_is_reported_and_the_next_file_still_streams(models, wavs, tmp_path):
    path = models.get("gru-lc")[0]
    fifo = str(tmp_path / "live.pipe")
    os.mkfifo(fifo)  # nobody writes to it: opening it would wait forever
    proc = run_stream(["--model", path, fifo, wavs["a"], "--no-partials", "--no-endpoint"])
    out, err = proc.stdout.decode(), proc.stderr.decode()
    assert proc.returncode == 1, err  # one file failed
    assert f"error: {fifo}: is a pipe (FIFO)" in err and "give '-'" in err
    assert "empty (0 bytes)" not in err
    lines = [line.split("\t") for line in out.splitlines()]
    assert [p for p, _, _ in lines] == [wavs["a"]]  # the next file was still decoded
    assert lines[0][2] == asr.train.load_model(path).transcribe(wavs["a"]).text


def test_standard_input_is_streamed(models, wavs):
    path = models.get("gru-lc")[0]
    with open(wavs["b"], "rb") as f:  # 16 kHz stereo WAV on an 8 kHz model
        data = f.read()
    proc = run_stream(["--model", path, "-", "--no-partials", "--no-endpoint", "--format", "json"], input=data)
    assert proc.returncode == 0, proc.stderr.decode()
    (obj,) = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    want = asr.train.load_model(path).transcribe(wavs["b"])
    assert obj["path"] == "-" and obj["text"] == want.text and want.text
    proc = run_stream(["--model", path, "-", "--no-partials"], input=b"")
    assert proc.returncode == 1 and "standard input is empty" in proc.stderr.decode()


@pytest.mark.parametrize("name", list(STREAMING))
def test_stream_command_gives_the_recognizers_text_and_words(name, models, wavs, capsys):
    """`asr stream` (one utterance per file) and asr.train.load_model(streaming graph) run the same
    streaming loop: the same text and word times, whatever the piece size."""
    path = models.get(name)[0]
    rec = asr.train.load_model(path)
    for piece_ms in ("30", "250"):
        assert stream_main(["--model", path, wavs["a"], wavs["b"], "--format", "json", "--no-partials", "--no-endpoint",
                            "--piece-ms", piece_ms]) == 0
        objs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [o["path"] for o in objs] == [wavs["a"], wavs["b"]]
        for o in objs:
            want = rec.transcribe(o["path"])
            assert o["text"] == want.text
            assert o["words"] == [w.__dict__ for w in want.words]
            assert (o["start"], o["end"]) == (0.0, want.utterances[0].end)


@pytest.mark.parametrize("name", ["gru-lc", "gru-offline"])
def test_decoding_options_reach_the_decoder(name, models, wavs, arpa, capsys):
    """--hotword/--hotword-weight and --lm/--alpha change the text, and it is the text of a
    recognizer built with those options (streaming graph: the final text of each utterance)."""
    path = models.get(name)[0]
    greedy = asr.train.load_model(path).transcribe(wavs["a"]).text
    cases = [
        (["--hotword", "cab", "--hotword-weight", "50"], DecodingOptions(hotwords={"cab": math.nan}, hotword_weight=50.0)),
        (["--lm", arpa, "--alpha", "3"], DecodingOptions(lm=arpa, alpha=3.0)),
    ]
    for flags, options in cases:
        assert stream_main(["--model", path, wavs["a"], "--no-partials", "--no-endpoint", *flags]) == 0
        (line,) = capsys.readouterr().out.splitlines()
        want = asr.train.load_model(path, options).transcribe(wavs["a"]).text
        assert line.split("\t")[2] == want, flags
        assert want != greedy, flags  # the options make a difference here, so dropping them shows
