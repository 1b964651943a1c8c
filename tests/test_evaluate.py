"""asr.evaluate and `asr evaluate`: nothing is dropped silently. Malformed manifest lines
(non-UTF-8 bytes included) and unreadable audio are counted and named in the report and in the
command's final JSON line, which then says ``complete: false``; the command exits with status 3
unless --allow-skipped. The other entries are still scored, as the recognizer transcribes them."""

import json
import logging

import numpy as np
import pytest
import soundfile as sf

import asr
import asr.train
from asr import cli
from asr.evaluate import evaluate
from asr.metrics import error_stats
from tests.conftest import SR, synth_utterance

TEXTS = ["abc ca", "cab b", "a b"]


@pytest.fixture()
def manifest(tmp_path):
    """Line 1-3 good entries (line 1 with a byte-order mark), line 4 malformed JSON, line 5 not
    UTF-8, line 6 an entry whose audio is missing, line 7 a good entry."""
    rng = np.random.default_rng(3)
    good = []
    for i, text in enumerate(TEXTS + ["c"]):
        w = synth_utterance(text, rng)
        sf.write(tmp_path / f"{i}.wav", w, SR)
        good.append(json.dumps({"audio_filepath": f"{i}.wav", "duration": len(w) / SR, "text": text}).encode())
    lines = [b"\xef\xbb\xbf" + good[0], good[1], good[2], b'{"audio_filepath": "x.wav", "duration": 1.0,',
             '{"audio_filepath": "4.wav", "duration": 1.0, "text": "caf\u00e9"}'.encode("latin-1"),  # é as byte 0xe9
             json.dumps({"audio_filepath": "missing.wav", "duration": 1.0, "text": "ab"}).encode(), good[3]]
    path = tmp_path / "m.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.mark.parametrize("kind", [".onnx", ".pt"])
def test_report_counts_what_it_could_not_score(kind, models, manifest, caplog):
    path = models.get("gru-offline")[0][: -len(".onnx")] + kind
    rec = asr.train.load_model(path)
    with caplog.at_level(logging.WARNING):
        report = evaluate(rec, str(manifest), progress=False)
    folder = manifest.parent
    assert report.names == [str(folder / f"{i}.wav") for i in range(4)]  # manifest order; the BOM line kept
    assert report.refs == TEXTS + ["c"]
    assert [n for n, _ in report.malformed] == [4, 5]
    assert "not valid JSON" in report.malformed[0][1] and report.malformed[1][1].startswith("not UTF-8 (byte 0xe9")
    assert f"{manifest}:5: skipping malformed line: not UTF-8" in caplog.text  # the file and the line
    assert report.skipped == [(str(folder / "missing.wav"), "file not found")]
    assert report.total == 7 and not report.complete
    d = report.to_dict()
    assert (d["manifest_entries"], d["scored"], d["skipped"], d["unreadable_audio"], d["malformed_lines"], d["complete"]) \
        == (7, 4, 3, 1, 2, False)
    # the scored entries are decoded as the recognizer transcribes them
    hyps = [rec.transcribe(p).text for p in report.names]
    assert report.best.hyps == hyps
    assert report.best.stats == error_stats(report.refs, hyps)


def test_a_complete_manifest_is_complete(models, manifest, tmp_path):
    lines = manifest.read_bytes().splitlines()
    clean = tmp_path / "clean.jsonl"
    clean.write_bytes(b"\n".join(lines[:3] + lines[6:]) + b"\n")
    report = evaluate(asr.train.load_model(models.get("gru-offline")[0]), str(clean), progress=False)
    assert report.complete and report.malformed == [] and report.skipped == [] and report.total == 4
    assert report.to_dict()["skipped"] == 0 and report.to_dict()["complete"] is True


def test_evaluate_command_reports_and_exits_3_unless_allowed(models, manifest, tmp_path, capsys):
    path = models.get("gru-offline")[0]
    out = tmp_path / "details.txt"
    argv = ["evaluate", "--model", path, "--manifest", str(manifest), "--no-progress", "--out", str(out)]
    assert cli.main(argv) == 3
    captured = capsys.readouterr()
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert (result["malformed_lines"], result["unreadable_audio"], result["skipped"]) == (2, 1, 3)
    assert (result["manifest_entries"], result["scored"], result["num_utts"], result["complete"]) == (7, 4, 4, False)
    assert "only 4 of 7 manifest entries were scored (1 unreadable, 2 malformed" in captured.err
    assert "--allow-skipped accepts it" in captured.err
    details = out.read_text()
    assert details.count("REF:") == 4 and f"{manifest}:4\n  NOT SCORED (malformed line)" in details
    assert f"{manifest}:5\n  NOT SCORED (malformed line): not UTF-8" in details and "missing.wav\n  NOT SCORED" in details
    assert cli.main(argv + ["--allow-skipped"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out.strip().splitlines()[-1]) == result
    assert "this WER is not the manifest's" in captured.err


def test_malformed_lines_alone_make_it_incomplete(models, manifest, tmp_path, capsys):
    lines = manifest.read_bytes().splitlines()
    only_malformed = tmp_path / "bad_lines.jsonl"
    only_malformed.write_bytes(b"\n".join(lines[:5] + lines[6:]) + b"\n")  # every audio file readable
    path = models.get("gru-offline")[0]
    report = evaluate(asr.train.load_model(path), str(only_malformed), progress=False)
    assert report.skipped == [] and [n for n, _ in report.malformed] == [4, 5] and not report.complete
    argv = ["evaluate", "--model", path, "--manifest", str(only_malformed), "--no-progress",
            "--out", str(tmp_path / "d.txt")]
    assert cli.main(argv) == 3
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (result["malformed_lines"], result["unreadable_audio"], result["skipped"], result["complete"]) == (2, 0, 2, False)


def test_nothing_is_written_unasked_and_rates_say_percent(models, manifest, tmp_path, capsys):
    """`asr evaluate` once wrote decode_<manifest>.txt into the model's folder unasked, and said
    "wer": 0.67 for 0.67%. An offset of 1e308 or a line of 100,000 '[' ended the run with a
    traceback; they are malformed lines like the others."""
    import os

    path = models.get("gru-offline")[0]
    lines = manifest.read_bytes().splitlines()
    lines[3] = json.dumps({"audio_filepath": "0.wav", "duration": 1.0, "offset": 1e308, "text": "far"}).encode()
    lines.insert(4, b"[" * 100_000)
    manifest.write_bytes(b"\n".join(lines) + b"\n")
    model_dir, data_dir = os.path.dirname(path), os.path.dirname(str(manifest))
    before = set(os.listdir(model_dir)), set(os.listdir(data_dir))
    argv = ["evaluate", "--model", path, "--manifest", str(manifest), "--no-progress", "--allow-skipped"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert (set(os.listdir(model_dir)), set(os.listdir(data_dir))) == before
    assert "per-utterance results: not written (--out FILE writes them)" in out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["details"] is None and "wer" not in result and "cer" not in result
    assert (result["malformed_lines"], result["manifest_entries"]) == (3, 8)
    assert result["wer_percent"] >= 0 and result["cer_percent"] >= 0
    table = dict(line.strip().rsplit(None, 1) for line in out.splitlines() if line.startswith("  WER %"))
    assert table["WER %"] == f"{result['wer_percent']:.2f}"  # the table's "WER %" is the JSON's percent
    details = tmp_path / "sub" / "utts.txt"
    assert cli.main(argv + ["--out", str(details)]) == 0
    out = capsys.readouterr().out
    assert f"per-utterance results: {details}" in out and json.loads(out.strip().splitlines()[-1])["details"] == str(details)
    text = details.read_text()
    assert f"{manifest}:4\n  NOT SCORED (malformed line): field 'offset' must be a number of seconds" in text
    assert f"{manifest}:5\n  NOT SCORED (malformed line): not valid JSON (nested too deeply)" in text
