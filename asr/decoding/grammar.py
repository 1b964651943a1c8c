"""Grammars: recognition restricted to a list of phrases (Vosk's ``phrase_list``), compiled
into the token automaton that :class:`asr.decoding.beam_search.CtcBeamSearch` walks.

A grammar is a list of phrases, each a sequence of words; what it accepts is **any sequence
of its phrases** (none included), as Vosk's ``phrase_list`` does. A word list is the grammar
of one-word phrases, so any sequence of its words: a lexicon-constrained search. The word
``[unk]`` stands for anything else: where the grammar allows it, speech outside the grammar
is written ``[unk]`` instead of being forced onto a grammar word.

Each word is spelled in the model's units (:meth:`Grammar.__init__`): one unit of a word
vocabulary, its characters for a character vocabulary (words are separated by the space
unit), its SentencePiece segmentation for word pieces (the first piece starts with ``"▁"``),
each of its pronunciations for a phone model (words are separated by the word-boundary unit;
the pronunciations come from the model file's lexicon and any :class:`Lexicon` given).
Different words with one pronunciation (``to``, ``two``, ``too``) end at one token-trie node:
the word that token completes is then a tuple of them, and the search picks one by its LM.
A word the model cannot spell is dropped from its phrase, with a :class:`GrammarWarning` that
names it (Vosk drops it the same way); a grammar left with nothing is an error. What
``[unk]`` matches, by units:

- **words**: any unit that is not a word the grammar allows at that point (the model's
  ``<unk>`` unit, and its other words);
- **characters or word pieces**: any spelling that is not a word the grammar allows at that
  point (a path leaves the lexicon's token trie at the token where the spelling stops being
  a prefix of an allowed word).

Each ``[unk]`` word adds ``unk_score`` (natural log; positive: more speech is written
``[unk]``, negative: less) to a hypothesis's score, once, when the search knows it is one.

**Bounds.** At most :data:`MAX_PHRASES` phrases of at most :data:`MAX_PHRASE_WORDS` words
and :data:`MAX_WORDS` distinct words (a word list given as a lexicon, :meth:`Grammar.from_words`:
:data:`MAX_LEXICON_WORDS` words); compiling costs one tokenization per distinct word.
States are built when the search first reaches them, each with one row of ``len(vocab)``
scores and next states (12 bytes a cell); a state is a set of positions in the phrase trie (at
most one per word of the longest phrase) and a node of the token trie of the words allowed
there. A search builds at most ``beam_size`` new states a frame, and the states built are kept
from one utterance to the next until they pass :data:`MAX_CACHED_CELLS` cells, when the cache
starts over (:meth:`Grammar.trim`). The automaton is deterministic, so a prefix of tokens has
one state and the prefix beam search merges paths as it does without a grammar.
"""

from __future__ import annotations

import json
import math
import warnings
from typing import Iterable, Optional, Sequence

import numpy as np

from asr.text import UNKNOWN_WORD, WORD_START, Tokenizer, normalize_text

__all__ = ["UNK_WORD", "MAX_PHRASES", "MAX_PHRASE_WORDS", "MAX_WORDS", "MAX_LEXICON_WORDS", "Grammar", "GrammarError", "GrammarWarning",
           "parse_phrases", "read_grammar"]

UNK_WORD = "[unk]"  # Vosk's word for anything outside the grammar
MAX_PHRASES = 10_000
MAX_PHRASE_WORDS = 64
MAX_WORDS = 10_000  # distinct words of one grammar
MAX_LEXICON_WORDS = 500_000  # words of a lexicon-constrained search (Grammar.from_words): CMUdict has 126,000
MAX_CACHED_CELLS = 1_000_000  # built states x vocabulary (+ trie nodes) kept between utterances: about 12 MB
NEG_INF = float("-inf")
DEAD = -1  # no state: the token leaves the grammar
_ROOT, _OFF = 0, -1  # token-trie positions: at a word start / spelling an [unk] word


class GrammarError(ValueError):
    """A grammar that cannot be used: empty, too large, or nothing the model can spell."""


class GrammarWarning(UserWarning):
    """Words of a grammar the model cannot spell, left out (the message names them). The
    command line prints these as ``warning: ...``."""


def normalize_phrase(text: str) -> tuple[str, ...]:
    """A phrase's words, normalized like transcripts; ``[unk]`` (any case) is kept as it is."""
    words: list[str] = []
    for raw in text.split():
        if raw.lower() == UNK_WORD:
            words.append(UNK_WORD)
        else:
            words.extend(normalize_text(raw).split())
    return tuple(words)


def parse_phrases(phrases: Iterable[str], where: str = "grammar", max_phrases: int = MAX_PHRASES,
                  max_words: int = MAX_WORDS) -> tuple[str, ...]:
    """Normalized phrases (words joined by one space), in order, duplicates and empty ones left
    out; raises :class:`GrammarError` when none is left or a bound is passed (``where`` names
    the source in the message)."""
    if isinstance(phrases, str):
        raise GrammarError(f"{where}: expected a list of phrases, got one string ({phrases[:40]!r})")
    out: dict[str, None] = {}
    words: set[str] = set()
    for i, p in enumerate(phrases):
        if not isinstance(p, str):
            raise GrammarError(f"{where}: phrase {i + 1} is {type(p).__name__}, not a string")
        ws = normalize_phrase(p)
        if len(ws) > MAX_PHRASE_WORDS:
            raise GrammarError(f"{where}: phrase {i + 1} has {len(ws)} words; at most {MAX_PHRASE_WORDS} ({p[:40]!r}...)")
        if ws:
            out[" ".join(ws)] = None
            words.update(ws)
        if len(out) > max_phrases:
            raise GrammarError(f"{where}: more than {max_phrases} phrases")
        if len(words) > max_words:
            raise GrammarError(f"{where}: more than {max_words} distinct words")
    if not out:
        raise GrammarError(f"{where}: no phrase (an empty grammar would accept nothing)")
    return tuple(out)


def read_grammar(path: str) -> list[str]:
    """The phrases of a grammar file: a JSON list of strings (Vosk's grammar format), or plain
    text with one phrase a line (``#`` starts a comment)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text.lstrip().startswith("["):
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise GrammarError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
            raise GrammarError(f"{path}: a JSON grammar must be a list of strings")
        return value
    return [line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()]


class _TokenTrie:
    """The spellings of a set of words: token id -> child per node (node 0 is the root), and
    the word a node completes."""

    def __init__(self, spellings: Iterable[tuple[str, Sequence[int]]]):
        self.children: list[dict[int, int]] = [{}]
        self.word: dict[int, str] = {}
        for word, ids in spellings:
            node = 0
            for t in ids:
                nxt = self.children[node].get(t)
                if nxt is None:
                    nxt = len(self.children)
                    self.children.append({})
                    self.children[node][t] = nxt
                node = nxt
            old = self.word.get(node)
            if old is None:
                self.word[node] = word
            elif word != old and (isinstance(old, str) or word not in old):  # homophones (phones)
                self.word[node] = (old if isinstance(old, tuple) else (old,)) + (word,)


class Grammar:
    """A grammar compiled for one tokenizer: a deterministic automaton over token ids.

    ``phrases``: as :func:`parse_phrases` returns them (or any phrases: they are parsed).
    ``dropped``: the words the model cannot spell, left out with a :class:`GrammarWarning`
    (``warn=False``: only listed). Raises :class:`GrammarError` when no word is left.

    The beam search asks, for a state (an int; :attr:`start` first), :meth:`row` (the score
    each token adds: 0, ``unk_score`` where the token makes the word ``[unk]``, -inf where it
    leaves the grammar), :meth:`next` (the state after a token), :meth:`closes` (the word a token
    completes, if any) and :meth:`end` (the word the end of input completes, its score, and
    whether the grammar accepts there)."""

    def __init__(self, phrases: Sequence[str], tokenizer: Tokenizer, unk_score: float = 0.0, warn: bool = True,
                 lexicon: Optional[dict] = None, _bounds: tuple[int, int] = (MAX_PHRASES, MAX_WORDS)):
        phrases = parse_phrases(phrases, max_phrases=_bounds[0], max_words=_bounds[1])
        kind = getattr(tokenizer, "kind", "char")
        if kind not in ("char", "word", "bpe", "phone"):
            raise GrammarError(f"a grammar needs a model of characters, word pieces, words or phones; this model's units are {kind!r}")
        self._oov: dict = {}  # oov_words' cache
        self.lexicon = lexicon or {}  # phone models: pronunciations beyond the model file's (word -> list of phone tuples)
        if not math.isfinite(unk_score):
            raise GrammarError(f"unk_score must be a finite number, got {unk_score!r}")
        self.kind, self.unk_score = kind, float(unk_score)
        vocab = tokenizer.vocab
        self.V = len(vocab)
        self.space = vocab.index(" ") if kind == "char" and " " in vocab else None
        if kind == "phone":
            self.space = getattr(tokenizer, "boundary", None)
            if self.space is None:
                raise GrammarError("this phone model has no word-boundary unit: it cannot be decoded into words")
        self.starts = np.array([v.startswith(WORD_START) for v in vocab]) if kind == "bpe" else None
        index = {v: i for i, v in enumerate(vocab)}
        self.spelling: dict[str, list[tuple[int, ...]]] = {}  # word -> its spellings (several: pronunciations)
        dropped: dict[str, None] = {}
        for w in {w for p in phrases for w in p.split()} - {UNK_WORD}:
            ids = self._spell(w, tokenizer, index)
            if ids:
                self.spelling[w] = ids
            else:
                dropped[w] = None
        self.dropped = sorted(dropped)
        kept = []
        for p in phrases:
            ws = tuple(w for w in p.split() if w == UNK_WORD or w in self.spelling)
            if ws:
                kept.append(ws)
        if not kept:
            raise GrammarError(f"none of the grammar's words can be spelled with this model's vocabulary: {_names(self.dropped)}")
        if self.dropped and warn:
            warnings.warn(self.warning, GrammarWarning, stacklevel=2)
        self.phrases = tuple(" ".join(p) for p in kept)
        # the phrase trie over words; a phrase's last word marks its node as an end
        self._pchildren: list[dict[str, int]] = [{}]
        self._pend: list[bool] = [False]
        for p in kept:
            node = 0
            for w in p:
                nxt = self._pchildren[node].get(w)
                if nxt is None:
                    nxt = len(self._pchildren)
                    self._pchildren.append({})
                    self._pend.append(False)
                    self._pchildren[node][w] = nxt
                node = nxt
            self._pend[node] = True
        self._reset()

    def _reset(self) -> None:
        """Forget every state built (word level and token level): they are built again as needed."""
        # word-level states (sets of phrase-trie nodes), their tries, and the token-level states
        self._cells = 0  # what is built, in row cells and trie nodes (trim's measure)
        self._gsets: list[frozenset] = []
        self._gindex: dict[frozenset, int] = {}
        self._ginfo: list[tuple] = []  # per word state: (token trie, unk allowed, accepting, word by token)
        self._tries: dict[frozenset, tuple] = {}  # allowed words -> (token trie, word by token)
        self._advance: dict[tuple[int, str], int] = {}
        self._states: list[tuple[int, int]] = []  # state -> (word state, trie position)
        self._sindex: dict[tuple[int, int], int] = {}
        self._rows: list[Optional[np.ndarray]] = []
        self._next: list[Optional[np.ndarray]] = []
        self._labels: list[Optional[dict[int, str]]] = []
        self._steps: list[Optional[tuple[list, list]]] = []  # (next states, scores) as Python lists, for step()
        self._ahead_key = None  # look-ahead: the unigram function its values were computed with
        self._node_best: dict[int, dict[int, float]] = {}  # id(trie) -> node -> best unigram below it
        self._ahead_rows: dict[int, tuple[float, np.ndarray]] = {}  # state -> (its look-ahead, each token's next)
        self.start = self._state(self._gset(frozenset([0])), _ROOT)

    @classmethod
    def from_words(cls, words: Iterable[str], tokenizer: Tokenizer, lexicon: Optional[dict] = None,
                   unk_score: float = 0.0, warn: bool = True) -> "Grammar":
        """The lexicon-constrained search: any sequence of ``words`` (up to
        :data:`MAX_LEXICON_WORDS`), each spelled in the model's units (for a phone model, by
        ``lexicon``'s pronunciations, then the model file's)."""
        return cls(list(words), tokenizer, unk_score, warn, lexicon, _bounds=(MAX_LEXICON_WORDS, MAX_LEXICON_WORDS))

    def ahead_row(self, state: int, unigram) -> tuple[float, np.ndarray]:
        """LM look-ahead for a word being spelled (phone models): the best ``unigram(word)`` of
        the words the state's token-trie position can still become (0 between words and on an
        ``[unk]`` word), and the same for the state after each token (0 for tokens that end a
        word or leave the grammar). ``unigram`` must stay the same function between calls
        (a new one starts the cache over)."""
        if self._ahead_key is not unigram:
            self._ahead_key, self._node_best, self._ahead_rows = unigram, {}, {}
        got = self._ahead_rows.get(state)
        if got is None:
            if len(self._ahead_rows) > 200_000:
                self._ahead_rows.clear()
            nxt = self._next[state]
            if nxt is None:
                self._build(state)
                nxt = self._next[state]
            row = np.zeros(self.V)
            for t in np.flatnonzero(nxt >= 0).tolist():
                if t and t != self.space:
                    row[t] = self._ahead_of(int(nxt[t]), unigram)
            got = self._ahead_rows[state] = (self._ahead_of(state, unigram), row)
        return got

    def _ahead_of(self, state: int, unigram) -> float:
        g, pos = self._states[state]
        if pos in (_ROOT, _OFF) or self.kind == "word":
            return 0.0
        trie = self._ginfo[g][0]
        best = self._node_best.get(id(trie))
        if best is None:
            best = self._node_best[id(trie)] = {}
            for w in {w for ws in trie.word.values() for w in (ws if isinstance(ws, tuple) else (ws,))}:
                u = unigram(w)
                for ids in self.spelling[w]:
                    node = 0
                    for t in ids:
                        node = trie.children[node][t]
                        if u > best.get(node, NEG_INF):
                            best[node] = u
        return best.get(pos, 0.0)

    def oov_words(self, lm) -> int:
        """How many of the grammar's words ``lm`` (an :class:`asr.decoding.lm.NGramLM`) does not
        know (``[unk]`` aside): the search splits ``<unk>``'s probability among them."""
        if self._oov.get("lm") is not lm:
            vocab = lm.vocab
            self._oov = {"lm": lm, "n": sum(1 for w in self.spelling if w not in vocab)}
        return self._oov["n"]

    @property
    def warning(self) -> str:
        """The message about the dropped words ("" when none was dropped)."""
        if not self.dropped:
            return ""
        return f"grammar: left out {len(self.dropped)} word(s) this model cannot spell: {_names(self.dropped)}"

    @property
    def num_states(self) -> int:
        """Token-level states built so far (they are built as the search reaches them)."""
        return len(self._states)

    def trim(self, max_cells: int = MAX_CACHED_CELLS) -> bool:
        """Start the cache of built states over if it holds more than ``max_cells`` cells (call
        between searches only: state ids change). Returns whether it did."""
        if self._cells <= max_cells:
            return False
        self._reset()
        return True

    def _spell(self, word: str, tokenizer: Tokenizer, index: dict) -> list[tuple[int, ...]]:
        if self.kind == "word":
            i = index.get(word)
            return [(i,)] if i is not None and word != UNKNOWN_WORD else []
        if self.kind == "phone":
            prons = self.lexicon.get(word) or tokenizer.pronunciations(word)
            out = []
            for pron in prons:
                ids = tokenizer.spell(pron)
                if ids and tuple(ids) not in out:
                    out.append(tuple(ids))
            return out
        try:
            ids = tuple(tokenizer.encode(word))
        except ValueError:
            return []
        if self.kind == "bpe" and (not ids or not self.starts[ids[0]] or any(self.starts[i] for i in ids[1:])):
            return []
        if self.kind == "char" and self.space is not None and self.space in ids:
            return []
        return [ids] if ids else []

    # --- word level -------------------------------------------------------------------------
    def _gset(self, nodes: frozenset) -> int:
        if any(self._pend[n] for n in nodes):
            nodes = nodes | {0}  # a phrase ended: the next phrase may start
        nodes = frozenset(n for n in nodes if self._pchildren[n])  # a phrase's last node leads nowhere but the root
        g = self._gindex.get(nodes)
        if g is None:
            g = self._gindex[nodes] = len(self._gsets)
            self._gsets.append(nodes)
            allowed = frozenset(w for n in nodes for w in self._pchildren[n])
            built = self._tries.get(allowed)  # word states that allow the same words share one trie
            if built is None:
                words = sorted(allowed - {UNK_WORD})
                trie = _TokenTrie((w, ids) for w in words for ids in self.spelling[w]) if self.kind != "word" else None
                by_token = {self.spelling[w][0][0]: w for w in words} if self.kind == "word" else None
                built = self._tries[allowed] = (trie, by_token)
                self._cells += len(trie.children) if trie is not None else len(words)
            self._ginfo.append((built[0], UNK_WORD in allowed, 0 in nodes, built[1]))
        return g

    def _after(self, g: int, word) -> int:
        key = (g, word)
        nxt = self._advance.get(key)
        if nxt is None:
            words = word if isinstance(word, tuple) else (word,)  # homophones: where any of them leads
            nodes = frozenset(self._pchildren[n][w] for n in self._gsets[g] for w in words if w in self._pchildren[n])
            nxt = self._advance[key] = self._gset(nodes)
        return nxt

    def _close(self, g: int, pos: int) -> Optional[tuple[int, Optional[str], float]]:
        """Closing the word being spelled at (g, pos): (word state after it, the word or None
        when none was being spelled, score), or None when the word is not one the grammar allows."""
        if pos == _ROOT:
            return g, None, 0.0
        trie, unk_ok, _, _ = self._ginfo[g]
        if pos == _OFF:
            return self._after(g, UNK_WORD), UNK_WORD, 0.0  # its unk_score was counted when it left the trie
        word = trie.word.get(pos)
        if word is not None:
            return self._after(g, word), word, 0.0
        if unk_ok:
            return self._after(g, UNK_WORD), UNK_WORD, self.unk_score
        return None

    # --- token level ------------------------------------------------------------------------
    def _state(self, g: int, pos: int) -> int:
        key = (g, pos)
        s = self._sindex.get(key)
        if s is None:
            s = self._sindex[key] = len(self._states)
            self._states.append(key)
            self._rows.append(None)
            self._next.append(None)
            self._labels.append(None)
            self._steps.append(None)
        return s

    def row(self, state: int) -> np.ndarray:
        """The score each token adds in ``state`` (index 0, the blank: 0)."""
        row = self._rows[state]
        if row is None:
            self._build(state)
            row = self._rows[state]
        return row

    def next(self, state: int, token: int) -> int:
        """The state after ``token`` (:data:`DEAD` if it leaves the grammar)."""
        nxt = self._next[state]
        if nxt is None:
            self._build(state)
            nxt = self._next[state]
        return int(nxt[token])

    def step(self, state: int, token: int) -> tuple[int, Optional[str], float]:
        """(:meth:`next`, :meth:`closes`, the :meth:`row` entry) of one token at once, without
        numpy scalars: what the search asks for each prefix it grows."""
        st = self._steps[state]
        if st is None:
            self._build(state)
            st = self._steps[state]
        return st[0][token], self._labels[state].get(token), st[1][token]

    def closes(self, state: int, token: int) -> "Optional[str | tuple[str, ...]]":
        """The word ``token`` completes in ``state`` (the token itself for word units; the
        word before a space or before a piece that starts the next word), or None."""
        if self._labels[state] is None:
            self._build(state)
        return self._labels[state].get(token)

    def end(self, state: int) -> tuple[Optional[str], float, bool]:
        """At the end of input: (the word it completes or None, its score, whether the grammar
        accepts: every phrase complete)."""
        g, pos = self._states[state]
        closed = self._close(g, pos)
        if closed is None:
            return None, 0.0, False
        g2, word, score = closed
        return word, score, self._ginfo[g2][2]

    def _build(self, state: int) -> None:
        g, pos = self._states[state]
        trie, unk_ok, _, by_token = self._ginfo[g]
        V = self.V
        row = np.full(V, NEG_INF)
        nxt = np.full(V, DEAD, dtype=np.int32)
        self._cells += V
        labels: dict[int, str] = {}
        row[0], nxt[0] = 0.0, state  # the blank: never asked, kept harmless

        def put(t: int, s: int, score: float, label: Optional[str] = None) -> None:
            row[t], nxt[t] = score, s
            if label is not None:
                labels[t] = label

        if self.kind == "word":
            for t in range(1, V):
                w = by_token.get(t)
                if w is not None:
                    put(t, self._state(self._after(g, w), _ROOT), 0.0, w)
                elif unk_ok:
                    put(t, self._state(self._after(g, UNK_WORD), _ROOT), self.unk_score, UNK_WORD)
        elif self.kind in ("char", "phone"):
            if pos == _OFF:
                off = self._state(g, _OFF)
                row[1:], nxt[1:] = 0.0, off
            else:
                if unk_ok:  # any other letter: the word is [unk]
                    row[1:], nxt[1:] = self.unk_score, self._state(g, _OFF)
                for t, child in trie.children[pos].items():
                    put(t, self._state(g, child), 0.0)
            if self.space is not None:
                closed = self._close(g, pos)
                if closed is None:
                    row[self.space], nxt[self.space] = NEG_INF, DEAD
                else:
                    g2, word, score = closed
                    put(self.space, self._state(g2, _ROOT), score, word)
        else:  # word pieces: a piece that starts a word closes the one before
            if pos == _OFF:
                cont = self._state(g, _OFF)
                row[~self.starts], nxt[~self.starts] = 0.0, cont
            elif pos != _ROOT:
                if unk_ok:
                    mask = ~self.starts
                    mask[0] = False
                    row[mask], nxt[mask] = self.unk_score, self._state(g, _OFF)
                for t, child in trie.children[pos].items():
                    put(t, self._state(g, child), 0.0)
            closed = self._close(g, pos)
            if closed is not None:
                g2, word, score = closed
                trie2, unk2, _, _ = self._ginfo[g2]
                starts = np.flatnonzero(self.starts)
                if unk2:
                    off = self._state(g2, _OFF)
                    for t in starts:
                        put(int(t), off, score + self.unk_score, word)
                for t, child in trie2.children[_ROOT].items():
                    put(t, self._state(g2, child), score, word)
            row[0], nxt[0] = 0.0, state
        self._rows[state], self._next[state], self._labels[state] = row, nxt, labels
        self._steps[state] = (nxt.tolist(), row.tolist())


def _names(words: Sequence[str], most: int = 20) -> str:
    shown = ", ".join(repr(w) for w in words[:most])
    return shown + (f" and {len(words) - most} more" if len(words) > most else "")
