"""tools/measure_punctuation.py: its report scores the test files as asr.punctuation.evaluate
does and times 20-word sentences with ITN beside the tagger."""

import pytest

from tests.tools import load_tool


def test_the_report(punct_model, tmp_path):
    tool = load_tool("measure_punctuation")
    (tmp_path / "test_a.txt").write_text("Where is the cat? Tom has the key.\nYes, the dog is here.\n")
    (tmp_path / "test_b.txt").write_text("What did NASA see?\n")
    report = tool.measure(punct_model[0], str(tmp_path), n=10, repeat=1)
    assert set(report["scores"]) == {"test_a.txt", "test_b.txt", "all"}
    assert report["scores"]["all"]["words"] == 17 and report["scores"]["all"]["question"]["f1"] == 1.0
    assert set(report["ms_per_sentence"]) == {"tagger", "itn", "tagger_then_itn_text", "tagger_then_itn_words"}
    assert all(v > 0 for v in report["ms_per_sentence"].values())
    assert report["model_bytes"] > 0 and report["vocab"] > 2
    assert [len(s.split()) for s in tool.sentences([str(tmp_path / "test_b.txt")], "", 3)] == [20, 20, 20]
    assert tool.main(["--model", punct_model[0], "--data", str(tmp_path), "--sentences", "5", "--repeat", "1",
                      "--out", str(tmp_path / "r.json")]) == 0
    assert (tmp_path / "r.json").exists()
    with pytest.raises(FileNotFoundError, match="no test_"):
        tool.measure(punct_model[0], str(tmp_path / "none"))
