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
