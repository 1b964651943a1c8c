"""asr.cli.client: ``asr client`` streams files (or a microphone) to a running server and
prints its results; bad files and refusals are reported, the others still streamed."""

import json

import numpy as np
import pytest
import soundfile as sf

import asr.cli.mic as mic_module
from asr.cli import main
from asr.server.app import ServerConfig
from tests.cli.test_mic import FakeInputStream
from tests.conftest import SR, synth_utterance
from tests.server_helpers import ServerThread, stream_texts


@pytest.fixture(scope="module")
def setup(tmp_path_factory, models):
    root = tmp_path_factory.mktemp("client")
    model = models.get("lstm-lc")[0]
    rng = np.random.default_rng(9)
    paths = []
    for i, text in enumerate(["abc ca", "b"]):
        wave = np.concatenate([synth_utterance(text, rng), np.zeros(int(0.7 * SR), np.float32), synth_utterance("cc", rng)])
        paths.append(str(root / f"f{i}.wav"))
        sf.write(paths[-1], wave, SR)
    bad = str(root / "bad.wav")
    with open(bad, "w") as f:
        f.write("not audio")
    return model, paths, bad


def test_client_streams_files(setup, capsys):
    model, paths, bad = setup
    with ServerThread(model) as srv:
        rc = main(["client", srv.url, paths[0], bad, paths[1], "--piece-ms", "150"])
        out, err = capsys.readouterr()
        assert rc == 1  # the bad file
        assert f"error: {bad}" in err and "partial\t" in err
        for p in paths:
            assert [line.split("\t")[1] for line in out.splitlines() if line.startswith(p + "\t")] == stream_texts(model, p)
        assert main(["client", srv.url, paths[1], "--format", "json", "--no-partials", "--realtime"]) == 0
        out, err = capsys.readouterr()
        replies = [json.loads(line) for line in out.splitlines()]
        assert [r["text"] for r in replies if r["text"]] == stream_texts(model, paths[1])
        assert all(r["path"] == paths[1] and "result" in r for r in replies) and err == ""


def test_client_reports_a_refusal(setup, capsys):
    model, paths, _ = setup
    with ServerThread(model, ServerConfig(max_message_bytes=100)) as srv:
        assert main(["client", srv.url, paths[0]]) == 1
    assert "larger than 100 bytes" in capsys.readouterr().err


def test_client_without_server(setup, capsys):
    _, paths, _ = setup
    assert main(["client", "ws://127.0.0.1:9/ws", paths[0]]) == 1
    assert "cannot connect" in capsys.readouterr().err


def test_client_streams_a_fake_microphone(setup, monkeypatch, capsys):
    model, paths, _ = setup
    pcm, _ = sf.read(paths[0], dtype="int16")
    monkeypatch.setattr(mic_module, "open_input_stream", lambda **kw: FakeInputStream(pcm, **kw))
    with ServerThread(model) as srv:
        assert main(["client", srv.url, "--mic", "--sample-rate", str(SR), "--seconds", str(pcm.size / SR), "--no-partials"]) == 0
    out = capsys.readouterr().out
    assert [line.split("\t")[1] for line in out.splitlines()] == stream_texts(model, paths[0])
