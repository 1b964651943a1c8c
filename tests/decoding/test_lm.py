import itertools
import json
import math

import pytest

from asr.cli.lm import main
from asr.decoding.lm import EOS, UNK, ArpaError, NGramLM, train_ngram


def p(lm, word, history=()):
    """Probability (not log): score() is a natural log."""
    return math.exp(lm.score(word, history))


def assert_normalized(lm, histories):
    words = sorted(w for w in lm.vocab if w != "<s>")
    for h in histories:
        total = sum(p(lm, w, h) for w in words)
        assert abs(total - 1.0) < 1e-6, (h, total)


@pytest.fixture
def bigram():
    # <s> a b </s> / <s> a c </s> / <s> b </s>, one discount D = 0.5
    return train_ngram(["a b", "a c", "b"], order=2, discount=0.5)


def test_bigram_by_hand(bigram):
    lm = bigram
    # Unigrams: continuation counts N1+(. w): a {<s>} 1, b {a,<s>} 2, c {a} 1, </s> {b,c} 2; sum 6,
    # 4 types; gamma = 0.5 * 4 / 6 = 1/3 spread over |V| = 5 words (a b c </s> <unk>).
    gamma0 = 0.5 * 4 / 6
    p1 = {"a": 0.5 / 6 + gamma0 / 5, "b": 1.5 / 6 + gamma0 / 5, "c": 0.5 / 6 + gamma0 / 5,
          EOS: 1.5 / 6 + gamma0 / 5, UNK: gamma0 / 5}
    assert p1["a"] == pytest.approx(9 / 60) and p1[UNK] == pytest.approx(4 / 60)
    for w, expected in p1.items():
        assert p(lm, w) == pytest.approx(expected, abs=1e-12)
    # Bigrams (highest order: raw counts). Context a: b 1, c 1 -> gamma(a) = 0.5 * 2 / 2.
    assert p(lm, "b", ["a"]) == pytest.approx(0.5 / 2 + 0.5 * p1["b"], abs=1e-12)  # 49/120
    # Context <s>: a 2, b 1 -> gamma(<s>) = 0.5 * 2 / 3.
    assert p(lm, "a", ["<s>"]) == pytest.approx(1.5 / 3 + (1 / 3) * p1["a"], abs=1e-12)  # 0.55
    assert p(lm, "b", ["<s>"]) == pytest.approx(0.5 / 3 + (1 / 3) * p1["b"], abs=1e-12)  # 49/180
    # Backoff: (a, a) unseen -> gamma(a) * p(a).
    assert p(lm, "a", ["a"]) == pytest.approx(0.5 * p1["a"], abs=1e-12)  # 9/120
    # c never a context (only c </s>): gamma(c) = 0.5 * 1 / 1; b after c unseen.
    assert p(lm, "b", ["c"]) == pytest.approx(0.5 * p1["b"], abs=1e-12)
    # Sentence: p(a|<s>) p(b|a) p(</s>|b); context b: </s> 2 -> gamma(b) = 0.5 * 1 / 2.
    expected = (1.5 / 3 + p1["a"] / 3) * (0.25 + 0.5 * p1["b"]) * (1.5 / 2 + 0.25 * p1[EOS])
    assert math.exp(lm.sentence_score("a b")) == pytest.approx(expected, abs=1e-12)
    assert lm.sentence_score(["a", "b"]) == lm.sentence_score("a b")


def test_trigram_by_hand():
    # <s> a b c </s> / <s> b c </s> / <s> a b d </s>, D = 0.5
    lm = train_ngram(["a b c", "b c", "a b d"], order=3, discount=0.5)
    # Unigram continuation counts: a 1, b 2 (a, <s>), c 1, d 1, </s> 2 (c, d): sum 7, 5 types;
    # |V| = 6 (a b c d </s> <unk>).
    g0 = 0.5 * 5 / 7
    p1 = {"a": 0.5 / 7 + g0 / 6, "b": 1.5 / 7 + g0 / 6, "c": 0.5 / 7 + g0 / 6, "d": 0.5 / 7 + g0 / 6}
    # Middle order, adjusted counts: (b c) continuation {a, <s>} = 2, (b d) {a} = 1 -> S(b) = 3,
    # gamma(b) = 0.5 * 2 / 3; (<s> a) and (<s> b) keep their raw counts 2 and 1.
    p2_c_b = 1.5 / 3 + (1 / 3) * p1["c"]
    p2_d_b = 0.5 / 3 + (1 / 3) * p1["d"]
    assert p(lm, "c", ["b"]) == pytest.approx(p2_c_b, abs=1e-12)  # 137/252
    assert p(lm, "d", ["b"]) == pytest.approx(p2_d_b, abs=1e-12)  # 53/252
    assert p(lm, "b", ["<s>"]) == pytest.approx(0.5 / 3 + (1 / 3) * p1["b"], abs=1e-12)  # 65/252
    # Trigram context (a b): c 1, d 1 (raw) -> gamma = 0.5 * 2 / 2.
    assert p(lm, "c", ["a", "b"]) == pytest.approx(0.5 / 2 + 0.5 * p2_c_b, abs=1e-12)  # 263/504
    # Backoff one level: (<s> b) only saw c -> gamma(<s> b) = 0.5 * 1 / 1; (<s> b d) unseen.
    assert p(lm, "d", ["<s>", "b"]) == pytest.approx(0.5 * p2_d_b, abs=1e-12)  # 53/504
    # Backoff two levels: (c b) never a context (weight 1), (b a) unseen -> gamma(b) * p(a).
    assert p(lm, "a", ["c", "b"]) == pytest.approx((1 / 3) * p1["a"], abs=1e-12)  # 11/252
    # A longer history than the order is truncated.
    assert lm.score("c", ["x", "y", "a", "b"]) == lm.score("c", ["a", "b"])


def test_normalized_for_every_history():
    corpus = ["the cat sat on the mat", "the dog sat", "a cat and a dog", "the mat", "dog sat on a cat", "on the mat sat the cat"]
    for order, discount in [(1, None), (2, None), (3, None), (3, 0.7), (4, [0.3, 0.5, 0.6, 0.8])]:
        lm = train_ngram(corpus, order=order, discount=discount)
        words = sorted(lm.vocab | {"zebra"})
        histories = [()] + [(w,) for w in words] + list(itertools.product(["<s>", "the", "cat", "zebra"], words))
        assert_normalized(lm, histories)


def test_unk_handling(bigram):
    lm = bigram
    assert UNK in lm.vocab and "zebra" not in lm.vocab
    assert lm.score("zebra", ["a"]) == lm.score(UNK, ["a"])
    assert p(lm, "zebra", ["a"]) == pytest.approx(0.5 * 4 / 60, abs=1e-12)  # gamma(a) * p(<unk>)
    # An unknown history word is <unk>, never a context here: plain unigram.
    assert lm.score("b", ["zebra"]) == lm.score("b", [UNK]) == lm.score("b")
    assert lm.score("<s>") == pytest.approx(-99 * math.log(10))  # never predicted
    assert lm.score("<s>", ["a"]) < -99 * math.log(10) + 1


def test_vocab_restriction_maps_to_unk():
    lm = train_ngram(["a b", "a q", "q q b"], order=2, discount=0.5, vocab=["a", "b", "z"])
    assert lm.vocab == {"<s>", "</s>", "<unk>", "a", "b", "z"}
    assert lm.score("q", ["a"]) == lm.score(UNK, ["a"])
    assert p(lm, UNK, ["a"]) > p(lm, "z", ["a"]) > 0  # <unk> was seen (as q), z never
    assert_normalized(lm, [(), ("a",), ("<unk>",), ("z",)])


def test_arpa_round_trip(tmp_path):
    lm = train_ngram(["the cat sat", "the dog sat down", "a cat", "the cat sat down"], order=3)
    path = tmp_path / "lm.arpa"
    lm.write_arpa(path)
    text = path.read_text().splitlines()
    assert text[0] == "\\data\\" and text[-1] == "\\end\\"
    assert [line for line in text if line.startswith("ngram ")] == [f"ngram {k}={n}" for k, n in enumerate(lm.counts(), 1)]
    assert "\\1-grams:" in text and "\\3-grams:" in text
    assert any(line.split("\t")[:2] == ["-99.0", "<s>"] for line in text)
    back = NGramLM.read_arpa(path)
    assert back.order == 3 and back.vocab == lm.vocab
    assert back.probs == lm.probs and back.backoffs == lm.backoffs
    words = sorted(lm.vocab | {"zebra"})
    for h in itertools.product(words, repeat=2):
        for w in words:
            assert back.score(w, h) == lm.score(w, h)
    assert back.sentence_score("the cat sat down") == lm.sentence_score("the cat sat down")


def test_read_arpa_errors(tmp_path):
    bad = tmp_path / "bad.arpa"
    bad.write_text("\\data\\\nngram 1=2\n\n\\1-grams:\n-0.3\ta\n-0.3\tb\n")
    with pytest.raises(ArpaError, match="end"):
        NGramLM.read_arpa(bad)
    bad.write_text("\\data\\\nngram 1=3\n\n\\1-grams:\n-0.3\ta\n-0.3\tb\n\n\\end\\\n")
    with pytest.raises(ArpaError, match="declares 3 1-grams"):
        NGramLM.read_arpa(bad)
    bad.write_text("\\data\\\nngram 1=1\n\n\\1-grams:\nx\ta\n\n\\end\\\n")
    with pytest.raises(ArpaError, match=r"bad.arpa:5"):
        NGramLM.read_arpa(bad)


def test_read_arpa_without_unk(tmp_path):
    path = tmp_path / "min.arpa"
    path.write_text("\\data\\\nngram 1=3\n\n\\1-grams:\n-0.30103\t</s>\n-99\t<s>\n-0.30103\ta\n\n\\end\\\n")
    lm = NGramLM.read_arpa(path)
    assert math.exp(lm.score("a", ["<s>"])) == pytest.approx(0.5, rel=1e-5)
    assert lm.score("zebra") == pytest.approx(-100 * math.log(10))
    row = lm.score_row(("a", "zebra", "</s>"), ["<s>"])
    assert row.tolist() == [lm.score(w, ["<s>"]) for w in ("a", "zebra", "</s>")]


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_score_row_is_score_for_every_word(order):
    """The beam search's per-history rows: the same floats as score(), word by word, for
    in-vocabulary, unknown and repeated words after every kind of history."""
    corpus = ["the cat sat on the mat", "the dog sat", "a cat and a dog", "the mat", "dog sat on a cat"]
    lm = train_ngram(corpus, order=order, discount=0.6)
    words = tuple(sorted(lm.vocab)) + ("zebra", "yak", "the")
    histories = [(), ("<s>",), ("zebra",), ("the", "zebra", "cat"), ("<s>", "the", "cat", "sat", "on")]
    histories += list(itertools.product(["<s>", "the", "cat"], ["dog", "mat", "zebra"]))
    for h in histories:
        assert lm.score_row(words, h).tolist() == [lm.score(w, h) for w in words], h
    assert lm.score_row(["cat", "zebra"], ["the"]).tolist() == [lm.score("cat", ["the"]), lm.score("zebra", ["the"])]


def test_build_command(tmp_path, capsys):
    text = tmp_path / "corpus.txt"
    text.write_text("Hello, World!\n\nthe cat sat\nThe CAT sat down.\n")
    out = tmp_path / "a.arpa"
    assert main(["build", "--text", str(text), "--order", "2", "--out", str(out)]) == 0
    lm = NGramLM.read_arpa(out)
    assert lm.order == 2 and {"hello", "world", "cat", "down"} <= lm.vocab
    assert_normalized(lm, [(), ("<s>",), ("the",), ("cat",)])

    manifest = tmp_path / "train.jsonl"
    rows = [{"audio_filepath": "x.wav", "duration": 1.0, "text": t} for t in ["Zero", "one two", "ONE"]]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out2 = tmp_path / "b.arpa"
    assert main(["build", "--manifest", str(manifest), "--order", "3", "--out", str(out2)]) == 0
    lm2 = NGramLM.read_arpa(out2)
    assert lm2.order == 3 and lm2.vocab == {"<s>", "</s>", "<unk>", "zero", "one", "two"}
    assert main(["ppl", "--lm", str(out2), "--manifest", str(manifest)]) == 0
    assert "perplexity" in capsys.readouterr().out

    manifest.write_text(json.dumps(rows[0]) + "\nnot json\n")
    assert main(["build", "--manifest", str(manifest), "--out", str(out2)]) == 1
    assert "train.jsonl:2" in capsys.readouterr().err


def test_read_gzipped_arpa(tmp_path):
    import gzip

    lm = train_ngram(["the cat sat", "a cat"], order=2)
    lm.write_arpa(tmp_path / "lm.arpa")
    with open(tmp_path / "lm.arpa", "rb") as src, gzip.open(tmp_path / "lm.arpa.gz", "wb") as dst:
        dst.write(src.read())
    back = NGramLM.read_arpa(tmp_path / "lm.arpa.gz")
    assert back.probs == lm.probs and back.backoffs == lm.backoffs


def test_character_model(tmp_path, capsys):
    from asr.decoding.lm import SPACE, char_tokens

    assert char_tokens("it's a") == ["i", "t", "'", "s", SPACE, "a"]
    text = tmp_path / "corpus.txt"
    text.write_text("the cat\nthe hat\n")
    out = tmp_path / "c.arpa"
    assert main(["build", "--text", str(text), "--units", "char", "--order", "4", "--out", str(out)]) == 0
    lm = NGramLM.read_arpa(out)
    assert lm.order == 4 and lm.vocab == {"<s>", "</s>", "<unk>", SPACE, "t", "h", "e", "c", "a"}
    assert_normalized(lm, [(), ("<s>",), ("t", "h"), ("e", SPACE)])
    # "the " was always followed by c or h
    assert lm.score("c", ("h", "e", SPACE)) > lm.score("t", ("h", "e", SPACE))
    capsys.readouterr()
    assert main(["ppl", "--lm", str(out), "--units", "char", "--text", str(text)]) == 0
    assert "16 characters (with </s>), 0 OOV" in capsys.readouterr().out


def test_write_arpa_is_atomic(tmp_path, disk_full):
    """A crash while writing (here: the disk fills up halfway) leaves the previous ARPA file
    whole, not a truncated one that a later decode would read; no temporary file is left."""
    import os

    path = tmp_path / "lm.arpa"
    old = train_ngram(["a b", "b a"], order=2)
    old.write_arpa(path)
    before = path.read_text()
    new = train_ngram(["the cat sat", "the dog sat down", "a cat"], order=3)
    lift = disk_full("lm.arpa", after=100)
    with pytest.raises(OSError, match="No space"):
        new.write_arpa(path)
    lift()
    assert path.read_text() == before
    assert os.listdir(tmp_path) == ["lm.arpa"]
    new.write_arpa(path)
    assert NGramLM.read_arpa(path).probs == new.probs


def test_write_arpa_fsyncs_before_the_rename(tmp_path, monkeypatch):
    import os

    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))), real_fsync(fd)))
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("replace", os.path.abspath(a))), real_replace(a, b)))
    train_ngram(["a b"], order=2).write_arpa(tmp_path / "lm.arpa")
    (rename,) = [e for e in events if e[0] == "replace"]
    assert os.path.dirname(rename[1]) == str(tmp_path) and ("fsync", rename[1]) in events[: events.index(rename)]


def test_estimated_discounts_by_hand():
    """D_k = n1 / (n1 + 2 n2) over the adjusted counts of order k (0.5 when n1 or n2 is 0)."""
    lm = train_ngram(["a b", "a c", "b"], order=2)  # the bigram fixture's corpus, discounts estimated
    # unigrams (continuation counts): a 1, b 2, c 1, </s> 2 -> n1 = 2, n2 = 2, D1 = 2 / 6 = 1/3;
    # gamma() = 1/3 * 4 types / 6 = 2/9 spread over 5 words
    assert p(lm, "a") == pytest.approx((1 - 1 / 3) / 6 + (2 / 9) / 5, abs=1e-12)  # 7/45
    assert p(lm, "b") == pytest.approx((2 - 1 / 3) / 6 + (2 / 9) / 5, abs=1e-12)  # 29/90
    # bigrams (raw): <s> a 2, a b 1, b </s> 2, a c 1, c </s> 1, <s> b 1 -> n1 = 4, n2 = 2, D2 = 4 / 8;
    # context a: b 1, c 1 -> gamma(a) = 0.5 * 2 / 2
    assert p(lm, "b", ["a"]) == pytest.approx((1 - 0.5) / 2 + 0.5 * 29 / 90, abs=1e-12)  # 37/90
    # no count of 2: D = 0.5; unigrams a 1, b 1, </s> 1, gamma() = 0.5 * 3 / 3 over 4 words
    assert p(train_ngram(["a b"], order=1), "a") == pytest.approx(0.5 / 3 + 0.5 / 4, abs=1e-12)


def test_unknown_words_use_the_unk_ngrams_in_word_and_history():
    # trained with a vocabulary, q is <unk>: "<unk> b" and "a <unk>" are real bigrams here
    lm = train_ngram(["a b", "a q", "q q b"], order=2, discount=0.5, vocab=["a", "b", "z"])
    assert ("<unk>", "b") in lm.probs and ("a", "<unk>") in lm.probs
    assert lm.score("b", ["zebra"]) == lm.score("b", [UNK]) != lm.score("b")  # an unknown history word is <unk>
    words = ["b", "zebra", "q", "a"]
    for h in ([], ["a"], ["zebra"], ["<s>", "q"]):
        assert lm.score_row(words, h).tolist() == [lm.score(w, h) for w in words], h


def test_training_defaults_and_sentences():
    corpus = ["a b c", "", "b c", "c a b"]  # an empty sentence is skipped, not the end of the corpus
    lm = train_ngram(corpus)
    assert lm.order == 3 and lm.counts()[2] > 0
    assert lm.probs == train_ngram([s for s in corpus if s]).probs
    assert ("c", "a") in lm.probs  # from the sentence after the empty one
    with pytest.raises(ValueError, match="^order must be >= 1, got 0$"):
        train_ngram(corpus, order=0)


def test_sentence_score_flags_and_perplexity(bigram):
    lm = bigram
    assert lm.sentence_score("a b") == pytest.approx(lm.score("a", ["<s>"]) + lm.score("b", ["<s>", "a"])
                                                     + lm.score(EOS, ["a", "b"]))
    assert lm.sentence_score("a b", bos=False) == pytest.approx(lm.score("a") + lm.score("b", ["a"]) + lm.score(EOS, ["b"]))
    assert lm.sentence_score("a b", eos=False) == pytest.approx(lm.score("a", ["<s>"]) + lm.score("b", ["a"]))
    sentences = ["a b", "b", "a c"]
    total = sum(lm.sentence_score(s) for s in sentences)
    assert lm.perplexity(sentences) == pytest.approx(math.exp(-total / (2 + 1 + 2 + 3)))  # words and one </s> each
    assert lm.perplexity([]) == 1.0


def test_read_arpa_comments_before_data_and_every_error_named(tmp_path):
    good = "\\data\\\nngram 1=3\n\n\\1-grams:\n-0.30103\t</s>\n-99\t<s>\n-0.30103\ta\n\n\\end\\\n"
    path = tmp_path / "lm.arpa"
    path.write_text("# made by hand\nsome tool header\n\n" + good)
    assert NGramLM.read_arpa(path).counts() == [3]
    cases = [
        ("", "no \\data\\ section"),
        (good.replace("\\1-grams:", "\\x-grams:"), "4: bad section header '\\\\x-grams:'"),
        (good.replace("\\1-grams:", "\\2-grams:"), "4: section '\\\\2-grams:' not declared in \\data\\"),
        (good.replace("ngram 1=3", "ngrams 1=3"), "2: expected 'ngram N=count' in \\data\\, got 'ngrams 1=3'"),
        (good.replace("ngram 1=3", "ngram 1=three"), "2: bad count line 'ngram 1=three'"),
        (good.replace("-0.30103\ta", "-0.30103\ta\tb\tc"), "7: a 1-gram line needs log10 prob, 1 words and an optional backoff"),
        (good.replace("ngram 1=3", "ngram 1=2"), "\\data\\ declares 2 1-grams, the file has 3"),
    ]
    for text, why in cases:
        path.write_text(text)
        with pytest.raises(ArpaError) as err:
            NGramLM.read_arpa(path)
        assert str(err.value).startswith(f"{path}") and why in str(err.value), (why, str(err.value))


def test_discounts_per_order_their_bounds_and_an_empty_corpus():
    # one discount per order, unigrams first: D1 = 0.5 for the unigrams, D2 = 0.25 for the bigrams
    lm = train_ngram(["a b", "a c", "b"], order=2, discount=[0.5, 0.25])
    p1_b = 1.5 / 6 + (0.5 * 4 / 6) / 5  # as in test_bigram_by_hand
    assert p(lm, "b") == pytest.approx(p1_b, abs=1e-12)
    assert p(lm, "b", ["a"]) == pytest.approx((1 - 0.25) / 2 + (0.25 * 2 / 2) * p1_b, abs=1e-12)
    train_ngram(["a b"], order=2, discount=1.0)  # 1 is allowed
    for bad in (0.0, 1.5, [0.5, 0.0]):
        with pytest.raises(ValueError, match=r"^discounts must be in \(0, 1\], got \["):
            train_ngram(["a b"], order=2, discount=bad)
    with pytest.raises(ValueError, match="^3 discounts given for an order-2 model$"):
        train_ngram(["a b"], order=2, discount=[0.5, 0.5, 0.5])
    empty = train_ngram([], order=2)  # nothing to learn from: uniform over </s> and <unk>
    assert p(empty, EOS) == pytest.approx(0.5) and p(empty, "anything") == pytest.approx(0.5)
