"""Words with times from a best path, and the incremental greedy decoder of streams."""

import numpy as np

from asr.decoding.confidence import token_confidences
from asr.decoding.greedy import CtcStreamDecoder, greedy_alignment, greedy_ids
from asr.decoding.options import Decoder
from asr.decoding.result import Utterance, Word, utterance_from_hypotheses, words_from_tokens
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


def test_a_word_units_split_spike_is_one_word_a_word_said_twice_two():
    """The same word unit again less than MIN_WORD_REPEAT_S (0.1 s) after its last frame is one
    word (a spike broken by blank frames); further apart, a word said twice. Greedy offline and
    streamed in chunks alike; characters are never joined."""
    from asr.decoding.result import MIN_WORD_REPEAT_S
    from asr.text import WordTokenizer

    assert MIN_WORD_REPEAT_S == 0.1
    tok = WordTokenizer([BLANK, "one", "two"])
    # at 20 ms a frame: 'one' at 2, again at 5 and 9 (2 and 3 blank frames after), then 'one' at 30 (20 blanks)
    text, words = words_from_tokens(tok, [(1, 2, 2), (1, 5, 5), (1, 9, 10), (2, 12, 12), (1, 30, 30)], 0.02,
                                    confidences=[0.6, 0.9, 0.7, 0.8, 0.5])
    assert text == "one two one"
    assert [(w.word, w.start, w.end, w.confidence) for w in words] == [("one", 0.04, 0.22, 0.9), ("two", 0.24, 0.26, 0.8),
                                                                       ("one", 0.6, 0.62, 0.5)]
    # five blank frames (0.1 s) between: two words; another word between: never joined
    assert words_from_tokens(tok, [(1, 2, 2), (1, 8, 8)], 0.02)[0] == "one one"
    assert words_from_tokens(tok, [(1, 2, 2), (2, 3, 3), (1, 4, 4)], 0.02)[0] == "one two one"
    best = [0, 1, 0, 0, 1, 0, 2, 0] + [0] * 20 + [2]
    lp = _path_scores(best, 3)
    dec = CtcStreamDecoder(tok, 0.02)
    for a in range(0, len(best), 3):
        dec.accept(lp[a : a + 3])
    assert dec.utterance(final=False).text == "one two two"
    assert utterance_from_hypotheses(tok, Decoder(tok).search(lp), lp, 0.02).text == "one two two"  # offline, greedy
    u = dec.finish_utterance()
    assert u.text == "one two two" and [w.start for w in u.words] == [0.02, 0.12, 0.56]
    # characters: a doubled letter stays doubled
    chars = CharTokenizer([BLANK, " ", "l"])
    assert words_from_tokens(chars, [(2, 0, 0), (2, 2, 2)], 0.02)[0] == "ll"


def _path_scores(best, V=4):
    lp = np.full((len(best), V), -10.0, np.float32)
    lp[np.arange(len(best)), best] = 0.0
    return lp


def test_stream_word_times_count_from_the_start_of_the_stream():
    """Two utterances in one stream, fed in chunks: the second's words (and the utterance) are
    timed from the start of the stream, greedy or re-decoded by a final decoder; the second
    starts a new token even when its first frame repeats the first utterance's last symbol."""
    tok = CharTokenizer([BLANK, " ", "a", "b"])
    first = _path_scores([2, 2, 0, 3])  # "ab": frames 0-3
    second = _path_scores([3, 0, 2, 1, 2, 2, 0])  # "ba a": frames 4-10
    want_first = [("ab", 0.0, 0.16)]
    want_second = [("ba", 0.16, 0.28), ("a", 0.32, 0.4)]
    for final in (None, Decoder(tok).search):  # the final decoder gives hypotheses (here greedy: one)
        dec = CtcStreamDecoder(tok, 0.04, final_decoder=final)
        dec.accept(first[:3])
        dec.accept(first[3:])
        u1 = dec.finish_utterance()
        for a, b in [(0, 1), (1, 5), (5, 7)]:
            dec.accept(second[a:b])
        u2 = dec.finish_utterance()
        assert [(w.word, w.start, w.end) for w in u1.words] == want_first, final
        assert [(w.word, w.start, w.end) for w in u2.words] == want_second, final
        assert (u1.text, u1.start, u1.end, u2.text, u2.start, u2.end) == ("ab", 0.0, 0.16, "ba a", 0.16, 0.44)
        assert dec.num_frames == 11 and dec.utterance_start == 11


def test_word_piece_words_and_times():
    """Over word pieces a word runs from a piece starting with "\u2581" to the last piece before the
    next one: it ends one frame after its LAST piece, and its confidence is the pieces' product."""
    from tests.conftest import piece_tokenizer

    tok = piece_tokenizer(["▁the", "▁c", "at", "▁a", "t"])
    ids = {p: i for i, p in enumerate(tok.vocab)}
    tokens = [(ids["▁the"], 0, 1), (ids["▁c"], 3, 3), (ids["at"], 4, 5), (ids["▁a"], 8, 8), (ids["t"], 10, 12)]
    text, words = words_from_tokens(tok, tokens, 0.04, [0.9, 0.8, 0.5, 1.0, 0.25])
    assert text == "the cat at"
    assert [(w.word, w.start, w.end, w.confidence) for w in words] == [
        ("the", 0.0, 0.08, 0.9), ("cat", 0.12, 0.24, 0.4), ("at", 0.32, 0.52, 0.25)]


def test_times_round_to_the_millisecond_and_runs_keep_their_first_frame():
    from asr.decoding.confidence import ConfidenceCalibration
    from asr.decoding.result import make_result
    from asr.text import WordTokenizer

    tok = CharTokenizer([BLANK, " ", "a", "b"])
    _, words = words_from_tokens(tok, [(2, 1, 2), (3, 6, 6)], 0.01234)
    assert [(w.start, w.end) for w in words] == [(0.012, 0.086)]  # 1 x 12.34 ms; 7 x 12.34 ms
    wt = WordTokenizer([BLANK, "one", "two"])
    _, words = words_from_tokens(wt, [(1, 1, 2), (2, 4, 4)], 0.01234)
    assert [(w.start, w.end) for w in words] == [(0.012, 0.037), (0.049, 0.062)]
    cal = ConfidenceCalibration(0.5, -1.0)
    dec = CtcStreamDecoder(tok, 0.01234, calibration=cal)
    dec.accept(_path_scores([0, 2, 2]))
    dec.accept(_path_scores([2, 0, 3]))  # "a" held three frames across two chunks
    assert dec.tokens == [(2, 1, 3), (3, 5, 5)]
    dec.accept(_path_scores([0]))
    u = dec.finish_utterance()  # 7 frames of 12.34 ms: 86.38 ms, rounded
    assert (u.start, u.end, u.words[0].start, u.words[0].end) == (0.0, 0.086, 0.012, 0.074)
    assert u.words[0].confidence == round(cal(1.0 * 1.0), 4)  # calibrated: the map, not the raw 1.0
    later = dec.utterance(final=False)
    assert (later.start, later.end, later.final) == (0.086, 0.086, False)
    r = make_result("talk.wav", [u], False, 1.23456, partial=Utterance("b", 0.086, 0.1, [Word("b", 0.09, 0.1)]))
    assert (r.name, r.text, r.duration, r.final) == ("talk.wav", "ab b", 1.235, False)
    assert [w.word for w in r.words] == ["ab", "b"] and len(r.utterances) == 2
