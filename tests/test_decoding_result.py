"""Words with times from a best path, and the incremental greedy decoder of streams."""

import numpy as np

from asr.decoding.confidence import token_confidences
from asr.decoding.greedy import greedy_alignment, greedy_ids
from asr.decoding.result import CtcStreamDecoder, words_from_tokens
from asr.text import BLANK, CharTokenizer


def test_alignment_words_and_times():
    tok = CharTokenizer([BLANK, " ", "a", "b"])
    # frames: a a _ b _ ' ' _ b b a a  -> "ab ba"
    best = [2, 2, 0, 3, 0, 1, 0, 3, 3, 2, 2]
    lp = np.full((len(best), 4), -10.0, np.float32)
    lp[np.arange(len(best)), best] = 0.0
    tokens = greedy_alignment(lp)
    assert [t[0] for t in tokens] == greedy_ids(lp)
    assert tokens == [(2, 0, 1), (3, 3, 3), (1, 5, 5), (3, 7, 8), (2, 9, 10)]
    text, words = words_from_tokens(tok, tokens, 0.04, token_confidences(lp, tokens))
    assert text == "ab ba"
    assert [(w.word, w.start, w.end) for w in words] == [("ab", 0.0, 0.16), ("ba", 0.28, 0.44)]  # a word ends with its last token's run
    assert [w.confidence for w in words] == [1.0, 1.0]
    # the streaming decoder gives the same (confidences included), whatever the chunking
    dec = CtcStreamDecoder(tok, 0.04)
    for a, b in [(0, 1), (1, 4), (4, 4), (4, 11)]:
        dec.accept(lp[a:b])
    u = dec.finish_utterance()
    assert (u.text, u.start, u.end, u.words) == (text, 0.0, 0.44, words)
    assert dec.utterance_start == 11 and dec.tokens == []


def test_word_units_each_token_is_a_word():
    from asr.text import WordTokenizer

    tok = WordTokenizer([BLANK, "one", "two"])
    text, words = words_from_tokens(tok, [(1, 2, 4), (2, 7, 7)], 0.02)
    assert text == "one two"
    assert [(w.word, w.start, w.end) for w in words] == [("one", 0.04, 0.1), ("two", 0.14, 0.16)]


def test_unknown_word_unit_is_left_out_of_text_and_words():
    from asr.text import UNKNOWN_WORD, WordTokenizer

    tok = WordTokenizer([BLANK, "one", "two", UNKNOWN_WORD])
    text, words = words_from_tokens(tok, [(3, 0, 1), (1, 2, 4), (3, 5, 5), (2, 7, 7)], 0.02, confidences=[0.9, 0.8, 0.7, 0.6])
    assert text == "one two"
    assert [(w.word, w.start, w.end, w.confidence) for w in words] == [("one", 0.04, 0.1, 0.8), ("two", 0.14, 0.16, 0.6)]
