"""Greedy CTC decoding: repeats merged, blanks dropped, batches cut at their lengths."""

import numpy as np

from asr.decoding.greedy import greedy_decode, greedy_ids


def one_hot_path(path, vocab=4):
    lp = np.full((len(path), vocab), -10.0)
    lp[np.arange(len(path)), path] = 0.0
    return lp


def test_greedy_merges_repeats_and_drops_blanks():
    assert greedy_ids(one_hot_path([0, 1, 1, 0, 1, 2, 2, 0, 0, 3])) == [1, 1, 2, 3]
    assert greedy_ids(one_hot_path([0, 0, 0])) == []
    assert greedy_ids(np.zeros((0, 4))) == []


def test_greedy_batch_respects_lengths():
    a = one_hot_path([1, 2, 3, 3])
    b = one_hot_path([2, 0, 2, 1])
    batch = np.stack([a, b])
    assert greedy_decode(batch, [4, 3]) == [[1, 2, 3], [2, 2]]


def test_another_blank_id():
    lp = one_hot_path([3, 0, 0, 3, 1, 1, 3])  # blank 3: token 0 is a token like any other
    assert greedy_ids(lp, blank=3) == [0, 1]
    assert greedy_decode(np.stack([lp, lp]), [7, 3], blank=3) == [[0, 1], [0]]


def test_stream_decoder_equals_the_whole_in_any_chunks():
    """The same scores fed whole and in random chunk sizes (empty ones too) give the offline best
    path's tokens, frames and confidences exactly: one run-merging rule, one token confidence."""
    from asr.decoding.confidence import token_confidences
    from asr.decoding.greedy import CtcStreamDecoder, greedy_alignment
    from asr.text import BLANK, CharTokenizer

    tok = CharTokenizer([BLANK, " ", "a", "b"])
    rng = np.random.default_rng(0)
    for trial in range(40):
        blank = 0 if trial % 2 else 3  # the blank another id: symbol 0 a token like any other
        runs = rng.integers(0, 4, size=rng.integers(0, 30))
        best = np.repeat(runs, rng.integers(1, 5, size=runs.size))  # runs that cross chunk borders
        logits = rng.normal(size=(best.size, 4))
        logits[np.arange(best.size), best] += 3.0  # each frame's best symbol, at varying heights
        lp = (logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))).astype(np.float32)
        path = greedy_alignment(lp, blank)
        dec, a = CtcStreamDecoder(tok, 0.04, blank=blank), 0
        while a < best.size:
            b = a + int(rng.integers(0, 6))
            dec.accept(lp[a:b])
            a = b
        dec.accept(lp[a:a])
        assert dec.tokens == path, trial
        assert dec.token_scores == token_confidences(lp, path), trial
        assert dec.num_frames == best.size
