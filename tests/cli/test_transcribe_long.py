"""``asr transcribe`` on long files: segments, transcript files, no progress bar when piped."""

import json
import os

import numpy as np
import pytest
import soundfile as sf

from asr import cli

srt = pytest.importorskip("srt")
webvtt = pytest.importorskip("webvtt")


@pytest.fixture
def offline_model(models):
    return models.get("gru-offline")[0]


def test_long_file_to_every_format(offline_model, tmp_path, capsys):
    from tests.runtime.test_longform import long_recording

    wav = str(tmp_path / "talk.wav")
    truth = long_recording(wav, 25, np.random.default_rng(5))
    short = str(tmp_path / "short.wav")
    sf.write(short, np.zeros(800, np.float32), 8000)
    out = tmp_path / "out"
    rc = cli.main(["transcribe", "--model", offline_model, "--vad", "energy", "--write", "all",
                   "--output-dir", str(out), "--max-line-chars", "12", wav, short, str(tmp_path / "missing.wav")])
    captured = capsys.readouterr()
    assert rc == 1 and "missing.wav" in captured.err  # one file failed, the others were written
    assert "%|" not in captured.err  # stderr is not a terminal here: no progress bar
    assert sorted(os.listdir(out)) == sorted(f"{b}.{e}" for b in ("talk", "short") for e in ("txt", "json", "srt", "vtt", "tsv"))
    d = json.loads((out / "talk.json").read_text())
    assert len(d["utterances"]) == len(truth)  # one per burst of speech (the random model says anything)
    for u, (_, start, end) in zip(d["utterances"], truth):
        assert start - 0.3 <= u["start"] <= start and end <= u["end"] <= end + 0.4
    subs = list(srt.parse((out / "talk.srt").read_text()))
    assert subs and all(len(s.content) <= 12 or " " not in s.content for s in subs)
    assert len(webvtt.read(str(out / "talk.vtt"))) == len(subs)
    line = captured.out.splitlines()[0].split("\t")
    assert line[0] == wav and line[1] == d["text"]


def test_long_form_never_keeps_one_utterance(offline_model, tmp_path, capsys):
    from tests.runtime.test_longform import long_recording

    wav = str(tmp_path / "talk.wav")
    long_recording(wav, 20, np.random.default_rng(6))
    assert cli.main(["transcribe", "--model", offline_model, "--long-form", "never", "--format", "json", wav]) == 0
    d = json.loads(capsys.readouterr().out)
    assert len(d["utterances"]) <= 1
    assert cli.main(["transcribe", "--model", offline_model, "--long-form", "always", "--vad", "energy", "--format", "json", wav]) == 0
    assert len(json.loads(capsys.readouterr().out)["utterances"]) > 1


def test_progress_bar_on_a_terminal(offline_model, tmp_path):
    """On a terminal (a pseudo-terminal 100 columns wide) stderr shows audio time done and speed."""
    import fcntl
    import pty
    import struct
    import subprocess
    import sys
    import termios

    from tests.runtime.test_longform import long_recording

    wav = str(tmp_path / "talk.wav")
    long_recording(wav, 25, np.random.default_rng(7))
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "asr", "transcribe", "--model", offline_model, "--vad", "energy", wav],
                            stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    err = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        err += chunk
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and out.decode().startswith(wav)
    err = err.decode(errors="replace")
    assert "talk.wav:" in err and "s of audio" in err and "s/s]" in err
