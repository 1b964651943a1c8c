"""asr.cli.client: ``asr client`` streams files (or a microphone) to a running server and
prints its results; bad files and refusals are reported, the others still streamed."""

import json

import numpy as np
import pytest
import soundfile as sf

import asr.cli.mic as mic_module
from asr.cli import main
from asr.cli.client import websocket_url
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


def test_client_asks_for_alternatives_and_hotwords(setup, capsys):
    """--alternatives N sends config.max_alternatives: JSON shows Vosk's n-best results, text
    output their best; --hotword sends config.hotwords (biasing, not restricting)."""
    model, paths, _ = setup

    def texts(*extra):
        assert main(["client", srv.url, paths[1], "--no-partials", *extra]) == 0
        return [line.split("\t")[1] for line in capsys.readouterr().out.splitlines()]

    with ServerThread(model) as srv:
        assert main(["client", srv.url, paths[1], "--alternatives", "3", "--format", "json", "--no-partials"]) == 0
        replies = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        finals = [r for r in replies if "alternatives" in r]
        assert finals and all(1 <= len(r["alternatives"]) <= 3 and "text" not in r for r in finals)
        best = [r["alternatives"][0]["text"] for r in finals if r["alternatives"][0]["text"]]
        assert best and texts("--alternatives", "3") == best  # text output: the best alternative
        beam = " ".join(texts("--alternatives", "1")).split()  # the same beam search, no bias
        for word in ("a", "c"):
            biased = " ".join(texts("--alternatives", "1", "--hotword", word)).split()
            assert biased.count(word) > beam.count(word), (word, biased, beam)  # the server favoured it


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


def test_options_go_anywhere(setup, capsys):
    """Issue 27: `asr client URL --format json --realtime a.wav` gave the top-level usage."""
    model, paths, _ = setup
    want = stream_texts(model, paths[1])
    with ServerThread(model) as srv:
        for argv in ([srv.url, "--format", "json", "--realtime", paths[1], "--no-partials"],
                     ["--no-partials", "--format", "json", srv.url, paths[1]],
                     [srv.url, paths[1], "--piece-ms", "150", "--no-partials", "--format=json"]):
            assert main(["client", *argv]) == 0, argv
            out, err = capsys.readouterr()
            assert [json.loads(line)["text"] for line in out.splitlines() if json.loads(line)["text"]] == want and err == ""


@pytest.mark.parametrize("url, words", [
    ("127.0.0.1:27031", "'127.0.0.1:27031' is not a websocket address: use ws://HOST:PORT, here ws://127.0.0.1:27031 (wss:// with TLS)"),
    ("localhost:2700", "use ws://HOST:PORT, here ws://localhost:2700"),
    ("ftp://127.0.0.1:2700", "'ftp://127.0.0.1:2700' is not a websocket address: use ws://HOST:PORT (wss:// with TLS)"),
    ("ws://", "'ws://' is not a websocket address"),
])
def test_a_url_without_ws_says_what_to_write(setup, capsys, url, words):
    """Issue 27: `asr client 127.0.0.1:27031 a.wav` said `cannot connect to 127.0.0.1:27031: 127.0.0.1:27031`."""
    _, paths, _ = setup
    assert main(["client", url, paths[0]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and words in err and err.count("\n") == 1, err


def test_the_pages_http_address_is_taken_as_ws(setup, capsys):
    model, paths, _ = setup
    with ServerThread(model) as srv:
        assert srv.http.startswith("http://")
        assert main(["client", srv.http + "/", paths[1], "--no-partials"]) == 0
    assert [line.split("\t")[1] for line in capsys.readouterr().out.splitlines()] == stream_texts(model, paths[1])
    assert websocket_url("HTTPS://host:1/ws") == "wss://host:1/ws" and websocket_url("wss://h:2") == "wss://h:2"
