"""asr.manifest: a byte-order mark is allowed, malformed lines (bad JSON, wrong fields, bytes
that are not UTF-8) are named by file and line, counted and skipped, and the others kept."""

import json
import logging

import pytest

from asr.manifest import ManifestError, read_manifest


def line(path, text, duration=1.0):
    return json.dumps({"audio_filepath": path, "duration": duration, "text": text}, ensure_ascii=False)


def test_a_byte_order_mark_keeps_the_first_utterance(tmp_path):
    p = tmp_path / "bom.jsonl"
    p.write_bytes(b"\xef\xbb\xbf" + line("a.wav", "first").encode() + b"\n")  # one line, with a BOM
    problems = []
    (entry,) = read_manifest(p, problems=problems)
    assert entry.text == "first" and entry.audio_filepath == str(tmp_path / "a.wav") and problems == []
    p.write_bytes(b"\xef\xbb\xbf" + "\n".join([line("a.wav", "first"), line("b.wav", "second")]).encode())
    assert [e.text for e in read_manifest(p, strict=True)] == ["first", "second"]
    p.write_text(line("a.wav", "plain"), encoding="utf-8-sig")  # what Windows editors write
    assert [e.text for e in read_manifest(p, strict=True)] == ["plain"]


def test_a_byte_order_mark_inside_the_file_is_not_silently_accepted(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_bytes((line("a.wav", "ok") + "\n").encode() + b"\xef\xbb\xbf" + line("b.wav", "x").encode() + b"\n")
    problems = []
    assert [e.text for e in read_manifest(p, problems=problems)] == ["ok"]
    assert [n for n, _ in problems] == [2]


def test_a_line_that_is_not_utf8_is_named_and_the_others_kept(tmp_path, caplog):
    p = tmp_path / "latin1.jsonl"
    bad = line("b.wav", "café").encode("latin-1")  # é as the single byte 0xe9
    p.write_bytes(b"\n".join([line("a.wav", "one").encode(), bad, line("c.wav", "naïve").encode()]) + b"\n")
    problems = []
    with caplog.at_level(logging.WARNING):
        got = read_manifest(p, problems=problems)
    assert [e.text for e in got] == ["one", "naïve"]  # UTF-8 text elsewhere is read as such
    (lineno, reason), = problems
    assert lineno == 2 and reason.startswith("not UTF-8 (byte 0xe9 at column")
    assert f"{p}:2: skipping malformed line: not UTF-8 (byte 0xe9" in caplog.text
    assert "skipped 1 malformed line(s), kept 2" in caplog.text
    with pytest.raises(ManifestError, match=r"latin1\.jsonl:2: not UTF-8 \(byte 0xe9"):
        read_manifest(p, strict=True)


def test_malformed_lines_are_counted_in_problems(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text("\n".join([
        line("a.wav", "one"),
        "{not json",
        "",  # blank lines are not entries, nor problems
        json.dumps({"audio_filepath": "b.wav", "text": "no duration"}),
        line("c.wav", "three"),
        json.dumps({"audio_filepath": "d.wav", "duration": True, "text": "bool"}),
    ]) + "\n")
    problems = []
    got = read_manifest(p, problems=problems)
    assert [e.text for e in got] == ["one", "three"]
    assert [n for n, _ in problems] == [2, 4, 6]
    assert "not valid JSON" in problems[0][1] and "missing field 'duration'" in problems[1][1]
    assert "field 'duration' has type bool" in problems[2][1]


def test_only_malformed_lines_is_an_error(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_bytes(b"\xff\xfe\n{oops\n")
    with pytest.raises(ManifestError, match=r"m\.jsonl: no valid entries \(2 malformed line\(s\)\)"):
        read_manifest(p)


def test_absurd_numbers_and_deep_nesting_are_malformed_lines(tmp_path):
    """An offset of 1e308 (OverflowError later, in reading the audio) and a line of 100,000 '['
    (RecursionError in the JSON decoder) once ended the whole run; each is one malformed line."""
    p = tmp_path / "m.jsonl"
    p.write_text("\n".join([
        line("a.wav", "one"),
        json.dumps({"audio_filepath": "b.wav", "duration": 1.0, "offset": 1e308, "text": "far"}),
        "[" * 100_000,
        json.dumps({"audio_filepath": "c.wav", "duration": 1e308, "text": "long"}),
        '{"audio_filepath": "d.wav", "duration": 1, "text": "x", "n": ' + "1" * 5000 + "}",
        '{"audio_filepath": "e.wav", "duration": 1, "offset": 1e400, "text": "inf"}',
        line("f.wav", "two"),
    ]) + "\n")
    problems = []
    assert [e.text for e in read_manifest(p, problems=problems)] == ["one", "two"]
    assert [n for n, _ in problems] == [2, 3, 4, 5, 6]
    assert "field 'offset' must be a number of seconds >= 0 (at most 1e+07), got 1e+308" in problems[0][1]
    assert problems[1][1] == "not valid JSON (nested too deeply)"
    assert "duration must be positive and at most 1e+07 s, got 1e+308" in problems[2][1]
    assert "not valid JSON" in problems[3][1] and "offset" in problems[4][1]
    q = tmp_path / "s.jsonl"
    q.write_text(line("a.wav", "one") + "\n" + "[" * 100_000 + "\n")
    with pytest.raises(ManifestError, match=r"s.jsonl:2: not valid JSON \(nested too deeply\)"):
        read_manifest(q, strict=True)


def test_fields_are_read_and_each_refusal_says_why(tmp_path, caplog):
    p = tmp_path / "m.jsonl"
    good = [
        {"audio_filepath": "a.wav", "duration": 2.5, "text": "one", "offset": 1.5, "speaker": 7, "lang": "en"},
        {"audio_filepath": "/abs/b.wav", "duration": 1, "text": "two", "offset": 0},
        {"audio_filepath": "c.wav", "duration": 0.5, "text": "three", "offset": 0.25},
    ]
    bad = [
        ("[1, 2]", "expected a JSON object, got list"),
        ('{"audio_filepath": "d.wav", "duration": 0, "text": "x"}', "duration must be positive and at most 1e+07 s, got 0"),
        ('{"audio_filepath": "d.wav", "duration": Infinity, "text": "x"}', "duration must be positive and at most 1e+07 s, got inf"),
        ('{"audio_filepath": "d.wav", "duration": 1, "text": "x", "offset": -1}',
         "field 'offset' must be a number of seconds >= 0 (at most 1e+07), got -1"),
        ('{"audio_filepath": "d.wav", "duration": 1, "text": "x", "offset": true}',
         "field 'offset' must be a number of seconds >= 0 (at most 1e+07), got True"),
        ('{"audio_filepath": "d.wav", "duration": 1, "text": "x", "offset": "2"}',
         "field 'offset' must be a number of seconds >= 0 (at most 1e+07), got '2'"),
    ]
    p.write_text("\n".join([json.dumps(g) for g in good] + [b for b, _ in bad]) + "\n")
    problems = []
    with caplog.at_level(logging.WARNING):
        a, b, c = read_manifest(p, problems=problems)
    assert (a.audio_filepath, a.duration, a.text, a.speaker, a.offset, a.extra) == (
        str(tmp_path / "a.wav"), 2.5, "one", "7", 1.5, {"lang": "en"})
    assert (b.audio_filepath, b.duration, b.speaker, b.offset, b.extra) == ("/abs/b.wav", 1.0, None, 0.0, {})
    assert c.offset == 0.25 and isinstance(b.duration, float)
    assert problems == [(4 + i, why) for i, (_, why) in enumerate(bad)]
    assert f"{p}:4: skipping malformed line: expected a JSON object, got list" in caplog.text
    assert f"{p}: skipped 6 malformed line(s), kept 3" in caplog.text
    assert a.to_json() == {"audio_filepath": str(tmp_path / "a.wav"), "duration": 2.5, "text": "one", "offset": 1.5,
                           "speaker": "7", "lang": "en"}


def test_missing_empty_and_non_utf8_manifests_say_so(tmp_path):
    with pytest.raises(ManifestError, match=r"nowhere\.jsonl: manifest not found"):
        read_manifest(tmp_path / "nowhere.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(ManifestError, match=r"empty\.jsonl: no valid entries$"):
        read_manifest(tmp_path / "empty.jsonl")
    raw = b'{"audio_filepath": "a.wav", "duration": 1, "text": "caf\xe9"}\n'
    (tmp_path / "latin1.jsonl").write_bytes(raw)
    with pytest.raises(ManifestError, match=rf"latin1\.jsonl:1: not UTF-8 \(byte 0xe9 at column {raw.index(0xe9) + 1}\)$"):
        read_manifest(tmp_path / "latin1.jsonl", strict=True)


def test_write_manifest_round_trip_and_segments(tmp_path):
    from asr.manifest import Entry, segment_of, write_manifest

    entries = [Entry(str(tmp_path / "a.wav"), 1.234567, "café", "s1", {"lang": "fr"}, 0.123456),
               Entry(str(tmp_path / "b.wav"), 2.0, "two")]
    path = tmp_path / "sub" / "out.jsonl"  # the folder is made
    assert write_manifest(path, entries) == 2
    assert write_manifest(path, entries) == 2  # and may exist already: the file is replaced
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.jsonl"]  # no temporary file left
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert "café" in first  # UTF-8 text as it is, not \u escapes
    assert json.loads(first) == {"audio_filepath": str(tmp_path / "a.wav"), "duration": 1.2346, "text": "café",
                                 "offset": 0.1235, "speaker": "s1", "lang": "fr"}
    a, b = read_manifest(path)
    assert (a.duration, a.offset, a.speaker, a.extra, b.offset, b.speaker) == (1.2346, 0.1235, "s1", {"lang": "fr"}, None, None)
    assert segment_of(a) == (0.1235, 1.2346) and segment_of(b) == (0.0, None)


def test_an_index_keeps_the_manifest_on_disk_and_reads_what_read_manifest_reads(tmp_path):
    """ManifestIndex: the same entries as read_manifest (the same malformed lines skipped and
    reported, the byte-order mark, relative paths), read again per entry, by slice, in order,
    and after pickling (a worker process); a file changed since it was indexed is an error."""
    import pickle

    from asr.manifest import ManifestIndex

    p = tmp_path / "m.jsonl"
    good = [line("a.wav", "one", 1.5), json.dumps({"audio_filepath": "/x/b.flac", "duration": 2, "text": "two",
                                                  "speaker": 7, "offset": 0.5, "id": "b"}), line("c.wav", "naïve")]
    p.write_bytes(b"\xef\xbb\xbf" + "\n".join([good[0], "{broken", "", good[1], '{"duration": 1}', good[2]]).encode() + b"\n")
    want_problems, got_problems = [], []
    want = read_manifest(p, problems=want_problems)
    index = ManifestIndex.read(p, problems=got_problems)
    assert got_problems == want_problems and [n for n, _ in got_problems] == [2, 5]
    assert len(index) == 3 and list(index) == want and [index[i] for i in range(3)] == want
    assert index[-1] == want[-1] and index[1:] == want[1:] and index.durations.tolist() == [1.5, 2.0, 1.0]
    assert index[1].extra == {"id": "b"} and index[1].offset == 0.5 and index[0].audio_filepath == str(tmp_path / "a.wav")
    assert pickle.loads(pickle.dumps(index))[2] == want[2]
    with pytest.raises(IndexError):
        index[3]
    with pytest.raises(ManifestError, match="no valid entries"):
        ManifestIndex.read(_write(tmp_path / "bad.jsonl", "{broken\n"))

    p.write_bytes(p.read_bytes() + (line("d.wav", "four") + "\n").encode())  # changed under it
    with pytest.raises(ManifestError, match="changed since it was read"):
        ManifestIndex(p, index.starts, index.sizes, index.durations, index._stamp)[0]  # a new process
    with pytest.raises(ManifestError, match="changed since it was read"):
        list(index)


def _write(path, text):
    path.write_text(text)
    return path
