"""CTC forced alignment (numpy Viterbi) against torchaudio's forced_align, and ``asr align``."""

import json

import numpy as np
import pytest

from asr.decoding.align import AlignmentError, ctc_viterbi, forced_align

torch = pytest.importorskip("torch")
F = pytest.importorskip("torchaudio.functional")


def _random_case(rng, T, V, L, peaky):
    logits = rng.standard_normal((T, V)) * (4.0 if peaky else 1.0)
    lp = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    targets = rng.integers(1, V, size=L)
    if L > 2:
        targets[1] = targets[0]  # a repeated token needs a blank between
    return lp.astype(np.float32), targets.tolist()


@pytest.mark.parametrize("seed", range(12))
def test_same_path_and_score_as_torchaudio(seed):
    rng = np.random.default_rng(seed)
    T, V = int(rng.integers(8, 120)), int(rng.integers(3, 30))
    L = int(rng.integers(1, max(2, T // 3)))
    lp, targets = _random_case(rng, T, V, L, peaky=seed % 2 == 0)
    labels, score = ctc_viterbi(lp, targets)
    ref, ref_scores = F.forced_align(torch.from_numpy(lp)[None], torch.tensor([targets], dtype=torch.int32), blank=0)
    assert labels.tolist() == ref[0].tolist()
    assert score == pytest.approx(float(ref_scores[0].sum()), abs=1e-3)
    # the tokens, in order, each with the frames its state holds
    path = forced_align(lp, targets)
    assert [t for t, _, _ in path] == targets
    for t, a, b in path:
        assert set(labels[a: b + 1].tolist()) == {t}
    assert all(p[2] < q[1] for p, q in zip(path, path[1:]))


def test_tight_fit_and_errors():
    lp = np.log(np.full((3, 3), 1 / 3, np.float32))
    assert forced_align(lp, [1, 2, 1]) == [(1, 0, 0), (2, 1, 1), (1, 2, 2)]  # exactly enough frames
    with pytest.raises(AlignmentError, match="too short"):
        forced_align(lp, [1, 1, 2])  # the repeat needs a fourth frame
    with pytest.raises(AlignmentError, match="token ids"):
        forced_align(lp, [0, 1])
    assert forced_align(lp, []) == []


def test_align_command_and_api(models, tmp_path, capsys):
    import soundfile as sf

    import asr.train
    from asr import cli
    from tests.conftest import synth_utterance

    model = models.get("gru-offline")[0]
    wav = tmp_path / "a.wav"
    sf.write(wav, synth_utterance("abc ca", np.random.default_rng(1)), 8000)
    rec = asr.train.load_model(model)
    r = rec.align(str(wav), "ABC  ca")  # normalized like transcripts
    assert r.text == "abc ca" and [w.word for w in r.words] == ["abc", "ca"]
    assert 0.0 <= r.words[0].start < r.words[0].end <= r.words[1].start < r.words[1].end <= r.duration + 0.05
    assert all(0.0 <= w.confidence <= 1.0 for w in r.words)

    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"audio_filepath": str(wav), "duration": 1.0, "text": "abc ca"}) + "\n"
                        + json.dumps({"audio_filepath": str(wav), "duration": 1.0, "text": "xyz"}) + "\n")
    assert cli.main(["align", "--model", model, "--manifest", str(manifest), "--format", "json",
                     "--write", "srt", "--output-dir", str(tmp_path / "out")]) == 1
    out, err = capsys.readouterr()
    (line,) = [json.loads(x) for x in out.splitlines()]
    assert [w["word"] for w in line["words"]] == ["abc", "ca"] and line["words"] == [w.__dict__ for w in r.words]
    assert "cannot spell" in err and (tmp_path / "out" / "a.srt").exists()
    assert cli.main(["align", "--model", model, "--text", "abc ca", str(wav)]) == 0
    rows = [x.split("\t") for x in capsys.readouterr().out.splitlines()]
    assert [r_[3] for r_ in rows] == ["abc", "ca"] and float(rows[0][1]) == r.words[0].start


def test_alignment_within_the_detected_speech():
    """A model that puts every token on the first frames (like a bidirectional CTC model) is
    placed where the detector hears the speech; without a detector, where the model put it."""
    from asr.runtime.offline import OfflineRecognizer
    from asr.vad import VadOptions
    from tests.runtime.test_longform import SR, SpikeBackend, tone_word

    rng = np.random.default_rng(2)
    quiet = lambda s: (1e-3 * rng.standard_normal(int(s * SR))).astype(np.float32)  # noqa: E731
    x = np.concatenate([quiet(0.7), tone_word("cab", rng), quiet(0.5)]).astype(np.float32)
    rec = OfflineRecognizer(SpikeBackend())
    (w,) = rec.align(x, "cab", vad=VadOptions(method="energy")).words
    assert abs(w.start - 0.7) <= 0.05 and abs(w.end - 1.06) <= 0.05
    (raw,) = rec.align(x, "cab", vad=None).words
    assert raw.start < 0.1
    assert rec.align(x, "", vad=VadOptions(method="energy")).words == []


def test_entries_of_one_file_get_their_own_transcript_files(models, tmp_path, capsys):
    """Two manifest entries of the same audio file (segments, or the file twice) once wrote one
    a.srt, the second replacing the first."""
    import soundfile as sf

    from asr import cli
    from tests.conftest import synth_utterance

    model = models.get("gru-offline")[0]
    wav = tmp_path / "a.wav"
    sf.write(wav, synth_utterance("abc ca", np.random.default_rng(1)), 8000)
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps({"audio_filepath": str(wav), "duration": 1.0, "text": t}) + "\n"
                                for t in ("abc ca", "abc")))
    out = tmp_path / "out"
    assert cli.main(["align", "--model", model, "--manifest", str(manifest), "--write", "txt",
                     "--output-dir", str(out)]) == 0
    err = capsys.readouterr().err
    assert (out / "a.txt").read_text() == "abc ca\n" and (out / "a-2.txt").read_text() == "abc\n"
    assert f"note: {wav}: written to {out / 'a-2.txt'}" in err


@pytest.mark.parametrize("backend", ["tones", "tones/4", "spikes"])
@pytest.mark.parametrize("vad", ["energy", "none"])
def test_confidence_tells_right_from_wrong_and_times_stay_in_the_audio(backend, vad):
    """With the default detector every word once got confidence 0.0, right or wrong (its times
    moved into the speech, away from the frames where a bidirectional model put it), and a
    word could end after the audio (0.416 s in a 0.38 s file)."""
    from asr.runtime.offline import OfflineRecognizer
    from asr.vad import VadOptions
    from tests.runtime.test_longform import SR, SpikeBackend, ToneBackend, tone_word

    rng = np.random.default_rng(3)
    quiet = lambda s: (1e-3 * rng.standard_normal(int(s * SR))).astype(np.float32)  # noqa: E731
    # speech to the very end, of a length that is not a whole number of frames
    x = np.concatenate([quiet(0.5), tone_word("cab", rng), quiet(0.3), tone_word("bc", rng)[:-37]]).astype(np.float32)
    class Subsampled(ToneBackend):  # every 4th frame, the last one reaching past the last sample
        subsampling = 4

        def log_probs(self, waves):
            return [lp[::4] for lp in super().log_probs(waves)]

    rec = OfflineRecognizer({"spikes": SpikeBackend, "tones": ToneBackend, "tones/4": Subsampled}[backend]())
    options = None if vad == "none" else VadOptions(method="energy")
    right = rec.align(x, "cab bc", SR, vad=options)
    for wrong_text in ("ab ca", "b a"):
        wrong = rec.align(x, wrong_text, SR, vad=options)
        # every right word is sure; a wrong transcript has a word the model does not hear (some
        # of its words may still be right: "ab" is in "cab")
        assert min(w.confidence for w in right.words) > 0.9 > 0.1 > min(w.confidence for w in wrong.words)
        assert np.mean([w.confidence for w in right.words]) > np.mean([w.confidence for w in wrong.words]) + 0.4
        for r in (right, wrong):
            assert all(0.0 <= w.start <= w.end <= r.duration for w in r.words), r.words
            assert r.duration == round(x.size / SR, 3) and r.utterances[0].end <= r.duration


def _peaks(labels, V=4):
    """(frames, V) log-probs whose best symbol is ``labels[t]`` (0.9) at each frame."""
    lp = np.full((len(labels), V), np.log(0.1 / (V - 1)))
    lp[np.arange(len(labels)), labels] = np.log(0.9)
    return lp


def test_token_runs_boundaries_and_each_refusal(monkeypatch):
    from asr.decoding import align

    lp = _peaks([1, 1, 1, 0, 2])
    assert forced_align(lp, [1, 2]) == [(1, 0, 2), (2, 4, 4)]  # a token held three frames: first to last
    assert forced_align(_peaks([1, 2]), [1, 2]) == [(1, 0, 0), (2, 1, 1)]  # different tokens need no blank
    assert forced_align(_peaks([1]), [1]) == [(1, 0, 0)]  # one frame holds one token
    # another blank id: token 0 is an ordinary token then
    assert forced_align(_peaks([0, 3, 0, 1], V=4), [0, 0, 1], blank=3) == [(0, 0, 0), (0, 2, 2), (1, 3, 3)]
    labels, score = ctc_viterbi(lp, [])  # nothing to place: blank throughout
    assert labels.tolist() == [0] * 5 and score == pytest.approx(float(lp[:, 0].sum()))
    with pytest.raises(AlignmentError, match=r"^2 frames cannot hold 2 tokens \(1 repeated ones need a blank between\): "
                                             "the audio is too short for this transcript$"):
        ctc_viterbi(_peaks([1, 1]), [1, 1])
    for bad in ([4], [0], [-1]):
        with pytest.raises(AlignmentError, match=r"^targets must be token ids in 1\.\.3 other than the blank \(0\)$"):
            ctc_viterbi(lp, bad)
    with pytest.raises(AlignmentError, match=r"^expected \(frames, vocabulary\) log-probabilities, got shape \(5,\)$"):
        ctc_viterbi(lp[:, 0], [1])
    impossible = lp.copy()
    impossible[:, 2] = -np.inf
    with pytest.raises(AlignmentError, match="^no path: the frames cannot produce this transcript$"):
        ctc_viterbi(impossible, [1, 2])
    monkeypatch.setattr(align, "MAX_CELLS", 25)  # 5 frames x 5 states: just fits
    assert forced_align(lp, [1, 2]) == [(1, 0, 2), (2, 4, 4)]
    monkeypatch.setattr(align, "MAX_CELLS", 24)
    with pytest.raises(AlignmentError, match=r"^5 frames x 5 states is too large to align at once"):
        ctc_viterbi(lp, [1, 2])
