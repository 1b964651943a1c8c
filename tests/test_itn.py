"""asr.itn: the written form of each class, ordinary words left alone, word times kept, bad
input passed through in bounded time, and the TextOptions switch on results."""

import pathlib
import time

import pytest

from asr.decoding.result import Result, Utterance, Word, make_result
from asr.itn import TextOptions, apply, inverse_normalize, inverse_normalize_words

DATA = pathlib.Path(__file__).parent / "data"
CLASSES = {"cardinal", "ordinal", "decimal", "fraction", "money", "time", "date", "measure", "telephone", "whitelist"}


def _pairs():
    rows = []
    for line in (DATA / "itn_pairs.tsv").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            rows.append(tuple(line.split("\t")))
    return rows


def _ordinary():
    return [s for s in (DATA / "itn_ordinary.txt").read_text(encoding="utf-8").splitlines() if s and not s.startswith("#")]


def test_the_held_out_table_is_at_least_95_percent_exact():
    rows = _pairs()
    assert len(rows) >= 300 and all(len(r) == 3 for r in rows)
    assert CLASSES <= {c for c, _, _ in rows}
    wrong = [(s, w, inverse_normalize(s)) for _, s, w in rows if inverse_normalize(s) != w]
    exact = 100 * (len(rows) - len(wrong)) / len(rows)
    print(f"ITN exact match: {exact:.1f}% of {len(rows)} pairs")
    assert exact >= 95, "\n".join(f"{s!r}: expected {w!r}, got {g!r}" for s, w, g in wrong)


def test_ordinary_sentences_come_back_unchanged():
    sentences = _ordinary()
    assert len(sentences) >= 200
    changed = [(s, inverse_normalize(s)) for s in sentences if inverse_normalize(s) != s]
    assert changed == []


def test_written_forms_are_left_as_they_are():
    """Running it twice changes nothing more: a written form is no spoken form of anything."""
    for _, _, written in _pairs():
        assert inverse_normalize(written) == written


@pytest.mark.parametrize("spoken,written", [
    ("two hundred and fifty four", "254"),
    ("minus five", "-5"),
    ("one hundred forty seven thousand four hundred fifty one", "147,451"),
    ("five million", "5 million"),
    ("twenty third", "23rd"),
    ("three point one four", "3.14"),
    ("point zero two", ".02"),
    ("four united states dollars and sixty nine cents", "$4.69"),
    ("two thirds", "2/3"),
    ("five dollars and twenty cents", "$5.20"),
    ("seven thirty p m", "7:30 p.m."),
    ("half past three", "3:30"),
    ("quarter to twelve", "11:45"),
    ("june third twenty twenty six", "June 3, 2026"),
    ("the third of june", "3 June"),
    ("five kilometers", "5 km"),
    ("five five five one two three four", "555-1234"),
    ("five five five one two three four five six seven", "(555) 123-4567"),
    ("two oh one", "201"),
    ("mister smith", "Mr. smith"),
])
def test_each_class(spoken, written):
    assert inverse_normalize(spoken) == written


@pytest.mark.parametrize("text", [
    "one of them", "a second opinion", "i want to go too", "for now", "it's a one off", "no one", "the one thing",
    "once upon a time", "at sixes and sevens", "which one am i", "you may first want to", "the doctor said",
    "one twenty", "ten fifteen", "a hundred", "seven thirty", "oh one two", "nine to five", "point five", "twenty second",
])
def test_the_rules_that_keep_words(text):
    assert inverse_normalize(text) == text


def test_whitespace_and_punctuation_around_patterns_are_kept():
    assert inverse_normalize("  paid\ttwenty dollars,  then  left ") == "  paid\t$20,  then  left "
    assert inverse_normalize("(twenty one) and \"five dollars\"") == "(21) and \"$5\""
    assert inverse_normalize("at seven p.m. today") == "at 7 p.m. today"
    # a pattern never crosses punctuation
    assert inverse_normalize("twenty, twenty") == "20, 20"
    assert inverse_normalize("five, five, five") == "five, five, five"


@pytest.mark.parametrize("text", [
    "", " ", "\n", "\t\t", "二十 one hundred", "veinte dólares", "ÉCOLE twenty", "twenty\x00one", "\x1b[31mtwenty\x1b[0m",
    "twenty\x07 dollars", "\ufeffone hundred", "\u2028seven\u2029thirty", "\ud800 twenty", "12 34 5", "$5 twenty",
])
def test_odd_input_never_fails(text):
    out = inverse_normalize(text)
    assert isinstance(out, str)
    if not any(c.isalpha() for c in text):
        assert out == text


def test_very_long_lines_take_bounded_time():
    cases = [
        ("one two three twenty one hundred and fifty dollars at seven thirty p m " * 1500)[:100_000],
        " ".join(["one"] * 50_000),  # one digit string of 50,000 digits
        " ".join(["one hundred and"] * 7000),
        "x" * 100_000,
        "a " * 50_000,
    ]
    for text in cases:
        t0 = time.process_time()
        out = inverse_normalize(text)
        assert time.process_time() - t0 < 5, text[:40]
        assert isinstance(out, str)
    assert inverse_normalize(" ".join(["one"] * 50_000)) == "1" * 50_000


def _words(text, confidences=None):
    words = text.split()
    confidences = confidences or [0.9] * len(words)
    return [Word(w, round(i * 0.5, 3), round(i * 0.5 + 0.4, 3), c) for i, (w, c) in enumerate(zip(words, confidences))]


def test_word_times_span_the_spoken_words():
    words = _words("call at seven thirty p m on june third", [0.9, 0.8, 0.7, 0.95, 0.6, 0.9, 0.99, 0.85, 0.5])
    out = inverse_normalize_words(words)
    assert [w.word for w in out] == ["call", "at", "7:30 p.m.", "on", "June 3"]
    assert out[0] is words[0] and out[3] is words[6]  # words left alone are the same objects
    t = out[2]
    assert (t.start, t.end, t.confidence) == (words[2].start, words[5].end, 0.6)  # the lowest of the four
    assert (out[4].start, out[4].end, out[4].confidence) == (words[7].start, words[8].end, 0.5)
    assert " ".join(w.word for w in out) == inverse_normalize(" ".join(w.word for w in words))


def test_word_confidence_none_and_no_words():
    words = [Word("twenty", 0.0, 0.3), Word("one", 0.3, 0.5)]
    assert inverse_normalize_words(words) == [Word("21", 0.0, 0.5, None)]
    words[1].confidence = 0.4
    assert inverse_normalize_words(words)[0].confidence == 0.4
    assert inverse_normalize_words([]) == []
    plain = _words("one of them")
    assert inverse_normalize_words(plain) == plain


def test_text_options_apply_to_results_and_utterances():
    u1 = Utterance("it costs twenty dollars", 0.0, 2.0, _words("it costs twenty dollars"))
    u2 = Utterance("one of them", 2.5, 4.0, _words("one of them"))
    result = make_result("a.wav", [u1, u2], True, 4.0)
    assert TextOptions().apply(result) is result  # off: nothing done
    out = TextOptions(itn=True).apply(result)
    assert isinstance(out, Result) and out is not result
    assert out.text == "it costs $20 one of them"
    assert [u.text for u in out.utterances] == ["it costs $20", "one of them"]
    assert [w.word for w in out.words] == ["it", "costs", "$20", "one", "of", "them"]
    assert (out.name, out.final, out.duration) == (result.name, result.final, result.duration)
    assert result.text == "it costs twenty dollars one of them"  # the input is not changed
    assert apply(u1) == Utterance("it costs $20", 0.0, 2.0, out.utterances[0].words)
    assert apply(out) == out
    no_utts = Result("b.wav", "ten dollars", [], [], True, 1.0)
    assert apply(no_utts).text == "$10"


def test_text_options_are_validated():
    with pytest.raises(ValueError, match="itn must be True or False"):
        TextOptions(itn="yes")
    with pytest.raises(ValueError):
        TextOptions(itn=1)


def test_text_options_punctuate_then_itn(punct_model):
    path = punct_model[0]
    u1 = Utterance("where is the cat", 0.0, 2.0, _words("where is the cat"))
    u2 = Utterance("tom has the key", 2.5, 4.0, _words("tom has the key"))
    result = make_result("a.wav", [u1, u2], True, 4.0)
    out = TextOptions(punctuate=True, punctuation_model=path).apply(result)
    assert [u.text for u in out.utterances] == ["Where is the cat?", "Tom has the key."]
    assert out.text == "Where is the cat? Tom has the key."
    assert [w.word for w in out.words] == "Where is the cat? Tom has the key.".split()
    assert [(w.start, w.end) for w in out.words] == [(w.start, w.end) for w in u1.words + u2.words]  # times kept
    assert result.text == "where is the cat tom has the key"  # the input is not changed
    both = TextOptions(itn=True, punctuate=True, punctuation_model=path).apply(
        Utterance("tom has twenty one of the cat", 0.0, 1.0, _words("tom has twenty one of the cat")))
    assert both.text == "Tom has 21 of the cat." and [w.word for w in both.words] == both.text.split()
    assert (both.words[2].start, both.words[2].end) == (1.0, 1.9)  # "21" spans "twenty one"
    plain = TextOptions(punctuate=True, punctuation_model=path).apply(Result("b.wav", "where is the cat", [], [], True, 1.0))
    assert plain.text == "Where is the cat?"


def test_text_options_punctuate_is_validated():
    with pytest.raises(ValueError, match="punctuate must be True or False"):
        TextOptions(punctuate="yes")
    with pytest.raises(ValueError, match="punctuation_model is given but punctuate is off"):
        TextOptions(punctuation_model="m.onnx")
    with pytest.raises(ValueError, match="punctuation_model must be a path"):
        TextOptions(punctuate=True, punctuation_model="")
    assert TextOptions(punctuate=True).punctuation_model is None


def test_punctuation_reads_the_spoken_words_before_itn(monkeypatch):
    """The tagger's vocabulary is the recognizer's words: it is given "twenty one", not "21"."""
    import asr.punctuation

    seen = []

    class Fake:
        def punctuate(self, text):
            seen.append(text)
            return text.capitalize() + "."

        def punctuate_words(self, words):
            seen.append(" ".join(w.word for w in words))
            return [Word(w.word.capitalize() if i == 0 else w.word, w.start, w.end, w.confidence) for i, w in enumerate(words)]

    monkeypatch.setattr(asr.punctuation, "default_punctuator", lambda path=None: Fake())
    opts = TextOptions(itn=True, punctuate=True)
    out = opts.apply(Utterance("twenty one cats", 0.0, 1.0, _words("twenty one cats")))
    assert seen == ["twenty one cats"] and out.text == "21 cats"
    assert opts.apply(Result("b.wav", "ten dollars", [], [], True, 1.0)).text == "$10."
    assert seen[-1] == "ten dollars"
