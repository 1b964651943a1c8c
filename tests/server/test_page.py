"""The page of ``asr serve`` (asr/server/static) in headless Chromium: the microphone path
(getUserMedia + AudioWorklet, fed by Chromium's fake capture device playing a WAV file) and the
file-upload path both end with the file's transcript on the page, one line per result under a
line naming its file or the microphone; the model's card heads the page; /favicon.ico is there.
Screenshots are saved (``ASR_SCREENSHOT_DIR`` to keep them, else the test's temporary folder).

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install -y chromium
chromium-driver``; .ci/run installs them) and selenium; skipped with the reason otherwise."""

import json
import os
import shutil
import time
import urllib.request

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import SR
from tests.server_helpers import ENDPOINT, ServerThread, stream_texts

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                reason="headless browser test needs Debian's chromium and chromium-driver "
                                       "(apt-get install -y chromium chromium-driver)")


def _browser(fake_audio=None):
    webdriver = pytest.importorskip("selenium.webdriver", reason="the browser test needs selenium (pip install selenium)")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1000,820",
                "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                "--autoplay-policy=no-user-gesture-required"):
        opts.add_argument(arg)
    if fake_audio:
        opts.add_argument(f"--use-file-for-fake-audio-capture={fake_audio}%noloop")
    return webdriver.Chrome(service=Service(DRIVER), options=opts)


def _wait(driver, condition, timeout, what):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; status: "
                         f"{driver.find_element('id', 'status').text!r}, error: {driver.find_element('id', 'error').text!r}")


def _page_texts(driver):
    return [e.text for e in driver.find_elements("css selector", "#finals li .text")]


def _card(driver):
    """The model card at the top of the page, once /info has filled it: name, language,
    description, facts."""
    _wait(driver, lambda: driver.find_element("id", "model-facts").text, 10, "the model card")
    return [driver.find_element("id", i).text for i in ("model-name", "model-language", "model-description", "model-facts")]


def _transcript(driver):
    """The transcript's lines, as (kind, text) with kind "source" (a file's or the microphone's
    line) or "result"; a result is one line: where it starts, then its text."""
    lines = []
    for li in driver.find_elements("css selector", "#finals li"):
        kind = li.get_attribute("class")
        if kind == "result":
            at, text = li.find_element("css selector", ".at").text, li.find_element("css selector", ".text").text
            assert li.text == f"{at} {text}" and "\n" not in li.text, li.text  # one line, the text once
            assert at.endswith(" s") and li.get_attribute("title").startswith("heard at: "), (at, li.get_attribute("title"))
            lines.append((kind, text))
        else:
            lines.append((kind, li.text))
    return lines


def _screenshot(driver, tmp_path, name):
    folder = os.environ.get("ASR_SCREENSHOT_DIR") or str(tmp_path)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    driver.save_screenshot(path)
    assert os.path.getsize(path) > 1000
    return path


def test_page_microphone_shows_the_transcript(models, tmp_path):
    """Chromium's fake microphone plays three tone bursts with digital silence between them; the
    model ("endpoint": 'a' while there is sound) gives one utterance per burst, whatever the
    browser's capture rate and start offset: the page lists asr-stream's utterances."""
    model = models.get("endpoint")[0]
    rng = np.random.default_rng(0)
    t = np.arange(int(0.4 * SR)) / SR
    burst = (0.4 * np.sin(2 * np.pi * 700 * t) * np.minimum(1, np.minimum(t, t[::-1]) / 0.02)).astype(np.float32)
    silence = np.zeros(int(0.9 * SR), np.float32)
    wave = np.concatenate([silence[: SR // 4], burst, silence, burst, silence, burst, silence])
    wav = str(tmp_path / "mic.wav")
    sf.write(wav, wave + 0 * rng.standard_normal(wave.size).astype(np.float32), SR, subtype="PCM_16")
    want = stream_texts(model, wav, ENDPOINT)
    assert want == ["a", "a", "a"]
    with ServerThread(model, endpoint=ENDPOINT) as srv:
        driver = _browser(fake_audio=wav)
        try:
            driver.get(srv.http + "/")
            card = _card(driver)
            driver.find_element("id", "mic-start").click()
            _wait(driver, lambda: "listening" in driver.find_element("id", "status").text, 10, "the microphone")
            _wait(driver, lambda: len(_page_texts(driver)) >= 3, 15, "three utterances")
            _screenshot(driver, tmp_path, "page_microphone_live.png")
            driver.find_element("id", "mic-stop").click()
            _wait(driver, lambda: driver.find_element("id", "status").text == "done", 10, "the final result")
            lines = _transcript(driver)
            _screenshot(driver, tmp_path, "page_microphone.png")
            assert driver.find_element("id", "error").is_displayed() is False
        finally:
            driver.quit()
    # a model without a card: its file's name and what its vocabulary says
    assert card[:3] == ["test", "", "Recognizes 4 characters: ␣ a b c."]
    assert card[3].startswith(f"{SR} Hz · latency ") and "look-ahead" in card[3]
    assert lines[0][0] == "source" and lines[0][1].startswith("microphone, from ")
    assert lines[1:] == [("result", t) for t in want]


def test_page_file_upload_gives_asr_streams_text(models, tmp_path):
    """The file mode decodes each file in the page at the model's rate and streams it: exactly
    the samples asr-stream reads, so exactly its utterances, one line each, under a line naming
    the file. The model's card heads the page; /favicon.ico is an icon, not a 404."""
    from asr.runtime.schema import ModelCard, card_metadata, write_metadata
    from tests.conftest import SR, synth_utterance

    pytest.importorskip("onnx")
    model = str(tmp_path / "letters.onnx")
    shutil.copy(models.get("lstm-lc")[0], model)
    card = ModelCard("Test letters", "en", 'The letters "a", "b" and "c", alone or in words.')
    write_metadata(model, card_metadata(card))
    rng = np.random.default_rng(4)
    wavs = [str(tmp_path / "upload.wav"), str(tmp_path / "second.wav")]
    sf.write(wavs[0], np.concatenate([synth_utterance("abc ca", rng), np.zeros(int(0.7 * SR), np.float32),
                                      synth_utterance("b cc", rng)]), SR, subtype="PCM_16")
    sf.write(wavs[1], synth_utterance("cab", rng), SR, subtype="PCM_16")
    want = [stream_texts(model, w, ENDPOINT) for w in wavs]
    assert all(want)
    with ServerThread(model, endpoint=ENDPOINT) as srv:
        with urllib.request.urlopen(srv.http + "/favicon.ico", timeout=10) as r:
            icon = (r.status, r.headers["Content-Type"], r.read())
        with urllib.request.urlopen(srv.http + "/info", timeout=10) as r:
            info = json.loads(r.read())
        driver = _browser()
        try:
            driver.get(srv.http + "/")
            shown = _card(driver)
            driver.find_element("id", "file").send_keys("\n".join(wavs))  # two files at once
            _wait(driver, lambda: driver.find_element("id", "status").text.startswith("done"), 30, "the final result")
            status = driver.find_element("id", "status").text
            lines = _transcript(driver)
            _screenshot(driver, tmp_path, "page_file.png")
        finally:
            driver.quit()
    assert icon[0] == 200 and icon[1] == "image/svg+xml" and icon[2].startswith(b"<svg")
    assert info["card"] == card.to_dict() and info["model"] == "test"
    assert info["vocabulary"] == {"kind": "characters", "size": 4, "symbols": [" ", "a", "b", "c"]}
    assert info["latency_s"] == round(info["chunk_s"] + info["right_context_s"], 3) > 0
    assert shown[:3] == ["Test letters", "(en)", card.description]
    assert shown[3] == (f"test · 4 characters: ␣ a b c · {SR} Hz · latency {info['latency_s']:g} s "
                        f"(chunks of {info['chunk_s']:g} s + {info['right_context_s']:g} s look-ahead)")
    assert status == "done: 2 files"
    sources = [i for i, (kind, _) in enumerate(lines) if kind == "source"]
    assert [lines[i][1].split(" (")[0] for i in sources] == ["upload.wav", "second.wav"] and sources[0] == 0
    assert lines[1 : sources[1]] == [("result", t) for t in want[0]]
    assert lines[sources[1] + 1 :] == [("result", t) for t in want[1]]


def test_page_says_when_the_server_is_gone(models, tmp_path):
    """The server stops while the microphone streams: the page says so; a
    new start then says the server cannot be reached."""
    model = models.get("lstm-lc")[0]
    wav = str(tmp_path / "long.wav")
    sf.write(wav, 0.1 * np.sin(2 * np.pi * 500 * np.arange(10 * SR) / SR), SR, subtype="PCM_16")
    srv = ServerThread(model, endpoint=ENDPOINT).__enter__()
    driver = _browser(fake_audio=wav)
    try:
        driver.get(srv.http + "/")
        _card(driver)
        driver.find_element("id", "mic-start").click()
        _wait(driver, lambda: "listening" in driver.find_element("id", "status").text, 10, "the microphone")
        srv.__exit__(None, None, None)
        lost = _wait(driver, lambda: driver.find_element("id", "error").text, 10, "an error message")
        _screenshot(driver, tmp_path, "page_server_gone.png")
        driver.find_element("id", "mic-start").click()
        again = _wait(driver, lambda: driver.find_element("id", "error").text != lost and driver.find_element("id", "error").text,
                      10, "a second error message")
    finally:
        driver.quit()
    assert lost == "The server ended this stream: the server is shutting down"
    assert "asr serve" in again and "server" in again
