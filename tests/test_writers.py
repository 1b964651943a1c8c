"""Transcript files: SRT and WebVTT that standard parsers read, txt, tsv and json."""

import json
import os

import pytest

from asr.decoding.result import Result, Utterance, Word
from asr.writers import SubtitleOptions, format_timestamp, get_writers, subtitle_lines

srt = pytest.importorskip("srt")
webvtt = pytest.importorskip("webvtt")


def utterance(start, words, step=0.5, end_pad=0.3):
    ws = [Word(w, round(start + i * step, 3), round(start + i * step + 0.3, 3), 0.9) for i, w in enumerate(words)]
    return Utterance(" ".join(words), start, round(ws[-1].end + end_pad, 3), ws)


RESULT = Result("talk.wav", "", [], [
    utterance(0.5, ["hello", "world"]),
    utterance(3661.25, "the quick brown fox jumps over the lazy dog and keeps running far away".split(), step=0.4),
    Utterance("", 4000.0, 4001.0, []),  # empty: written nowhere
    utterance(4002.0, ["supercalifragilisticexpialidocious" * 2]),  # a word longer than a line
], True, 4010.0)


def test_lines_split_at_word_boundaries_within_bounds():
    opts = SubtitleOptions(max_line_chars=20, max_line_s=2.0)
    lines = subtitle_lines(RESULT.utterances[1], opts)
    assert " ".join(t for _, _, t in lines) == RESULT.utterances[1].text  # every word, in order
    for (s, e, text), nxt in zip(lines, lines[1:] + [None]):
        assert len(text) <= 20 and e >= s
        if nxt is not None:
            assert e == nxt[0]  # shown until the next line starts
    words = RESULT.utterances[1].words
    for s, _e, text in lines:
        first = next(w for w in words if w.start == s)
        last = words[words.index(first) + len(text.split()) - 1]
        assert last.end - first.start <= 2.0
    assert lines[-1][1] == RESULT.utterances[1].end
    long_word = subtitle_lines(RESULT.utterances[3], opts)
    assert len(long_word) == 1 and len(long_word[0][2]) > 20  # a word is never broken
    assert format_timestamp(3661.25, ",") == "01:01:01,250" and format_timestamp(0.0) == "00:00:00.000"


def test_all_formats_parse(tmp_path):
    paths = [w.write(RESULT) for w in get_writers("all", str(tmp_path), SubtitleOptions(max_line_chars=30))]
    assert sorted(os.path.basename(p) for p in paths) == ["talk.json", "talk.srt", "talk.tsv", "talk.txt", "talk.vtt"]
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".part")]
    lines = [line for u in RESULT.utterances for line in subtitle_lines(u, SubtitleOptions(max_line_chars=30))]

    subs = list(srt.parse((tmp_path / "talk.srt").read_text()))
    assert [s.content for s in subs] == [t for _, _, t in lines]
    assert [(s.start.total_seconds(), s.end.total_seconds()) for s in subs] == [(a, b) for a, b, _ in lines]
    assert [s.index for s in subs] == list(range(1, len(lines) + 1))

    cues = webvtt.read(str(tmp_path / "talk.vtt"))
    assert [c.text for c in cues] == [t for _, _, t in lines]
    assert cues[1].start == "01:01:01.250"

    tsv = (tmp_path / "talk.tsv").read_text().splitlines()
    assert tsv[0] == "start\tend\ttext" and tsv[1] == "500\t1600\thello world"  # until the utterance ends
    assert (tmp_path / "talk.txt").read_text().splitlines() == [u.text for u in RESULT.utterances if u.text]

    d = json.loads((tmp_path / "talk.json").read_text())
    assert d["name"] == "talk.wav" and d["duration"] == 4010.0
    assert [u["text"] for u in d["utterances"]] == [u.text for u in RESULT.utterances if u.text]
    assert d["text"] == " ".join(u.text for u in RESULT.utterances if u.text)
    assert d["utterances"][0]["words"][0] == {"word": "hello", "start": 0.5, "end": 0.8, "confidence": 0.9}


def test_an_aborted_file_leaves_nothing(tmp_path):
    (w,) = get_writers("srt", str(tmp_path))
    sink = w.open("/some/where/talk.flac")
    sink.add(RESULT.utterances[0])
    sink.abort()
    assert os.listdir(tmp_path) == []
    with pytest.raises(ValueError, match="unknown output format"):
        get_writers("doc", str(tmp_path))


def test_output_stems_never_share_a_name():
    from asr.writers import output_stems

    assert output_stems(["c1/x.wav", "c2/x.wav", "c2/x.flac", "y.wav"]) == ["x", "x-2", "x-3", "y"]
    # an input's own name is kept even when a renamed one would have taken it
    assert output_stems(["a/x.wav", "b/x.wav", "x-2.wav"]) == ["x", "x-3", "x-2"]
    assert output_stems(["A.wav", "a.wav", "-", "stdin.wav"]) == ["A", "a-2", "stdin", "stdin-2"]  # case-blind
    assert output_stems(["x.wav", "x.wav"]) == ["x", "x-2"]  # the same file twice (segments of one file)
    stems = output_stems([f"d{i % 7}/{'x' if i % 2 else 'y'}.wav" for i in range(50)])
    assert len({s.casefold() for s in stems}) == 50


def test_one_file_per_input_when_names_collide(tmp_path):
    from asr.writers import output_stems

    inputs = ["c1/x.wav", "c2/x.wav", "c2/x.flac"]
    (w,) = get_writers("txt", str(tmp_path))
    for path, stem, text in zip(inputs, output_stems(inputs), ["one", "two", "three"]):
        w.write(Result(path, text, [], [Utterance(text, 0.0, 1.0, [])], True, 1.0), path, stem)
    assert sorted(os.listdir(tmp_path)) == ["x-2.txt", "x-3.txt", "x.txt"]
    assert [(tmp_path / f).read_text() for f in ("x.txt", "x-2.txt", "x-3.txt")] == ["one\n", "two\n", "three\n"]


def test_timestamps_round_to_the_millisecond(tmp_path):
    assert format_timestamp(1.001) == "00:00:01.001"  # 1.001 * 1000 is 1000.9999...: rounded, not cut
    assert format_timestamp(1.0004) == "00:00:01.000" and format_timestamp(1.0006, ",") == "00:00:01,001"
    assert format_timestamp(59.9996) == "00:01:00.000" and format_timestamp(3599.9999) == "01:00:00.000"
    assert format_timestamp(61.5, always_hours=False) == "01:01.500" and format_timestamp(-0.2) == "00:00:00.000"
    utt = Utterance("one two", 1.001, 2.003, [Word("one", 1.001, 1.3), Word("two", 1.5, 2.003)])
    result = Result("t.wav", "one two", utt.words, [utt], True, 3.0)
    paths = {os.path.splitext(p)[1]: p for p in (w.write(result) for w in get_writers("all", str(tmp_path)))}
    assert "00:00:01,001 --> 00:00:02,003" in open(paths[".srt"]).read()
    assert "00:00:01.001 --> 00:00:02.003" in open(paths[".vtt"]).read()
    assert open(paths[".tsv"]).read().splitlines()[1] == "1001\t2003\tone two"


def test_a_line_of_exactly_the_maximum_length_is_kept_whole():
    # 10 s into the recording: a line's length in seconds counts from its own first word
    utt = Utterance("abcd efgh ij", 10.0, 12.0, [Word("abcd", 10.0, 10.5), Word("efgh", 10.75, 11.25), Word("ij", 11.5, 12.0)])
    assert subtitle_lines(utt, SubtitleOptions(max_line_chars=12)) == [(10.0, 12.0, "abcd efgh ij")]  # 12 characters
    assert subtitle_lines(utt, SubtitleOptions(max_line_chars=11)) == [(10.0, 11.5, "abcd efgh"), (11.5, 12.0, "ij")]
    assert subtitle_lines(utt, SubtitleOptions(max_line_s=2.0)) == [(10.0, 12.0, "abcd efgh ij")]  # exactly 2 s
    assert subtitle_lines(utt, SubtitleOptions(max_line_s=1.75)) == [(10.0, 11.5, "abcd efgh"), (11.5, 12.0, "ij")]
    # an utterance without word times is one line; an empty one none
    assert subtitle_lines(Utterance("no words", 1.0, 2.5, [])) == [(1.0, 2.5, "no words")]
    assert subtitle_lines(Utterance("", 1.0, 2.5, [])) == []


def test_subtitle_options_are_checked():
    SubtitleOptions(max_line_chars=1, max_line_s=0.5)  # the smallest sensible values are fine
    for bad in (dict(max_line_chars=0), dict(max_line_s=0.0), dict(max_line_chars=0, max_line_s=-1.0)):
        with pytest.raises(ValueError, match="invalid SubtitleOptions: max_line_chars >= 1 and max_line_s > 0, got"):
            SubtitleOptions(**bad)
    with pytest.raises(ValueError, match="expected one of txt, json, srt, vtt, tsv or all"):
        get_writers("doc", "out")


@pytest.mark.parametrize("fmt", ["srt", "vtt", "tsv"])
def test_each_subtitle_writer_uses_its_options(tmp_path, fmt):
    (w,) = get_writers(fmt, str(tmp_path), SubtitleOptions(max_line_chars=5))
    text = open(w.write(RESULT)).read()
    assert "hello\n" in text and "world\n" in text and "hello world" not in text  # one word a line


def test_json_times_and_duration(tmp_path):
    (w,) = get_writers("json", str(tmp_path))
    result = Result("-", "x", [], [utterance(1.25, ["x"]), utterance(2.5, ["y"])], True, 3.14159)
    path = w.write(result)
    assert os.path.basename(path) == "stdin.json"  # standard input has no name of its own
    d = json.loads(open(path).read())
    assert [(u["start"], u["end"]) for u in d["utterances"]] == [(1.25, 1.85), (2.5, 3.1)]
    assert d["duration"] == 3.142 and d["text"] == "x y"


def test_a_sentence_end_ends_its_subtitle_line_but_an_abbreviation_does_not():
    """Punctuated text (--punctuate): a new sentence starts a new line; "Dr." or "p.m." do not end one."""
    said = [("Yes.", 0.0, 0.3), ("Call", 0.5, 0.7), ("Dr.", 0.8, 1.0), ("Smith", 1.1, 1.4), ("at", 1.5, 1.6),
            ("7:30", 1.7, 2.0), ("p.m.", 2.1, 2.4), ("today?", 2.5, 2.9), ("Sure!", 3.0, 3.3), ("ok", 3.4, 3.6)]
    utt = Utterance(" ".join(w for w, _, _ in said), 0.0, 3.6, [Word(*x) for x in said])
    assert [t for _, _, t in subtitle_lines(utt)] == ["Yes.", "Call Dr. Smith at 7:30 p.m. today?", "Sure!", "ok"]
    assert subtitle_lines(utt)[0] == (0.0, 0.5, "Yes.")  # until the next line starts, as before
    plain = Utterance("yes call", 0.0, 0.7, [Word("yes", 0.0, 0.3), Word("call", 0.5, 0.7)])
    assert [t for _, _, t in subtitle_lines(plain)] == ["yes call"]  # unpunctuated text: unchanged
