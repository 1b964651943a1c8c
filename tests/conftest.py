"""Shared fixtures: tiny audio the tests generate themselves (no corpus needed), and tiny
random models exported to ONNX once per session (``models``) with their test files (``wavs``)."""

import json
import os

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.audio import resample
from asr.frontend import FrontendConfig, logmel
from asr.text import BLANK, CharTokenizer, WordTokenizer

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


# --- tiny exported models (runtime, recognizer, export and CLI tests) ------------------------------
FRONTEND = FrontendConfig(sample_rate=SR, n_fft=256, win_length=200, hop_length=80, n_mels=24)


VOCAB = [BLANK, " ", "a", "b", "c"]


TOKENIZER = CharTokenizer(VOCAB)


STREAMING = {
    "gru-uni": dict(rnn_type="gru", bidirectional=False, subsampling=2, chunk_size=3),
    "lstm-uni": dict(rnn_type="lstm", bidirectional=False, subsampling=1, chunk_size=5),
    "gru-lc": dict(rnn_type="gru", bidirectional=True, subsampling=4, chunk_size=2, right_context=1),
    "lstm-lc": dict(rnn_type="lstm", bidirectional=True, subsampling=2, chunk_size=4, right_context=2),
}


OFFLINE = {"gru-offline": dict(rnn_type="gru", bidirectional=True, subsampling=2)}


def _random_model(seed: int, **kw):
    from asr.train.model import CTCModel, ModelConfig

    torch.manual_seed(seed)
    cfg = ModelConfig(input_dim=FRONTEND.n_mels, vocab_size=len(VOCAB), conv_dim=16, hidden_size=16, num_layers=2, dropout=0.0, **kw)
    m = CTCModel(cfg)
    with torch.no_grad():
        m.set_normalization(torch.full((FRONTEND.n_mels,), -7.0) + torch.randn(FRONTEND.n_mels), torch.rand(FRONTEND.n_mels) + 2.0)
        m.head.weight.mul_(6.0)  # varied argmax, so the decoded text has several symbols and words
        m.head.bias.zero_()
    return m.eval()


def _endpoint_model():
    """Hand-set weights: 'a' while the mean log-mel is above -12 (tone), blank in digital silence.
    One unidirectional GRU layer whose update gate is shut: h = tanh(4 * (mean(x) + 12))."""
    from asr.train.model import CTCModel, ModelConfig

    cfg = ModelConfig(input_dim=FRONTEND.n_mels, vocab_size=len(VOCAB), subsampling=1, rnn_type="gru", hidden_size=2,
                      num_layers=1, bidirectional=False, dropout=0.0, chunk_size=5)
    m = CTCModel(cfg)
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
        g, h = m.rnns[0].fwd, 2
        g.bias_ih_l0[h : 2 * h] = -20.0
        g.weight_ih_l0[2 * h :] = 4.0 / FRONTEND.n_mels
        g.bias_ih_l0[2 * h :] = 4.0 * 12.0
        m.head.weight[2] = 5.0
        m.head.bias[[1, 3, 4]] = -20.0
    return m.eval()


class Models:
    """Exports each test model on first use; keeps (onnx path, torch model, export report)."""

    def __init__(self, root):
        self.root, self.cache = root, {}

    def get(self, name):
        from asr.train.checkpoint import save_checkpoint
        from asr.train.config import DataConfig, ExperimentConfig
        from asr.train.export import export_onnx

        if name not in self.cache:
            tokenizer = TOKENIZER
            if name in ("endpoint", "endpoint-words"):
                model, streaming = _endpoint_model(), True
                if name == "endpoint-words":  # the same weights, each symbol a word ("a" is id 2)
                    tokenizer = WordTokenizer([BLANK, "x", "a", "b", "c"])
            else:
                spec = {**STREAMING, **OFFLINE}[name]
                model, streaming = _random_model(list({**STREAMING, **OFFLINE}).index(name) + 1, **spec), name in STREAMING
            cfg = ExperimentConfig(data=DataConfig(train="", dev=None), frontend=FRONTEND, model=model.cfg)
            ckpt = os.path.join(self.root, f"{name}.pt")
            save_checkpoint(ckpt, model, cfg, tokenizer)
            out = os.path.join(self.root, f"{name}.onnx")
            report = export_onnx(ckpt, out, streaming=streaming, parity_audio=[], parity_lengths_s=(0.6,))
            self.cache[name] = (out, model, report)
        return self.cache[name]


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    torch.set_num_threads(1)
    return Models(str(tmp_path_factory.mktemp("runtime_models")))


@pytest.fixture(scope="session")
def wavs(tmp_path_factory):
    """Two files: 8 kHz mono, and 16 kHz stereo; plus a bad one."""
    root = tmp_path_factory.mktemp("runtime_wavs")
    rng = np.random.default_rng(7)
    a = os.path.join(root, "a.wav")
    sf.write(a, synth_utterance("abc ca", rng), SR)
    b = os.path.join(root, "b.wav")
    w = resample(synth_utterance("cab b", rng), SR, 16000)
    sf.write(b, np.stack([w, 0.5 * w], axis=1), 16000)
    bad = os.path.join(root, "bad.wav")
    with open(bad, "w") as f:
        f.write("this is not audio")
    return {"a": a, "b": b, "bad": bad}


def _feed(rec, stream, wave, rng, rate=SR, tiny=0.7):
    """Feed in random piece sizes (tiny 1-50 samples, or big ones), decoding as frames arrive."""
    i = 0
    while i < wave.size:
        n = int(rng.integers(1, 51)) if rng.random() < tiny else int(rng.integers(200, 4000))
        stream.accept_waveform(rate, wave[i : i + n])
        i += n
        while rec.is_ready(stream):
            rec.decode_stream(stream)
    stream.input_finished()
    while rec.is_ready(stream):
        rec.decode_stream(stream)
    assert stream.done


def _torch_reference(model, wave):
    feats = torch.from_numpy(logmel(wave, FRONTEND))[None]
    with torch.no_grad():
        logp, n = model(feats, torch.tensor([feats.shape[1]]))  # chunked forward: model.cfg.chunk_size is set
    return logp[0, : int(n[0])].numpy()


_BLOCK_TORCH = '''
import sys

class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this process")

sys.meta_path.insert(0, _NoTorch())
'''


def run_without_torch(code: str, *args: str, timeout: float = 120):
    """Run ``code`` (dedented) in a fresh interpreter where torch cannot be imported; fails the
    test with the child's stderr unless it exits 0 and has not imported torch."""
    import subprocess
    import sys
    import textwrap

    check = '\nassert not [m for m in sys.modules if m.split(".")[0] == "torch"], "torch was imported"\n'
    proc = subprocess.run([sys.executable, "-c", _BLOCK_TORCH + textwrap.dedent(code) + check, *args],
                          capture_output=True, text=True, timeout=timeout, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture
def disk_full(monkeypatch):
    """``disk_full(prefix, after=N)``: from now on, a file opened for writing whose name starts
    with ``prefix`` raises "No space left on device" once more than N characters were written
    to it (N = 0: at the first write). Returns a function that lifts the condition."""
    import builtins

    real_open = builtins.open

    class Filling:
        def __init__(self, f, room):
            self.f, self.room = f, room

        def write(self, text):
            if len(text) > self.room:
                self.f.write(text[: self.room])
                raise OSError(28, "No space left on device")
            self.room -= len(text)
            return self.f.write(text)

        def writelines(self, lines):
            for line in lines:
                self.write(line)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    def start(prefix: str, after: int = 0):
        def filling_open(file, mode="r", *args, **kwargs):
            f = real_open(file, mode, *args, **kwargs)
            if "w" in mode and os.path.basename(os.fspath(file)).startswith(prefix):
                return Filling(f, after)
            return f

        monkeypatch.setattr(builtins, "open", filling_open)
        return lambda: monkeypatch.setattr(builtins, "open", real_open)

    return start


def punctuation_corpus(n: int, seed: int) -> list[str]:
    """Punctuated lines a tiny tagger learns in seconds: questions start with where/what, a
    name is Capitalized, ``nasa`` is UPPER, ``yes`` takes a comma."""
    rng = np.random.default_rng(seed)
    things = ["cat", "dog", "car", "book", "key"]
    names = ["Tom", "Anna", "NASA"]

    def sentence():
        thing, name = rng.choice(things), rng.choice(names)
        kind = int(rng.integers(5))
        if kind == 0:
            return f"Where is the {thing}?"
        if kind == 1:
            return f"What did {name} see?"
        if kind == 2:
            return f"Yes, the {thing} is here."
        if kind == 3:
            return f"{name} has twenty one of the {thing}."
        return f"{name} has the {thing}."

    return [" ".join(sentence() for _ in range(int(rng.integers(1, 4)))) for _ in range(n)]


@pytest.fixture(scope="session")
def punct_model(tmp_path_factory):
    """A tiny punctuation tagger trained on :func:`punctuation_corpus` and exported: (model.onnx,
    its checkpoint)."""
    from asr.train.punctuation import export, load_config, train

    d = tmp_path_factory.mktemp("punct")
    for name, n, seed in (("train", 600, 0), ("dev", 60, 1)):
        (d / f"{name}.txt").write_text("\n".join(punctuation_corpus(n, seed)) + "\n")
    cfg = load_config(None, [f"data.train={d / 'train.txt'}", f"data.dev={d / 'dev.txt'}", "model.embed_dim=16",
                             "model.hidden_size=24", "model.num_layers=1", "train.epochs=10", "train.warmup_steps=10",
                             "train.lr=1e-2", "train.window=16", "train.context=4", "data.min_count=1"])
    train(cfg, str(d / "exp"))
    path = str(d / "model.onnx")
    export(str(d / "exp" / "best.pt"), path)
    return path, str(d / "exp" / "best.pt")
