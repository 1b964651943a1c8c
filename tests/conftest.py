"""Shared fixtures: tiny audio the tests generate themselves (no corpus needed)."""

import json
import os

import numpy as np
import pytest
import soundfile as sf

SR = 8000
TONES = {"a": 500.0, "b": 1100.0, "c": 1900.0}


def synth_utterance(text: str, rng: np.random.Generator, sr: int = SR) -> np.ndarray:
    """A 'word' is a run of tones, one per character (a, b, c), 120 ms each; words are
    separated by 100 ms of near-silence. Learnable by a tiny CTC model in a few steps."""
    parts = [0.003 * rng.standard_normal(int(0.08 * sr))]
    for w, word in enumerate(text.split()):
        if w:
            parts.append(0.003 * rng.standard_normal(int(0.1 * sr)))
        for ch in word:
            n = int(0.12 * sr)
            t = np.arange(n) / sr
            f = TONES[ch] * (1 + 0.02 * rng.standard_normal())
            env = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)
            parts.append(0.4 * env * np.sin(2 * np.pi * f * t + rng.uniform(0, 6.28)) + 0.003 * rng.standard_normal(n))
    parts.append(0.003 * rng.standard_normal(int(0.08 * sr)))
    return np.concatenate(parts).astype(np.float32)


def random_text(rng: np.random.Generator) -> str:
    words = []
    for _ in range(int(rng.integers(1, 3))):
        words.append("".join(rng.choice(list(TONES), size=int(rng.integers(1, 4)))))
    return " ".join(words)


def write_corpus(folder, n: int, seed: int, name: str) -> str:
    """Write n synthetic utterances as WAV files and a manifest; returns the manifest path."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    lines = []
    for i in range(n):
        text = random_text(rng)
        wave = synth_utterance(text, rng)
        path = os.path.join(folder, f"{name}_{i:03d}.wav")
        sf.write(path, wave, SR)
        lines.append(json.dumps({"audio_filepath": path, "duration": len(wave) / SR, "text": text, "speaker": "s1"}))
    manifest = os.path.join(folder, f"{name}.jsonl")
    with open(manifest, "w") as f:
        f.write("\n".join(lines) + "\n")
    return manifest


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    return {
        "train": write_corpus(root / "train", 48, seed=1, name="train"),
        "dev": write_corpus(root / "dev", 12, seed=2, name="dev"),
        "root": str(root),
    }


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def piece_tokenizer(pieces):
    """A SentencePiece tokenizer (kind "bpe") with exactly these pieces, in this order after the
    blank: a tiny trained unigram model whose piece list is replaced (every piece scores the
    same, so encoding takes the fewest pieces). Ids: blank 0, then ``pieces`` from 1."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    from asr.text import SentencePieceTokenizer

    base = SentencePieceTokenizer.build(["a b"], vocab_size=8)
    m = pb.ModelProto()
    m.ParseFromString(base._proto)
    del m.pieces[1:]  # keep <unk> at id 0
    for p in pieces:
        m.pieces.add(piece=p, score=-1.0, type=pb.ModelProto.SentencePiece.NORMAL)
    m.trainer_spec.vocab_size = len(pieces) + 1
    return SentencePieceTokenizer(m.SerializeToString())
