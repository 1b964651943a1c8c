"""CTC prefix beam search (Graves 2012; Hannun et al. 2014) with an optional word n-gram LM,
character n-gram LM, hotword biasing and a grammar that restricts what it may write (a word
list or phrases, :mod:`asr.decoding.grammar`). Numpy and pure Python (no torch, no compiled
decoder), so the runtime can use it.

For every prefix (label sequence) in the beam the search keeps the probability of all paths
that collapse to it and end in a blank (``pb``) or in its last token (``pnb``). Each frame a
prefix may stay (blank, or the last token repeated) or grow by one token (by its own last
token only after a blank); the ``beam_size`` best survive by::

    score = ln(pb + pnb) + alpha * ln P_lm(words) + char_alpha * ln P_char(characters)
            + beta * words + hotword bonus + unk_score * [unk] words (with a grammar)

When each term counts: :class:`CtcBeamSearch`. Without LM, hotwords or ``beta``, and with a
beam that keeps every prefix, the scores are exact CTC log-probabilities of the label sequences.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence, Union

import numpy as np

from asr.decoding.grammar import UNK_WORD, Grammar
from asr.decoding.lm import BOS, EOS, SPACE, UNK, NGramLM
from asr.text import WORD_START, Tokenizer

__all__ = ["BeamSearchOptions", "Hypothesis", "CtcBeamSearch", "Hotwords", "beam_search", "read_hotwords"]

NEG_INF = float("-inf")
Hotwords = Union[Sequence[str], Mapping[str, float], None]  # phrases, or phrase -> bonus per token; every hotwords argument


@dataclass
class BeamSearchOptions:
    beam_size: int = 10
    alpha: float = 0.5  # LM weight, on natural-log LM probabilities
    beta: float = 0.0  # bonus per word (word insertion bonus)
    hotword_weight: float = 2.0  # bonus per matched hotword token (characters or words)
    token_min_logp: Optional[float] = -10.0  # tokens below this log-prob in a frame do not extend prefixes
    token_top_k: Optional[int] = None  # at most this many tokens per frame extend prefixes
    beam_prune_logp: Optional[float] = None  # drop hypotheses this far (negative) below the best
    nbest: Optional[int] = None  # hypotheses returned (default: beam_size)
    char_alpha: float = 0.5  # character LM weight (natural-log probabilities), with a character LM
    # Character vocabularies with an LM: while a word is being spelled, count the best unigram
    # probability of a vocabulary word it can still become (a provisional score, replaced by
    # the n-gram score when the word completes), so the beam keeps prefixes that lead to words.
    lm_lookahead: bool = True
    unk_score: float = 0.0  # with a grammar: added per [unk] word (natural log)
    drop_unk: bool = False  # with a grammar: leave [unk] words out of text and labels

    def validate(self) -> "BeamSearchOptions":
        if self.beam_size < 1:
            raise ValueError(f"beam_size must be >= 1, got {self.beam_size}")
        if self.token_top_k is not None and self.token_top_k < 1:
            raise ValueError(f"token_top_k must be >= 1 or None, got {self.token_top_k}")
        if self.beam_prune_logp is not None and self.beam_prune_logp > 0:
            raise ValueError(f"beam_prune_logp must be <= 0, got {self.beam_prune_logp}")
        if self.nbest is not None and self.nbest < 1:
            raise ValueError(f"nbest must be >= 1 or None, got {self.nbest}")
        return self


@dataclass
class Hypothesis:
    text: str
    score: float  # acoustic + alpha * lm + beta * words + hotword_bonus
    acoustic: float  # ln P_ctc(tokens | frames): all paths of the prefix that survived
    lm: float  # ln P_lm(words + </s>), 0 without an LM
    words: int
    hotword_bonus: float
    tokens: list[int] = field(default_factory=list)
    alignment: list[tuple[int, int, int]] = field(default_factory=list)  # (token, first frame, last frame)
    # with a grammar: its words, each (word or "[unk]", first token, last token) as indices into
    # alignment; None without one (the words are then the tokenizer's)
    labels: Optional[list[tuple[str, int, int]]] = None


class _HotwordTrie:
    """Prefix trie over token ids; node 0 is the root."""

    def __init__(self):
        self.children: list[dict[int, int]] = [{}]
        self.gain: list[float] = [0.0]
        self.terminal: list[bool] = [False]

    def add(self, ids: Sequence[int], weight: float) -> None:
        node = 0
        for i in ids:
            nxt = self.children[node].get(i)
            if nxt is None:
                nxt = len(self.children)
                self.children.append({})
                self.gain.append(weight)
                self.terminal.append(False)
                self.children[node][i] = nxt
            self.gain[nxt] = max(self.gain[nxt], weight)
            node = nxt
        self.terminal[node] = True


class _Node:
    """A prefix: one node of the prefix tree, with what the scores need (computed once)."""

    __slots__ = ("parent", "token", "children", "hist", "word", "lm", "nwords", "hstate", "hpart", "hcomm", "bonus", "row",
                 "chist", "clm", "gstate", "gscore", "glabel")

    def __init__(self, parent, token, hist, word, lm, nwords, hstate, hpart, hcomm, bonus, chist=(), clm=0.0,
                 gstate=0, gscore=0.0, glabel=None):
        self.parent, self.token, self.children = parent, token, {}
        self.hist, self.word, self.lm, self.nwords = hist, word, lm, nwords  # LM history, partial word, ln LM, words
        self.chist, self.clm = chist, clm  # character LM history and ln score
        self.hstate, self.hpart, self.hcomm = hstate, hpart, hcomm  # trie node, provisional and kept bonus
        self.gstate, self.gscore, self.glabel = gstate, gscore, glabel  # grammar state, its scores, the word this token completes
        self.bonus = bonus  # everything but the acoustic score
        self.row = None  # bonus of each child, by token (numpy), computed when first needed


class _Scorer:
    """An n-gram LM over a vocabulary's symbols (words, or characters with ``<sp>``): the
    history after one more symbol, and the ln probability of every symbol after a history
    (0 for the blank at index 0), cached per history."""

    def __init__(self, lm: NGramLM, symbols: Sequence[str]):
        self.lm, self.symbols = lm, list(symbols)
        self._scored = tuple(self.symbols[1:])  # all but the blank
        self._rows: dict[tuple[str, ...], np.ndarray] = {}

    def push(self, hist: tuple[str, ...], sym: str) -> tuple[str, ...]:
        n = self.lm.order - 1
        return (hist + (sym,))[max(0, len(hist) + 1 - n):] if n > 0 else ()

    def row(self, hist: tuple[str, ...]) -> np.ndarray:
        row = self._rows.get(hist)
        if row is None:
            if len(self._rows) > 100_000:
                self._rows.clear()
            row = self._rows[hist] = np.concatenate([[0.0], self.lm.score_row(self._scored, hist)])
        return row


def _lse(a: float, b: float) -> float:
    if a < b:
        a, b = b, a
    if b == NEG_INF:
        return a
    return a + math.log1p(math.exp(b - a))


class CtcBeamSearch:
    """Prefix beam search for one tokenizer (and LM); :meth:`decode` one utterance at a time.

    - **LM** (:class:`asr.decoding.lm.NGramLM`, natural-log scores): applied when a word is
      complete: for a character vocabulary when a ``" "`` follows a non-empty word, and at the
      end for the last word and ``</s>``; for a word vocabulary at every token, plus ``</s>`` at
      the end; for word pieces when a piece starting with ``"▁"`` follows a non-empty word, and
      at the end. Partial words carry no LM score, but for the look-ahead of ``lm_lookahead``.
      ``beta`` is added per word, with or without an LM.
    - **Character LM** (character vocabularies; an n-gram over
      :func:`asr.decoding.lm.char_tokens`): scores every character as it is added, the space as
      ``<sp>``, and ``</s>`` at the end, so it also guides words the word LM does not know; alone
      or beside the word LM.
    - **Hotwords**: the phrases are tokenized (characters, spaces included, words, or pieces) into
      a prefix trie. A hypothesis walking the trie gains ``hotword_weight`` per matched token at
      once (so it survives the beam while the phrase is spelled), provisionally until the phrase
      completes; if the next token leaves the trie, the provisional part is taken back (and the
      token may start a new match). A match starts at the start of a word over characters,
      anywhere over words, at a piece starting with ``"▁"`` over pieces (only the phrase's
      own SentencePiece segmentation matches). A node shared by phrases of different weights
      gives the largest; partial matches at the end get nothing.
    - **Grammar** (:class:`asr.decoding.grammar.Grammar`, or phrases that :meth:`compile_grammar`
      compiles): the search walks the grammar's token automaton beside the prefix tree; a token
      the grammar does not allow after a prefix does not extend it, a token that makes a word
      ``[unk]`` adds ``unk_score``. Hypotheses the grammar accepts at the end (every phrase
      complete) come first; if none does, the others are returned (Kaldi does the same).
      :attr:`Hypothesis.labels` then names each word (``[unk]`` for what lies outside the
      grammar, left out with ``drop_unk``) and its tokens, and the text is made of them.
      Hotwords and LMs apply as without a grammar (biasing is the soft form of the same
      structure). The grammar only removes extensions, so it costs no more than the same
      search without it, plus one row per grammar state reached.
    - **Alignment**: each prefix tracks its best single path (Viterbi) beside the summed
      probability: :attr:`Hypothesis.alignment` gives each token's first and last frame (exact
      when nothing is pruned, the best surviving path otherwise), for
      :func:`asr.decoding.result.words_from_tokens`."""

    def __init__(self, tokenizer: Tokenizer, lm: Optional[NGramLM] = None, options: Optional[BeamSearchOptions] = None,
                 hotwords: Hotwords = None, char_lm: Optional[NGramLM] = None,
                 grammar: "Optional[Union[Grammar, Sequence[str]]]" = None, lexicon: Optional[dict] = None):
        self.tokenizer = tokenizer
        self.lexicon = lexicon  # phone models: pronunciations for the grammars compiled here (beyond the model file's)
        self._oov_penalty = 0.0  # ln(grammar words outside the LM), set per decode (_lm_score)
        self._unigram = self._unigram_fn = self._unigram_key = None  # phone look-ahead (decode)
        self.lm = lm
        self.char_lm = char_lm
        self.options = (options or BeamSearchOptions()).validate()
        self.hotwords = hotwords  # used by decode() when they are given none
        self._trie(hotwords)  # fail now on a phrase the vocabulary cannot spell
        self.grammar = self.compile_grammar(grammar) if grammar is not None else None  # decode()'s default
        self.vocab = tokenizer.vocab
        kind = getattr(tokenizer, "kind", "char")
        self.word_units = kind == "word"
        self.pieces = kind == "bpe"  # word pieces: a piece starting with WORD_START starts a word
        # phones: words come from the grammar (a lexicon), which says which word a boundary completes
        self.phones = kind == "phone"
        self.starts = np.array([v.startswith(WORD_START) for v in self.vocab]) if self.pieces else None
        self.space = None if self.word_units or self.pieces else (self.vocab.index(" ") if " " in self.vocab else None)
        if self.phones:
            self.space = getattr(tokenizer, "boundary", None)
        if char_lm is not None:
            if self.word_units or self.pieces or self.phones:
                raise ValueError("a character LM needs a character vocabulary (this model's units are "
                                 f"{'words' if self.word_units else 'word pieces' if self.pieces else 'phones'})")
            self._chars = _Scorer(char_lm, [SPACE if v == " " else v for v in self.vocab])
        self._words = _Scorer(lm, self.vocab) if lm is not None else None
        self._ahead: Optional[dict[str, float]] = None  # word prefix -> best ln P_unigram of its completions
        self._ahead_rows: dict[str, np.ndarray] = {}
        if lm is not None and self.space is not None and self.options.lm_lookahead and not self.phones:
            self._ahead = {}
            for w in lm.vocab:
                if w in (BOS, EOS, UNK):
                    continue
                p = lm.score(w, ())
                for i in range(1, len(w) + 1):
                    if p > self._ahead.get(w[:i], NEG_INF):
                        self._ahead[w[:i]] = p
            self._ahead_miss = lm.score(UNK, ())  # a prefix of no known word: it can only become <unk>

    # --- helpers ----------------------------------------------------------------------------
    def compile_grammar(self, grammar: "Union[Grammar, Sequence[str]]", warn: bool = True) -> Grammar:
        """A :class:`Grammar` for this tokenizer (phrases are compiled with ``options.unk_score``;
        words it cannot spell are left out with a warning naming them, see ``Grammar.dropped``)."""
        if isinstance(grammar, Grammar):
            return grammar
        return Grammar(grammar, self.tokenizer, self.options.unk_score, warn=warn, lexicon=self.lexicon)

    def _trie(self, hotwords: Hotwords) -> Optional[_HotwordTrie]:
        if not hotwords:
            return None
        default = self.options.hotword_weight
        items = hotwords.items() if isinstance(hotwords, Mapping) else ((h, default) for h in hotwords)
        items = ((h, default if math.isnan(w) else w) for h, w in items)
        trie = _HotwordTrie()
        for phrase, weight in items:
            try:
                ids = self.tokenizer.encode(phrase)
            except ValueError as e:
                raise ValueError(f"hotword {phrase!r}: {e}") from None
            if ids:
                trie.add(ids, float(weight))
        return trie if len(trie.children) > 1 else None

    def _may_start(self, node: _Node) -> bool:
        """May a hotword match start with the next token? (Over characters: at a word start.
        Over pieces: always here, as the trie's first pieces all start with WORD_START.)"""
        return self.word_units or self.pieces or node.token is None or node.token == self.space

    def _child(self, node: _Node, c: int, trie: Optional[_HotwordTrie], gram: Optional[Grammar] = None) -> _Node:
        ch = node.children.get(c)
        if ch is not None:
            return ch
        hist, word, lmv, nw = node.hist, node.word, node.lm, node.nwords
        gstate, gscore, glabel = node.gstate, node.gscore, None
        if gram is not None:
            gstate, glabel, delta = gram.step(gstate, c)
            gscore += delta
        if self.phones:
            if c == self.space:
                if glabel is not None:
                    glabel, score = self._pick(glabel, hist)
                    if self.lm is not None:
                        lmv += score
                        hist = self._words.push(hist, glabel)
                if word:
                    nw += 1
                word = ""
            else:
                word = word + self.vocab[c] + " "
        elif self.word_units:
            w = self.vocab[c]
            if self.lm is not None:
                lmv += self.lm.score(w, hist)
                hist = self._words.push(hist, w)
            nw += 1
        elif self.pieces:
            piece = self.vocab[c]
            if self.starts[c]:
                if word:
                    if self.lm is not None:
                        lmv += self._lm_score(word, hist)
                        hist = self._words.push(hist, word)
                    nw += 1
                word = piece[len(WORD_START):]
            else:
                word = word + piece
        elif c == self.space:
            if word:
                if self.lm is not None:
                    lmv += self._lm_score(word, hist)
                    hist = self._words.push(hist, word)
                nw += 1
                word = ""
        else:
            word = word + self.vocab[c]
        state, part, comm = node.hstate, node.hpart, node.hcomm
        if trie is not None:
            nxt = trie.children[state].get(c) if state else None
            if nxt is None:
                part = 0.0  # the match (if any) broke: take the provisional bonus back
                if self._may_start(node):
                    nxt = trie.children[0].get(c)
            if nxt is None:
                state = 0
            else:
                part += trie.gain[nxt]
                if trie.terminal[nxt]:  # a whole hotword: keep its bonus
                    comm, part = comm + part, 0.0
                    state = nxt if trie.children[nxt] else 0
                else:
                    state = nxt
        o = self.options
        chist, clm = node.chist, node.clm
        if self.char_lm is not None:
            clm += float(self._chars.row(chist)[c])
            chist = self._chars.push(chist, self._chars.symbols[c])
        ahead = self._lookahead(word) if not self.phones else \
            (gram.ahead_row(gstate, self._unigram)[0] if self._unigram is not None and word and gram is not None else 0.0)
        ch = _Node(node, c, hist, word, lmv, nw, state, part, comm,
                   o.alpha * (lmv + ahead) + o.char_alpha * clm + o.beta * nw + comm + part + gscore, chist, clm,
                   gstate, gscore, glabel)
        node.children[c] = ch
        return ch

    def _lm_score(self, word: str, hist: tuple) -> float:
        """ln P_lm(word | hist); a word of the grammar outside the LM's vocabulary gets its share
        of ``<unk>``'s probability (:meth:`Grammar.oov_words`: split evenly among them), so that a
        lexicon of 100,000 words does not give each unseen one all of it."""
        score = self.lm.score(word, hist)
        if self._oov_penalty and word not in self.lm.vocab and word != UNK_WORD:
            score -= self._oov_penalty
        return score

    def _pick(self, label, hist: tuple) -> tuple[str, float]:
        """The word a grammar label stands for and its ln LM probability after ``hist`` (0
        without an LM): of homophones (a tuple), the one the LM likes best (else the first)."""
        if self.lm is None:
            return (label[0] if isinstance(label, tuple) else label), 0.0
        if not isinstance(label, tuple):
            return label, self._lm_score(label, hist)
        scores = [self._lm_score(w, hist) for w in label]
        i = int(np.argmax(scores))
        return label[i], scores[i]

    def _lookahead(self, word: str) -> float:
        """Provisional LM score of a partial word (0 without look-ahead or between words)."""
        if self._ahead is None or not word:
            return 0.0
        return self._ahead.get(word, self._ahead_miss)

    def _ahead_row(self, word: str) -> np.ndarray:
        """What look-ahead changes in the bonus of each child of a prefix whose partial word is
        ``word`` (cached per word: many prefixes share one)."""
        row = self._ahead_rows.get(word)
        if row is None:
            o = self.options
            base = self._lookahead(word)
            row = np.zeros(len(self.vocab))
            for c, ch in enumerate(self.vocab):
                if c and c != self.space:
                    row[c] = o.alpha * (self._lookahead(word + ch) - base)
            if word:
                row[self.space] = -(o.alpha * base)
            if len(self._ahead_rows) > 100_000:
                self._ahead_rows.clear()
            self._ahead_rows[word] = row
        return row

    def _row(self, node: _Node, trie: Optional[_HotwordTrie], gram: Optional[Grammar] = None) -> np.ndarray:
        """The bonus each child of ``node`` would have, by token (same arithmetic as _child)."""
        if node.row is not None:
            return node.row
        o = self.options
        base = node.bonus - node.hpart
        # the grammar's row (0, unk_score or -inf by token) is the start of a new row, or a full one
        row = gram.row(node.gstate) + base if gram is not None else np.full(len(self.vocab), base)
        if self.word_units:
            row += o.beta
            if self.lm is not None:
                row += o.alpha * self._words.row(node.hist)
        elif self.pieces:
            if node.word:
                row[self.starts] += o.beta + (o.alpha * self._lm_score(node.word, node.hist) if self.lm is not None else 0.0)
        elif self.phones:
            if gram is not None and self._unigram is not None:  # swap the partial word's look-ahead for its extension's
                here, nxt = gram.ahead_row(node.gstate, self._unigram)
                row += o.alpha * (nxt - (here if node.word else 0.0))
            if node.word and self.space is not None:
                label = gram.closes(node.gstate, self.space) if gram is not None else None
                row[self.space] += o.beta + (o.alpha * self._pick(label, node.hist)[1] if label is not None else 0.0)
        elif self.space is not None:
            if node.word:
                row[self.space] += o.beta + (o.alpha * self._lm_score(node.word, node.hist) if self.lm is not None else 0.0)
            if self._ahead is not None:  # swap the partial word's provisional score for its extension's
                row += self._ahead_row(node.word)
        if self.char_lm is not None:
            row += o.char_alpha * self._chars.row(node.chist)
        if trie is not None:
            delta: dict[int, float] = {}
            if self._may_start(node):
                delta.update((c, trie.gain[n]) for c, n in trie.children[0].items())
            if node.hstate:
                delta.update((c, node.hpart + trie.gain[n]) for c, n in trie.children[node.hstate].items())
            for c, d in delta.items():
                row[c] += d
        node.row = row
        return row

    def _final(self, node: _Node, gram: Optional[Grammar] = None) -> tuple[float, float, int]:
        """(ln LM with the last word and </s>, bonus without provisional hotword gain, words)."""
        lmv, nw, hist = node.lm, node.nwords, node.hist
        if self.phones:
            last = gram.end(node.gstate)[0] if gram is not None and node.word else None
            if node.word:
                nw += 1
            if last is not None and self.lm is not None:
                word, score = self._pick(last, hist)
                lmv += score
                hist = self._words.push(hist, word)
        elif not self.word_units and node.word:
            nw += 1
            if self.lm is not None:
                lmv += self._lm_score(node.word, hist)
                hist = self._words.push(hist, node.word)
        if self.lm is not None:
            lmv += self.lm.score(EOS, hist)
        o = self.options
        bonus = o.alpha * lmv + o.beta * nw + node.hcomm
        if self.char_lm is not None:
            bonus += o.char_alpha * (node.clm + self.char_lm.score(EOS, node.chist))
        return lmv, bonus, nw

    def _candidates(self, lp: np.ndarray) -> np.ndarray:
        o = self.options
        if o.token_min_logp is not None:
            idx = np.flatnonzero(lp[1:] >= o.token_min_logp) + 1
        else:
            idx = np.arange(1, lp.shape[0])
        if o.token_top_k is not None and idx.size > o.token_top_k:
            idx = idx[np.argpartition(lp[idx], -o.token_top_k)[-o.token_top_k:]]
        return idx

    # --- search -----------------------------------------------------------------------------
    def decode(self, log_probs: np.ndarray, hotwords: Hotwords = None,
               grammar: "Optional[Union[Grammar, Sequence[str]]]" = None) -> list[Hypothesis]:
        """N-best hypotheses, best first (distinct texts), of one utterance's (frames, V)
        log-probabilities. ``hotwords``: phrases (bonus ``options.hotword_weight`` per token) or
        a mapping phrase -> bonus per token. ``grammar``: a :class:`Grammar` (or phrases, compiled
        for this call) instead of the search's own."""
        lps = np.asarray(log_probs, dtype=np.float64)
        V = len(self.vocab)
        if lps.ndim != 2 or lps.shape[1] != V:
            raise ValueError(f"expected (frames, {V}) log-probabilities, got shape {lps.shape}")
        o = self.options
        trie = self._trie(self.hotwords if hotwords is None else hotwords)
        gram = self.grammar if grammar is None else self.compile_grammar(grammar)
        oov = gram.oov_words(self.lm) if gram is not None and self.lm is not None else 0
        self._oov_penalty = math.log(oov) if oov > 1 else 0.0
        # phone models: unigram look-ahead over the lexicon's trie; a new function when the penalty
        # changes, since the grammar caches look-ahead values per function
        self._unigram = None
        if self.phones and gram is not None and self.lm is not None and o.lm_lookahead:
            if self._unigram_key != self._oov_penalty:
                self._unigram_fn = lambda w: self._lm_score(w, ())
                self._unigram_key = self._oov_penalty
            self._unigram = self._unigram_fn
        if self.phones and self.lm is not None and gram is None:
            raise ValueError("a phone model with a word LM needs a lexicon (a grammar of words) to decode into words")
        if gram is not None:
            gram.trim()  # bounded memory across utterances: the states built start over past a size
        plain = trie is None and gram is None and self.lm is None and self.char_lm is None and o.beta == 0.0
        root = _Node(None, None, (BOS,) if self.lm is not None else (), "", 0.0, 0, 0, 0.0, 0.0, 0.0,
                     (BOS,) if self.char_lm is not None else (), gram.start if gram is not None else 0)

        beams = [root]
        last = np.array([-1])  # last token of each prefix (-1: empty)
        pb, pnb = np.array([0.0]), np.array([NEG_INF])  # ln P(prefix, ending in blank / in its last token)
        vb, vnb = np.array([0.0]), np.array([NEG_INF])  # the same for the best single path
        ab: list = [None]  # best path's alignment per state: (token, first, last, previous tokens' alignment)
        anb: list = [None]
        colmap = np.full(V + 1, -1)  # token -> column among this frame's candidates (index V: none)

        for t in range(lps.shape[0]):
            lp = lps[t]
            B = len(beams)
            last_ix = np.where(last >= 0, last, V)
            lp_last = np.where(last >= 0, lp[last_ix % V], NEG_INF)
            tot = np.logaddexp(pb, pnb)
            vmax = np.maximum(vb, vnb)
            # stay: a blank, or the last token once more
            s_pb, s_pnb = tot + lp[0], pnb + lp_last
            s_vb, s_vnb = vmax + lp[0], vnb + lp_last
            from_nb = (vnb > vb).tolist()
            s_ab = [a1 if f else a0 for a0, a1, f in zip(ab, anb, from_nb)]
            s_anb = [None if a is None else (a[0], a[1], t, a[3]) for a in anb]

            cand = self._candidates(lp)
            K = cand.size
            if K:
                colmap[:] = -1
                colmap[cand] = np.arange(K)
                lpc = lp[cand]
                ext = tot[:, None] + lpc
                vext = vmax[:, None] + lpc
                col = colmap[last_ix]
                rep = np.flatnonzero(col >= 0)  # the last token again: only after a blank
                if rep.size:
                    rc = col[rep]
                    ext[rep, rc] = pb[rep] + lpc[rc]
                    vext[rep, rc] = vb[rep] + lpc[rc]
                # a prefix in the beam that is another one grown by a token gets that mass too
                index = {n: i for i, n in enumerate(beams)}
                cols, last_l = colmap.tolist(), last.tolist()
                for i, n in enumerate(beams):
                    pi = index.get(n.parent) if n.parent is not None else None
                    if pi is None:
                        continue
                    j = cols[n.token]
                    if j < 0:
                        continue
                    e = float(ext[pi, j])
                    if e == NEG_INF:
                        continue
                    s_pnb[i] = _lse(float(s_pnb[i]), e)
                    if vext[pi, j] > s_vnb[i]:
                        s_vnb[i] = vext[pi, j]
                        s_anb[i] = (n.token, t, t, ab[pi] if n.token == last_l[pi] else s_ab[pi])
                    ext[pi, j] = NEG_INF
                if plain:
                    stay = np.logaddexp(s_pb, s_pnb)
                    ext_score = ext
                else:
                    stay = np.logaddexp(s_pb, s_pnb) + np.array([n.bonus for n in beams])
                    ext_score = ext + np.stack([self._row(n, trie, gram) for n in beams])[:, cand]
                scores = np.concatenate([stay, ext_score.ravel()])
            else:
                stay = np.logaddexp(s_pb, s_pnb)
                scores = stay if plain else stay + np.array([n.bonus for n in beams])

            k = min(o.beam_size, scores.size)
            top = np.argpartition(scores, -k)[-k:] if scores.size > k else np.arange(scores.size)
            best = scores[top].max()
            if best == NEG_INF:
                return []
            floor = best + o.beam_prune_logp if o.beam_prune_logp is not None else NEG_INF
            top = top[(scores[top] >= floor) & (scores[top] > NEG_INF)]

            stays = top[top < B]
            grown = top[top >= B] - B  # flat index into (B, K)
            si = stays.tolist()
            gi, gj = np.divmod(grown, max(K, 1))
            gc = cand[gj] if K else gj
            last_l = last.tolist()
            grown_from = list(zip(gi.tolist(), gc.tolist()))  # (parent beam, token)
            # a grown prefix's best path: the parent's, from its blank state if the token repeats
            anb = [s_anb[i] for i in si] + [(c, t, t, ab[i] if c == last_l[i] else s_ab[i]) for i, c in grown_from]
            ab = [s_ab[i] for i in si] + [None] * grown.size
            beams = [beams[i] for i in si] + [self._child(beams[i], c, trie, gram) for i, c in grown_from]
            last = np.concatenate([last[stays], gc])
            none = np.full(grown.size, NEG_INF)
            pb, vb = np.concatenate([s_pb[stays], none]), np.concatenate([s_vb[stays], none])
            if grown.size:
                pnb = np.concatenate([s_pnb[stays], ext.ravel()[grown]])
                vnb = np.concatenate([s_vnb[stays], vext.ravel()[grown]])
            else:
                pnb, vnb = s_pnb[stays], s_vnb[stays]

        hyps, rejected = [], []
        for i, n in enumerate(beams):
            acoustic = _lse(float(pb[i]), float(pnb[i]))
            lmv, bonus, nw = self._final(n, gram)
            tokens, labels = [], [] if gram is not None else None
            m = n
            while m.parent is not None:
                tokens.append(m.token)
                if labels is not None and m.glabel is not None:
                    labels.append((m.glabel, len(tokens)))  # the word ends before or at this token (counted from the end)
                m = m.parent
            tokens.reverse()
            a = anb[i] if vnb[i] > vb[i] else ab[i]
            alignment = []
            while a is not None:
                alignment.append((int(a[0]), int(a[1]), int(a[2])))
                a = a[3]
            alignment.reverse()
            accepted = True
            if gram is not None:
                last, gbonus, accepted = gram.end(n.gstate)
                if isinstance(last, tuple):  # homophones: as _final picked
                    last = self._pick(last, n.hist)[0]
                bonus += n.gscore + gbonus
                labels = self._spans(tokens, [(w, len(tokens) - k) for w, k in reversed(labels)], last)
                if o.drop_unk:
                    labels = [x for x in labels if x[0] != UNK_WORD]
                text = " ".join(w for w, _, _ in labels)
            else:
                text = self.tokenizer.decode(tokens)
            h = Hypothesis(text, acoustic + bonus, acoustic, lmv, nw, n.hcomm, tokens, alignment, labels)
            (hyps if accepted else rejected).append(h)
        hyps = hyps or rejected  # nothing the grammar accepts: the best of the rest (as Kaldi does)
        hyps.sort(key=lambda h: -h.score)
        out, seen = [], set()
        for h in hyps:
            if h.text not in seen:
                seen.add(h.text)
                out.append(h)
        return out[: o.nbest or o.beam_size]

    def _spans(self, tokens: list[int], closes: list[tuple[str, int]], last: Optional[str]) -> list[tuple[str, int, int]]:
        """Each grammar word with its first and last token: ``closes`` are (word, index of the
        token that completed it), ``last`` the word the end of input completed. Over words a
        word is its token; over characters it ends before the space that completed it, over
        word pieces before the piece that started the next; it starts at the first token
        after the previous word's end (spaces skipped)."""
        out, start = [], 0
        for word, k in closes:
            end = k if self.word_units else k - 1
            out.append((word, self._word_start(tokens, start, end), end))
            start = k + 1 if self.word_units or not self.pieces else k
        if last is not None and tokens:
            out.append((last, self._word_start(tokens, start, len(tokens) - 1), len(tokens) - 1))
        return out

    def _word_start(self, tokens: list[int], start: int, end: int) -> int:
        while start < end and tokens[start] == self.space:
            start += 1
        return start



def read_hotwords(path: str) -> dict[str, float]:
    """Hotwords from a text file: one phrase a line, optionally followed by a tab and its bonus
    per token (default: ``BeamSearchOptions.hotword_weight``, given as NaN here); ``#`` starts a
    comment. Phrases are normalized like transcripts."""
    from asr.text import normalize_text

    out: dict[str, float] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.split("#", 1)[0].rstrip("\n")
            if not line.strip():
                continue
            phrase, _, weight = line.partition("\t")
            phrase = normalize_text(phrase)
            if not phrase:
                raise ValueError(f"{path}:{lineno}: empty hotword phrase")
            try:
                out[phrase] = float(weight) if weight.strip() else math.nan
            except ValueError:
                raise ValueError(f"{path}:{lineno}: bonus {weight.strip()!r} is not a number") from None
    return out


def beam_search(log_probs: np.ndarray, tokenizer: Tokenizer, lm: Optional[NGramLM] = None, hotwords: Hotwords = None,
                char_lm: Optional[NGramLM] = None, **options) -> list[Hypothesis]:
    """One-call prefix beam search: ``options`` are :class:`BeamSearchOptions` fields
    (``beam_size``, ``alpha``, ``beta``, ``char_alpha``, ``hotword_weight``, ``token_min_logp``, ...)."""
    opts = dataclasses.replace(BeamSearchOptions(), **options)
    return CtcBeamSearch(tokenizer, lm, opts, char_lm=char_lm).decode(log_probs, hotwords)
