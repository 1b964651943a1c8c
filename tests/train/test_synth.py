"""asr.train.synth and `asr synth`: planning, rendering, resuming, failures. Most tests use a fake
engine (a small script that writes a tone whose length follows the text and the rate it is
given), so they run where no synthesizer is installed; the real engines are tested where they
are (CI installs espeak-ng and flite)."""

import dataclasses
import json
import os
import shutil
import stat
import sys

import numpy as np
import pytest
import soundfile as sf

from asr import cli
from asr.manifest import read_manifest
from asr.train import synth
from asr.train.synth import SynthOptions, plan, read_texts, render, synthesize

FAKE = r'''#!{python}
"""A stand-in for espeak-ng: -s RATE (words per minute) -p PITCH -w OUT -f TEXTFILE.
Fails for a text holding "boom"; 22.05 kHz, 0.1 s of 300 Hz per letter at 175 words a minute."""
import sys
import numpy as np, soundfile as sf
args = sys.argv[1:]
opt = {{args[i]: args[i + 1] for i in range(0, len(args) - 1, 2)}}
text = open(opt["-f"]).read().strip()
if "boom" in text:
    sys.stderr.write("\x1b[1;31mfake engine: cannot say boom\x1b[0m\n"); sys.exit(3)
n = int(0.1 * len(text.replace(" ", "")) * 175 / float(opt["-s"]) * 22050)
t = np.arange(n) / 22050
sf.write(opt["-w"], (0.5 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), 22050)
'''


@pytest.fixture
def fake_espeak(tmp_path, monkeypatch):
    """espeak-ng on the PATH is the fake engine above."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    prog = bin_dir / "espeak-ng"
    prog.write_text(FAKE.format(python=sys.executable))
    prog.chmod(prog.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return prog


ONE = SynthOptions(engines=("espeak-ng",), takes=2, sample_rate=8000)


def test_options_are_validated():
    for bad, match in [(dict(engines=("sam",)), "engines must be"), (dict(engines=()), "engines must be"),
                       (dict(takes=0), "takes"), (dict(sample_rate=100), "sample_rate"),
                       (dict(rate=(1.2, 0.8)), "rate must be"), (dict(child_share=1.5), "child_share"),
                       (dict(noise_share=-0.1), "noise_share"), (dict(child_shift=(0.0, 1.2)), "child_shift"),
                       (dict(room_share=1.5), "room_share"), (dict(rt60=(0.0, 0.5)), "rt60 must be"),
                       (dict(rt60=(0.3, 5.0)), "at most at 2 s"), (dict(mic_distance=(1.0, 0.5)), "mic_distance")]:
        with pytest.raises(ValueError, match=match):
            SynthOptions(**bad)


def test_plan_is_repeatable_varied_and_grows_by_takes():
    texts = [f"sentence number {i}" for i in range(30)]
    opts = SynthOptions(takes=2)
    a, b = plan(texts, opts), plan(texts, opts)
    assert a == b and len(a) == 60 and [r.index for r in a] == list(range(60))
    assert [r.text for r in a[:30]] == texts == [r.text for r in a[30:]]  # take by take
    assert {r.engine for r in a} == {"espeak-ng", "flite", "festival"}  # engines take turns
    assert len({r.voice for r in a}) > 15 and len({r.rate for r in a}) == 60
    assert all(0.8 <= r.rate <= 1.25 and 0.92 <= r.shift <= 1.4 for r in a)
    children = [r for r in a if r.shift >= 1.15]
    assert 5 <= len(children) <= 35  # child_share 0.3 of 60
    assert 15 <= sum(r.noise is not None for r in a) <= 45 and all(10 <= r.snr_db <= 35 for r in a if r.noise)
    # three takes plan the same first two takes, then a third: a folder can grow
    assert plan(texts, SynthOptions(takes=3))[:60] == a
    assert plan(texts, SynthOptions(takes=2, seed=5)) != a
    plain = plan(texts, SynthOptions(takes=1, variety=False))
    assert {(r.rate, r.shift, r.pitch, r.noise) for r in plain} == {(1.0, 1.0, None, None)}
    assert {r.voice for r in plain} == {"en-us", "slt", "kal_diphone"}


def test_rooms_are_drawn_after_everything_else_and_fit_inside():
    texts = [f"sentence number {i}" for i in range(40)]
    dry = plan(texts, SynthOptions(takes=2))
    wet = plan(texts, SynthOptions(takes=2, room_share=0.5, rt60=(0.2, 0.5), mic_distance=(0.3, 1.0)))
    # a set planned before rooms existed plans the same: only the room differs
    assert [dataclasses.replace(r, room=None) for r in wet] == dry and all(r.room is None for r in dry)
    rooms = [r.room for r in wet if r.room is not None]
    assert 20 <= len(rooms) <= 60
    for room in rooms:
        size, src, mic = (np.array(v) for v in (room.size, room.source, room.mic))
        assert 0.2 <= room.rt60 <= 0.5 and np.all(mic >= 0.2 - 1e-9) and np.all(mic <= size - 0.2 + 1e-9)
        assert np.all(src >= 0.5 - 1e-9) and np.all(src <= size - 0.5 + 1e-9)
        assert np.linalg.norm(mic - src) <= 1.0 + 1e-9
    assert len({room.rt60 for room in rooms}) == len(rooms)
    assert all(r.room is None for r in plan(texts, SynthOptions(takes=1, room_share=1.0, variety=False)))
    assert wet[0].to_json().get("room") is None or set(wet[0].to_json()["room"]) == {"size", "rt60", "source", "mic"}


def test_room_impulse_response_has_the_asked_reverberation_time():
    pra = pytest.importorskip("pyroomacoustics")
    for rt60 in (0.2, 0.5):
        room = synth.Room((5.0, 4.0, 2.7), rt60, (1.5, 1.5, 1.5), (2.5, 2.0, 1.4))
        h = room.impulse_response(16000)
        assert abs(np.max(np.abs(h)) - 1.0) < 1e-9
        measured = pra.experimental.measure_rt60(h, fs=16000)
        assert 0.7 * rt60 < measured < 1.4 * rt60, (rt60, measured)


def test_render_through_a_room_reverberates_into_the_silence_after(fake_espeak):
    pytest.importorskip("pyroomacoustics")
    base = synth.Rendering(0, "abcdefghij", "espeak-ng", "en-us", 1.0, 50.0, 1.0, None, None, (0.1, 0.3), 0.5)
    room = synth.Room((5.0, 4.0, 2.7), 0.5, (1.5, 1.5, 1.5), (2.5, 2.0, 1.4))
    dry = render(base, 16000)
    wet = render(dataclasses.replace(base, room=room), 16000)
    assert len(wet) == len(dry) + int(0.2 * 16000) and abs(np.max(np.abs(wet)) - 0.5) < 1e-4
    after = slice(int(1.1 * 16000) + 800, int(1.1 * 16000) + 2400)  # 50-150 ms after the speech stops
    assert not np.any(dry[after]) and np.sqrt(np.mean(wet[after] ** 2)) > 0.01  # the tail rings on
    assert np.sqrt(np.mean(wet[-800:] ** 2)) < np.sqrt(np.mean(wet[after] ** 2)) / 10  # and dies away


def test_rooms_without_pyroomacoustics_say_what_to_install(fake_espeak, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pyroomacoustics", None)  # import fails
    with pytest.raises(RuntimeError, match=r"pip install '\.\[synth\]'"):
        synthesize(["hi"], str(tmp_path / "o"), dataclasses.replace(ONE, room_share=0.5), progress=False)
    assert not (tmp_path / "o").exists()  # refused before anything is written


def test_read_texts_from_a_file_and_a_manifest(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("\ufeffHello, World!\n\n  hello world \nSecond line.\n", encoding="utf-8")
    assert read_texts(str(p)) == ["hello world", "second line"]  # normalized, deduplicated, BOM gone
    m = tmp_path / "m.jsonl"
    m.write_text(json.dumps({"audio_filepath": "a.wav", "duration": 1.0, "text": "ONE two"}) + "\n")
    assert read_texts(str(m), manifest=True) == ["one two"]
    (tmp_path / "ansi.txt").write_text("\x1b[31mfour\x1b[0m\n")
    assert read_texts(str(tmp_path / "ansi.txt")) == ["four"]  # once "31mfour 0m" in the manifest
    (tmp_path / "empty.txt").write_text("\n ,.\n")
    with pytest.raises(ValueError, match="no text to render"):
        read_texts(str(tmp_path / "empty.txt"))
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8"):
        read_texts(str(tmp_path / "latin1.txt"))
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        read_texts(str(tmp_path / "nope.txt"))


def test_render_applies_rate_shift_padding_noise_and_level(fake_espeak):
    base = synth.Rendering(0, "abcdefghij", "espeak-ng", "en-us", 1.0, 50.0, 1.0, None, None, (0.0, 0.0), 0.5)
    plain = render(base, 16000)
    assert abs(len(plain) / 16000 - 1.0) < 0.01 and abs(np.max(np.abs(plain)) - 0.5) < 1e-4  # 10 letters: 1 s
    fast = render(synth.Rendering(**{**base.__dict__, "rate": 2.0}), 16000)
    assert abs(len(fast) / 16000 - 0.5) < 0.01
    # a vocal tract shift keeps the length (the engine speaks slower, the result plays faster)
    # and raises every frequency by the shift: the 300 Hz tone lands on 390 Hz
    child = render(synth.Rendering(**{**base.__dict__, "shift": 1.3}), 16000)
    assert abs(len(child) / 16000 - 1.0) < 0.01
    spectrum = np.abs(np.fft.rfft(child))
    assert abs(np.argmax(spectrum) * 16000 / len(child) - 390) < 3
    padded = render(synth.Rendering(**{**base.__dict__, "pad": (0.25, 0.5), "noise": "pink", "snr_db": 20.0}), 16000)
    assert abs(len(padded) / 16000 - 1.75) < 0.01
    lead = padded[: 4000]
    speech = padded[4000:20000]
    snr = 10 * np.log10(np.mean(speech**2) / np.mean(lead**2))
    assert 17 < snr < 23  # noise everywhere, at the asked SNR against the speech
    with pytest.raises(RuntimeError, match="cannot say boom"):
        render(synth.Rendering(**{**base.__dict__, "text": "boom"}), 16000)


def test_synthesize_resumes_keeps_failures_apart_and_refuses_other_settings(fake_espeak, tmp_path):
    out = str(tmp_path / "syn")
    texts = ["one two", "three", "boom box", "four five six"]
    counts = synthesize(texts, out, ONE, jobs=2, progress=False)
    assert counts["planned"] == 8 and counts["rendered"] == 6 and counts["failed"] == 2 and counts["kept"] == 0
    entries = read_manifest(os.path.join(out, "manifest.jsonl"))
    assert [e.text for e in entries] == ["one two", "three", "four five six"] * 2
    assert all(e.speaker.startswith("synth-espeak-ng-") and e.extra["synth"]["engine"] == "espeak-ng" for e in entries)
    for e in entries:
        info = sf.info(e.audio_filepath)
        assert info.samplerate == 8000 and abs(info.frames / 8000 - e.duration) < 1e-3
    failed = [json.loads(line) for line in open(os.path.join(out, "failed.jsonl"))]
    assert [f["text"] for f in failed] == ["boom box"] * 2 and "cannot say boom" in failed[0]["error"]
    assert "\x1b" not in failed[0]["error"] and "31m" not in failed[0]["error"]  # the engine's colours stripped

    # a file lost (or cut short by a crash) is rendered again; the rest is kept
    os.remove(entries[1].audio_filepath)
    with open(entries[2].audio_filepath, "wb") as f:
        f.write(b"fLaC")  # a torn file: unreadable
    counts = synthesize(texts, out, ONE, jobs=1, progress=False)
    assert (counts["kept"], counts["rendered"], counts["failed"]) == (4, 2, 2)
    assert read_manifest(os.path.join(out, "manifest.jsonl")) == entries
    # more takes of the same texts and settings add to the folder
    counts = synthesize(texts, out, SynthOptions(engines=("espeak-ng",), takes=3, sample_rate=8000), progress=False)
    assert (counts["kept"], counts["rendered"]) == (6, 3)
    with pytest.raises(ValueError, match="other settings \\(sample_rate differ\\)"):
        synthesize(texts, out, SynthOptions(engines=("espeak-ng",), takes=2, sample_rate=16000), progress=False)
    with pytest.raises(ValueError, match="the texts differ"):
        synthesize(texts[:2], out, ONE, progress=False)
    with pytest.raises(ValueError, match="other settings \\(room_share differ\\)"):
        synthesize(texts, out, dataclasses.replace(ONE, room_share=0.5), progress=False)
    # a set made before rooms existed (no room keys in synth.json) resumes with the defaults
    meta_path = os.path.join(out, "synth.json")
    meta = json.load(open(meta_path))
    for key in ("room_share", "rt60", "mic_distance"):
        del meta["options"][key]
    json.dump(meta, open(meta_path, "w"))
    assert synthesize(texts, out, ONE, progress=False)["kept"] == 6
    assert not [p for p in os.listdir(out) if ".tmp" in p]


def test_missing_engine_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda prog: None)
    with pytest.raises(RuntimeError, match="not installed: flite.*apt-get install flite"):
        synthesize(["hi"], str(tmp_path / "o"), SynthOptions(engines=("flite",)), progress=False)


def test_cli(fake_espeak, tmp_path, capsys):
    texts = tmp_path / "t.txt"
    texts.write_text("hello there\nboom\n")
    out = tmp_path / "o"
    rc = cli.main(["synth", "--text", str(texts), "--out", str(out), "--engines", "espeak-ng", "--takes", "2",
                   "--sample-rate", "8000", "--pad", "0,0.1", "--no-progress"])
    printed = capsys.readouterr().out
    assert json.loads((out / "synth.json").read_text())["options"]["pad_s"] == [0.0, 0.1]
    assert rc == 1 and "2 of 4 renderings" in printed and "2 failed" in printed and "failed.jsonl" in printed
    assert len(read_manifest(out / "manifest.jsonl")) == 2
    assert cli.main(["synth", "--text", str(texts), "--out", str(out), "--engines", "espeak-ng,sam"]) == 2
    assert "engines must be some of" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["synth", "--text", str(texts), "--out", str(out), "--speed", "fast"])
    assert "expected LOW,HIGH (two numbers), got 'fast'" in capsys.readouterr().err


@pytest.mark.parametrize("engine", ["espeak-ng", "flite"])
def test_real_engine_speaks(engine, tmp_path):
    """The real synthesizer (CI installs espeak-ng and flite; festival is left to the recipe):
    every voice drawn for it renders, at the asked rate, as speech-like sound."""
    if not shutil.which(synth.ENGINES[engine][0]):
        pytest.skip(f"{engine} is not installed here (apt-get install {synth.ENGINES[engine][1]})")
    opts = SynthOptions(engines=(engine,), takes=6, sample_rate=16000, noise_share=0.0)
    counts = synthesize(["the quick brown fox jumps over the lazy dog"], str(tmp_path), opts, progress=False)
    assert counts["failed"] == 0 and counts["rendered"] == 6
    for e in read_manifest(tmp_path / "manifest.jsonl"):
        wave, rate = sf.read(e.audio_filepath)
        assert rate == 16000 and 1.2 < e.duration < 6.0, e.extra
        frames = wave[: len(wave) // 320 * 320].reshape(-1, 320)
        energy = np.log10(np.mean(frames**2, axis=1) + 1e-10)
        assert energy.max() - np.percentile(energy, 5) > 3, e.extra  # speech and pauses, not a drone
