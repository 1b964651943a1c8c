"""WER and CER with their error counts."""

from asr.metrics import error_stats


def test_error_stats():
    st = error_stats(["one two three", "four"], ["one too three", "four five"])
    assert (st.substitutions, st.deletions, st.insertions, st.ref_words) == (1, 0, 1, 4)
    assert st.wer_percent == 50.0 and st.sentence_errors == 2
    assert abs(st.cer_percent - 100 * 6 / 17) < 1e-9
    perfect = error_stats(["a b"], ["a b"])
    assert perfect.wer_percent == 0.0 and perfect.cer_percent == 0.0
    dele = error_stats(["a b c"], [""])
    assert dele.deletions == 3 and dele.wer_percent == 100.0


def test_rates_say_their_unit():
    """JSON and Python said "wer": 0.67 for 0.67%, a name that reads as a fraction (67%)."""
    import pytest

    st = error_stats(["a b c"], ["a x c"])
    d = st.to_dict()
    assert d["wer_percent"] == pytest.approx(100 / 3, abs=1e-5) and "wer" not in d and "cer" not in d
    assert d["cer_percent"] == st.cer_percent
    with pytest.deprecated_call(match="wer_percent"):
        assert st.wer == st.wer_percent  # the old name still reads, and says what to use


def test_word_hits_follow_the_edit_alignment():
    from asr.metrics import word_hits

    assert word_hits("the cat sat".split(), "the bat sat down".split()) == [True, False, True, False]
    assert word_hits([], ["a"]) == [False] and word_hits(["a"], []) == []


def test_roc_auc_counts_ties_half_like_the_pairwise_definition():
    import numpy as np

    from asr.metrics import roc_auc

    rng = np.random.default_rng(0)
    s = rng.integers(0, 5, 60) / 4  # many ties
    y = rng.random(60) < 0.3 + 0.4 * s
    pos, neg = s[y], s[~y]
    pairwise = np.mean([(a > b) + 0.5 * (a == b) for a in pos for b in neg])
    assert abs(roc_auc(s, y) - pairwise) < 1e-12
    assert roc_auc([0.1, 0.9], [False, True]) == 1.0 and roc_auc([0.9, 0.1], [False, True]) == 0.0
    assert np.isnan(roc_auc([0.5, 0.6], [True, True]))


def test_calibration_error():
    from asr.metrics import calibration_error

    # two bins: 0.9 said, 1 of 2 right (gap 0.4); 0.15 said, 0 of 2 right (gap 0.15)
    assert abs(calibration_error([0.9, 0.9, 0.15, 0.15], [True, False, False, False]) - (0.4 * 2 + 0.15 * 2) / 4) < 1e-12
    assert calibration_error([1.0, 0.0], [True, False]) == 0.0
