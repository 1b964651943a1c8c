"""asr.corpora.wordnet: WordNet's full-sentence examples as text for asr synth."""

import json

import pytest

from asr.corpora.wordnet import example_sentences, prepare_text

# the layout of WordNet's data files: a license header of lines starting with spaces, then one
# synset a line, "... | gloss; "example"; "example"" (a backslash at a line's end continues the line)
DATA_VERB = """  1 This software and database is being provided to you, the LICENSEE, by "Princeton" University
00001740 29 v 04 breathe 0 | draw air into, and expel out of, the lungs; "I can breathe better when the air is clean"; \
"The patient is breathing"
00002084 29 v 01 respire 0 | undergo the biomedical process; "fly a kite"; "The Mayor's dog barked at 3 a.m."
00002325 29 v 01 choke 0 | breathe with great difficulty; "The child choked on the smoke from the burning house"; \
"I can breathe better when the air is clean"
00002600 29 v 01 hyperventilate 0 | breathe excessively hard and fast; \
"He was hyperventilating and running about in the big old house near the river bank"
00002700 29 v 01 caf 0 | a line without examples
"""
DATA_NOUN = """00001000 03 n 01 entity 0 | that which exists; "Café au lait is a drink"; "Zebras run"
"""


@pytest.fixture
def wordnet_dir(tmp_path):
    (tmp_path / "data.verb").write_text(DATA_VERB)
    (tmp_path / "data.noun").write_text(DATA_NOUN)
    return str(tmp_path)


def test_full_sentences_only_normalized_unique_and_bounded(wordnet_dir):
    got = example_sentences(wordnet_dir)
    # data.noun first: "cafe au lait is a drink" (accents stripped); "zebras run" is too short;
    # "fly a kite" is a phrase; the 3 a.m. sentence has digits; the river sentence is too long;
    # the repeated sentence comes once; the header's quote is not an example
    assert got == ["cafe au lait is a drink", "i can breathe better when the air is clean", "the patient is breathing",
                   "the child choked on the smoke from the burning house"]
    assert "zebras run" in example_sentences(wordnet_dir, min_words=2)
    assert "the mayor's dog barked at 3 a m" in example_sentences(wordnet_dir, alphabet=None)
    assert "the patient is breathing" not in example_sentences(wordnet_dir, exclude=["The patient is breathing!"])


def test_missing_wordnet_names_the_package(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install wordnet-base"):
        example_sentences(str(tmp_path))


def test_prepare_text_leaves_out_held_out_transcripts(wordnet_dir, tmp_path, capsys):
    from asr import cli

    dev = tmp_path / "dev.jsonl"
    dev.write_text(json.dumps({"audio_filepath": "a.wav", "duration": 1.0, "text": "The patient is BREATHING."}) + "\n")
    out = tmp_path / "text" / "wordnet.txt"
    assert prepare_text(str(out), wordnet_dir, [str(dev)]) == 3
    assert "the patient is breathing" not in out.read_text().splitlines()
    assert cli.main(["prepare", "wordnet-text", wordnet_dir, "--out", str(out), "--exclude", str(dev)]) == 0
    assert "wrote 3 WordNet example sentences" in capsys.readouterr().out
    assert cli.main(["prepare", "fsdd", "--out", str(tmp_path), "--exclude", str(dev)]) != 0
    assert "--exclude applies to wordnet-text only" in capsys.readouterr().err
