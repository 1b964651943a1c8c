"""asr.cli.mic: ``asr mic`` on a fake input stream (no microphone here) gives asr-stream's text;
a clear message without sounddevice."""

import sys
import threading

import numpy as np
import pytest
import soundfile as sf

import asr.cli.mic as mic_module
from asr.cli import main
from asr.cli.mic import Microphone
from tests.conftest import SR, synth_utterance
from tests.server_helpers import stream_texts


class FakeInputStream:
    """sounddevice.InputStream's constructor and start/stop/close; plays ``audio`` (int16) into
    the callback in blocks from its own thread, as PortAudio does, then stays silent."""

    def __init__(self, audio, samplerate, channels, dtype, blocksize, device, callback):
        assert channels == 1 and dtype == "int16" and samplerate == SR
        self.audio, self.block, self.callback = audio, blocksize, callback
        self._thread = threading.Thread(target=self._play, daemon=True)
        self.stopped = False

    def _play(self):
        for i in range(0, self.audio.size, self.block):
            if self.stopped:
                return
            block = self.audio[i : i + self.block]
            self.callback(block[:, None], block.size, None, None)

    def start(self):
        self._thread.start()

    def stop(self):
        self.stopped = True

    def close(self):
        pass


@pytest.fixture(scope="module")
def setup(tmp_path_factory, models):
    root = tmp_path_factory.mktemp("mic")
    model = models.get("lstm-lc")[0]
    rng = np.random.default_rng(5)
    wave = np.concatenate([synth_utterance("abc", rng), np.zeros(int(0.7 * SR), np.float32), synth_utterance("ca b", rng)])
    path = str(root / "speech.wav")
    sf.write(path, wave, SR)
    pcm, _ = sf.read(path, dtype="int16")
    return model, path, pcm


def fake(monkeypatch, pcm):
    monkeypatch.setattr(mic_module, "open_input_stream", lambda **kw: FakeInputStream(pcm, **kw))


def test_asr_mic_on_a_fake_microphone_matches_asr_stream(setup, monkeypatch, capsys):
    model, path, pcm = setup
    fake(monkeypatch, pcm)
    rules = ["--rule1", "0.5", "--rule2", "0.3", "--rule3", "20"]
    assert main(["mic", "--model", model, "--sample-rate", str(SR), "--seconds", str(pcm.size / SR), *rules]) == 0
    out, err = capsys.readouterr()
    texts = [line.split("\t")[1] for line in out.splitlines()]
    assert texts == stream_texts(model, path) and texts
    assert "listening at 8000 Hz" in err and "partial\t" in err


def test_microphone_blocks_and_stop(setup, monkeypatch):
    _, _, pcm = setup
    fake(monkeypatch, pcm)
    blocks = list(Microphone(SR, block_s=0.1, seconds=0.35))
    assert sum(b.size for b in blocks) == int(0.35 * SR) and blocks[0].size == 800
    assert np.array_equal(np.concatenate(blocks), pcm[: int(0.35 * SR)])


def test_clear_message_without_sounddevice(setup, monkeypatch, capsys):
    model, _, _ = setup
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import fails as if not installed
    assert main(["mic", "--model", model]) == 2
    assert "needs the sounddevice package" in capsys.readouterr().err
