"""WER and CER with their error counts."""

from asr.metrics import error_stats


def test_error_stats():
    st = error_stats(["one two three", "four"], ["one too three", "four five"])
    assert (st.substitutions, st.deletions, st.insertions, st.ref_words) == (1, 0, 1, 4)
    assert st.wer == 50.0 and st.sentence_errors == 2
    assert abs(st.cer - 100 * 6 / 17) < 1e-9
    perfect = error_stats(["a b"], ["a b"])
    assert perfect.wer == 0.0 and perfect.cer == 0.0
    dele = error_stats(["a b c"], [""])
    assert dele.deletions == 3 and dele.wer == 100.0
