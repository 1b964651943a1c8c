"""DecodingOptions and the Decoder, and beam search, LM and hotwords wired through the
user-facing paths: the recognizer (offline, and streaming where the final text is decoded
again, with per-stream hotwords), `asr evaluate` (with a grid search over LM weight and
insertion bonus), `asr transcribe` and `asr-stream`."""

import json
import os

import numpy as np
import pytest

import asr
import asr.train
from asr import cli
from asr.cli.stream import main as stream_main
from asr.decoding.beam_search import read_hotwords
from asr.decoding.confidence import token_confidences
from asr.decoding.greedy import greedy_alignment
from asr.decoding.lm import train_ngram
from asr.decoding.options import DEFAULT_BEAM, Decoder, DecodingOptions
from asr.decoding.result import words_from_tokens
from asr.runtime import OnlineRecognizer
from tests.conftest import TOKENIZER


@pytest.fixture(scope="module")
def arpa(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("lm") / "lm.arpa")
    train_ngram(["abc ca", "cab b", "a b c", "ab ab"], order=2).write_arpa(path)
    return path


def test_read_hotwords(tmp_path):
    p = tmp_path / "hot.txt"
    p.write_text("# names\nNew York\t3.5\ncat  # a comment\n\n")
    hot = read_hotwords(str(p))
    assert hot["new york"] == 3.5 and np.isnan(hot["cat"])  # NaN: the default bonus
    p.write_text("cat\tlots\n")
    with pytest.raises(ValueError, match=r"hot.txt:1: bonus 'lots'"):
        read_hotwords(str(p))


def test_decoding_options_checks(arpa):
    assert DecodingOptions().greedy and Decoder(TOKENIZER)._search is None
    assert DecodingOptions(lm=arpa).beam_size == DEFAULT_BEAM and DecodingOptions(hotwords=["ab"]).beam_size == DEFAULT_BEAM
    with pytest.raises(ValueError, match="beam search"):
        DecodingOptions(beam_size=0, hotwords=["ab"])
    with pytest.raises(ValueError, match="lm: .*missing.arpa: file not found"):
        DecodingOptions(lm="missing.arpa")
    with pytest.raises(ValueError, match="alpha must be a finite number"):
        DecodingOptions(lm=arpa, alpha=float("nan"))
    with pytest.raises(ValueError, match="hotword"):
        Decoder(TOKENIZER, DecodingOptions(beam_size=4, hotwords=["xyz"]))  # not spellable with this vocabulary: at once
    lp = np.log(np.full((6, len(TOKENIZER.vocab)), 1e-3))
    lp[:, 0] = 0.0
    assert Decoder(TOKENIZER)(lp) == greedy_alignment(lp) == []


def test_offline_recognizer_with_beam_search(models, wavs, arpa):
    path, _, _ = models.get("gru-offline")
    greedy = asr.train.load_model(path).transcribe(wavs["a"])
    options = DecodingOptions(beam_size=8, lm=arpa, alpha=0.5, beta=1.0)
    rec = asr.train.load_model(path, options)
    graph = rec.backend.model  # the same scores the recognizer decodes
    result = rec.transcribe(wavs["a"])
    # the same as running the beam search on the graph's scores by hand
    from asr.audio import read_input
    from asr.frontend import logmel

    info = graph.info
    samples, _ = read_input(wavs["a"], None, info.sample_rate, "a")
    f = logmel(samples, info.frontend)[None]
    scores, n = graph.forward(f, np.array([f.shape[1]]))
    lp = scores[0, : int(n[0])]
    best = Decoder(TOKENIZER, options)(lp)
    text, words = words_from_tokens(TOKENIZER, best, info.frame_shift_s, token_confidences(lp, best))
    assert (result.text, result.words) == (text, words)
    assert all(w.end > w.start for w in result.words)
    assert greedy.text == asr.train.load_model(path, DecodingOptions()).transcribe(wavs["a"]).text


def test_streaming_final_text_is_beam_decoded(models, wavs):
    path, _, _ = models.get("gru-lc")
    options = DecodingOptions(beam_size=8, hotwords=["cab"])
    align = Decoder(TOKENIZER, options)
    rec = OnlineRecognizer(path, decoding=options)
    stream = rec.create_stream(keep_log_probs=True)
    import soundfile as sf

    wave, rate = sf.read(wavs["a"], dtype="float32")
    stream.accept_waveform(rate, wave[: len(wave) // 2])
    while rec.is_ready(stream):
        rec.decode_stream(stream)
    partial = rec.get_result(stream)
    assert not partial.final
    seen = np.concatenate(stream.log_probs)  # partials stay greedy
    assert partial.text == TOKENIZER.decode([t for t, _, _ in greedy_alignment(seen)])
    stream.accept_waveform(rate, wave[len(wave) // 2 :])
    stream.input_finished()
    while rec.is_ready(stream):
        rec.decode_stream(stream)
    final = rec.get_result(stream)
    scores = np.concatenate(stream.log_probs)
    path = align(scores)
    text, words = words_from_tokens(TOKENIZER, path, rec.info.frame_shift_s, token_confidences(scores, path))
    assert final.final and (final.text, final.words) == (text, words)


def test_per_stream_hotwords(models, wavs):
    """Hotwords given to one stream bias its final decoding (a beam search even on a greedy
    recognizer), and only that stream's."""
    import soundfile as sf

    path, _, _ = models.get("gru-lc")
    rec = OnlineRecognizer(path)
    wave, rate = sf.read(wavs["a"], dtype="float32")
    plain, biased = rec.create_stream(keep_log_probs=True), rec.create_stream(keep_log_probs=True, hotwords={"cab": 50.0})
    for s in (plain, biased):
        s.accept_waveform(rate, wave)
        s.input_finished()
    while rec.decode_streams([plain, biased]):
        pass
    scores = np.concatenate(plain.log_probs)
    assert rec.get_result(plain).text == TOKENIZER.decode([t for t, _, _ in greedy_alignment(scores)])
    hot = Decoder(TOKENIZER)(scores, hotwords={"cab": 50.0})
    assert rec.get_result(biased).text == TOKENIZER.decode([t for t, _, _ in hot])
    assert "cab" in rec.get_result(biased).text.split()  # a bonus this large forces the word in
    with pytest.raises(ValueError, match="hotword 'xyz'"):
        rec.create_stream(hotwords=["xyz"])


def test_evaluate_with_lm_grid(tmp_path, models, arpa, capsys):
    import soundfile as sf

    from tests.conftest import SR, synth_utterance

    rng = np.random.default_rng(3)
    manifest = tmp_path / "m.jsonl"
    with open(manifest, "w") as f:
        for i, text in enumerate(["abc ca", "cab b", "a b"]):
            p = tmp_path / f"{i}.wav"
            w = synth_utterance(text, rng)
            sf.write(p, w, SR)
            f.write(json.dumps({"audio_filepath": str(p), "duration": len(w) / SR, "text": text}) + "\n")
    path, model, _ = models.get("gru-offline")
    ckpt = path[: -len(".onnx")] + ".pt"
    argv = ["evaluate", "--checkpoint", ckpt, "--manifest", str(manifest), "--no-progress"]
    assert cli.main(argv + ["--lm", arpa, "--alpha", "0.2,0.8", "--beta", "0,1", "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert "grid search" in out and out.count("\n  ") >= 4
    result = json.loads(out.strip().splitlines()[-1])
    assert result["decoder"] == "beam" and result["beam_size"] == 16 and result["alpha"] in (0.2, 0.8)
    assert result["details"] is None  # no --out: no per-utterance file (none beside the model, unasked)
    assert not [p for p in os.listdir(os.path.dirname(ckpt)) if p.startswith("decode_")]
    # the ONNX model through the runtime takes the same options (one setting, no grid)
    assert cli.main(["evaluate", "--model", path, "--manifest", str(manifest), "--lm", arpa,
                     "--alpha", str(result["alpha"]), "--beta", str(result["beta"])]) == 0
    onnx_result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert onnx_result["wer_percent"] == pytest.approx(result["wer_percent"])
    assert onnx_result["cer_percent"] == pytest.approx(result["cer_percent"])
    # one evaluation loop for both backends: the grid runs on the ONNX model too, with the same numbers
    assert cli.main(["evaluate", "--model", path, "--manifest", str(manifest), "--no-progress", "--lm", arpa,
                     "--alpha", "0.2,0.8", "--beta", "0,1"]) == 0
    grid_onnx = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (grid_onnx["wer_percent"], grid_onnx["alpha"], grid_onnx["beta"]) == \
        pytest.approx((result["wer_percent"], result["alpha"], result["beta"]))
    # a character LM, alone (grid over its weight) and beside the word LM
    from asr.decoding.lm import char_tokens

    chars = str(tmp_path / "chars.arpa")
    train_ngram([char_tokens(t) for t in ["abc ca", "cab b", "a b c", "ab ab"]], order=4).write_arpa(chars)
    assert cli.main(argv + ["--char-lm", chars, "--char-alpha", "0.3,1.0"]) == 0
    out = capsys.readouterr().out
    assert "char" in out and json.loads(out.strip().splitlines()[-1])["char_alpha"] in (0.3, 1.0)
    assert cli.main(["evaluate", "--model", path, "--manifest", str(manifest), "--lm", arpa, "--char-lm", chars,
                     "--char-alpha", "0.5"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["char_lm"] == chars and result["details"] is None
    assert cli.main(argv + ["--beam-size", "0", "--lm", arpa]) == 2  # an LM needs beam search


def test_transcribe_and_stream_with_hotwords(models, wavs, arpa, tmp_path, capsys):
    path, _, _ = models.get("gru-lc")
    ckpt = path[: -len(".onnx")] + ".pt"
    hot = tmp_path / "hot.txt"
    hot.write_text("cab\t4\n")
    for source in (["--checkpoint", ckpt], ["--model", path]):
        assert cli.main(["transcribe", *source, "--format", "json", "--hotwords", str(hot), "--lm", arpa, wavs["a"]]) == 0
        d = json.loads(capsys.readouterr().out.strip())
        assert "words" in d and all(w["end"] > w["start"] for w in d["words"])
    assert stream_main(["--model", path, "--format", "json", "--no-partials", "--hotword", "cab", "--lm", arpa, wavs["a"]]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["path"] == wavs["a"]
    assert stream_main(["--model", path, "--hotword", "xyz", wavs["a"]]) == 2  # cannot be spelled: says so
    assert "hotword 'xyz'" in capsys.readouterr().err


def test_default_beam_and_a_given_beam():
    """Two frames where the blank beats 'a' in each, but 'a' wins over all paths (0.64 to 0.36):
    greedy decoding and a beam of 1 say nothing, a wider beam says 'a'. An LM or hotwords
    without a beam size get DEFAULT_BEAM, a given beam size is kept, and hotwords given per
    call to a greedy decoder run with DEFAULT_BEAM."""
    p = np.full((2, len(TOKENIZER.vocab)), 1e-6)
    p[:, 0], p[:, 2] = 0.6, 0.4
    lp = np.log(p / p.sum(axis=1, keepdims=True))
    a = [(2, 0, 0)]
    assert Decoder(TOKENIZER)(lp) == [] and Decoder(TOKENIZER, DecodingOptions(beam_size=1))(lp) == []
    assert Decoder(TOKENIZER, DecodingOptions(beam_size=2))(lp) == a
    no_bonus = {"b": 0.0}  # a hotword that adds nothing: only the beam size matters
    assert Decoder(TOKENIZER, DecodingOptions(hotwords=no_bonus))(lp) == a  # DEFAULT_BEAM
    assert Decoder(TOKENIZER, DecodingOptions(beam_size=1, hotwords=no_bonus))(lp) == []
    assert Decoder(TOKENIZER)(lp, hotwords=no_bonus) == a
    assert Decoder(TOKENIZER, DecodingOptions(beam_size=1))(lp, hotwords=no_bonus) == []


def test_lm_and_hotwords_run_where_torch_cannot_be_imported(models, wavs, arpa, tmp_path):
    """Beam search with word and character LMs and hotwords is part of the torch-free runtime:
    asr.load_model(onnx) with them, and asr-stream --lm --char-lm --hotword, in a process where
    importing torch fails; the texts are those of this (torch-importing) process."""
    import subprocess
    import sys
    import textwrap

    from asr.decoding.lm import char_tokens

    chars = str(tmp_path / "chars.arpa")
    train_ngram([char_tokens(t) for t in ["abc ca", "cab b", "a b c"]], order=3).write_arpa(chars)
    stream_path, offline_path = models.get("gru-lc")[0], models.get("gru-offline")[0]
    code = textwrap.dedent("""
        import json, math, sys

        class NoTorch:
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("torch is blocked in this process")

        sys.meta_path.insert(0, NoTorch())
        import asr
        from asr.cli.stream import main
        from asr.decoding.options import DecodingOptions
        stream_path, offline_path, wav, lm, chars = sys.argv[1:6]
        options = DecodingOptions(lm=lm, char_lm=chars, alpha=0.7, hotwords={"cab": math.nan})
        texts = [asr.load_model(m, options).transcribe(wav, hotwords=["ab"]).text for m in (stream_path, offline_path)]
        assert main(["--model", stream_path, wav, "--no-partials", "--lm", lm, "--char-lm", chars,
                     "--hotword", "cab", "--no-endpoint"]) == 0
        assert not [m for m in sys.modules if m.split(".")[0] == "torch"]
        print(json.dumps(texts))
    """)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    root = os.path.dirname(os.path.dirname(os.path.abspath(asr.__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", code, stream_path, offline_path, wavs["a"], arpa, chars],
                          capture_output=True, text=True, timeout=120, env=env, cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    *streamed, last = proc.stdout.strip().splitlines()
    options = DecodingOptions(lm=arpa, char_lm=chars, alpha=0.7, hotwords={"cab": float("nan")})
    assert json.loads(last) == [asr.train.load_model(m, options).transcribe(wavs["a"], hotwords=["ab"]).text
                                for m in (stream_path, offline_path)]
    assert streamed[0].split("\t")[2] == asr.train.load_model(stream_path, options).transcribe(wavs["a"]).text


def test_settings_and_label_say_every_option(arpa):
    greedy = DecodingOptions()
    assert (greedy.settings(), greedy.label()) == ({"decoder": "greedy"}, "greedy")
    o = DecodingOptions(beam_size=4, lm=arpa, alpha=0.8, char_lm=arpa, char_alpha=0.3, beta=1.0, hotwords=["ab", "ca"])
    assert o.settings() == {"decoder": "beam", "beam_size": 4, "lm": arpa, "alpha": 0.8, "beta": 1.0, "hotwords": 2,
                            "char_lm": arpa, "char_alpha": 0.3}
    assert o.label() == "beam 4, LM alpha 0.8, char LM 0.3, beta 1, 2 hotwords"
    plain = DecodingOptions(beam_size=4, alpha=0.8)
    assert plain.settings() == {"decoder": "beam", "beam_size": 4, "lm": None, "alpha": 0.0, "beta": 0.0, "hotwords": 0}
    assert plain.label() == "beam 4"


def test_the_decoder_passes_every_option_to_the_search(arpa):
    o = DecodingOptions(beam_size=5, lm=arpa, alpha=0.3, beta=0.2, char_lm=arpa, char_alpha=0.7, hotword_weight=1.5,
                        lm_lookahead=False, hotwords=["ab"])
    search = Decoder(TOKENIZER, o)._search
    got = search.options
    assert (got.beam_size, got.alpha, got.beta, got.char_alpha, got.hotword_weight, got.lm_lookahead) == (
        5, 0.3, 0.2, 0.7, 1.5, False)
    assert search.lm is not None and search.char_lm is not None and search.hotwords == {"ab": o.hotwords["ab"]}
    one = np.log(np.full((1, len(TOKENIZER.vocab)), 0.01))
    one[0, 2] = 0.0
    assert Decoder(TOKENIZER)(one) == [(2, 0, 0)] and Decoder(TOKENIZER, o)(one[:0]) == []  # one frame; none


def test_an_lm_file_is_read_again_when_it_changes(tmp_path):
    from asr.decoding.options import load_lm

    path = tmp_path / "lm.arpa"
    train_ngram(["a b"], order=1).write_arpa(path)
    first = load_lm(path)
    assert load_lm(str(path)) is first  # cached
    train_ngram(["a a a b"], order=1).write_arpa(path)
    os.utime(path, (os.path.getmtime(path) + 10, os.path.getmtime(path) + 10))
    again = load_lm(path)
    assert again is not first and again.score("a") > first.score("a")


def test_options_keep_hotword_weights_and_name_every_problem():
    o = DecodingOptions(hotwords={"Ab ": 3.0, "ca": float("nan")})
    assert list(o.hotwords) == ["ab", "ca"] and o.hotwords["ab"] == 3.0  # normalized phrases, weights kept
    changed = DecodingOptions(hotwords=["ab"]).replace(beta=0.5)
    assert changed.beta == 0.5 and changed.hotwords.keys() == {"ab"}
    with pytest.raises(ValueError) as err:
        DecodingOptions(beam_size=0, hotwords=["ab"], alpha=True)
    assert str(err.value) == ("invalid DecodingOptions: an LM, hotwords, a grammar or a lexicon need beam search: beam_size must be >= 1; "
                              "alpha must be a finite number, got True")
    for bad in ("3", True, -1):
        with pytest.raises(ValueError, match=rf"^invalid DecodingOptions: beam_size must be an integer >= 0 \(0: greedy\), got {bad!r}$"):
            DecodingOptions(beam_size=bad)
    with pytest.raises(ValueError, match=r"^empty hotword phrase '  '$"):
        DecodingOptions(hotwords=["  "])
