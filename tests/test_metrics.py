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
    assert roc_auc([0.2, 0.9, 0.4], [0, 1, 0]) == 1.0  # 0/1 labels are False/True


def test_calibration_error():
    from asr.metrics import calibration_error

    # two bins: 0.9 said, 1 of 2 right (gap 0.4); 0.15 said, 0 of 2 right (gap 0.15)
    assert abs(calibration_error([0.9, 0.9, 0.15, 0.15], [True, False, False, False]) - (0.4 * 2 + 0.15 * 2) / 4) < 1e-12
    assert calibration_error([1.0, 0.0], [True, False]) == 0.0


def test_insertions_over_an_empty_reference_count():
    """Words hallucinated over silence (an empty reference) are insertions, in the corpus WER too."""
    st = error_stats(["a b", ""], ["a b", "x y"])
    assert (st.insertions, st.ref_words, st.sentence_errors) == (2, 2, 1)
    assert st.wer == 100.0 and st.cer == 100 * 3 / 3  # "x y": 3 characters inserted over "a b"
    only = error_stats([""], ["hello"])
    assert only.insertions == 1 and only.wer == float("inf")
    assert error_stats([""], [""]).wer == 0.0 and error_stats([""], [" "]).insertions == 0


def test_error_stats_counts_every_kind_of_error_in_every_utterance():
    import pytest

    st = error_stats(["a b", "", "", "c", "abc d"], ["a b e", "", "x y", "", "a d"])
    # insertions: e, x, y; deletions: c; the pair of empty texts is skipped, not the end of the count
    assert (st.substitutions, st.deletions, st.insertions, st.ref_words) == (1, 1, 3, 5)
    assert (st.num_utts, st.sentence_errors) == (5, 4) and st.wer == 100 * 5 / 5
    # characters: "a b" -> "a b e" 2 inserted; "" -> "x y" 3; "c" -> "" 1 deleted; "abc d" -> "a d" 2 deleted
    assert (st.ref_chars, st.char_errors) == (3 + 1 + 5, 2 + 3 + 1 + 2)
    assert st.cer == pytest.approx(100 * 8 / 9)
    assert error_stats(["a"], [""]).deletions == 1
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        error_stats(["a", "b"], ["a"])


def test_calibration_error_bins():
    import math

    import pytest

    from asr.metrics import calibration_error

    # ten bins of width 0.1 by default: 0.0 and 0.095 share one, 0.85 and 0.95 do not, 1.0 joins 0.9-1.0
    assert calibration_error([0.0, 0.095], [True, False]) == pytest.approx(abs(0.5 - 0.0475))
    assert calibration_error([0.85, 0.95], [True, False]) == pytest.approx((0.15 + 0.95) / 2)
    assert calibration_error([0.95, 1.0], [True, False]) == pytest.approx(abs(0.5 - 0.975))
    assert calibration_error([0.0, 0.095], [True, False], bins=20) == pytest.approx((1.0 + 0.095) / 2)
    assert math.isnan(calibration_error([], []))


def test_to_dict_has_every_count_and_rates_rounded():
    from dataclasses import asdict

    st = error_stats(["ab c d"], ["x c d"])  # 1 of 3 words, 2 of 6 characters: rates of many digits
    d = st.to_dict()
    assert set(d) == set(asdict(st))
    floats = [k for k, v in asdict(st).items() if isinstance(v, float)]
    assert len(floats) == 2
    for k, v in asdict(st).items():
        assert d[k] == (round(v, 6) if k in floats else v), k
        assert k not in floats or d[k] != v  # rounded to 6 digits
