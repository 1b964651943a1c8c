"""How log-probabilities become text: :class:`DecodingOptions` (one validated object for greedy
decoding or prefix beam search with LMs and hotwords) and the :class:`Decoder` built from it.

>>> opts = DecodingOptions(lm="lm.arpa", alpha=0.8, hotwords={"tina": 3.0})   # beam 16
>>> decoder = Decoder(tokenizer, opts)
>>> path = decoder(log_probs)                 # [(token, first frame, last frame), ...]
>>> path = decoder(log_probs, hotwords=["john smith"])   # per utterance / per stream

ARPA files are read once per process (cached by path and modification time), so several
option sets (a grid search) or many streams share one copy.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Mapping, Optional, Union

import numpy as np

from asr.decoding.beam_search import BeamSearchOptions, CtcBeamSearch, Hotwords, read_hotwords
from asr.decoding.greedy import greedy_alignment
from asr.decoding.lm import NGramLM
from asr.text import Tokenizer, normalize_text

__all__ = ["DecodingOptions", "Decoder", "BestPath", "load_lm", "DEFAULT_BEAM"]

BestPath = list  # [(token id, first frame, last frame), ...]
DEFAULT_BEAM = 16  # beam size when an LM or hotwords are given without one


@dataclass(frozen=True)
class DecodingOptions:
    """Greedy by default; beam search when ``beam_size`` >= 1, or when an LM or hotwords are
    given without a beam size (then ``DEFAULT_BEAM``).

    ``hotwords``: phrase -> bonus per matched token (NaN: ``hotword_weight``); ``hotwords_file``
    adds those of a file (one phrase a line, optional ``<TAB>bonus``)."""

    beam_size: Optional[int] = None
    lm: Optional[str] = None  # word n-gram, ARPA (`asr lm build`)
    alpha: float = BeamSearchOptions.alpha  # word LM weight
    char_lm: Optional[str] = None  # character n-gram, ARPA (`asr lm build --units char`)
    char_alpha: float = BeamSearchOptions.char_alpha
    beta: float = BeamSearchOptions.beta  # bonus per word
    hotwords: Mapping[str, float] = field(default_factory=dict)
    hotwords_file: Optional[str] = None
    hotword_weight: float = BeamSearchOptions.hotword_weight
    lm_lookahead: bool = True  # character models with a word LM: unigram look-ahead while spelling

    def __post_init__(self):
        hot = {}
        if self.hotwords_file:
            hot.update(read_hotwords(self.hotwords_file))
        items = self.hotwords.items() if isinstance(self.hotwords, Mapping) else ((h, math.nan) for h in self.hotwords)
        for phrase, weight in items:
            p = normalize_text(phrase)
            if not p:
                raise ValueError(f"empty hotword phrase {phrase!r}")
            hot[p] = float(weight)
        object.__setattr__(self, "hotwords", hot)
        if self.beam_size is None:
            object.__setattr__(self, "beam_size", DEFAULT_BEAM if (self.lm or self.char_lm or hot) else 0)
        self.validate()

    def validate(self) -> None:
        problems = []
        if isinstance(self.beam_size, bool) or not isinstance(self.beam_size, int) or self.beam_size < 0:
            problems.append(f"beam_size must be an integer >= 0 (0: greedy), got {self.beam_size!r}")
        elif self.beam_size == 0 and (self.lm or self.char_lm or self.hotwords):
            problems.append("an LM or hotwords need beam search: beam_size must be >= 1")
        for name in ("alpha", "char_alpha", "beta", "hotword_weight"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                problems.append(f"{name} must be a finite number, got {v!r}")
        for name in ("lm", "char_lm", "hotwords_file"):
            path = getattr(self, name)
            if path is not None and not os.path.isfile(path):
                problems.append(f"{name}: {path}: file not found")
        if problems:
            raise ValueError("invalid DecodingOptions: " + "; ".join(problems))

    @property
    def greedy(self) -> bool:
        return self.beam_size == 0

    def replace(self, **changes) -> "DecodingOptions":
        return dataclasses.replace(self, **changes)

    def settings(self) -> dict:
        """What a report says about these options (JSON-able)."""
        if self.greedy:
            return {"decoder": "greedy"}
        out = {"decoder": "beam", "beam_size": self.beam_size, "lm": self.lm, "alpha": self.alpha if self.lm else 0.0,
               "beta": self.beta, "hotwords": len(self.hotwords)}
        if self.char_lm:
            out.update(char_lm=self.char_lm, char_alpha=self.char_alpha)
        return out

    def label(self) -> str:
        """A short human description: ``greedy`` or ``beam 16, LM alpha 0.8, beta 1``."""
        if self.greedy:
            return "greedy"
        label = f"beam {self.beam_size}"
        if self.lm:
            label += f", LM alpha {self.alpha:g}"
        if self.char_lm:
            label += f", char LM {self.char_alpha:g}"
        if self.beta:
            label += f", beta {self.beta:g}"
        if self.hotwords:
            label += f", {len(self.hotwords)} hotwords"
        return label


@lru_cache(maxsize=8)
def _cached_lm(path: str, mtime: float) -> NGramLM:
    return NGramLM.read_arpa(path)


def load_lm(path: Union[str, os.PathLike]) -> NGramLM:
    """An ARPA model, read once per process (again if the file changes)."""
    path = os.path.abspath(os.fspath(path))
    return _cached_lm(path, os.path.getmtime(path))


class Decoder:
    """Turns one utterance's (frames, V) log-probabilities into its best path: a list of
    (token id, first frame, last frame), the input of :func:`asr.decoding.result.words_from_tokens`.

    Greedy decoding is the best path itself; beam search keeps for each hypothesis the best
    alignment of its tokens. ``hotwords`` given per call (e.g. per stream) replace the options'
    hotwords for that call; on a greedy decoder they switch that call to a beam of
    ``DEFAULT_BEAM`` without LM."""

    def __init__(self, tokenizer: Tokenizer, options: Optional[DecodingOptions] = None):
        self.tokenizer = tokenizer
        self.options = options if options is not None else DecodingOptions()
        self._search = None if self.options.greedy else self._beam(self.options)

    def _beam(self, o: DecodingOptions) -> CtcBeamSearch:
        opts = BeamSearchOptions(beam_size=o.beam_size or DEFAULT_BEAM, alpha=o.alpha, beta=o.beta,
                                 char_alpha=o.char_alpha, hotword_weight=o.hotword_weight, lm_lookahead=o.lm_lookahead)
        return CtcBeamSearch(self.tokenizer, load_lm(o.lm) if o.lm else None, opts, o.hotwords or None,
                             load_lm(o.char_lm) if o.char_lm else None)

    def __call__(self, log_probs: np.ndarray, hotwords: Hotwords = None) -> BestPath:
        if np.asarray(log_probs).shape[0] == 0:
            return []
        search = self._search
        if hotwords and search is None:
            search = self._greedy_with_hotwords()
        if search is None:
            return greedy_alignment(log_probs)
        hyps = search.decode(log_probs, hotwords or None)
        return hyps[0].alignment if hyps else []

    def _greedy_with_hotwords(self) -> CtcBeamSearch:
        if getattr(self, "_hot_search", None) is None:
            self._hot_search = self._beam(self.options)
        return self._hot_search

    def check_hotwords(self, hotwords) -> None:
        """Raise ValueError now if a phrase cannot be spelled with this model's vocabulary."""
        (self._search or self._greedy_with_hotwords())._trie(hotwords)
