"""asr.punctuation: labels of punctuated text, the model file's metadata, and the runtime tagger
on a tiny model trained in the test session (tests/conftest.py ``punct_model``), bad input
included."""

import json
import time

import numpy as np
import onnx
import pytest

from asr.decoding.result import Word
from asr.punctuation import CASES, MARKS, Punctuator, TaggerInfo, apply_labels, default_punctuator, label_text, score, word_key


def test_labels_of_punctuated_text():
    words, marks, cases = label_text('Hello, world! Where are you going?" I asked NASA; well-known -- yes.')
    assert words == ["hello", "world", "where", "are", "you", "going", "i", "asked", "nasa", "well", "known", "yes"]
    assert [MARKS[m] for m in marks] == [",", ".", "", "", "", "?", "", "", ",", "", ",", "."]
    assert [CASES[c] for c in cases] == ["capitalized", "lower", "capitalized", "lower", "lower", "lower",
                                         "capitalized", "lower", "upper", "lower", "lower", "lower"]
    assert label_text("don't stop") == (["don't", "stop"], [0, 0], [0, 0])
    assert label_text("Café olé.") == (["café", "olé"], [0, 2], [1, 0])


@pytest.mark.parametrize("text", ["It costs 5 dollars.", "The U.S. army.", "see e.g. this", "a/b test", "x = y",
                                  "", "   ", "?!"])
def test_text_a_recognizer_never_writes_is_not_labelled(text):
    assert label_text(text) is None


def test_apply_labels_keeps_what_is_there():
    out = apply_labels(["where", "is", "Tom", "now?", "i", "see", "nasa"], [0, 0, 0, 3, 0, 1, 2], [1, 0, 0, 0, 1, 0, 2])
    assert out == ["Where", "is", "Tom", "now?", "I", "see,", "NASA."]
    assert apply_labels(["'hello'", "42"], [2, 0], [1, 1]) == ["'Hello'.", "42"]
    assert word_key("Hello,") == "hello" and word_key("“Don’t”") == "don't"


def test_tagger_info_round_trip_and_checks():
    info = TaggerInfo(vocab=("<pad>", "<unk>", "the", "cat"), window=32, context=4, toolkit_version="x",
                      mark_bias=(0.0, 0.5, -0.25, 1.0), config={"model": {"hidden_size": 8}})
    meta = info.to_metadata()
    assert json.loads(meta["asr.format"]) == "asr-punctuation/1"
    assert TaggerInfo.from_metadata("m.onnx", meta) == info
    with pytest.raises(ValueError, match="m.onnx: not a punctuation model"):
        TaggerInfo.from_metadata("m.onnx", {**meta, "asr.format": json.dumps("asr-onnx/1")})
    with pytest.raises(ValueError, match="m.onnx: metadata lacks asr.window"):
        TaggerInfo.from_metadata("m.onnx", {k: v for k, v in meta.items() if k != "asr.window"})
    with pytest.raises(ValueError, match="not valid JSON"):
        TaggerInfo.from_metadata("m.onnx", {**meta, "asr.vocab": "[oops"})
    with pytest.raises(ValueError, match="vocab must start with"):
        TaggerInfo(vocab=("the", "<pad>", "<unk>"))
    with pytest.raises(ValueError, match="context must be"):
        TaggerInfo(vocab=("<pad>", "<unk>"), window=16, context=8)
    with pytest.raises(ValueError, match="window must be"):
        TaggerInfo(vocab=("<pad>", "<unk>"), window=4)
    with pytest.raises(ValueError, match="marks must be"):
        TaggerInfo(vocab=("<pad>", "<unk>"), marks=("", "."))
    with pytest.raises(ValueError, match="mark_bias must be 4 numbers"):
        TaggerInfo(vocab=("<pad>", "<unk>"), mark_bias=(0.0, 1.0))
    with pytest.raises(ValueError, match="mark_bias must be 4 numbers"):
        TaggerInfo.from_metadata("m.onnx", {**meta, "asr.mark_bias": json.dumps([0, 0, 0, 99])})
    old = {k: v for k, v in meta.items() if k != "asr.mark_bias"}  # a file from before the bias: none
    assert TaggerInfo.from_metadata("m.onnx", old).mark_bias == (0.0, 0.0, 0.0, 0.0)


def test_the_model_file_carries_the_vocabulary(punct_model):
    path, _ = punct_model
    p = Punctuator(path)
    props = {x.key: x.value for x in onnx.load(path).metadata_props}
    assert TaggerInfo.from_metadata(path, props) == p.info
    assert {"where", "cat", "nasa", "tom"} <= set(p.info.vocab)
    assert (p.info.window, p.info.context) == (16, 4)
    assert p.encode(["Where", "zebra", "CAT,"]).tolist() == [p.info.vocab.index("where"), 1, p.info.vocab.index("cat")]


def test_tagging(punct_model):
    p = Punctuator(punct_model[0])
    assert p.punctuate("where is the cat") == "Where is the cat?"
    assert p.punctuate("yes the dog is here tom has the key what did nasa see") == \
        "Yes, the dog is here. Tom has the key. What did NASA see?"
    assert p.punctuate("  where is the cat\t") == "  Where is the cat?\t"  # whitespace kept


def test_long_input_is_tagged_in_windows(punct_model):
    p = Punctuator(punct_model[0])
    n = 496  # words: 4-word sentences over many windows of 16
    text = " ".join(["where is the cat", "anna has the book"][i % 2] for i in range(n // 4))
    out = p.punctuate(text).split()
    assert len(out) == n
    assert out[:8] == ["Where", "is", "the", "cat?", "Anna", "has", "the", "book."]
    assert out[3::8] == ["cat?"] * (n // 8) and out[7::8] == ["book."] * (n // 8)


def test_timed_words_keep_their_times(punct_model):
    p = Punctuator(punct_model[0])
    words = [Word("where", 0.0, 0.2, 0.9), Word("is", 0.2, 0.3), Word("the", 0.3, 0.4), Word("cat", 0.4, 0.8, 0.5)]
    out = p.punctuate_words(words)
    assert [w.word for w in out] == ["Where", "is", "the", "cat?"]
    assert [(w.start, w.end, w.confidence) for w in out] == [(w.start, w.end, w.confidence) for w in words]
    assert p.punctuate_words([]) == []


@pytest.mark.parametrize("text", ["", " ", "\t\n", "\x00\x1b[31m where \x07", "二十 où est le chat ünïcödé",
                                  "\udcff\udcfe bytes", "x" * 100_000, "?!.,"])
def test_bad_input_never_crashes(punct_model, text):
    p = Punctuator(punct_model[0])
    out = p.punctuate(text)
    assert out.split() == [w for w in out.split()] and len(out.split()) == len(text.split())
    if not text.strip():
        assert out == text


def test_a_100000_character_line_is_linear(punct_model):
    p = Punctuator(punct_model[0])
    line = ("where is the cat tom has the key " * 3000)[:100_000]
    t0 = time.perf_counter()
    out = p.punctuate(line)
    assert time.perf_counter() - t0 < 20
    assert len(out.split()) == len(line.split()) and out.startswith("Where is the cat? Tom")


def test_not_a_punctuation_model(tmp_path, models):
    with pytest.raises(ValueError, match="not a punctuation model"):
        Punctuator(models.get("gru-offline")[0])
    with pytest.raises(ValueError, match="punctuation model not found"):
        Punctuator(tmp_path / "none.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    with pytest.raises(ValueError, match="bad.onnx: cannot load"):
        Punctuator(tmp_path / "bad.onnx")


def test_default_punctuator_is_shared(punct_model):
    assert default_punctuator(punct_model[0]) is default_punctuator(punct_model[0])


def test_score():
    s = score([([0, 1, 2, 3], [1, 0, 0, 2], [0, 1, 3, 3], [1, 0, 1, 2])])
    assert s["comma"]["f1"] == 1.0 and s["period"]["f1"] == 0.0 and s["question"]["precision"] == 0.5
    assert s["question"]["recall"] == 1.0 and s["case_accuracy"] == 0.75 and s["words"] == 4
    assert np.isclose(s["question"]["f1"], 2 / 3, atol=1e-4)


def test_a_number_said_word_by_word_stays_one_number():
    """Commas the tagger puts between spoken number words are dropped from what it writes, so a
    phone number or a PIN stays one (and ITN writes it as one); other commas stay."""
    import numpy as np

    from asr.punctuation import default_punctuator, keep_numbers_whole

    tokens = "call five five five one two and then two".split()
    marks = np.array([0, 0, 1, 0, 1, 0, 1, 0, 2])
    assert keep_numbers_whole(tokens, marks, np.zeros(9))[0].tolist() == [0, 0, 0, 0, 0, 0, 1, 0, 2]
    assert keep_numbers_whole(["Oh", "NINE"], np.array([1, 2]), np.array([1, 2]))[0].tolist() == [0, 2]
    # dates and times ITN joins: no mark between a month and its day, none inside "p m", no capital inside a number
    tokens = "call at seven thirty p m on june third. Then may. Third".lower().replace(".", "").split()
    marks = np.array([0, 0, 0, 1, 1, 1, 0, 2, 2, 0, 2, 0])
    cases = np.array([1, 0, 0, 1, 2, 2, 0, 1, 1, 1, 0, 1])
    m, c = keep_numbers_whole(tokens, marks, cases)
    assert m.tolist() == [0, 0, 0, 0, 0, 1, 0, 0, 2, 0, 2, 0]  # after "m" a mark may stay; "may" can be a verb
    assert c.tolist() == [1, 0, 0, 0, 2, 2, 0, 1, 0, 1, 0, 1]
    p = default_punctuator()
    for text in ("four zero seven two nine", "my number is five five five one two three four and my pin is one two"):
        written = p.punctuate(text)
        words = written.split()
        assert not any(w.endswith(",") and w[:-1].lower() in ("zero", "one", "two", "four", "five", "seven")
                       and nxt.lower().strip(",.?") in ("zero", "one", "two", "three", "four", "five", "seven", "nine")
                       for w, nxt in zip(words, words[1:])), written
