"""Word (and character) n-gram language models: training (interpolated Kneser-Ney,
:func:`train_ngram`), ARPA files, scoring (``asr lm build``, ``asr lm ppl``). No torch, so the
runtime can use it.

Scores are **natural logs** (``ln``) so they add to CTC log-probabilities; the ARPA file holds
log10 values as the format requires. The model is interpolated, so the backoff weight of an
ARPA context is exactly its interpolation weight and the ARPA file *is* the model:
:meth:`NGramLM.score` does the standard ARPA backoff lookup on a trained or a read model alike.

A **character** model is the same machinery over :func:`char_tokens` (each character a "word",
the space written ``<sp>``), so the beam search can score every letter it adds, which reaches
words no word list holds (``asr lm build --units char``).
"""

from __future__ import annotations

import gzip
import math
import os
from collections import Counter, defaultdict
from typing import Iterable, Iterator, Optional, Sequence

import numpy as np

from asr.fileio import atomic_open
from asr.text import normalize_text

__all__ = ["BOS", "EOS", "UNK", "SPACE", "NGramLM", "train_ngram", "ArpaError", "read_sentences", "char_tokens"]

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
SPACE = "<sp>"  # the space between words, as a token of a character model
LN10 = math.log(10.0)
NO_PROB = -99.0  # log10 "probability" of <s> as a predicted word (the ARPA convention)
UNK_MISSING = -100.0  # log10 prob of an OOV word when a read model has no <unk> (KenLM's value)


class ArpaError(ValueError):
    pass


def _words(sentence: str | Sequence[str]) -> list[str]:
    return sentence.split() if isinstance(sentence, str) else list(sentence)


class NGramLM:
    """A backoff word n-gram model: log10 probabilities and backoff weights keyed by word
    tuples, as in an ARPA file."""

    def __init__(self, order: int, probs: dict[tuple[str, ...], float], backoffs: dict[tuple[str, ...], float]):
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        self.order = order
        self.probs = probs  # n-gram -> log10 p(last word | the words before it)
        self.backoffs = backoffs  # context n-gram -> log10 backoff weight (absent = 0)
        self.vocab = frozenset(g[0] for g in probs if len(g) == 1)
        self._unk_log10 = probs.get((UNK,), UNK_MISSING)
        self._cache: dict[tuple, float] = {}
        self._row_words: Optional[tuple[str, ...]] = None  # score_row's index is for this word list
        self._row_by_context: dict = {}

    # --- scoring ------------------------------------------------------------------------
    def score(self, word: str, history: Sequence[str] = ()) -> float:
        """ln p(word | history). ``history`` is the words before ``word``, most recent last;
        start it with ``"<s>"`` for the start of a sentence. Words outside the vocabulary, in
        ``word`` or in ``history``, are scored as ``<unk>``. ``<s>`` as ``word`` gets the ARPA
        -99 (log10)."""
        key = (tuple(history[max(0, len(history) - self.order + 1):]) if self.order > 1 else (), word)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = self.log10(word, key[0]) * LN10
        return cached

    def log10(self, word: str, history: Sequence[str] = ()) -> float:
        """log10 p(word | history) (the ARPA unit); see :meth:`score`."""
        vocab = self.vocab
        w = word if word in vocab else UNK
        h = tuple(x if x in vocab else UNK for x in history[max(0, len(history) - self.order + 1):]) if self.order > 1 else ()
        total = 0.0
        probs, backoffs = self.probs, self.backoffs
        while True:
            p = probs.get(h + (w,))
            if p is not None:
                return total + p
            if not h:
                return total + self._unk_log10  # only an OOV word in a model without <unk>
            total += backoffs.get(h, 0.0)
            h = h[1:]

    def score_row(self, words: Sequence[str], history: Sequence[str] = ()) -> np.ndarray:
        """ln p(w | history) for every w in ``words`` at once: :meth:`score` for each, with
        the same arithmetic (so the same floats): each backoff level's n-grams written over
        the shorter levels' values, each level's backoff total summed in :meth:`log10`'s order.
        The index of ``words`` is built on the first call and kept while the list stays the same."""
        by_context = self._row_index(words)
        vocab = self.vocab
        h = tuple(x if x in vocab else UNK for x in history[max(0, len(history) - self.order + 1):]) if self.order > 1 else ()
        levels = []  # (context, backoff total before it), longest context first
        total = 0.0
        while True:
            levels.append((h, total))
            if not h:
                break
            total += self.backoffs.get(h, 0.0)
            h = h[1:]
        out = np.full(len(words), total + self._unk_log10)  # found at no level: <unk> in a model without it
        for context, total in reversed(levels):
            entry = by_context.get(context)
            if entry is not None:
                out[entry[0]] = total + entry[1]
        return out * LN10

    def _row_index(self, words: Sequence[str]) -> dict:
        """context -> (columns of ``words``, log10 p) of the n-grams that end in one of them
        (built once per word list)."""
        words = tuple(words)
        if words != self._row_words:
            vocab = self.vocab
            cols: dict[str, list[int]] = defaultdict(list)
            for i, w in enumerate(words):
                cols[w if w in vocab else UNK].append(i)
            lists: dict[tuple, tuple[list, list]] = {}
            for gram, p in self.probs.items():
                for i in cols.get(gram[-1], ()):
                    c, v = lists.setdefault(gram[:-1], ([], []))
                    c.append(i)
                    v.append(p)
            self._row_by_context = {k: (np.array(c), np.array(v)) for k, (c, v) in lists.items()}
            self._row_words = words
        return self._row_by_context

    def sentence_score(self, sentence: str | Sequence[str], bos: bool = True, eos: bool = True) -> float:
        """ln p of a sentence (a string split on whitespace, or a list of words), with
        ``</s>`` at the end when ``eos``, starting from ``<s>`` when ``bos``."""
        history: list[str] = [BOS] if bos else []
        total = 0.0
        for w in _words(sentence) + ([EOS] if eos else []):
            total += self.score(w, history)
            history.append(w)
        return total

    def perplexity(self, sentences: Iterable[str | Sequence[str]]) -> float:
        """Per-word perplexity (``</s>`` counted as a word, as SRILM and KenLM do)."""
        total, n = 0.0, 0
        for s in sentences:
            words = _words(s)
            total += self.sentence_score(words)
            n += len(words) + 1
        return math.exp(-total / max(n, 1))

    # --- ARPA ---------------------------------------------------------------------------
    def counts(self) -> list[int]:
        """Number of n-grams of each order, 1 first."""
        c = [0] * self.order
        for g in self.probs:
            c[len(g) - 1] += 1
        return c

    def write_arpa(self, path: str | os.PathLike) -> None:
        """Standard ARPA text: ``\\data\\``, ``\\N-grams:`` sections of ``log10p<TAB>words
        [<TAB>log10 backoff]``, ``\\end\\``. Values are written with full (round-trip) precision.
        Atomically: a crash while writing leaves the previous file, never a truncated one."""
        by_order: list[list[tuple[str, ...]]] = [[] for _ in range(self.order)]
        for g in self.probs:
            by_order[len(g) - 1].append(g)
        with atomic_open(path) as f:
            f.write("\\data\\\n")
            for k, grams in enumerate(by_order, 1):
                f.write(f"ngram {k}={len(grams)}\n")
            for k, grams in enumerate(by_order, 1):
                f.write(f"\n\\{k}-grams:\n")
                for g in sorted(grams):
                    line = f"{self.probs[g]!r}\t{' '.join(g)}"
                    if k < self.order and g in self.backoffs:
                        line += f"\t{self.backoffs[g]!r}"
                    f.write(line + "\n")
            f.write("\n\\end\\\n")

    @classmethod
    def read_arpa(cls, path: str | os.PathLike) -> "NGramLM":
        """Read an ARPA file (ours, KenLM's, SRILM's), plain or gzip-compressed (``.arpa.gz``, as
        published for LibriSpeech). Errors name the file and line."""
        probs: dict[tuple[str, ...], float] = {}
        backoffs: dict[tuple[str, ...], float] = {}
        declared: dict[int, int] = {}
        section: Optional[int] = None  # 0: \data\, k: \k-grams:
        ended = False
        with open_text(path) as f:
            for lineno, raw in enumerate(f, 1):
                line = raw.strip()
                where = f"{path}:{lineno}"
                if not line or ended:
                    continue
                if line == "\\data\\":
                    section = 0
                    continue
                if line == "\\end\\":
                    ended = True
                    continue
                if line.startswith("\\") and line.endswith("-grams:"):
                    try:
                        section = int(line[1:-len("-grams:")])
                    except ValueError:
                        raise ArpaError(f"{where}: bad section header {line!r}") from None
                    if section not in declared:
                        raise ArpaError(f"{where}: section {line!r} not declared in \\data\\")
                    continue
                if section is None:
                    continue  # text before \data\ is allowed (comments)
                if section == 0:
                    if not line.startswith("ngram ") or "=" not in line:
                        raise ArpaError(f"{where}: expected 'ngram N=count' in \\data\\, got {line!r}")
                    k, n = line[len("ngram "):].split("=", 1)
                    try:
                        declared[int(k)] = int(n)
                    except ValueError:
                        raise ArpaError(f"{where}: bad count line {line!r}") from None
                    continue
                fields = line.split()
                k = section
                if len(fields) not in (k + 1, k + 2):
                    raise ArpaError(f"{where}: a {k}-gram line needs log10 prob, {k} words and an optional backoff, got {line!r}")
                try:
                    p = float(fields[0])
                    bow = float(fields[k + 1]) if len(fields) == k + 2 else None
                except ValueError:
                    raise ArpaError(f"{where}: bad number in {line!r}") from None
                gram = tuple(fields[1:k + 1])
                probs[gram] = p
                if bow is not None and bow != 0.0:
                    backoffs[gram] = bow
        if not declared:
            raise ArpaError(f"{path}: no \\data\\ section")
        if not ended:
            raise ArpaError(f"{path}: missing \\end\\ (truncated file?)")
        order = max(declared)
        lm = cls(order, probs, backoffs)
        got = lm.counts()
        for k, n in declared.items():
            if got[k - 1] != n:
                raise ArpaError(f"{path}: \\data\\ declares {n} {k}-grams, the file has {got[k - 1]}")
        return lm


def open_text(path: str | os.PathLike):
    """A text file for reading, decompressed on the fly when it starts with the gzip magic."""
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rt", encoding="utf-8") if gz else open(path, encoding="utf-8")


def _estimate_discount(adjusted: Counter) -> float:
    n1 = sum(1 for c in adjusted.values() if c == 1)
    n2 = sum(1 for c in adjusted.values() if c == 2)
    if n1 == 0 or n2 == 0:
        return 0.5
    return n1 / (n1 + 2 * n2)


def train_ngram(
    sentences: Iterable[str | Sequence[str]],
    order: int = 3,
    discount: float | Sequence[float] | None = None,
    vocab: Optional[Iterable[str]] = None,
) -> NGramLM:
    """An interpolated Kneser-Ney model of ``sentences``: strings split on whitespace (normalize
    them first) or lists of words; empty ones are skipped.

    One absolute discount ``D_k`` per order (Chen & Goodman's "interpolated KN", not the
    three-discount "modified" variant). With ``a_k`` the *adjusted* counts of order k -- raw
    counts for the highest order and for n-grams that start with ``<s>`` (they have no left
    context), continuation counts ``N1+(. g)`` (distinct words seen before ``g``) otherwise::

        p(w | h)  = (a(h w) - D) / S(h) + gamma(h) * p(w | h')      S(h) = sum_v a(h v)
        gamma(h)  = D * N1+(h .) / S(h)                              h' = h without its first word
        p(w)      = (a(w) - D)^+ / S + gamma() / |V|                 (interpolated with the uniform)

    ``|V|`` counts every word the model can predict: the training words, ``</s>`` and ``<unk>``
    (never ``<s>``, whose unigram probability is written as -99). ``<unk>`` thus gets the share
    of the uniform distribution, or its own counts when training maps words outside ``vocab``
    to it. ``D_k = n1 / (n1 + 2 n2)`` from the count-of-counts of the adjusted counts of order
    k (0.5 where n1 or n2 is 0), or given.

    ``discount``: one value for every order or one per order (unigrams first), each in
    (0, 1]; ``None`` estimates them. ``vocab``: when given, the model's words are exactly these
    (plus ``<s> </s> <unk>``): other training words count as ``<unk>``, and vocabulary words
    never seen still get their share of the uniform distribution.
    """
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    vocab_set = set(vocab) if vocab is not None else None
    raw: list[Counter] = [Counter() for _ in range(order)]
    for s in sentences:
        words = _words(s)
        if not words:
            continue
        if vocab_set is not None:
            words = [w if w in vocab_set else UNK for w in words]
        toks = [BOS] + words + [EOS]
        for k in range(1, order + 1):
            rk = raw[k - 1]
            for i in range(len(toks) - k + 1):
                rk[tuple(toks[i:i + k])] += 1

    # Adjusted counts: raw for the highest order and for n-grams starting with <s>,
    # continuation counts (distinct left neighbours) otherwise.
    adjusted: list[Counter] = [Counter() for _ in range(order)]
    adjusted[order - 1] = Counter(raw[order - 1])
    for k in range(1, order):
        left = Counter(g[1:] for g in raw[k])  # each distinct (k+1)-gram adds one left word
        adj = adjusted[k - 1]
        for g, c in raw[k - 1].items():
            adj[g] = c if g[0] == BOS else left[g]
    adjusted[0].pop((BOS,), None)  # <s> is never predicted

    if discount is None:
        discounts = [_estimate_discount(a) for a in adjusted]
    elif isinstance(discount, (int, float)):
        discounts = [float(discount)] * order
    else:
        discounts = [float(d) for d in discount]
        if len(discounts) != order:
            raise ValueError(f"{len(discounts)} discounts given for an order-{order} model")
    for d in discounts:
        if not 0.0 < d <= 1.0:
            raise ValueError(f"discounts must be in (0, 1], got {discounts}")

    # Unigrams, interpolated with the uniform distribution over every predictable word.
    words = {g[0] for g in adjusted[0]} | {EOS, UNK} | (vocab_set or set())
    words.discard(BOS)
    total = sum(adjusted[0].values())
    d = discounts[0]
    if total > 0:
        gamma0 = d * sum(1 for c in adjusted[0].values() if c > 0) / total
    else:  # nothing to learn from: the uniform distribution
        gamma0 = 1.0
    p1 = {w: max(adjusted[0].get((w,), 0) - d, 0.0) / max(total, 1) + gamma0 / len(words) for w in words}
    probs: dict[tuple[str, ...], float] = {(w,): math.log10(p) for w, p in p1.items()}
    probs[(BOS,)] = NO_PROB
    backoffs: dict[tuple[str, ...], float] = {}
    lower = {(w,): p for w, p in p1.items()}  # probabilities (not logs) of the order below

    for k in range(2, order + 1):
        adj, d = adjusted[k - 1], discounts[k - 1]
        ctx_total: dict[tuple[str, ...], float] = defaultdict(float)
        ctx_types: dict[tuple[str, ...], int] = defaultdict(int)
        for g, c in adj.items():
            ctx_total[g[:-1]] += c
            ctx_types[g[:-1]] += 1
        current: dict[tuple[str, ...], float] = {}
        for g, c in adj.items():
            h = g[:-1]
            gamma = d * ctx_types[h] / ctx_total[h]
            current[g] = (c - d) / ctx_total[h] + gamma * _lookup(lower, backoffs, g[1:])
        for h, n in ctx_types.items():
            backoffs[h] = math.log10(d * n / ctx_total[h])
        probs.update((g, math.log10(p)) for g, p in current.items())
        lower.update(current)
    return NGramLM(order, probs, backoffs)


def _lookup(probs: dict[tuple[str, ...], float], backoffs: dict[tuple[str, ...], float], gram: tuple[str, ...]) -> float:
    """p (not log) of the last word of ``gram`` by backoff over already-built orders."""
    weight = 1.0
    while gram not in probs:
        weight *= 10.0 ** backoffs.get(gram[:-1], 0.0)
        gram = gram[1:]
    return weight * probs[gram]


def char_tokens(sentence: str) -> list[str]:
    """A sentence as the tokens of a character model: its characters, ``<sp>`` for a space."""
    return [SPACE if ch == " " else ch for ch in sentence]


def read_sentences(text: Optional[str] = None, manifest: Optional[str] = None) -> Iterator[str]:
    """Normalized, non-empty sentences of a text file (one per line) or of the ``text`` fields
    of a JSONL manifest (read strictly: a malformed line is an error naming file and line)."""
    if text is not None:
        with open_text(text) as f:
            for line in f:
                s = normalize_text(line)
                if s:
                    yield s
    if manifest is not None:
        from asr.manifest import read_manifest

        for entry in read_manifest(manifest, strict=True):
            s = normalize_text(entry.text)
            if s:
                yield s
