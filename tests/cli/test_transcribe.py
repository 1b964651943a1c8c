"""asr.cli.transcribe (`asr transcribe`): '-' reads a file from standard input, pipes given
by path are refused (not waited on), and the decoding options reach the recognizer, with a
checkpoint and with an exported model."""

import json
import math
import os
import subprocess
import sys

import pytest

import asr
import asr.train
from asr import cli
from asr.decoding.lm import train_ngram
from asr.decoding.options import DecodingOptions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(asr.__file__)))  # the asr these tests import


def run_asr(args, **kwargs):
    """`asr ARGS` in a child process, bounded in time so that waiting on a pipe fails the test."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "asr", *args], capture_output=True, timeout=90, env=env, cwd=ROOT,
                          **kwargs)


@pytest.fixture(scope="module")
def arpa(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("lm") / "lm.arpa")
    train_ngram(["abc ca", "cab b", "a b c", "ab ab"], order=2).write_arpa(path)
    return path


def test_standard_input_gives_the_files_text(models, wavs):
    path = models.get("gru-offline")[0]
    rec = asr.train.load_model(path)
    for key in ("a", "b"):  # 8 kHz mono; 16 kHz stereo
        with open(wavs[key], "rb") as f:
            data = f.read()
        proc = run_asr(["transcribe", "--model", path, "-"], input=data)
        assert proc.returncode == 0, proc.stderr.decode()
        want = rec.transcribe(wavs[key]).text
        assert want and proc.stdout.decode() == f"-\t{want}\n"
    proc = run_asr(["transcribe", "--model", path, "--format", "json", "-"], input=data)
    d = json.loads(proc.stdout)
    assert d["path"] == "-" and d["text"] == want and d["duration"] == rec.transcribe(wavs["b"]).duration
    proc = run_asr(["transcribe", "--model", path, "-"], input=b"")
    assert proc.returncode == 1 and "error: <stdin>: standard input is empty" in proc.stderr.decode()


def test_a_fifo_path_is_refused_with_its_own_message(models, wavs, tmp_path):
    path = models.get("gru-offline")[0]
    fifo = str(tmp_path / "mic.pipe")
    os.mkfifo(fifo)  # nobody writes to it: opening it would wait forever
    proc = run_asr(["transcribe", "--model", path, fifo, wavs["a"]])
    err = proc.stderr.decode()
    assert proc.returncode == 1, err
    assert f"error: {fifo}: is a pipe (FIFO): to read a stream, give '-'" in err
    assert "empty" not in err and "0 bytes" not in err  # a pipe is not an empty file
    assert proc.stdout.decode() == f"{wavs['a']}\t{asr.train.load_model(path).transcribe(wavs['a']).text}\n"


@pytest.mark.parametrize("source", ["--model", "--checkpoint"])
def test_decoding_options_reach_the_recognizer(source, models, wavs, arpa, tmp_path, capsys):
    onnx_path = models.get("gru-offline")[0]
    path = onnx_path if source == "--model" else onnx_path[: -len(".onnx")] + ".pt"
    greedy = asr.train.load_model(path).transcribe(wavs["a"]).text
    hot = tmp_path / "hot.txt"
    hot.write_text("cab\t50\n")
    cases = [
        (["--hotword", "cab", "--hotword-weight", "50"], DecodingOptions(hotwords={"cab": math.nan}, hotword_weight=50.0)),
        (["--hotwords", str(hot)], DecodingOptions(hotwords_file=str(hot))),
        (["--lm", arpa, "--alpha", "3"], DecodingOptions(lm=arpa, alpha=3.0)),
        (["--beam-size", "1", "--beta", "3"], DecodingOptions(beam_size=1, beta=3.0)),
    ]
    for flags, options in cases:
        assert cli.main(["transcribe", source, path, "--format", "json", *flags, wavs["a"]]) == 0
        d = json.loads(capsys.readouterr().out)
        want = asr.train.load_model(path, options).transcribe(wavs["a"])
        assert (d["text"], d["words"]) == (want.text, [w.__dict__ for w in want.words]), flags
        assert want.text != greedy, flags  # these options change the text here, so dropping them shows


def test_inputs_of_the_same_name_get_their_own_transcript_files(models, wavs, tmp_path):
    """c1/x.wav, c2/x.wav and c2/x.flac once all wrote out/x.txt, the last one winning."""
    import shutil

    import soundfile as sf

    path = models.get("gru-offline")[0]
    inputs = [str(tmp_path / "c1" / "x.wav"), str(tmp_path / "c2" / "x.wav"), str(tmp_path / "c2" / "x.flac")]
    for p, src in zip(inputs, (wavs["a"], wavs["b"], wavs["a"])):
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if p.endswith(".flac"):
            sf.write(p, sf.read(src)[0], sf.info(src).samplerate)
        else:
            shutil.copy(src, p)
    out = tmp_path / "out"
    proc = run_asr(["transcribe", "--model", path, "--write", "txt", "--output-dir", str(out), *inputs])
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    texts = dict(line.split("\t") for line in proc.stdout.decode().splitlines())
    assert sorted(os.listdir(out)) == ["x-2.txt", "x-3.txt", "x.txt"]
    for p, name in zip(inputs, ("x.txt", "x-2.txt", "x-3.txt")):
        assert (out / name).read_text() == texts[p] + "\n"
    assert f"note: {inputs[1]}: written to {out / 'x-2.txt'} (x is taken by {inputs[0]} in this run)" in err
    assert f"{inputs[2]}: written to {out / 'x-3.txt'}" in err


def test_a_file_cut_short_and_absurd_levels_are_warned_of(models, tmp_path):
    """A WAV cut in half, and float samples scaled by 1e30, were transcribed with exit 0 and no
    warning."""
    import numpy as np
    import soundfile as sf

    from tests.conftest import synth_utterance

    path = models.get("gru-offline")[0]
    x = synth_utterance("abc ca", np.random.default_rng(1))
    whole, loud = tmp_path / "whole.wav", tmp_path / "loud.wav"
    sf.write(whole, x, 8000, subtype="PCM_16")
    sf.write(loud, x * 1e30, 8000, subtype="FLOAT")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    proc = run_asr(["transcribe", "--model", path, str(whole), str(cut), str(loud)])
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    lines = err.splitlines()
    assert [x for x in lines if "cut short" in x] == [x for x in lines if x.startswith(f"warning: {cut}: the WAV header declares")]
    assert len([x for x in lines if "cut short" in x]) == 1  # once, not once per reader
    assert [x for x in lines if x.startswith(f"warning: {loud}: peak level")]
    assert str(whole) not in err and len(proc.stdout.decode().splitlines()) == 3


DATA = os.path.join(ROOT, "tests", "data")
DIGITS_WAV = os.path.join(DATA, "fsdd_four_zero_seven_two_nine.wav")
SENTENCE_WAV = os.path.join(DATA, "speechocean762_john_can_see_the_sheep.wav")


def test_grammar_restricts_and_alternatives_come_in_json(tmp_path, capsys):
    """The built-in digits model (word units with <unk>): --grammar keeps the text to the
    grammar's words ([unk] for the rest, the sentence too), names the word it cannot spell on
    stderr and goes on; --alternatives 3 gives each file its n-best list in --format json, best
    first, with scores and timed words; --phrase adds phrases; --drop-unk leaves [unk] out."""
    grammar = tmp_path / "digits.txt"
    grammar.write_text("four\nzero\nseven\n[unk]\nyes  # not a word of this model\n")
    assert cli.main(["transcribe", "--grammar", str(grammar), "--alternatives", "3", "--format", "json",
                     DIGITS_WAV, SENTENCE_WAV]) == 0
    out, err = capsys.readouterr()
    assert "warning: grammar: left out 1 word(s) this model cannot spell: 'yes'" in err
    digits, sentence = (json.loads(line) for line in out.splitlines())
    assert digits["text"] == "four zero seven [unk] [unk]" and set(sentence["text"].split()) == {"[unk]"}
    alts = digits["alternatives"]
    assert 2 <= len(alts) <= 3 and alts[0]["text"] == digits["text"] and alts == digits["utterances"][0]["alternatives"]
    assert [a["score"] for a in alts] == sorted((a["score"] for a in alts), reverse=True) and len({a["text"] for a in alts}) == len(alts)
    for a in alts:
        assert set(a) == {"text", "score", "acoustic", "lm", "words"} and a["text"] == " ".join(w["word"] for w in a["words"])
        assert set(a["text"].split()) <= {"four", "zero", "seven", "[unk]"}
        assert all(0 <= w["start"] < w["end"] <= digits["duration"] for w in a["words"])
    assert [w["word"] for w in digits["words"]] == digits["text"].split()
    assert cli.main(["transcribe", "--phrase", "four zero seven", "--phrase", "[unk]", "--drop-unk", DIGITS_WAV]) == 0
    assert capsys.readouterr().out == f"{DIGITS_WAV}\tfour zero seven\n"
    assert cli.main(["transcribe", "--format", "json", DIGITS_WAV]) == 0  # no n-best asked: no alternatives key
    assert "alternatives" not in capsys.readouterr().out


def test_grammar_and_alternatives_refusals(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    assert cli.main(["transcribe", "--grammar", str(empty), DIGITS_WAV]) == 2
    assert f"grammar_file: {empty}: no phrase in it" in capsys.readouterr().err
    assert cli.main(["transcribe", "--phrase", "yes", "--phrase", "no", DIGITS_WAV]) == 2
    assert "error: none of the grammar's words can be spelled with this model's vocabulary: 'no', 'yes'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["transcribe", "--alternatives", "11", DIGITS_WAV])
    assert "--alternatives: must be 0..10, got 11" in capsys.readouterr().err
    assert cli.main(["transcribe", "--beam-size", "2", "--alternatives", "3", DIGITS_WAV]) == 2
    assert "alternatives (3) cannot be more than beam_size (2)" in capsys.readouterr().err


def test_evaluate_and_stream_take_the_grammar(tmp_path, capsys):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"audio_filepath": DIGITS_WAV, "duration": 3.0, "text": "four zero seven two nine"}) + "\n")
    assert cli.main(["evaluate", "--manifest", str(manifest), "--phrase", "four zero seven", "--phrase", "[unk]",
                     "--drop-unk", "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert report["wer_percent"] == 40.0 and report["grammar_phrases"] == 2 and report["drop_unk"] is True
    with pytest.raises(SystemExit):  # evaluate prints no n-best lists
        cli.main(["evaluate", "--manifest", str(manifest), "--alternatives", "2"])
    capsys.readouterr()
    assert cli.main(["stream", "--phrase", "four", "--phrase", "zero", "--phrase", "[unk]", "--alternatives", "2",
                     "--format", "json", "--no-partials", DIGITS_WAV]) == 0
    finals = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert " ".join(f["text"] for f in finals if f["text"]).split()[:2] == ["four", "zero"]
    for f in finals:
        assert set(f["text"].split()) <= {"four", "zero", "[unk]"} and len(f["alternatives"]) <= 2
        assert f["alternatives"][0]["text"] == f["text"]


def test_punctuate_reaches_stdout_json_and_every_file(models, wavs, punct_model, tmp_path, capsys):
    """--punctuate: the printed text, the JSON words and the srt/vtt/json/txt files get marks and
    capitals; each word keeps its times."""
    from asr.itn import TextOptions

    path = models.get("gru-offline")[0]
    plain = asr.train.load_model(path).transcribe(wavs["a"])
    want = TextOptions(punctuate=True, punctuation_model=punct_model[0]).apply(plain)
    assert plain.text and want.text != plain.text and want.text[0].isupper()
    out = tmp_path / "out"
    rc = cli.main(["transcribe", "--model", path, "--punctuation-model", punct_model[0], "--format", "json",
                   "--write", "all", "--output-dir", str(out), wavs["a"]])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    assert d["text"] == want.text
    assert [(w["word"], w["start"], w["end"]) for w in d["words"]] == [(w.word, w.start, w.end) for w in want.words]
    assert [(w["start"], w["end"]) for w in d["words"]] == [(w.start, w.end) for w in plain.words]
    stem = os.path.splitext(os.path.basename(wavs["a"]))[0]
    assert (out / f"{stem}.txt").read_text().split() == want.text.split()
    for ext in ("srt", "vtt"):
        assert want.words[0].word in (out / f"{stem}.{ext}").read_text()
    assert json.loads((out / f"{stem}.json").read_text())["text"] == want.text
    with pytest.raises(SystemExit) as exc:  # a missing punctuation model stops the command before any audio
        cli.main(["transcribe", "--model", path, "--punctuation-model", str(tmp_path / "none.onnx"), wavs["a"]])
    assert exc.value.code == 2 and "punctuation model not found" in capsys.readouterr().err


def test_stream_punctuates_finals_only(models, wavs, punct_model, capsys):
    from asr.cli.stream import main as stream_main
    from asr.itn import TextOptions

    path, _, _ = models.get("gru-lc")
    rc = stream_main(["--model", path, wavs["a"], "--piece-ms", "30", "--no-endpoint", "--punctuate",
                      "--punctuation-model", punct_model[0], "--format", "json"])
    out, err = capsys.readouterr()
    assert rc == 0
    final = json.loads(out.strip().splitlines()[-1])
    plain = asr.train.load_model(path).transcribe(wavs["a"])
    assert final["text"] == TextOptions(punctuate=True, punctuation_model=punct_model[0]).apply(plain).text
    partials = [line.split("\t")[2] for line in err.splitlines() if "\tpartial\t" in line]
    assert all(p == p.lower() for p in partials)  # partial results stay plain
