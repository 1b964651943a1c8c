"""Word confidence: the peak posterior of each token, their product over a word's tokens."""

import numpy as np

from asr.decoding.beam_search import beam_search
from asr.decoding.confidence import token_confidences, word_confidence
from asr.decoding.greedy import CtcStreamDecoder, greedy_alignment
from asr.decoding.result import words_from_tokens
from asr.text import BLANK, CharTokenizer

TOK = CharTokenizer([BLANK, " ", "a", "b"])


def _scores(rows):
    """Rows of probabilities (blank, space, a, b) -> log-probabilities."""
    p = np.maximum(np.asarray(rows, np.float64), 1e-12)
    return np.log(p / p.sum(axis=1, keepdims=True)).astype(np.float32)


LP = _scores([
    [0.1, 0.0, 0.8, 0.1],   # a, sure
    [0.4, 0.0, 0.55, 0.05],  # a again (weaker): the peak is 0.8
    [0.9, 0.0, 0.05, 0.05],
    [0.3, 0.0, 0.1, 0.6],   # b, doubtful
    [0.1, 0.8, 0.05, 0.05],  # space
    [0.05, 0.0, 0.9, 0.05],  # a
])


def test_peak_posterior_per_token_and_product_per_word():
    path = greedy_alignment(LP)
    assert path == [(2, 0, 1), (3, 3, 3), (1, 4, 4), (2, 5, 5)]
    conf = token_confidences(LP, path)
    np.testing.assert_allclose(conf, [0.8, 0.6, 0.8, 0.9], atol=1e-5)
    text, words = words_from_tokens(TOK, path, 0.04, conf)
    assert text == "ab a"
    assert [(w.word, w.confidence) for w in words] == [("ab", 0.48), ("a", 0.9)]
    assert word_confidence([]) == 0.0
    # without scores, no confidence (the field's default)
    assert [w.confidence for w in words_from_tokens(TOK, path, 0.04)[1]] == [None, None]


def test_stream_decoder_confidence_equals_offline_whatever_the_chunks():
    path = greedy_alignment(LP)
    _, words = words_from_tokens(TOK, path, 0.04, token_confidences(LP, path))
    for cuts in ([1, 3, 6], [6], [2, 4, 5, 6]):
        dec, a = CtcStreamDecoder(TOK, 0.04), 0
        for b in cuts:
            dec.accept(LP[a:b])
            a = b
        assert dec.finish_utterance().words == words


def test_beam_alignment_gets_confidence_too():
    (best, *_) = beam_search(LP.astype(np.float64), TOK, beam_size=4)
    conf = token_confidences(LP, best.alignment)
    assert len(conf) == len(best.alignment) and all(0.0 < c <= 1.0 for c in conf)
    # a stream whose final decoding is a beam search scores its alignment the same way
    dec = CtcStreamDecoder(TOK, 0.04, final_decoder=lambda lp: beam_search(lp.astype(np.float64), TOK, beam_size=4))
    dec.accept(LP[:3])
    dec.accept(LP[3:])
    utt = dec.finish_utterance()
    assert [w.confidence for w in utt.words] == [w.confidence for w in words_from_tokens(TOK, best.alignment, 0.04, conf)[1]]


def test_token_confidence_with_an_offset_and_calibrated_words():
    from asr.decoding.confidence import ConfidenceCalibration

    # the scores of frames 10-15 of a stream: the path numbers frames from the stream's start
    path = [(2, 10, 11), (3, 13, 13), (1, 14, 14), (2, 15, 15)]
    np.testing.assert_allclose(token_confidences(LP, path, offset=10), [0.8, 0.6, 0.8, 0.9], atol=1e-5)
    # a token's frames partly outside the scores count where they are; wholly outside: 0
    np.testing.assert_allclose(token_confidences(LP, [(2, 8, 10), (3, 16, 18)], offset=10), [0.8, 0.0], atol=1e-5)
    np.testing.assert_allclose(token_confidences(LP, [(2, 4, 6)]), [0.9], atol=1e-5)  # the last frames
    np.testing.assert_allclose(token_confidences(LP, [(2, 4, 4)]), [0.05], atol=1e-5)  # its own frames only
    cal = ConfidenceCalibration(0.5, -1.0)
    assert word_confidence([0.8, 0.6], cal) == round(cal(0.48), 4) != 0.48
    assert word_confidence([0.123456]) == 0.1235  # 4 digits
    from asr.text import WordTokenizer

    words = WordTokenizer([BLANK, "one", "two"])
    _, got = words_from_tokens(words, [(1, 0, 1), (2, 3, 3)], 0.04, [0.8, 0.6], cal)
    assert [w.confidence for w in got] == [round(cal(0.8), 4), round(cal(0.6), 4)]
    _, got = words_from_tokens(TOK, [(2, 0, 1), (3, 3, 3)], 0.04, [0.8, 0.6], cal)
    assert [w.confidence for w in got] == [round(cal(0.48), 4)]
