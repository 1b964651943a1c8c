"""How log-probabilities become text: :class:`DecodingOptions` (one validated object for greedy
decoding or prefix beam search with LMs, hotwords, a grammar and n-best lists) and the
:class:`Decoder` built from it.

>>> opts = DecodingOptions(lm="lm.arpa", alpha=0.8, hotwords={"tina": 3.0})   # beam 16
>>> decoder = Decoder(tokenizer, opts)
>>> path = decoder(log_probs)                 # [(token, first frame, last frame), ...]
>>> path = decoder(log_probs, hotwords=["john smith"])   # per utterance / per stream
>>> digits = DecodingOptions(grammar=["zero", "one", "two", "[unk]"], alternatives=3)
>>> hyps = Decoder(tokenizer, digits).search(log_probs)   # the 3 best, each with its words

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

from asr.decoding.beam_search import BeamSearchOptions, CtcBeamSearch, Hotwords, Hypothesis, read_hotwords
from asr.decoding.grammar import Grammar, GrammarError, parse_phrases, read_grammar
from asr.decoding.greedy import greedy_alignment
from asr.decoding.lm import NGramLM
from asr.text import Tokenizer, normalize_text

__all__ = ["DecodingOptions", "Decoder", "BestPath", "load_lm", "DEFAULT_BEAM", "MAX_ALTERNATIVES"]

BestPath = list  # [(token id, first frame, last frame), ...]
DEFAULT_BEAM = 16  # beam size when an LM, hotwords, a grammar or alternatives are given without one
MAX_ALTERNATIVES = 10  # the longest n-best list (alternatives)


@dataclass(frozen=True)
class DecodingOptions:
    """Greedy by default; beam search when ``beam_size`` >= 1, or when an LM, hotwords, a
    grammar or alternatives are given without a beam size (then ``DEFAULT_BEAM``).

    ``hotwords``: phrase -> bonus per matched token (NaN: ``hotword_weight``); ``hotwords_file``
    adds those of a file (one phrase a line, optional ``<TAB>bonus``).

    ``grammar``: phrases the text must be made of (any sequence of them; a word list is a
    grammar of one-word phrases; ``[unk]`` stands for anything else: :mod:`asr.decoding.grammar`);
    ``grammar_file`` adds those of a file (one phrase a line, or a JSON list). ``unk_score``:
    added per ``[unk]`` word (natural log); ``drop_unk``: leave ``[unk]`` out of text and words.
    ``alternatives``: how many hypotheses (best first, distinct texts) each utterance keeps
    with its words and scores, 0 to :data:`MAX_ALTERNATIVES` (0: none).

    ``lexicon``: a pronunciation lexicon file (:mod:`asr.lexicon`; ``asr lexicon --all`` writes
    CMUdict's): the text is made of its words only (a lexicon-constrained search; up to
    :data:`asr.decoding.grammar.MAX_LEXICON_WORDS` words). A phone model spells them by their
    pronunciations; other models by their own units. A phone model decoded by beam search
    without one uses the words of its model file (those it was trained on); with a grammar,
    the lexicon only supplies pronunciations."""

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
    grammar: tuple = ()  # phrases (normalized by __post_init__); () = no grammar
    grammar_file: Optional[str] = None
    unk_score: float = BeamSearchOptions.unk_score
    drop_unk: bool = False
    alternatives: int = 0
    lexicon: Optional[str] = None

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
        phrases = list(self.grammar) if not isinstance(self.grammar, str) else self.grammar  # a string: refused below
        if self.grammar_file:
            if not os.path.isfile(self.grammar_file):
                raise ValueError(f"invalid DecodingOptions: grammar_file: {self.grammar_file}: file not found")
            phrases = list(phrases) + read_grammar(self.grammar_file)
        if phrases:
            where = f"grammar ({self.grammar_file})" if self.grammar_file else "grammar"
            try:
                phrases = parse_phrases(phrases, where)
            except GrammarError as exc:
                raise ValueError(f"invalid DecodingOptions: {exc}") from None
        elif self.grammar_file:
            raise ValueError(f"invalid DecodingOptions: grammar_file: {self.grammar_file}: no phrase in it")
        object.__setattr__(self, "grammar", tuple(phrases))
        if self.beam_size is None:
            beam = self.lm or self.char_lm or hot or self.grammar or self.lexicon \
                or (isinstance(self.alternatives, int) and self.alternatives > 0)
            object.__setattr__(self, "beam_size", DEFAULT_BEAM if beam else 0)
        self.validate()

    def validate(self) -> None:
        problems = []
        if isinstance(self.beam_size, bool) or not isinstance(self.beam_size, int) or self.beam_size < 0:
            problems.append(f"beam_size must be an integer >= 0 (0: greedy), got {self.beam_size!r}")
        elif self.beam_size == 0 and (self.lm or self.char_lm or self.hotwords or self.grammar or self.lexicon):
            problems.append("an LM, hotwords, a grammar or a lexicon need beam search: beam_size must be >= 1")
        elif self.beam_size == 0 and isinstance(self.alternatives, int) and self.alternatives > 0:
            problems.append("alternatives need beam search: beam_size must be >= 1")
        if isinstance(self.alternatives, bool) or not isinstance(self.alternatives, int) \
                or not 0 <= self.alternatives <= MAX_ALTERNATIVES:
            problems.append(f"alternatives must be an integer in 0..{MAX_ALTERNATIVES}, got {self.alternatives!r}")
        elif isinstance(self.beam_size, int) and 0 < self.beam_size < self.alternatives:
            problems.append(f"alternatives ({self.alternatives}) cannot be more than beam_size ({self.beam_size})")
        for name in ("alpha", "char_alpha", "beta", "hotword_weight", "unk_score"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                problems.append(f"{name} must be a finite number, got {v!r}")
        for name in ("lm", "char_lm", "hotwords_file", "grammar_file", "lexicon"):
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
        if self.grammar:
            out.update(grammar_phrases=len(self.grammar), unk_score=self.unk_score, drop_unk=self.drop_unk)
        if self.alternatives:
            out.update(alternatives=self.alternatives)
        if self.lexicon:
            out.update(lexicon=self.lexicon)
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
        if self.grammar:
            label += f", grammar of {len(self.grammar)} phrases" + (f", unk score {self.unk_score:g}" if self.unk_score else "")
        if self.alternatives:
            label += f", {self.alternatives} alternatives"
        if self.lexicon:
            label += f", lexicon {os.path.basename(self.lexicon)}"
        return label


@lru_cache(maxsize=8)
def _cached_lm(path: str, mtime: float) -> NGramLM:
    return NGramLM.read_arpa(path)


@lru_cache(maxsize=4)
def _cached_lexicon(path: str, mtime: float) -> dict:
    from asr.lexicon import read_lexicon

    return read_lexicon(path)


def load_lm(path: Union[str, os.PathLike]) -> NGramLM:
    """An ARPA model, read once per process (again if the file changes)."""
    path = os.path.abspath(os.fspath(path))
    return _cached_lm(path, os.path.getmtime(path))


class Decoder:
    """Turns one utterance's (frames, V) log-probabilities into its best path (``decoder(lp)``:
    a list of (token id, first frame, last frame), the input of
    :func:`asr.decoding.result.words_from_tokens`) or its n-best hypotheses (:meth:`search`).

    Greedy decoding is the best path itself; beam search keeps for each hypothesis the best
    alignment of its tokens. ``hotwords`` and ``grammar`` given per call (e.g. per stream)
    replace the options' for that call, as ``alternatives`` does; on a greedy decoder they
    switch that call to a beam of ``DEFAULT_BEAM`` without LM. The options' grammar is compiled
    once, here: words the model cannot spell are left out with a warning naming them."""

    def __init__(self, tokenizer: Tokenizer, options: Optional[DecodingOptions] = None):
        self.tokenizer = tokenizer
        self.options = options if options is not None else DecodingOptions()
        self._search = None if self.options.greedy else self._beam(self.options)

    def _beam(self, o: DecodingOptions) -> CtcBeamSearch:
        opts = BeamSearchOptions(beam_size=o.beam_size or DEFAULT_BEAM, alpha=o.alpha, beta=o.beta,
                                 char_alpha=o.char_alpha, hotword_weight=o.hotword_weight, lm_lookahead=o.lm_lookahead,
                                 unk_score=o.unk_score, drop_unk=o.drop_unk)
        phones = getattr(self.tokenizer, "kind", "") == "phone"
        try:
            lexicon = _cached_lexicon(os.path.abspath(o.lexicon), os.path.getmtime(o.lexicon)) if o.lexicon else None
            if o.grammar:
                grammar = Grammar(o.grammar, self.tokenizer, o.unk_score, lexicon=lexicon if phones else None)
            elif lexicon is not None:
                grammar = Grammar.from_words(lexicon, self.tokenizer, lexicon if phones else None, o.unk_score)
            elif phones:  # words from the model file
                grammar = Grammar.from_words(self.tokenizer.lexicon, self.tokenizer, None, o.unk_score)
            else:
                grammar = None
            return CtcBeamSearch(self.tokenizer, load_lm(o.lm) if o.lm else None, opts, o.hotwords or None,
                                 load_lm(o.char_lm) if o.char_lm else None, grammar, lexicon if phones else None)
        except GrammarError as exc:
            raise ValueError(str(exc)) from None
        except ValueError as exc:
            raise ValueError(f"lexicon {o.lexicon}: {exc}" if o.lexicon and "lexicon" not in str(exc) else str(exc)) from None

    @property
    def grammar(self) -> Optional[Grammar]:
        """The options' grammar, compiled for this tokenizer (None without one)."""
        return self._search.grammar if self._search is not None else None

    def __call__(self, log_probs: np.ndarray, hotwords: Hotwords = None, grammar: Optional[Grammar] = None) -> BestPath:
        hyps = self.search(log_probs, hotwords, grammar, alternatives=1)
        return hyps[0].alignment if hyps else []

    def search(self, log_probs: np.ndarray, hotwords: Hotwords = None, grammar: Optional[Grammar] = None,
               alternatives: Optional[int] = None) -> list[Hypothesis]:
        """The ``alternatives`` (default: the options'; at least 1) best hypotheses, best first,
        with distinct texts; [] when there are none (no frames). Greedy decoding gives one, whose
        ``acoustic`` score is that of its single path."""
        n = max(1, self.options.alternatives if alternatives is None else alternatives)
        if np.asarray(log_probs).shape[0] == 0:
            return []
        search = self._search
        if search is None and (hotwords or grammar is not None or n > 1):
            search = self._fallback_beam()
        if search is None:
            path = greedy_alignment(log_probs)
            lp = np.asarray(log_probs, dtype=np.float64)
            acoustic = float(lp.max(axis=-1).sum())
            tokens = [t for t, _, _ in path]
            return [Hypothesis(self.tokenizer.decode(tokens), acoustic, acoustic, 0.0, 0, 0.0, tokens, path)]
        return search.decode(log_probs, hotwords or None, grammar)[:n]

    def _fallback_beam(self) -> CtcBeamSearch:
        """The beam search of a greedy decoder, for calls with hotwords, a grammar or alternatives."""
        if getattr(self, "_hot_search", None) is None:
            self._hot_search = self._beam(self.options)
        return self._hot_search

    def check_hotwords(self, hotwords) -> None:
        """Raise ValueError now if a phrase cannot be spelled with this model's vocabulary."""
        (self._search or self._fallback_beam())._trie(hotwords)

    def compile_grammar(self, phrases, warn: bool = True) -> Grammar:
        """A grammar for :meth:`search` (per stream or per call), compiled once: phrases parsed and
        bounded (:func:`asr.decoding.grammar.parse_phrases`), words the model cannot spell left out
        (``Grammar.dropped``, with a warning unless ``warn`` is False). Raises ValueError
        (:class:`asr.decoding.grammar.GrammarError`) for an empty or oversized grammar, or one
        left with nothing."""
        return (self._search or self._fallback_beam()).compile_grammar(phrases, warn=warn)
