"""Punctuation and capitals for recognized text: a small bidirectional GRU tagger, run with
onnxruntime (no PyTorch).

The recognizer writes lower-case words without marks ("where are you going i asked"). For
each word the tagger says the mark after it (:data:`MARKS`: none, comma, period, question
mark) and its case (:data:`CASES`: lower, Capitalized, UPPER), giving "Where are you going? I
asked." The model file is self-describing: its ONNX metadata holds the vocabulary, the label
sets and the window (:class:`TaggerInfo`), so training (``asr.train.punctuation``) and this
runtime share them through the file and nothing else.

    Punctuator().punctuate("where are you going i asked")   # the built-in model (asr/assets)
    Punctuator("model.onnx").punctuate_words(words)         # timed words keep their times

Text is cut at whitespace; every token keeps its own spelling (a token that already has a
capital keeps its case, one that already ends in a mark gets no second one). Long input is
tagged in windows of :attr:`TaggerInfo.window` words that overlap by :attr:`TaggerInfo.context`
words on each side, so time and memory grow linearly with the length. The labels of
punctuated text (for training and scoring) come from :func:`label_text`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np

from asr.decoding.result import Word
from asr.runtime.schema import read_metadata
from asr.spoken import MONTH_WORDS, NUMBER_WORDS, ORDINAL_WORDS

__all__ = ["MARKS", "CASES", "METADATA_FORMAT", "DEFAULT_MODEL", "TaggerInfo", "Punctuator", "label_text",
           "apply_labels", "word_key", "score", "read_examples", "evaluate", "default_punctuator"]

MARKS = ("", ",", ".", "?")  # the mark after a word: none, comma, period, question mark
CASES = ("lower", "capitalized", "upper")
METADATA_FORMAT = "asr-punctuation/1"
_PREFIX = "asr."
UNK, PAD = "<unk>", "<pad>"  # ids 1 and 0 of every vocabulary
DEFAULT_MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "punctuation", "model.onnx")
MAX_WINDOW = 4096
MAX_VOCAB = 1_000_000

# A word of punctuated text: letters (any script) joined by apostrophes; what precedes it
# (quotes, brackets) and follows it (marks, quotes) is read for its label.
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_END_MARKS = ".,?!;:"


def word_key(word: str) -> str:
    """The vocabulary key of a token: lower case, surrounding marks and quotes removed."""
    return word.strip(_END_MARKS + "\"'()[]{}“”‘’«»").lower().replace("’", "'")


def _case_of(word: str) -> int:
    letters = [c for c in word if c.isalpha()]
    if len(letters) >= 2 and all(c.isupper() for c in letters):
        return 2
    return 1 if letters and letters[0].isupper() else 0


def _mark_of(gap: str) -> int:
    if "?" in gap:
        return 3
    if "." in gap or "!" in gap:
        return 2
    if any(c in gap for c in ",;:") or "--" in gap or "—" in gap or " - " in gap:
        return 1
    return 0


def label_text(text: str) -> Optional[tuple[list[str], list[int], list[int]]]:
    """The lower-case words of punctuated ``text`` with each word's mark and case label
    (indices into :data:`MARKS` and :data:`CASES`); ``!`` counts as a period, ``;`` ``:`` and
    dashes as commas. None when the text holds something a recognizer never writes (digits,
    symbols, a word glued to another by ``/``, ``_`` or a period, as in ``e.g.``), so that such
    text is left out of training and scoring rather than labelled wrongly."""
    words, marks, cases = [], [], []
    pos = 0
    for m in _WORD.finditer(text):
        gap = text[pos:m.start()]
        if words:
            if not _gap_ok(gap):
                return None
            marks.append(_mark_of(gap))
        elif not _gap_ok(gap, lead=True):
            return None
        w = m.group()
        words.append(w.lower().replace("’", "'"))
        cases.append(_case_of(w))
        pos = m.end()
    if not words or not _gap_ok(text[pos:], lead=True):
        return None
    marks.append(_mark_of(text[pos:]))
    return words, marks, cases


_GAP_OK = set(" \t\n,.;:?!\"'()-—“”‘’")


def _gap_ok(gap: str, lead: bool = False) -> bool:
    """Whether ``gap``, the text between two words (or before the first), is only space, marks
    and quotes; two words glued by anything but a hyphen, a dash or a comma-like mark (``e.g``,
    ``U.S``) are not two words a recognizer writes."""
    if not set(gap) <= _GAP_OK:
        return False  # digits, symbols, other scripts' marks
    if lead or not gap or any(c.isspace() for c in gap):
        return True
    return gap in ("-", "--", "—", ",", ";", ":")


def _cased(word: str, case: int) -> str:
    if case == 0 or any(c.isupper() for c in word):
        return word
    if case == 2:
        return word.upper()
    for i, c in enumerate(word):
        if c.isalpha():
            return word[:i] + c.upper() + word[i + 1:]
        if c.isdigit():
            return word
    return word


def apply_labels(tokens: Sequence[str], marks: Sequence[int], cases: Sequence[int]) -> list[str]:
    """``tokens`` with their labels: the case applied (never to a token that already has a
    capital) and the mark appended (never after a token that already ends in one)."""
    out = []
    for tok, m, c in zip(tokens, marks, cases):
        tok = _cased(tok, int(c))
        if m and tok and tok[-1] not in _END_MARKS:
            tok += MARKS[int(m)]
        out.append(tok)
    return out


@dataclass(frozen=True)
class TaggerInfo:
    """What a punctuation model file says about itself (its ``asr.*`` ONNX metadata).

    vocab: the words, ids 0 and 1 being ``<pad>`` and ``<unk>``; marks, cases: the label sets
    (:data:`MARKS`, :data:`CASES`); window: words per tagging call; context: words of overlap on
    each side of a window's middle when input is longer than a window; mark_bias: one number
    per mark added to its score before the best is taken (tuned on dev text at export: a
    small model's scores favour "no mark"); config: the training settings, for the record.
    The graph: input ``ids`` (B, T) int64, outputs ``marks`` (B, T, len(marks)) and ``cases``
    (B, T, len(cases)) scores."""

    vocab: tuple
    marks: tuple = MARKS
    cases: tuple = CASES
    window: int = 128
    context: int = 16
    mark_bias: tuple = (0.0, 0.0, 0.0, 0.0)  # added to the mark scores before the best is taken (chosen on dev)
    toolkit_version: str = ""
    config: Mapping = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        problems = []
        v = self.vocab
        if not (isinstance(v, tuple) and 2 <= len(v) <= MAX_VOCAB and all(isinstance(w, str) for w in v)):
            problems.append(f"vocab must be a list of 2..{MAX_VOCAB} strings")
        elif v[:2] != (PAD, UNK) or len(set(v)) != len(v):
            problems.append(f"vocab must start with {PAD!r}, {UNK!r} and hold each word once")
        if tuple(self.marks) != MARKS:
            problems.append(f"marks must be {list(MARKS)}, got {list(self.marks)!r}")
        if tuple(self.cases) != CASES:
            problems.append(f"cases must be {list(CASES)}, got {list(self.cases)!r}")
        if not _int_in(self.window, 8, MAX_WINDOW):
            problems.append(f"window must be an integer in 8..{MAX_WINDOW}, got {self.window!r}")
        elif not _int_in(self.context, 0, (self.window - 1) // 2 - 1):
            problems.append(f"context must be an integer in 0..{(self.window - 1) // 2 - 1} (under half the "
                            f"window {self.window}), got {self.context!r}")
        b = self.mark_bias
        if not (isinstance(b, tuple) and len(b) == len(MARKS)
                and all(isinstance(x, (int, float)) and not isinstance(x, bool) and -20 <= x <= 20 for x in b)):
            problems.append(f"mark_bias must be {len(MARKS)} numbers in -20..20, got {list(b) if isinstance(b, tuple) else b!r}")
        if problems:
            raise ValueError("; ".join(problems))

    def to_metadata(self) -> dict[str, str]:
        """The ``asr.*`` metadata keys (JSON values) of a model file."""
        meta = {"format": METADATA_FORMAT, "toolkit_version": self.toolkit_version, "model_kind": "punctuation",
                "vocab": list(self.vocab), "marks": list(self.marks), "cases": list(self.cases),
                "window": self.window, "context": self.context, "mark_bias": list(self.mark_bias),
                "config": dict(self.config)}
        return {_PREFIX + k: json.dumps(v) for k, v in meta.items()}

    @classmethod
    def from_metadata(cls, path: str, props: Mapping[str, str]) -> "TaggerInfo":
        """Check ``path``'s metadata; a ``ValueError`` names the file and what is wrong."""
        meta = read_metadata(path, props)  # a key that is not JSON: ModelError, a ValueError naming the file
        if meta.get("format") != METADATA_FORMAT:
            raise ValueError(f"{path}: not a punctuation model (metadata asr.format is {meta.get('format')!r}, "
                             f"expected {METADATA_FORMAT!r}; train and export one with recipes/punctuation)")
        missing = [f"asr.{k}" for k in ("vocab", "marks", "cases", "window", "context") if k not in meta]
        if missing:
            raise ValueError(f"{path}: metadata lacks {', '.join(missing)}")
        try:
            return cls(vocab=tuple(meta["vocab"]) if isinstance(meta["vocab"], list) else meta["vocab"],
                       marks=tuple(meta["marks"]) if isinstance(meta["marks"], list) else meta["marks"],
                       cases=tuple(meta["cases"]) if isinstance(meta["cases"], list) else meta["cases"],
                       window=meta["window"], context=meta["context"],
                       mark_bias=tuple(meta.get("mark_bias", [0.0] * len(MARKS))) if isinstance(
                           meta.get("mark_bias", []), list) else meta["mark_bias"],
                       toolkit_version=str(meta.get("toolkit_version", "")),
                       config=meta.get("config") if isinstance(meta.get("config"), dict) else {})
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: {exc}") from None


def _int_in(value, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


_SPLIT = re.compile(r"(\s+)")


class Punctuator:
    """A punctuation model file (default: the built-in one, :data:`DEFAULT_MODEL`) in an
    onnxruntime session of ``num_threads`` threads. ``ValueError`` (naming the file) when it is
    missing or not a punctuation model of this toolkit."""

    MAX_BATCH = 64  # windows per onnxruntime call: bounds memory on very long input

    def __init__(self, path: Optional[str | os.PathLike] = None, num_threads: int = 1):
        import onnxruntime as ort

        path = os.fspath(path) if path is not None else DEFAULT_MODEL
        if not os.path.isfile(path):
            raise ValueError(f"{path}: punctuation model not found" + (
                " (the built-in model is missing from this install; give one with --model)" if path == DEFAULT_MODEL else ""))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = num_threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises several kinds for unreadable files
            raise ValueError(f"{path}: cannot load as an ONNX model ({type(exc).__name__}: {exc})") from None
        self.path = path
        self.info = TaggerInfo.from_metadata(path, self.session.get_modelmeta().custom_metadata_map)
        names = ([i.name for i in self.session.get_inputs()], [o.name for o in self.session.get_outputs()])
        if names != (["ids"], ["marks", "cases"]):
            raise ValueError(f"{path}: graph has inputs {names[0]} and outputs {names[1]}, expected ['ids'] and "
                             "['marks', 'cases']")
        self._ids = {w: i for i, w in enumerate(self.info.vocab)}
        self._bias = np.asarray(self.info.mark_bias, np.float32)

    def encode(self, tokens: Sequence[str]) -> np.ndarray:
        """Vocabulary ids (int64) of ``tokens``: 1 (``<unk>``) for a word outside it."""
        get = self._ids.get
        return np.fromiter((get(word_key(t), 1) for t in tokens), dtype=np.int64, count=len(tokens))

    def _run(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        marks, cases = self.session.run(None, {"ids": ids})
        return marks, cases

    def tag(self, tokens: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Mark and case labels (int arrays, one per token) of ``tokens``. After a period or a
        question mark, and at the start, a word is at least Capitalized."""
        n = len(tokens)
        if n == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        ids = self.encode(tokens)
        w, c = self.info.window, self.info.context
        if n <= w:
            m, k = self._run(ids[None])
            marks, cases = (m[0] + self._bias).argmax(-1), k[0].argmax(-1)
        else:  # windows of w words; each keeps the labels of its middle (w - 2c words)
            step = w - 2 * c
            cores = range(0, n, step)
            starts = [max(0, min(s - c, n - w)) for s in cores]
            marks, cases = np.zeros(n, np.int64), np.zeros(n, np.int64)
            for b in range(0, len(starts), self.MAX_BATCH):
                chunk = starts[b:b + self.MAX_BATCH]
                m, k = self._run(np.stack([ids[a:a + w] for a in chunk]))
                for j, (a, s) in enumerate(zip(chunk, cores[b:b + self.MAX_BATCH])):
                    e = min(s + step, n)
                    marks[s:e] = (m[j, s - a:e - a] + self._bias).argmax(-1)
                    cases[s:e] = k[j, s - a:e - a].argmax(-1)
        cases = cases.astype(np.int64)
        start = np.ones(n, bool)
        start[1:] = marks[:-1] >= 2
        cases[start & (cases == 0)] = 1
        return marks.astype(np.int64), cases

    def punctuate(self, text: str) -> str:
        """``text`` with marks and capitals; its whitespace is kept as it is."""
        parts = _SPLIT.split(text)
        words = [p for p in parts if p and not p.isspace()]
        if not words:
            return text
        marks, cases = self.tag(words)
        marks, cases = keep_numbers_whole(words, marks, cases)
        written = iter(apply_labels(words, marks, cases))
        return "".join(next(written) if p and not p.isspace() else p for p in parts)

    def punctuate_words(self, words: Sequence[Word]) -> list[Word]:
        """Timed words with marks and capitals: each keeps its times and confidence."""
        tokens = [w.word for w in words]
        marks, cases = self.tag(tokens)
        marks, cases = keep_numbers_whole(tokens, marks, cases)
        return [dataclasses.replace(w, word=t) for w, t in zip(words, apply_labels(tokens, marks, cases))]


_AM_PM = frozenset("apm")
_NUMERIC = NUMBER_WORDS | ORDINAL_WORDS
_NUMBER_OR_MONTH = NUMBER_WORDS | MONTH_WORDS


def keep_numbers_whole(tokens: Sequence[str], marks: np.ndarray, cases: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(marks, cases)`` without the marks the tagger put inside what ITN reads as one number,
    date or time, and without capitals inside a number:

    - no comma between two spoken number words: a phone number, a PIN or an amount said word by
      word is one number ("five five five one two three four" -> "555-1234", not
      "five five, 5 1, 234");
    - no mark between a month and the number or ordinal after it ("june. third" -> "June 3"),
      May and March aside (also verbs);
    - no mark inside a time's "a m" / "p m", nor before it after a number ("ten, a m");
    - a number word that goes on a number or follows a month, or that lost the sentence end
      before it, is lower-case ("seven Thirty" -> "seven thirty", "July Nineteen" -> "July
      nineteen").

    Applied to what :meth:`Punctuator.punctuate` and :meth:`Punctuator.punctuate_words` write;
    :meth:`Punctuator.tag` (and the scores) are the tagger's own."""
    marks, cases = np.array(marks, copy=True), np.array(cases, copy=True)
    low = [t.lower() for t in tokens]
    for i in range(len(low) - 1):
        here, nxt = low[i], low[i + 1]
        after_m = i + 2 < len(low) and low[i + 2] == "m"
        ended = marks[i] >= 2
        if ((marks[i] == 1 and here in NUMBER_WORDS and nxt in NUMBER_WORDS)
                or (here in MONTH_WORDS and nxt in _NUMERIC)
                or (here in NUMBER_WORDS and nxt in _AM_PM and nxt != "m" and after_m)
                or (here in ("a", "p") and nxt == "m" and i > 0 and low[i - 1] in NUMBER_WORDS)):
            marks[i] = 0
        if nxt in _NUMERIC and cases[i + 1] == 1 and marks[i] == 0 and (here in _NUMBER_OR_MONTH or ended):
            cases[i + 1] = 0
    return marks, cases


_DEFAULT: dict = {}


def default_punctuator(path: Optional[str] = None) -> Punctuator:
    """One shared :class:`Punctuator` per model path (the built-in model for None)."""
    key = os.path.abspath(path) if path else DEFAULT_MODEL
    if key not in _DEFAULT:
        _DEFAULT[key] = Punctuator(key)
    return _DEFAULT[key]


def score(pairs: Sequence[tuple[Sequence[int], Sequence[int], Sequence[int], Sequence[int]]]) -> dict:
    """Precision, recall and F1 of each mark, and the share of words with the right case, over
    ``(ref_marks, ref_cases, hyp_marks, hyp_cases)`` of the same words."""
    tp, fp, fn = np.zeros(len(MARKS)), np.zeros(len(MARKS)), np.zeros(len(MARKS))
    right = words = 0
    for rm, rc, hm, hc in pairs:
        rm, rc, hm, hc = (np.asarray(a) for a in (rm, rc, hm, hc))
        for k in range(1, len(MARKS)):
            tp[k] += np.sum((rm == k) & (hm == k))
            fp[k] += np.sum((rm != k) & (hm == k))
            fn[k] += np.sum((rm == k) & (hm != k))
        right += int(np.sum(rc == hc))
        words += len(rc)
    out = {"words": words, "case_accuracy": right / words if words else 0.0}
    for k, name in ((1, "comma"), (2, "period"), (3, "question")):
        p = tp[k] / (tp[k] + fp[k]) if tp[k] + fp[k] else 0.0
        r = tp[k] / (tp[k] + fn[k]) if tp[k] + fn[k] else 0.0
        out[name] = {"precision": round(float(p), 4), "recall": round(float(r), 4),
                     "f1": round(float(2 * p * r / (p + r)) if p + r else 0.0, 4), "count": int(tp[k] + fn[k])}
    out["case_accuracy"] = round(out["case_accuracy"], 4)
    return out


def read_examples(path: str) -> list[tuple[list[str], list[int], list[int]]]:
    """The labelled examples of a text file of punctuated text, one a line (:func:`label_text`);
    a line that cannot be labelled is a ValueError naming the file and the line."""
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            labelled = label_text(line)
            if labelled is None:
                raise ValueError(f"{path}:{n}: not text a recognizer writes (digits, symbols or abbreviations): {line[:80]!r}")
            out.append(labelled)
    if not out:
        raise ValueError(f"{path}: no examples")
    return out


def evaluate(punctuator: Punctuator, paths: Sequence[str]) -> dict:
    """:func:`score` of ``punctuator`` on each file of punctuated text (one example a line) and
    on all of them together (key ``"all"``): it is given each example's lower-case words, as a
    recognizer writes them, and run exactly as ``asr text punctuate`` runs it."""
    out, every = {}, []
    for path in paths:
        pairs = []
        for words, marks, cases in read_examples(path):
            hm, hc = punctuator.tag(words)
            pairs.append((marks, cases, hm, hc))
        out[os.path.basename(path)] = score(pairs)
        every += pairs
    out["all"] = score(every)
    return out
