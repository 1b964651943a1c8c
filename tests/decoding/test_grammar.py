"""asr.decoding.grammar: phrases parsed and bounded, grammar files, words the model cannot spell
left out with a warning that names them, and the token automaton (any sequence of phrases,
[unk] for the rest) over characters, words and word pieces."""

import json
import math
import warnings

import numpy as np
import pytest

from asr.cli.lm import main as lm_main
from asr.decoding.beam_search import BeamSearchOptions, CtcBeamSearch
from asr.decoding.grammar import (
    DEAD,
    MAX_PHRASE_WORDS,
    MAX_PHRASES,
    MAX_WORDS,
    UNK_WORD,
    Grammar,
    GrammarError,
    GrammarWarning,
    parse_phrases,
    read_grammar,
)
from asr.decoding.lm import NGramLM
from asr.decoding.options import Decoder, DecodingOptions
from asr.text import BLANK, UNKNOWN_WORD, WORD_BOUNDARY, CharTokenizer, PhoneTokenizer, WordTokenizer
from tests.conftest import piece_tokenizer

CHARS = CharTokenizer([BLANK, " ", "a", "b", "c"])
WORDS = WordTokenizer([BLANK, "one", "two", "five", UNKNOWN_WORD])


def walk(g: Grammar, ids):
    """The state after ``ids`` (DEAD once a token leaves the grammar) and the words completed."""
    s, words = g.start, []
    for t in ids:
        if s == DEAD:
            break
        w = g.closes(s, t)
        if w is not None and g.row(s)[t] > -np.inf:
            words.append(w)
        s = g.next(s, t)
    return s, words


def accepts(g: Grammar, ids) -> tuple[bool, list]:
    s, words = walk(g, ids)
    if s == DEAD:
        return False, words
    last, _, ok = g.end(s)
    return ok, words + ([last] if last else [])


def test_phrases_are_normalized_deduplicated_and_bounded():
    assert parse_phrases(["Call  Tina!", "call tina", "[UNK]", "  ", "zero-one"]) == ("call tina", "[unk]", "zero one")
    assert parse_phrases(["yes [unk] please"]) == ("yes [unk] please",)
    with pytest.raises(GrammarError, match="no phrase"):
        parse_phrases(["", " ,"])
    with pytest.raises(GrammarError, match="no phrase"):
        parse_phrases([])
    with pytest.raises(GrammarError, match="one string"):
        parse_phrases("one two")
    with pytest.raises(GrammarError, match="phrase 2 is int"):
        parse_phrases(["a", 3])
    with pytest.raises(GrammarError, match=f"more than {MAX_PHRASES} phrases"):
        parse_phrases([f"w{i}" for i in range(MAX_PHRASES + 1)])
    with pytest.raises(GrammarError, match=f"phrase 1 has {MAX_PHRASE_WORDS + 1} words"):
        parse_phrases([" ".join(["a"] * (MAX_PHRASE_WORDS + 1))])
    with pytest.raises(GrammarError, match="distinct words"):
        parse_phrases([" ".join(f"w{i}x{j}" for j in range(50)) for i in range(201)])


def test_grammar_files_plain_and_json(tmp_path):
    p = tmp_path / "g.txt"
    p.write_text("# digits\nzero one\n\n  two  # a comment\n[unk]\n")
    assert read_grammar(str(p)) == ["zero one", "two", "[unk]"]
    p.write_text(json.dumps(["zero one", "[unk]"]))
    assert read_grammar(str(p)) == ["zero one", "[unk]"]
    p.write_text('["zero", ')
    with pytest.raises(GrammarError, match="g.txt: not valid JSON"):
        read_grammar(str(p))
    p.write_text('[1, 2]')
    with pytest.raises(GrammarError, match="list of strings"):
        read_grammar(str(p))


def test_words_the_model_cannot_spell_are_left_out_and_named():
    with pytest.warns(GrammarWarning, match=r"left out 2 word\(s\) this model cannot spell: 'xyz', 'zz'"):
        g = Grammar(["ab xyz", "zz", "c"], CHARS)
    assert g.dropped == ["xyz", "zz"] and g.phrases == ("ab", "c")
    # a word vocabulary with <unk> encodes any word (as <unk>): the grammar still knows "yes" is not one of its words
    with pytest.warns(GrammarWarning, match="'yes'"):
        g = Grammar(["one yes", "two"], WORDS)
    assert g.phrases == ("one", "two")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet = Grammar(["one yes"], WORDS, warn=False)  # listed, not warned (the server names them to its client)
    assert quiet.dropped == ["yes"] and "'yes'" in quiet.warning
    with pytest.raises(GrammarError, match="none of the grammar's words can be spelled.*'xyz'"):
        Grammar(["xyz"], CHARS, warn=False)
    assert Grammar(["xyz", "[unk]"], CHARS, warn=False).phrases == ("[unk]",)  # only [unk] left: everything is [unk]
    phones = PhoneTokenizer([BLANK, "AH", "B"], {"a": ["AH"]})  # an auxiliary head's phones: no word boundary
    with pytest.raises(GrammarError, match="no word-boundary unit"):
        Grammar(["a"], phones)
    with pytest.raises(GrammarError, match="unk_score"):
        Grammar(["ab"], CHARS, unk_score=float("inf"))


def test_any_sequence_of_phrases_over_characters():
    g = Grammar(["ab", "b a", "abc"], CHARS)
    enc = CHARS.encode
    for text, ok, words in [("", True, []), ("ab", True, ["ab"]), ("ab b a ab", True, ["ab", "b", "a", "ab"]),
                            ("abc ab", True, ["abc", "ab"]), (" ab  abc ", True, ["ab", "abc"]),
                            ("b", False, ["b"]), ("a", False, []), ("ab b", False, ["ab", "b"]), ("ac", False, [])]:
        ids = [CHARS.vocab.index(" ")] * text.startswith(" ") + enc(text) + [CHARS.vocab.index(" ")] * text.endswith(" ")
        got, labels = accepts(g, ids)
        assert got == ok, text
        if ok:
            assert labels == words, text
    # a word that is only a prefix of an allowed word cannot end there, nor can a phrase stop midway
    assert walk(g, enc("ac"))[0] == DEAD and walk(g, enc("b b"))[0] == DEAD


def test_unk_stands_for_any_other_spelling():
    g = Grammar(["ab", "[unk]"], CHARS, unk_score=-1.5)
    sp = CHARS.vocab.index(" ")
    ok, words = accepts(g, CHARS.encode("ab cab a ab"))
    assert ok and words == ["ab", UNK_WORD, UNK_WORD, "ab"]
    # the score of [unk] comes once per word, at the token where the spelling leaves the lexicon
    s = g.start
    scores = []
    for t in CHARS.encode("cab") + [sp] + CHARS.encode("abb") + [sp]:
        scores.append(float(g.row(s)[t]))
        s = g.next(s, t)
    assert scores == [-1.5, 0, 0, 0, 0, 0, -1.5, 0]
    # a prefix of a lexicon word closed at the end becomes [unk] then
    s, _ = walk(g, CHARS.encode("a"))
    assert g.end(s) == (UNK_WORD, -1.5, True)
    # [unk] only where the grammar allows it: inside "ab c" no other word may come
    g2 = Grammar(["ab c", "[unk]"], CHARS)
    assert accepts(g2, CHARS.encode("ab c bb"))[0] and walk(g2, CHARS.encode("ab bb"))[0] == DEAD


def test_words_units_unk_is_every_other_unit():
    g = Grammar(["one two", "[unk]"], WORDS, unk_score=2.0)
    ids = {w: WORDS.vocab.index(w) for w in ("one", "two", "five", UNKNOWN_WORD)}
    ok, words = accepts(g, [ids["five"], ids["one"], ids["two"], ids[UNKNOWN_WORD], ids["two"]])
    assert ok and words == [UNK_WORD, "one", "two", UNK_WORD, UNK_WORD]  # "two" out of its phrase is [unk] too
    assert g.row(g.start)[ids["five"]] == 2.0 and g.row(g.start)[ids["one"]] == 0.0
    after_one = g.next(g.start, ids["one"])
    assert np.isinf(g.row(after_one)[ids["five"]]) and g.next(after_one, ids["five"]) == DEAD  # mid-phrase
    assert not g.end(after_one)[2]
    plain = Grammar(["one", "two"], WORDS)
    assert plain.next(plain.start, ids["five"]) == DEAD and plain.next(plain.start, ids[UNKNOWN_WORD]) == DEAD


def test_word_pieces_spell_each_word_with_its_own_segmentation():
    pieces = piece_tokenizer(["▁the", "▁c", "at", "ut", "▁k", "▁sat", "▁at", "▁", "a", "t"])
    g = Grammar(["the cat", "sat", "[unk]"], pieces)
    ok, words = accepts(g, pieces.encode("the cat sat kut the cat"))
    assert ok and words == ["the", "cat", "sat", UNK_WORD, "the", "cat"]
    assert walk(g, pieces.encode("the kut"))[0] == DEAD  # within a phrase no [unk]
    assert walk(g, pieces.encode("the sat"))[0] == DEAD  # "the" must be followed by "cat"
    # a word cannot start with a piece that does not start a word
    assert g.next(g.start, pieces.vocab.index("at")) == DEAD
    closed = Grammar(["the cat"], pieces)
    assert walk(closed, pieces.encode("the cut"))[0] == DEAD


def test_built_states_are_bounded_between_searches():
    """States are built as a search reaches them and kept for the next utterance, until they
    pass the cap; then the cache starts over and the automaton still answers the same."""
    g = Grammar(["ab c", "ba", "[unk]"], CHARS)
    ids = CHARS.encode("ab c ba cab")
    before = accepts(g, ids)
    built = g.num_states
    assert built > 5 and not g.trim()  # far below the default cap: kept
    assert g.trim(max_cells=10) and g.num_states == 1  # only the start state again
    assert accepts(g, ids) == before and g.num_states == built


def test_a_word_list_is_one_state_between_words():
    """After any word of a word list the grammar is where it started (a phrase's last node
    leads nowhere but the root), so the states built are the lexicon's trie nodes, however
    many words a search walks: building a trie per word once made the search twice as slow."""
    g = Grammar(["ab", "abc", "ba", "c", "[unk]"], CHARS)
    words = ["ab", "abc", "ba", "c", "cab", "ab"] * 20
    ok, labels = accepts(g, CHARS.encode(" ".join(words)))
    assert ok and labels == [w if w != "cab" else UNK_WORD for w in words]
    s = g.start
    for t in CHARS.encode("abc") + [CHARS.vocab.index(" ")]:
        s = g.next(s, t)
    assert s == g.start
    assert g.num_states <= 8  # root, a, ab, abc, b, ba, c, [unk]


# --- phone models: words spelled by their pronunciations, homophones picked by the LM --------
PHONES = PhoneTokenizer([BLANK, WORD_BOUNDARY, "AA", "AE", "AH", "EY", "G", "K", "M", "OW", "T", "UW"],
                        {"to": [("T", "UW")], "two": [("T", "UW")], "cat": [("K", "AE", "T")], "go": [("G", "OW")],
                         "tomato": [("T", "AH", "M", "EY", "T", "OW"), ("T", "AH", "M", "AA", "T", "OW")]})


def _phone_posteriors(phones: str) -> np.ndarray:
    """Two frames a unit (the unit, then a blank); ``|`` is the word boundary."""
    ids = [PHONES.vocab.index(p) for p in phones.split()]
    lp = np.full((2 * len(ids), len(PHONES.vocab)), math.log(1e-4))
    for i, t in enumerate(ids):
        lp[2 * i, t] = lp[2 * i + 1, 0] = 0.0
    return lp - np.logaddexp.reduce(lp, axis=1, keepdims=True)


def test_phone_model_decodes_words_through_pronunciations(tmp_path):
    assert PHONES.decode(PHONES.encode("go to cat")) == "G OW | T UW | K AE T"
    words = Decoder(PHONES, DecodingOptions(beam_size=8))
    # every pronunciation of a word spells it; a word is closed by the boundary or the end
    assert words.search(_phone_posteriors("T AH M AA T OW"))[0].text == "tomato"
    assert words.search(_phone_posteriors("T AH M EY T OW | K AE T"))[0].text == "tomato cat"
    hyp = words.search(_phone_posteriors("G OW | K AE T"))[0]
    assert hyp.labels == [("go", 0, 1), ("cat", 3, 5)]  # token spans, boundary left out
    # without an LM a homophone is the first of its words; with one, the word the LM likes after its history
    (tmp_path / "t.txt").write_text("go two cat\n" * 5 + "to go\n")
    assert lm_main(["build", "--text", str(tmp_path / "t.txt"), "--order", "2", "--out", str(tmp_path / "lm.arpa")]) == 0
    with_lm = Decoder(PHONES, DecodingOptions(beam_size=8, lm=str(tmp_path / "lm.arpa"), alpha=1.0))
    assert with_lm.search(_phone_posteriors("G OW | T UW | K AE T"))[0].text == "go two cat"
    assert with_lm.search(_phone_posteriors("T UW | G OW"))[0].text == "to go"
    # a lexicon file adds words (and pronunciations) the model file lacks; a grammar restricts to its phrases
    (tmp_path / "lex.txt").write_text("GOAT  G OW1 T\nCOT K AA1 T\n")
    more = Decoder(PHONES, DecodingOptions(beam_size=8, lexicon=str(tmp_path / "lex.txt")))
    assert more.search(_phone_posteriors("G OW T | K AA T"))[0].text == "goat cot"
    only = Decoder(PHONES, DecodingOptions(grammar=("go cat", "[unk]"), unk_score=-1.0))
    assert only.search(_phone_posteriors("T UW | G OW | K AE T"))[0].text == "[unk] go cat"
    # greedy decoding of a phone model writes phones; an LM without words to decode into is refused
    assert Decoder(PHONES).search(_phone_posteriors("G OW | K AE T"))[0].text == "G OW | K AE T"
    with pytest.raises(ValueError, match="needs a lexicon"):
        CtcBeamSearch(PHONES, NGramLM.read_arpa(str(tmp_path / "lm.arpa"))).decode(_phone_posteriors("G OW"))


def test_a_lexicon_constrains_a_character_model_to_its_words(tmp_path):
    (tmp_path / "lex.txt").write_text("AB EY1 B IY1\nBA B AA1\n")
    d = Decoder(CHARS, DecodingOptions(beam_size=8, lexicon=str(tmp_path / "lex.txt")))
    assert set(d.grammar.phrases) == {"ab", "ba"}
    with pytest.raises(ValueError, match="beam search"):
        DecodingOptions(beam_size=0, lexicon=str(tmp_path / "lex.txt"))
    with pytest.raises(ValueError, match="file not found"):
        DecodingOptions(lexicon=str(tmp_path / "missing.txt"))
    # a lexicon grammar takes more words than a phrase list may
    many = [f"w{i}" for i in range(MAX_WORDS + 1)]
    with pytest.raises(GrammarError, match="more than"):
        Grammar(many, CHARS, warn=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GrammarWarning)
        assert Grammar.from_words(many + ["ab"], CHARS).phrases == ("ab",)


def test_lexicon_words_the_lm_does_not_know_share_its_unknown_word_probability(tmp_path):
    """Three grammar words outside the LM: each gets ln P(<unk>) - ln 3, so that together they
    have what <unk> has (a 100,000-word lexicon must not give each unseen word all of it)."""
    (tmp_path / "t.txt").write_text("ab\nab ab\n")
    assert lm_main(["build", "--text", str(tmp_path / "t.txt"), "--order", "1", "--out", str(tmp_path / "lm.arpa")]) == 0
    lm = NGramLM.read_arpa(str(tmp_path / "lm.arpa"))
    lp = np.full((4, len(CHARS.vocab)), math.log(1e-4))
    for t, c in enumerate("ba"):
        lp[2 * t, CHARS.vocab.index(c)] = lp[2 * t + 1, 0] = 0.0
    lp -= np.logaddexp.reduce(lp, axis=1, keepdims=True)
    search = CtcBeamSearch(CHARS, lm, grammar=["ab", "ba", "c", "cc"], options=BeamSearchOptions(beam_size=8, alpha=1.0))
    (hyp,) = [h for h in search.decode(lp) if h.text == "ba"]
    assert hyp.lm == pytest.approx(lm.score("<unk>", ("<s>",)) - math.log(3) + lm.score("</s>", ("ba",)))
    known = CtcBeamSearch(CHARS, lm, grammar=["ab", "ba"], options=BeamSearchOptions(beam_size=8, alpha=1.0))
    (one,) = [h for h in known.decode(lp) if h.text == "ba"]  # one unknown word: all of <unk>
    assert one.lm == pytest.approx(lm.score("<unk>", ("<s>",)) + lm.score("</s>", ("ba",)))


def test_phone_look_ahead_is_the_best_unigram_of_the_words_a_prefix_can_become(tmp_path):
    g = Grammar.from_words(["go", "gocat", "cat"], PHONES, lexicon={"gocat": [("G", "OW", "K", "AE", "T")]})
    unigram = {"go": -1.0, "gocat": -7.0, "cat": -2.0}.get
    ids = [PHONES.vocab.index(p) for p in "G OW K".split()]
    state, seen = g.start, []
    for t in ids:
        here, row = g.ahead_row(state, unigram)
        seen.append(here)
        assert row[t] == pytest.approx(g.ahead_row(g.next(state, t), unigram)[0])  # each token's next state's
        assert row[PHONES.boundary] == 0.0  # a boundary ends the word: its real LM score replaces the look-ahead
        state = g.next(state, t)
    assert seen == [0.0, -1.0, -1.0] and g.ahead_row(state, unigram)[0] == -7.0  # root, "G", "G OW", then only gocat
    # in a search the look-ahead never reaches the final score: acoustic + alpha * LM + beta * words
    (tmp_path / "t.txt").write_text("go cat\ncat go to\n")
    assert lm_main(["build", "--text", str(tmp_path / "t.txt"), "--order", "2", "--out", str(tmp_path / "lm.arpa")]) == 0
    d = Decoder(PHONES, DecodingOptions(beam_size=8, lm=str(tmp_path / "lm.arpa"), alpha=0.7, beta=0.5))
    for hyp in d.search(_phone_posteriors("G OW | K AE T | T UW"), alternatives=4):
        assert hyp.score == pytest.approx(hyp.acoustic + 0.7 * hyp.lm + 0.5 * hyp.words)
