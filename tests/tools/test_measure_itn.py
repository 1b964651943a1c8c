"""tools/measure_itn.py: its report says what the ITN tests hold (every pair right or counted
wrong, no ordinary sentence changed) and times 20-word sentences."""

from tests.tools import TOOLS, load_tool


def test_the_report(tmp_path):
    tool = load_tool("measure_itn")
    data = TOOLS.parent / "tests" / "data"
    report = tool.measure(str(data / "itn_pairs.tsv"), str(data / "itn_ordinary.txt"), n=20, repeat=1)
    assert report["pairs"] >= 300 and report["exact_match_percent"] >= 95
    assert len(report["wrong"]) == round(report["pairs"] * (100 - report["exact_match_percent"]) / 100)
    assert report["ordinary_sentences"] >= 200 and report["ordinary_changed"] == []
    assert set(report["ms_per_sentence"]) == {"mixed", "numbers", "ordinary"}
    assert all(v > 0 for v in report["ms_per_sentence"].values())
    assert [len(s.split()) for s in tool.sentences(["one two three", "four"], 3)] == [20, 20, 20]
    assert tool.main(["--sentences", "5", "--repeat", "1", "--out", str(tmp_path / "r.json")]) == 0
    assert (tmp_path / "r.json").exists()
