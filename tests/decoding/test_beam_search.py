import itertools

import numpy as np
import pytest

from asr.decoding.beam_search import BeamSearchOptions, CtcBeamSearch, beam_search
from asr.decoding.greedy import greedy_ids
from asr.decoding.lm import train_ngram
from asr.decoding.result import words_from_tokens
from asr.text import CharTokenizer, WordTokenizer

EXACT = dict(token_min_logp=None)  # no token pruning


def log_softmax(x):
    return x - np.logaddexp.reduce(x, axis=-1, keepdims=True)


def brute_force(lp):
    """Every label path: sum of path probabilities per collapsed label sequence, and each
    sequence's best path as (token, first frame, last frame) triples."""
    T, V = lp.shape
    total, best = {}, {}
    for path in itertools.product(range(V), repeat=T):
        s = float(sum(lp[t, k] for t, k in enumerate(path)))
        labels, align, prev = [], [], 0
        for t, k in enumerate(path):
            if k != 0 and k != prev:
                labels.append(k)
                align.append([k, t, t])
            elif k != 0:
                align[-1][2] = t
            prev = k
        key = tuple(labels)
        total[key] = np.logaddexp(total.get(key, -np.inf), s)
        if s > best.get(key, (-np.inf,))[0]:
            best[key] = (s, [tuple(a) for a in align])
    return total, best


def frames(tok, spec, peak=0.9):
    """(frames, V) log-probs; each item of ``spec`` is a symbol (probability ``peak``), or a
    {symbol: share} dict splitting ``peak``; the rest of each frame's mass is shared by the
    other symbols."""
    vocab = tok.vocab
    out = []
    for item in spec:
        probs = {item: peak} if isinstance(item, str) else {s: peak * q for s, q in item.items()}
        row = np.full(len(vocab), (1.0 - sum(probs.values())) / (len(vocab) - len(probs)))
        for s, q in probs.items():
            row[vocab.index(s)] = q
        out.append(np.log(row))
    return np.array(out)


B = "<blank>"


@pytest.mark.parametrize("seed,T,V", [(0, 5, 3), (1, 6, 3), (2, 5, 4), (3, 6, 4), (4, 6, 4), (5, 6, 4)])
def test_matches_brute_force(seed, T, V):
    rng = np.random.default_rng(seed)
    lp = log_softmax(rng.normal(size=(T, V)) * 1.5)
    tok = CharTokenizer([B] + list("abc")[: V - 1])
    total, best_path = brute_force(lp)
    hyps = beam_search(lp, tok, beam_size=2000, nbest=2000, **EXACT)
    want = max(total, key=total.get)
    assert tuple(hyps[0].tokens) == want
    assert abs(hyps[0].score - total[want]) < 1e-6 and hyps[0].acoustic == hyps[0].score
    assert hyps[0].alignment == best_path[want][1]  # the best path of that prefix
    # a full beam keeps every prefix: every score is exact, every sequence is there
    assert len(hyps) == len(total)
    for h in hyps:
        assert abs(h.score - total[tuple(h.tokens)]) < 1e-6
        assert [a[0] for a in h.alignment] == h.tokens
    assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
    # a small beam still finds the best here, with (at most) the exact score
    small = beam_search(lp, tok, beam_size=8, **EXACT)
    assert tuple(small[0].tokens) == want and small[0].score <= total[want] + 1e-9


def greedy_alignment(lp):
    best = lp.argmax(-1)
    out = []
    for t, k in enumerate(best):
        if k != 0 and (t == 0 or best[t - 1] != k):
            out.append([int(k), t, t])
        elif k != 0:
            out[-1][2] = t
    return [tuple(a) for a in out]


@pytest.mark.parametrize("seed", range(5))
def test_beam_one_is_greedy_when_one_path_dominates(seed):
    rng = np.random.default_rng(100 + seed)
    tok = CharTokenizer([B, " "] + list("abcdefgh"))
    V = len(tok.vocab)
    path = rng.choice(V, size=60, p=[0.4, 0.1] + [0.5 / (V - 2)] * (V - 2))
    lp = log_softmax(rng.normal(size=(60, V)) + 5.0 * np.eye(V)[path])
    hyp = beam_search(lp, tok, beam_size=1)[0]
    assert hyp.tokens == greedy_ids(lp)
    assert hyp.alignment == greedy_alignment(lp)
    assert hyp.text == tok.decode(greedy_ids(lp))
    # a wider beam agrees too here
    assert beam_search(lp, tok, beam_size=10)[0].tokens == greedy_ids(lp)


def test_word_times_from_alignment():
    tok = CharTokenizer.build(["ab ba"])
    lp = frames(tok, [B, "a", "a", "b", B, " ", " ", "b", B, B, "a", B])
    hyp = beam_search(lp, tok, beam_size=4)[0]
    assert hyp.text == "ab ba"
    text, words = words_from_tokens(tok, hyp.alignment, 0.04)
    assert text == "ab ba"
    assert [(w.word, w.start, w.end) for w in words] == [("ab", 0.04, 0.16), ("ba", 0.28, 0.44)]


def test_empty_input_and_options():
    tok = CharTokenizer([B, "a"])
    hyps = beam_search(np.zeros((0, 2)), tok)
    assert len(hyps) == 1 and hyps[0].text == "" and hyps[0].score == 0.0
    with pytest.raises(ValueError, match="beam_size"):
        CtcBeamSearch(tok, options=BeamSearchOptions(beam_size=0))
    with pytest.raises(ValueError, match="shape"):
        beam_search(np.zeros((3, 5)), tok)


def test_token_pruning_keeps_the_answer():
    tok = CharTokenizer.build(["hello world"])
    lp = frames(tok, list("h") + [B, "e", "l", B, "l", "o", " ", "w", "o", "r", "l", "d"], peak=0.95)
    plain = beam_search(lp, tok, beam_size=8, **EXACT)[0]
    pruned = beam_search(lp, tok, beam_size=8, token_top_k=2, token_min_logp=-3.0, beam_prune_logp=-8.0)[0]
    assert plain.text == pruned.text == "hello world"
    assert pruned.score <= plain.score + 1e-9


def test_lm_changes_the_decision_char_vocab():
    tok = CharTokenizer.build(["the cat sat cut"])
    lm = train_ngram(["the cat sat", "the cat", "a cat sat", "the cat sat down"] * 3, order=3)
    # acoustics slightly prefer "cut" (0.55 vs 0.45); the LM has never seen it
    lp = frames(tok, ["t", "h", "e", " ", "c", {"u": 0.55, "a": 0.45}, "t"])
    assert beam_search(lp, tok, beam_size=10)[0].text == "the cut"
    assert beam_search(lp, tok, lm=lm, alpha=0.0, beam_size=10)[0].text == "the cut"
    best = beam_search(lp, tok, lm=lm, alpha=0.5, beam_size=10)[0]
    assert best.text == "the cat" and best.words == 2
    # the reported LM score is the sentence's, </s> included
    assert best.lm == pytest.approx(lm.sentence_score("the cat"))
    assert best.score == pytest.approx(best.acoustic + 0.5 * best.lm)


def test_lm_lookahead_keeps_prefixes_of_known_words():
    """Beam 1: "c" and "k" compete at the first frame, before any word is complete. Without
    look-ahead the LM has nothing to say yet and "k" (0.55) wins for good; with it, "c" leads
    to the known word "cat" and "k" to none, so "cat" survives. Final scores stay exact."""
    tok = CharTokenizer.build(["cat kat sat"])
    lm = train_ngram(["cat sat", "the cat", "a cat"], order=2)
    lp = frames(tok, [{"k": 0.55, "c": 0.45}, "a", "t"])
    assert beam_search(lp, tok, lm=lm, alpha=0.5, beam_size=1, lm_lookahead=False)[0].text == "kat"
    best = beam_search(lp, tok, lm=lm, alpha=0.5, beam_size=1)[0]
    assert best.text == "cat"
    assert best.score == pytest.approx(best.acoustic + 0.5 * lm.sentence_score("cat"))
    # with every prefix kept, look-ahead changes nothing: it only steers pruning
    wide = dict(lm=lm, alpha=0.5, beta=0.3, beam_size=500, nbest=500, **EXACT)
    on = {h.text: h.score for h in beam_search(lp, tok, **wide)}
    off = {h.text: h.score for h in beam_search(lp, tok, lm_lookahead=False, **wide)}
    assert on.keys() == off.keys() and all(on[k] == pytest.approx(off[k]) for k in on)


def test_lm_changes_the_decision_word_vocab():
    tok = WordTokenizer([B, "one", "won", "two", "too"])
    lm = train_ngram(["one two", "one two", "two one", "one"], order=2, vocab=tok.vocab[1:])
    lp = frames(tok, [{"won": 0.55, "one": 0.45}, B, "two", B])
    assert beam_search(lp, tok, beam_size=8)[0].text == "won two"
    best = beam_search(lp, tok, lm=lm, alpha=1.0, beam_size=8)[0]
    assert best.text == "one two"
    assert best.lm == pytest.approx(lm.sentence_score("one two"))
    assert [a[0] for a in best.alignment] == tok.encode("one two")


def test_beta_is_a_word_bonus():
    tok = WordTokenizer([B, "one", "two"])
    lp = frames(tok, ["one", {B: 0.6, "two": 0.4}])
    assert beam_search(lp, tok)[0].text == "one"
    best = beam_search(lp, tok, beta=1.0)[0]
    assert best.text == "one two" and best.words == 2


HOT = CharTokenizer.build(["cat kat new york yolk hello world cab"])


def test_hotword_biases_a_word():
    lp = frames(HOT, [{"k": 0.6, "c": 0.4}, "a", "t"])
    assert beam_search(lp, HOT)[0].text == "kat"
    best = beam_search(lp, HOT, hotwords=["cat"], hotword_weight=1.0)[0]
    assert best.text == "cat" and best.hotword_bonus == 3.0
    assert best.score == pytest.approx(best.acoustic + 3.0)
    # per-phrase weights
    assert beam_search(lp, HOT, hotwords={"cat": 0.01})[0].text == "kat"


def test_hotword_biases_a_phrase():
    lp = frames(HOT, ["n", "e", "w", " ", "y", "o", {"l": 0.6, "r": 0.4}, "k"])
    assert beam_search(lp, HOT)[0].text == "new yolk"
    best = beam_search(lp, HOT, hotwords=["new york"], hotword_weight=1.0)[0]
    assert best.text == "new york" and best.hotword_bonus == 8.0


def test_hotword_biases_a_word_unit():
    tok = WordTokenizer([B, "one", "won", "two"])
    lp = frames(tok, [{"won": 0.6, "one": 0.4}, B, "two"])
    assert beam_search(lp, tok)[0].text == "won two"
    assert beam_search(lp, tok, hotwords=["one"])[0].text == "one two"


def test_hotwords_leave_unrelated_text_alone():
    lp = frames(HOT, ["h", "e", "l", B, "l", "o", " ", "w", "o", "r", "l", "d"], peak=0.99)
    plain = beam_search(lp, HOT)[0]
    # "hello kat" matches "hello " then breaks: its provisional bonus is taken back
    for hotwords in (["cat", "new york"], ["cab"], ["hello kat"]):
        biased = beam_search(lp, HOT, hotwords=hotwords)[0]
        assert (biased.text, biased.alignment, biased.hotword_bonus) == (plain.text, plain.alignment, 0.0)
        assert biased.score == pytest.approx(plain.score, abs=1e-9)


def test_broken_or_mid_word_match_gives_nothing():
    lp = frames(HOT, ["c", "a", "t"], peak=0.99)
    plain = beam_search(lp, HOT)[0]
    # "ca" of "cab" matched, then "t" broke the match: the provisional bonus is taken back
    for hotwords in (["cab"], ["at"]):  # "at" inside "cat": matches start at word starts only
        biased = beam_search(lp, HOT, hotwords=hotwords)[0]
        assert biased.text == "cat" and biased.hotword_bonus == 0.0
        assert biased.score == pytest.approx(plain.score, abs=1e-9)
    with pytest.raises(ValueError, match="hotword"):
        beam_search(lp, HOT, hotwords=["zzz"])


# --- word pieces (SentencePiece) ----------------------------------------------------------------
from tests.conftest import piece_tokenizer  # noqa: E402

PIECES = piece_tokenizer(["▁the", "▁c", "at", "ut", "▁k", "▁sat", "▁at", "▁", "a", "t"])


def test_pieces_full_beam_with_lm_matches_brute_force():
    """Every prefix kept: each hypothesis scores its exact CTC probability + alpha * LM of its
    words (a word completes at a piece starting with "\u2581", and at the end) + beta * words."""
    tok = piece_tokenizer(["▁a", "b", "▁b", "a"])
    lm = train_ngram(["a b", "ab a", "b a b", "a ab", "ba"], order=2)
    alpha, beta = 0.7, 0.3
    rng = np.random.default_rng(11)
    lp = log_softmax(rng.normal(size=(5, 5)) * 1.5)
    total, best_path = brute_force(lp)

    def score(seq):
        text = tok.decode(seq)
        return total[seq] + alpha * lm.sentence_score(text) + beta * len(text.split())

    hyps = beam_search(lp, tok, lm=lm, alpha=alpha, beta=beta, beam_size=4000, nbest=4000, **EXACT)
    best_by_text = {}
    for seq in total:
        t = tok.decode(seq)
        if t not in best_by_text or score(seq) > score(best_by_text[t]):
            best_by_text[t] = seq
    assert len(hyps) == len(best_by_text)  # one per distinct text
    for h in hyps:
        seq = tuple(h.tokens)
        assert best_by_text[h.text] == seq
        assert h.acoustic == pytest.approx(total[seq], abs=1e-6)
        assert h.lm == pytest.approx(lm.sentence_score(h.text), abs=1e-9) and h.words == len(h.text.split())
        assert h.score == pytest.approx(score(seq), abs=1e-6)
        assert h.alignment == best_path[seq][1]
    want = max(total, key=score)
    assert tuple(hyps[0].tokens) == want
    assert tok.decode(max(total, key=total.get)) != hyps[0].text  # here the LM and beta change the answer


def test_lm_changes_the_decision_piece_vocab():
    lm = train_ngram(["the cat sat", "the cat", "a cat sat", "the cat sat down"] * 3, order=3)
    # "the c{ut|at} sat": acoustics slightly prefer "cut"; the LM has never seen it
    lp = frames(PIECES, ["▁the", B, "▁c", {"ut": 0.55, "at": 0.45}, "▁sat"])
    assert beam_search(lp, PIECES, beam_size=10)[0].text == "the cut sat"
    best = beam_search(lp, PIECES, lm=lm, alpha=0.5, beam_size=10)[0]
    assert best.text == "the cat sat" and best.words == 3
    assert best.lm == pytest.approx(lm.sentence_score("the cat sat"))
    assert best.score == pytest.approx(best.acoustic + 0.5 * best.lm)
    # the last word is scored at the end (with </s>)
    only = beam_search(frames(PIECES, ["▁the", "▁c", "at"]), PIECES, lm=lm, alpha=1.0, beam_size=10)[0]
    assert only.text == "the cat" and only.lm == pytest.approx(lm.sentence_score("the cat"))


def test_hotword_over_pieces():
    lp = frames(PIECES, [{"▁k": 0.6, "▁c": 0.4}, "at"])
    assert beam_search(lp, PIECES)[0].text == "kat"
    assert [PIECES.vocab[i] for i in PIECES.encode("cat")] == ["▁c", "at"]
    best = beam_search(lp, PIECES, hotwords=["cat"], hotword_weight=1.0)[0]
    assert best.text == "cat" and best.hotword_bonus == 2.0  # per matched piece
    assert best.score == pytest.approx(best.acoustic + 2.0)
    # "at" is the piece "\u2581at": it cannot match the "at" inside "cat", which is not a word start
    plain = beam_search(frames(PIECES, ["▁c", "at"], peak=0.99), PIECES)[0]
    biased = beam_search(frames(PIECES, ["▁c", "at"], peak=0.99), PIECES, hotwords=["at"])[0]
    assert biased.text == plain.text == "cat" and biased.hotword_bonus == 0.0
    assert biased.score == pytest.approx(plain.score, abs=1e-9)
    # a phrase over two words
    lp = frames(PIECES, ["▁the", {"▁k": 0.6, "▁c": 0.4}, "at"])
    assert beam_search(lp, PIECES, hotwords=["the cat"], hotword_weight=1.0)[0].text == "the cat"


def test_word_times_from_pieces():
    tok = PIECES
    ids = {p: i for i, p in enumerate(tok.vocab)}
    # "the" "c|at" "|at": a bare "\u2581" piece starts a word too
    tokens = [(ids["▁the"], 1, 2), (ids["▁c"], 4, 4), (ids["at"], 5, 7), (ids["▁"], 9, 9), (ids["at"], 10, 11)]
    text, words = words_from_tokens(tok, tokens, 0.04)
    assert text == "the cat at"
    assert [(w.word, w.start, w.end) for w in words] == [("the", 0.04, 0.12), ("cat", 0.16, 0.32), ("at", 0.36, 0.48)]
    # a first piece without "\u2581" still opens a word
    text, words = words_from_tokens(tok, [(ids["at"], 0, 0), (ids["▁k"], 2, 2)], 0.04)
    assert text == "at k" and [w.word for w in words] == ["at", "k"]
    # through beam search's alignment
    lp = frames(tok, [B, "▁the", "▁the", B, "▁c", "at", B, "▁sat"])
    hyp = beam_search(lp, tok, beam_size=4)[0]
    text, words = words_from_tokens(tok, hyp.alignment, 0.04)
    assert text == hyp.text == "the cat sat"
    assert [(w.word, w.start, w.end) for w in words] == [("the", 0.04, 0.12), ("cat", 0.16, 0.24), ("sat", 0.28, 0.32)]


def test_char_lm_full_beam_matches_brute_force():
    """With a character LM every sequence's score is ln P_ctc + char_alpha * ln P_char(its
    characters, <sp> for the space, then </s>): checked for every sequence a full beam keeps."""
    from asr.decoding.lm import EOS, char_tokens

    rng = np.random.default_rng(7)
    tok = CharTokenizer([B, "a", "b", " "])
    clm = train_ngram([char_tokens(s) for s in ["ab ba", "a b", "bab", "ab ab"]], order=3)
    lp = log_softmax(rng.normal(size=(6, 4)) * 1.5)
    total, _ = brute_force(lp)

    def char_score(tokens):
        # the raw token sequence (decode() would normalize spaces)
        syms = ["<sp>" if tok.vocab[t] == " " else tok.vocab[t] for t in tokens]
        hist, total_lm = ("<s>",), 0.0
        for s in syms + [EOS]:
            total_lm += clm.score(s, hist)
            hist = (hist + (s,))[-2:]
        return total_lm

    hyps = beam_search(lp, tok, char_lm=clm, char_alpha=0.7, beam_size=2000, nbest=2000, **EXACT)
    want = {k: v + 0.7 * char_score(k) for k, v in total.items()}
    assert tuple(hyps[0].tokens) == max(want, key=want.get)
    for h in hyps:
        assert h.score == pytest.approx(want[tuple(h.tokens)])
        assert h.acoustic == pytest.approx(total[tuple(h.tokens)])


def test_char_lm_reaches_words_the_word_lm_lacks():
    """"cat" is spelled in the training text of the character model only inside "cats"; the
    word LM has never seen "cat" and the acoustics slightly prefer "cut". The character LM
    knows "c-a-t" and picks it; it also works beside a word LM, and refuses non-char units."""
    tok = CharTokenizer.build(["the cat cut"])
    from asr.decoding.lm import char_tokens

    clm = train_ngram([char_tokens(s) for s in ["the cats sat", "cats and the bat", "the rats"]], order=4)
    lp = frames(tok, ["t", "h", "e", " ", "c", {"u": 0.55, "a": 0.45}, "t"])
    assert beam_search(lp, tok, beam_size=10)[0].text == "the cut"
    assert beam_search(lp, tok, char_lm=clm, char_alpha=0.5, beam_size=10)[0].text == "the cat"
    wlm = train_ngram(["the dog", "the dog sat"], order=2)
    assert beam_search(lp, tok, lm=wlm, alpha=0.3, char_lm=clm, char_alpha=0.5, beam_size=10)[0].text == "the cat"
    with pytest.raises(ValueError, match="character vocabulary"):
        CtcBeamSearch(WordTokenizer([B, "one", "two"]), char_lm=clm)


def test_a_broken_match_takes_its_bonus_back_before_the_next_match():
    # "ca" of "cat" matched, "b" broke the match: its 2 provisional points are taken back, so
    # the later whole "cat" earns exactly its own 3 (not 5)
    lp = frames(HOT, ["c", "a", "b", " ", "c", "a", "t"], peak=0.99)
    best = beam_search(lp, HOT, hotwords=["cat"], hotword_weight=1.0)[0]
    assert best.text == "cab cat" and best.hotword_bonus == 3.0
    assert best.score == pytest.approx(best.acoustic + 3.0)
    # twice the phrase: twice its bonus
    lp = frames(HOT, ["c", "a", "t", " ", "c", "a", "t"], peak=0.99)
    assert beam_search(lp, HOT, hotwords=["cat"], hotword_weight=1.0)[0].hotword_bonus == 6.0


def _spelled_prefixes(search, trie, spellings):
    """Every prefix (node) along the token sequences ``spellings``, from the root."""
    from asr.decoding.beam_search import _Node
    from asr.decoding.lm import BOS

    root = _Node(None, None, (BOS,) if search.lm is not None else (), "", 0.0, 0, 0, 0.0, 0.0, 0.0,
                 (BOS,) if search.char_lm is not None else ())
    nodes = [root]
    for ids in spellings:
        node = root
        for c in ids:
            node = search._child(node, c, trie)
            nodes.append(node)
    return nodes


@pytest.mark.parametrize("units", ["char", "pieces", "words"])
def test_search_scores_of_children_equal_their_bonus(units):
    """The search scores every extension of a prefix at once (a row per prefix, :meth:`_row`);
    each must be the bonus (LM, beta, hotword gain or take-back) the child itself gets."""
    from asr.decoding.lm import char_tokens

    corpus = ["cat cab", "new york", "cat", "hello world cat"]
    lm = train_ngram(corpus, order=2)
    if units == "char":
        tok, char_lm = HOT, train_ngram([char_tokens(s) for s in corpus], order=3)
        hotwords = {"cat": 1.0, "cab": 2.0, "new york": 0.5, "hello": 0.7}
        texts = ["cab cat", "new yolk", "new york", "hello cat", "cat hello"]
    elif units == "pieces":
        tok, char_lm = PIECES, None
        hotwords = {"cat": 1.0, "the cat": 0.5, "sat": 0.3}
        texts = ["the cut sat", "the cat sat", "cat sat"]
    else:
        from asr.text import WordTokenizer

        tok, char_lm = WordTokenizer([B, "cat", "cab", "new", "york", "yolk"]), None
        hotwords = {"new york": 1.0, "cab": 0.4}
        texts = ["new yolk cab", "new york new", "cab cat"]
    search = CtcBeamSearch(tok, lm, BeamSearchOptions(alpha=0.6, beta=0.3, char_alpha=0.4), char_lm=char_lm)
    trie = search._trie(hotwords)
    checked = 0
    for node in _spelled_prefixes(search, trie, [tok.encode(t) for t in texts]):
        row = search._row(node, trie)
        for c in range(1, len(tok.vocab)):
            assert row[c] == pytest.approx(search._child(node, c, trie).bonus, abs=1e-9), (tok.vocab[c], node.word)
            checked += 1
    assert checked >= 40  # the walk reached many prefixes


def test_hotwords_match_mid_utterance_over_words_and_pieces_and_nest():
    from asr.text import WordTokenizer

    tok = WordTokenizer([B, "one", "won", "two"])
    lp = frames(tok, ["two", B, {"won": 0.6, "one": 0.4}])
    assert beam_search(lp, tok)[0].text == "two won"
    assert beam_search(lp, tok, hotwords=["one"])[0].text == "two one"  # a word unit may start a match anywhere
    lp = frames(PIECES, ["▁the", {"▁k": 0.6, "▁c": 0.4}, "at"])
    best = beam_search(lp, PIECES, hotwords=["cat"], hotword_weight=1.0)[0]
    assert best.text == "the cat" and best.hotword_bonus == 2.0
    # "new" is a hotword and the start of another: both count, "new" (3) then " york" (5 more)
    lp = frames(HOT, ["n", "e", "w", " ", "y", "o", "r", "k"], peak=0.99)
    assert beam_search(lp, HOT, hotwords=["new", "new york"], hotword_weight=1.0)[0].hotword_bonus == 8.0
    assert beam_search(lp, HOT, hotwords=["new york", "new"], hotword_weight=1.0)[0].hotword_bonus == 8.0


def test_options_and_constructor_refusals():
    BeamSearchOptions(token_top_k=1, nbest=1, beam_prune_logp=0.0).validate()  # the smallest sensible values
    for bad, msg in ((dict(beam_size=0), "beam_size must be >= 1, got 0"),
                     (dict(token_top_k=0), "token_top_k must be >= 1 or None, got 0"),
                     (dict(beam_prune_logp=0.5), "beam_prune_logp must be <= 0, got 0.5"),
                     (dict(nbest=0), "nbest must be >= 1 or None, got 0")):
        with pytest.raises(ValueError) as err:
            BeamSearchOptions(**bad).validate()
        assert str(err.value) == msg
    with pytest.raises(ValueError, match="hotword 'zzz'"):  # at construction, not at the first decode
        CtcBeamSearch(HOT, hotwords=["zzz"])
    clm = train_ngram([["a", "b"]], order=2)
    from asr.text import WordTokenizer

    for tok, units in ((WordTokenizer([B, "one"]), "words"), (PIECES, "word pieces")):
        with pytest.raises(ValueError) as err:
            CtcBeamSearch(tok, char_lm=clm)
        assert str(err.value) == f"a character LM needs a character vocabulary (this model's units are {units})"


def test_hotword_details_the_search_must_keep():
    lp = frames(HOT, [{"k": 0.6, "c": 0.4}, "a", "t"])
    # the constructor's hotwords serve decode() calls that give none
    assert CtcBeamSearch(HOT, options=BeamSearchOptions(hotword_weight=1.0), hotwords=["cat"]).decode(lp)[0].text == "cat"
    # a NaN weight (a hotwords file line without one) means hotword_weight
    assert beam_search(lp, HOT, hotwords={"cat": float("nan")}, hotword_weight=1.0)[0].hotword_bonus == 3.0
    # after a whole phrase the match starts over: "catat" earns "cat" once, and "at" is no match
    lp2 = frames(HOT, ["c", "a", "t", "a", "t"], peak=0.99)
    assert beam_search(lp2, HOT, hotwords=["cat"], hotword_weight=1.0)[0].hotword_bonus == 3.0
    assert beam_search(frames(HOT, ["a", "t"], peak=0.99), HOT, hotwords=["cat"])[0].hotword_bonus == 0.0
    # with one hypothesis kept, the bonus must steer the search itself, not only the final ranking
    assert beam_search(lp, HOT, beam_size=1)[0].text == "kat"
    assert beam_search(lp, HOT, hotwords=["cat"], hotword_weight=1.0, beam_size=1)[0].text == "cat"
    # a prefix that stays (its last token repeated) keeps its bonus, like its extensions do
    lp3 = frames(HOT, ["c", "a", "b", {"b": 0.6, "t": 0.4}], peak=0.99)
    assert beam_search(lp3, HOT, hotwords=["cab"], hotword_weight=1.0, beam_size=1)[0].text == "cab"
    assert len(beam_search(lp2, HOT, beam_size=5, nbest=1)) == 1 and len(beam_search(lp2, HOT, beam_size=5)) > 1


def test_beta_and_the_character_lm_steer_the_search_and_score_the_end():
    from asr.decoding.lm import char_tokens

    lp = frames(HOT, ["a", {"a": 0.55, " ": 0.45}, "a"], peak=0.99)
    assert beam_search(lp, HOT, beam_size=1)[0].text == "a"
    assert beam_search(lp, HOT, beta=1.0, beam_size=1)[0].text == "a a"  # the word bonus, during the search
    clm = train_ngram([char_tokens(s) for s in ["a a", "a a", "b a a"]], order=3)
    lp_b = frames(HOT, ["a", {"b": 0.55, " ": 0.45}, "a"], peak=0.99)
    assert beam_search(lp_b, HOT, beam_size=1)[0].text == "aba"
    assert beam_search(lp_b, HOT, char_lm=clm, char_alpha=1.0, beam_size=1)[0].text == "a a"  # each letter, as added
    wlm = train_ngram(["a a", "a"], order=2)
    best = beam_search(lp, HOT, lm=wlm, alpha=0.4, beta=0.3, char_lm=clm, char_alpha=0.7, beam_size=4)[0]
    assert best.score == pytest.approx(best.acoustic + 0.4 * wlm.sentence_score(best.text) + 0.3 * len(best.text.split())
                                       + 0.7 * clm.sentence_score(char_tokens(best.text)), abs=1e-9)


def test_token_pruning_and_the_lookahead_table():
    search = CtcBeamSearch(HOT, options=BeamSearchOptions(token_top_k=2, token_min_logp=None))
    row = np.log(np.full(len(HOT.vocab), 0.01))
    row[HOT.vocab.index("c")], row[HOT.vocab.index("k")], row[HOT.vocab.index("a")] = -0.5, -1.0, -2.0
    assert sorted(search._candidates(row).tolist()) == sorted([HOT.vocab.index("c"), HOT.vocab.index("k")])
    lm = train_ngram(["cat cab", "cab kat", "cat"], order=2)
    search = CtcBeamSearch(HOT, lm)
    # a partial word counts the best unigram log-prob of the words it can still become; no word: <unk>
    for prefix, words in (("ca", ["cat", "cab"]), ("cat", ["cat"]), ("k", ["kat"])):
        assert search._lookahead(prefix) == max(lm.score(w) for w in words)
    assert search._lookahead("zz") == lm.score("<unk>") and search._lookahead("") == 0.0


# --- grammars: the constrained search -----------------------------------------------------------

GRAMMAR_CHARS = CharTokenizer([B, " ", "a", "b"])


def _grammar_words(text, phrases):
    """The words of ``text`` if it is a sequence of ``phrases`` (word tuples), else None."""
    words = tuple(text.split())
    ok = [True] + [False] * len(words)
    for i in range(len(words)):
        if ok[i]:
            for p in phrases:
                if words[i : i + len(p)] == p:
                    ok[i + len(p)] = True
    return list(words) if ok[-1] else None


@pytest.mark.parametrize("seed", range(6))
def test_constrained_search_is_the_best_sequence_the_grammar_accepts(seed):
    """With a beam that keeps every prefix, the grammar-constrained search finds exactly the
    label sequence of highest CTC probability among those the grammar accepts (any sequence of
    its phrases), with that probability as its score; every hypothesis it returns is accepted."""
    rng = np.random.default_rng(seed)
    lp = log_softmax(rng.normal(size=(6, 4)) * 1.5)
    tok = GRAMMAR_CHARS
    phrases = [("ab",), ("b", "a")]
    total, best_path = brute_force(lp)
    accepted = {k: v for k, v in total.items() if _grammar_words(tok.decode(list(k)), phrases) is not None}
    want = max(accepted, key=accepted.get)
    search = CtcBeamSearch(tok, options=BeamSearchOptions(beam_size=2000, nbest=2000, **EXACT), grammar=["ab", "b a"])
    hyps = search.decode(lp)
    assert tuple(hyps[0].tokens) == want and abs(hyps[0].score - total[want]) < 1e-6
    assert hyps[0].alignment == best_path[want][1]
    for h in hyps:
        assert _grammar_words(h.text, phrases) == [w for w, _, _ in h.labels]
        assert abs(h.acoustic - total[tuple(h.tokens)]) < 1e-6 and h.score == h.acoustic
    unconstrained = beam_search(lp, tok, beam_size=2000, **EXACT)[0]
    assert unconstrained.labels is None and unconstrained.score >= hyps[0].score - 1e-9


@pytest.mark.parametrize("seed", range(4))
def test_unk_is_every_other_spelling_and_scores_once_per_word(seed):
    """Grammar "ab" + [unk]: every label sequence is accepted, each word that is not "ab"
    written [unk] and scored ``unk_score`` once: the search's best is the best of
    CTC probability + unk_score x [unk] words."""
    rng = np.random.default_rng(10 + seed)
    lp = log_softmax(rng.normal(size=(6, 4)) * 1.5)
    tok = GRAMMAR_CHARS
    unk = -0.7
    total, _ = brute_force(lp)

    def labelled(key):
        return [w if w == "ab" else "[unk]" for w in tok.decode(list(key)).split()]

    scored = {k: v + unk * labelled(k).count("[unk]") for k, v in total.items()}
    want = max(scored, key=scored.get)
    search = CtcBeamSearch(tok, options=BeamSearchOptions(beam_size=2000, nbest=2000, unk_score=unk, **EXACT),
                           grammar=["ab", "[unk]"])
    hyps = search.decode(lp)
    assert tuple(hyps[0].tokens) == want and abs(hyps[0].score - scored[want]) < 1e-6
    for h in hyps[:20]:
        assert [w for w, _, _ in h.labels] == labelled(h.tokens) and h.text == " ".join(labelled(h.tokens))
        assert abs(h.score - scored[tuple(h.tokens)]) < 1e-6
    dropped = CtcBeamSearch(tok, options=BeamSearchOptions(beam_size=64, unk_score=unk, drop_unk=True, **EXACT),
                            grammar=["ab", "[unk]"]).decode(lp)[0]
    assert "[unk]" not in dropped.text and all(w == "ab" for w, _, _ in dropped.labels)


def test_word_units_unk_is_the_unknown_unit_and_other_words():
    """A digits-like word vocabulary with <unk>: grammar "one two" + [unk]. What the model says is
    "five <unk> one two": five and <unk> are written [unk]; without [unk] in the grammar the
    search may only write grammar words: the other speech is forced onto them; word spans give times."""
    tok = WordTokenizer([B, "one", "two", "five", "<unk>"])
    lp = frames(tok, ["five", B, "<unk>", B, "one", B, "two", B])
    search = CtcBeamSearch(tok, options=BeamSearchOptions(beam_size=8), grammar=["one two", "[unk]"])
    (best, *_) = search.decode(lp)
    assert best.text == "[unk] [unk] one two" and best.labels == [("[unk]", 0, 0), ("[unk]", 1, 1), ("one", 2, 2), ("two", 3, 3)]
    text, words = words_from_tokens(tok, best.alignment, 0.02)
    assert text == "five one two"  # the tokenizer's own words leave <unk> out; the grammar's name every word
    from asr.decoding.result import hypothesis_words

    text, words = hypothesis_words(tok, best, 0.02)
    assert text == best.text and [(w.word, w.start, w.end) for w in words] == [
        ("[unk]", 0.0, 0.02), ("[unk]", 0.04, 0.06), ("one", 0.08, 0.1), ("two", 0.12, 0.14)]
    strict = CtcBeamSearch(tok, options=BeamSearchOptions(beam_size=8), grammar=["one two"]).decode(lp)
    assert all(set(h.text.split()) <= {"one", "two"} for h in strict) and strict[0].text == "one two one two"


def test_grammar_words_over_pieces_and_their_spans():
    lp = frames(PIECES, ["▁the", B, "▁c", {"ut": 0.6, "at": 0.4}, B, "▁sat", B])
    search = CtcBeamSearch(PIECES, options=BeamSearchOptions(beam_size=16), grammar=["the cat", "sat", "[unk]"])
    (best, *_) = search.decode(lp)
    # "the" must be followed by "cat": the search writes "the cat" (one letter off) over "the [unk]"
    assert best.text == "the cat sat"
    assert [(w, [PIECES.vocab[t] for t in best.tokens[a : b + 1]]) for w, a, b in best.labels] == [
        ("the", ["▁the"]), ("cat", ["▁c", "at"]), ("sat", ["▁sat"])]
    loose = CtcBeamSearch(PIECES, options=BeamSearchOptions(beam_size=16), grammar=["the", "cat", "sat", "[unk]"]).decode(lp)[0]
    assert loose.text == "the [unk] sat"


def test_nothing_the_grammar_accepts_gives_the_best_of_the_rest():
    """A phrase cut off by the end of input: hypotheses the grammar accepts come first (the empty
    text is one: no phrase said), and when the beam holds none (here a beam of 2), the best
    partial one is returned rather than nothing, as Kaldi does."""
    lp = frames(GRAMMAR_CHARS, ["a", B, "b", B, " ", "b", B])
    wide = CtcBeamSearch(GRAMMAR_CHARS, options=BeamSearchOptions(beam_size=16), grammar=["ab b a"]).decode(lp)
    assert [h.text for h in wide] == [""]  # only what the grammar accepts, when the beam holds any
    (best, *_) = CtcBeamSearch(GRAMMAR_CHARS, options=BeamSearchOptions(beam_size=2), grammar=["ab b a"]).decode(lp)
    assert best.text == "ab b" and [w for w, _, _ in best.labels] == ["ab", "b"]


def test_nbest_is_ordered_distinct_and_scored():
    from asr.decoding.options import Decoder, DecodingOptions

    rng = np.random.default_rng(3)
    lp = log_softmax(rng.normal(size=(12, 4)) * 1.2)
    hyps = Decoder(GRAMMAR_CHARS, DecodingOptions(beam_size=16, alternatives=5, beta=0.5)).search(lp)
    assert len(hyps) == 5 and len({h.text for h in hyps}) == 5
    assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
    for h in hyps:
        assert h.score == pytest.approx(h.acoustic + 0.5 * h.words)
    assert Decoder(GRAMMAR_CHARS, DecodingOptions(beam_size=16, alternatives=5)).search(lp, alternatives=2)[:2] == \
        Decoder(GRAMMAR_CHARS, DecodingOptions(beam_size=16)).search(lp, alternatives=2)
    greedy = Decoder(GRAMMAR_CHARS).search(lp)
    assert len(greedy) == 1 and greedy[0].alignment == greedy_alignment(lp)
    assert greedy[0].acoustic == pytest.approx(float(lp.max(axis=1).sum()))
    # a greedy decoder asked for alternatives or a grammar searches with the default beam
    assert len(Decoder(GRAMMAR_CHARS).search(lp, alternatives=3)) == 3


def test_search_scores_of_children_equal_their_bonus_with_a_grammar():
    """The row of a prefix (every extension at once) equals each child's own bonus under a
    grammar too: -inf where the grammar forbids the token, unk_score where it makes [unk]."""
    lm = train_ngram(["cat cab", "new york", "cat"], order=2)
    search = CtcBeamSearch(HOT, lm, BeamSearchOptions(alpha=0.6, beta=0.3, unk_score=-1.25), grammar=["cat", "new york", "[unk]"])
    gram, trie = search.grammar, search._trie({"cab": 1.0})
    from asr.decoding.beam_search import _Node
    from asr.decoding.lm import BOS

    checked = forbidden = 0
    for ids in [HOT.encode(t) for t in ["new york cat", "new yolk", "cab cat", "cat new"]]:
        node = _Node(None, None, (BOS,), "", 0.0, 0, 0, 0.0, 0.0, 0.0, (), 0.0, gram.start)
        for c in ids:
            row = search._row(node, trie, gram)
            for t in range(1, len(HOT.vocab)):
                if np.isneginf(row[t]):
                    forbidden += 1
                    continue
                assert row[t] == pytest.approx(search._child(node, t, trie, gram).bonus, abs=1e-9)
                checked += 1
            if np.isneginf(row[c]):
                break
            node = search._child(node, c, trie, gram)
    assert checked > 100 and forbidden > 10


def test_grammar_options_and_bounds():
    from asr.decoding.options import MAX_ALTERNATIVES, Decoder, DecodingOptions

    o = DecodingOptions(grammar=["Call Tina", "[UNK]"])
    assert o.grammar == ("call tina", "[unk]") and o.beam_size == 16 and DecodingOptions(alternatives=2).beam_size == 16
    for bad, words in [(dict(beam_size=0, grammar=["ab"]), "need beam search"),
                       (dict(beam_size=0, alternatives=2), "alternatives need beam search"),
                       (dict(alternatives=MAX_ALTERNATIVES + 1), "alternatives must be an integer in 0..10"),
                       (dict(alternatives=-1), "alternatives must be"),
                       (dict(beam_size=2, alternatives=3), r"alternatives \(3\) cannot be more than beam_size \(2\)"),
                       (dict(grammar=[""]), "no phrase"),
                       (dict(grammar="ab"), "one string"),
                       (dict(grammar=[f"w{i}" for i in range(10_001)]), "more than 10000 phrases"),
                       (dict(grammar=["ab"], unk_score=float("nan")), "unk_score must be a finite number"),
                       (dict(grammar_file="missing.txt"), "grammar_file: missing.txt: file not found")]:
        with pytest.raises(ValueError, match=words):
            DecodingOptions(**bad)
    with pytest.raises(ValueError, match="none of the grammar's words can be spelled"):
        Decoder(GRAMMAR_CHARS, DecodingOptions(grammar=["xyz"]))
    label = DecodingOptions(grammar=["ab"], unk_score=2, alternatives=3).label()
    assert label == "beam 16, grammar of 1 phrases, unk score 2, 3 alternatives"
    assert DecodingOptions(grammar=["ab"], alternatives=2).settings()["grammar_phrases"] == 1
