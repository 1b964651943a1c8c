"""The built-in digits model shipped in asr/assets/digits: the recipe's front end and vocabulary,
the files its model card measured (sha256), and what it must do on held-out audio that ships in
tests/data: a string of five FSDD test recordings, and an English sentence with no digit."""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import soundfile as sf
import yaml

import asr
from asr.frontend import FrontendConfig
from asr.runtime.builtin import BUILTIN_DIR, builtin_model
from asr.runtime.endpoint import EndpointConfig
from asr.runtime.model import OnnxModel
from asr.runtime.online import OnlineRecognizer, stream_in_pieces

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data")
DIGITS = os.path.join(DATA, "fsdd_four_zero_seven_two_nine.wav")
SENTENCE = os.path.join(DATA, "speechocean762_john_can_see_the_sheep.wav")


def streamed(path: str) -> str:
    rec = OnlineRecognizer(builtin_model(streaming=True), endpoint=EndpointConfig())
    samples, rate = sf.read(path, dtype="float32")
    return " ".join(u.text for u in stream_in_pieces(rec, samples, rate, 0.1).utterances if u.text)


def test_shipped_graphs_have_the_recipes_front_end_and_vocabulary():
    with open(os.path.join(ROOT, "recipes", "fsdd", "conf.yaml")) as f:
        conf = yaml.safe_load(f)
    want_vocab = ["<blank>", *sorted(conf["data"]["vocabulary"]), "<unk>"]
    for streaming in (False, True):
        info = OnnxModel(builtin_model(streaming)).info
        assert info.streaming == streaming
        assert info.frontend == FrontendConfig.from_dict(conf["frontend"])
        assert info.tokenizer.vocab == want_vocab


def test_model_card_figures_belong_to_the_shipped_files():
    """digits.json (written by the recipe's measuring stage when the model was shipped) names
    the sha256 of the two graphs it measured; the model card states its figures."""
    with open(os.path.join(BUILTIN_DIR, "digits.json")) as f:
        card = json.load(f)
    for name in ("model.onnx", "stream.onnx"):
        with open(os.path.join(BUILTIN_DIR, name), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == card["sha256"][name], f"{name} is not the file the card measured"
    text = open(os.path.join(BUILTIN_DIR, "MODEL_CARD.md")).read()
    for row in card["rows"]:
        for key, value in row.items():
            if key.startswith(("wer_", "with_digits_")):
                assert f"{value:.2f}" in text, f"model card lacks {row['set']} {key} {value:.2f}"


def test_a_digit_string_offline_and_streamed():
    assert asr.load_model().transcribe(DIGITS).text == "four zero seven two nine"
    assert streamed(DIGITS) == "four zero seven two nine"


def test_a_sentence_without_digits_gives_no_words():
    assert asr.load_model().transcribe(SENTENCE).text == ""
    assert streamed(SENTENCE) == ""


def test_commands_use_it_without_model():
    env = {**os.environ, "PYTHONPATH": ROOT}
    out = subprocess.run([sys.executable, "-m", "asr", "transcribe", DIGITS], capture_output=True, text=True, env=env,
                         timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "four zero seven two nine" in out.stdout
    out = subprocess.run([sys.executable, "-m", "asr", "stream", "--no-partials", DIGITS], capture_output=True,
                         text=True, env=env, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert " ".join(line.split("\t")[-1] for line in out.stdout.splitlines()) == "four zero seven two nine"


def test_quiet_and_loud_strings_still_read(tmp_path):
    """A user's recording level is not FSDD's: the same string 10 dB quieter and 6 dB louder.
    (20 dB quieter loses the quietest speaker's "zero": the model card says so.)"""
    samples, rate = sf.read(DIGITS, dtype="float32")
    for db in (-10, 6):
        path = tmp_path / f"gain{db}.wav"
        sf.write(path, np.clip(samples * 10 ** (db / 20), -1, 1), rate)
        assert asr.load_model().transcribe(str(path)).text == "four zero seven two nine", f"{db} dB"
