"""asr.cli.transcribe (`asr transcribe`): '-' reads a file from standard input, pipes given
by path are refused (not waited on), and the decoding options reach the recognizer, with a
checkpoint and with an exported model."""

import json
import math
import os
import subprocess
import sys

import pytest

import asr
import asr.train
from asr import cli
from asr.decoding.lm import train_ngram
from asr.decoding.options import DecodingOptions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(asr.__file__)))  # the asr these tests import


def run_asr(args, **kwargs):
    """`asr ARGS` in a child process, bounded in time so that waiting on a pipe fails the test."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "asr", *args], capture_output=True, timeout=90, env=env, cwd=ROOT,
                          **kwargs)


@pytest.fixture(scope="module")
def arpa(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("lm") / "lm.arpa")
    train_ngram(["abc ca", "cab b", "a b c", "ab ab"], order=2).write_arpa(path)
    return path


def test_standard_input_gives_the_files_text(models, wavs):
    path = models.get("gru-offline")[0]
    rec = asr.train.load_model(path)
    for key in ("a", "b"):  # 8 kHz mono; 16 kHz stereo
        with open(wavs[key], "rb") as f:
            data = f.read()
        proc = run_asr(["transcribe", "--model", path, "-"], input=data)
        assert proc.returncode == 0, proc.stderr.decode()
        want = rec.transcribe(wavs[key]).text
        assert want and proc.stdout.decode() == f"-\t{want}\n"
    proc = run_asr(["transcribe", "--model", path, "--format", "json", "-"], input=data)
    d = json.loads(proc.stdout)
    assert d["path"] == "-" and d["text"] == want and d["duration"] == rec.transcribe(wavs["b"]).duration
    proc = run_asr(["transcribe", "--model", path, "-"], input=b"")
    assert proc.returncode == 1 and "error: <stdin>: standard input is empty" in proc.stderr.decode()


def test_a_fifo_path_is_refused_with_its_own_message(models, wavs, tmp_path):
    path = models.get("gru-offline")[0]
    fifo = str(tmp_path / "mic.pipe")
    os.mkfifo(fifo)  # nobody writes to it: opening it would wait forever
    proc = run_asr(["transcribe", "--model", path, fifo, wavs["a"]])
    err = proc.stderr.decode()
    assert proc.returncode == 1, err
    assert f"error: {fifo}: is a pipe (FIFO): to read a stream, give '-'" in err
    assert "empty" not in err and "0 bytes" not in err  # a pipe is not an empty file
    assert proc.stdout.decode() == f"{wavs['a']}\t{asr.train.load_model(path).transcribe(wavs['a']).text}\n"


@pytest.mark.parametrize("source", ["--model", "--checkpoint"])
def test_decoding_options_reach_the_recognizer(source, models, wavs, arpa, tmp_path, capsys):
    onnx_path = models.get("gru-offline")[0]
    path = onnx_path if source == "--model" else onnx_path[: -len(".onnx")] + ".pt"
    greedy = asr.train.load_model(path).transcribe(wavs["a"]).text
    hot = tmp_path / "hot.txt"
    hot.write_text("cab\t50\n")
    cases = [
        (["--hotword", "cab", "--hotword-weight", "50"], DecodingOptions(hotwords={"cab": math.nan}, hotword_weight=50.0)),
        (["--hotwords", str(hot)], DecodingOptions(hotwords_file=str(hot))),
        (["--lm", arpa, "--alpha", "3"], DecodingOptions(lm=arpa, alpha=3.0)),
        (["--beam-size", "1", "--beta", "3"], DecodingOptions(beam_size=1, beta=3.0)),
    ]
    for flags, options in cases:
        assert cli.main(["transcribe", source, path, "--format", "json", *flags, wavs["a"]]) == 0
        d = json.loads(capsys.readouterr().out)
        want = asr.train.load_model(path, options).transcribe(wavs["a"])
        assert (d["text"], d["words"]) == (want.text, [w.__dict__ for w in want.words]), flags
        assert want.text != greedy, flags  # these options change the text here, so dropping them shows


def test_inputs_of_the_same_name_get_their_own_transcript_files(models, wavs, tmp_path):
    """c1/x.wav, c2/x.wav and c2/x.flac once all wrote out/x.txt, the last one winning."""
    import shutil

    import soundfile as sf

    path = models.get("gru-offline")[0]
    inputs = [str(tmp_path / "c1" / "x.wav"), str(tmp_path / "c2" / "x.wav"), str(tmp_path / "c2" / "x.flac")]
    for p, src in zip(inputs, (wavs["a"], wavs["b"], wavs["a"])):
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if p.endswith(".flac"):
            sf.write(p, sf.read(src)[0], sf.info(src).samplerate)
        else:
            shutil.copy(src, p)
    out = tmp_path / "out"
    proc = run_asr(["transcribe", "--model", path, "--write", "txt", "--output-dir", str(out), *inputs])
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    texts = dict(line.split("\t") for line in proc.stdout.decode().splitlines())
    assert sorted(os.listdir(out)) == ["x-2.txt", "x-3.txt", "x.txt"]
    for p, name in zip(inputs, ("x.txt", "x-2.txt", "x-3.txt")):
        assert (out / name).read_text() == texts[p] + "\n"
    assert f"note: {inputs[1]}: written to {out / 'x-2.txt'} (x is taken by {inputs[0]} in this run)" in err
    assert f"{inputs[2]}: written to {out / 'x-3.txt'}" in err


def test_a_file_cut_short_and_absurd_levels_are_warned_of(models, tmp_path):
    """A WAV cut in half, and float samples scaled by 1e30, were transcribed with exit 0 and no
    warning."""
    import numpy as np
    import soundfile as sf

    from tests.conftest import synth_utterance

    path = models.get("gru-offline")[0]
    x = synth_utterance("abc ca", np.random.default_rng(1))
    whole, loud = tmp_path / "whole.wav", tmp_path / "loud.wav"
    sf.write(whole, x, 8000, subtype="PCM_16")
    sf.write(loud, x * 1e30, 8000, subtype="FLOAT")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    proc = run_asr(["transcribe", "--model", path, str(whole), str(cut), str(loud)])
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    lines = err.splitlines()
    assert [x for x in lines if "cut short" in x] == [x for x in lines if x.startswith(f"warning: {cut}: the WAV header declares")]
    assert len([x for x in lines if "cut short" in x]) == 1  # once, not once per reader
    assert [x for x in lines if x.startswith(f"warning: {loud}: peak level")]
    assert str(whole) not in err and len(proc.stdout.decode().splitlines()) == 3
