import pytest

from asr.text import BLANK, CharTokenizer, normalize_text, tokenizer_from_dict


@pytest.mark.parametrize("raw,norm", [
    ("Hello, World!", "hello world"),
    ("  It's   MY  turn. ", "it's my turn"),
    ("Café-au-lait", "cafe au lait"),
    ("'quoted'", "quoted"),
    ("seven", "seven"),
    ("", ""),
    ("\x1b[31mfour\x1b[0m five", "four five"),  # terminal colours: once "31mfour 0m five"
    ("\x1b]0;title\x07six\x07 \x9b1mseven\x00", "six seven"),  # a window title, C1 CSI, control characters
])
def test_normalize(raw, norm):
    assert normalize_text(raw) == norm


def test_char_tokenizer_round_trip():
    tok = CharTokenizer.build(["Hello world", "it's"])
    assert tok.vocab[0] == BLANK
    ids = tok.encode("Hello, world")
    assert 0 not in ids
    assert tok.decode(ids) == "hello world"
    assert tokenizer_from_dict(tok.to_dict()).vocab == tok.vocab


def test_decode_skips_blanks_and_collapses_spaces():
    tok = CharTokenizer([BLANK, " ", "a", "b"])
    assert tok.decode([0, 2, 1, 1, 0, 3, 1]) == "a b"


def test_unknown_character_is_an_error():
    tok = CharTokenizer.build(["abc"])
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.encode("abd")


def test_vocab_must_start_with_blank():
    with pytest.raises(ValueError, match="blank"):
        CharTokenizer(["a", "b"])
    with pytest.raises(ValueError, match="duplicate"):
        CharTokenizer([BLANK, "a", "a"])
    with pytest.raises(ValueError, match="unknown tokenizer"):
        tokenizer_from_dict({"kind": "morpheme"})


def test_word_tokenizer():
    from asr.text import WordTokenizer, build_tokenizer

    tok = build_tokenizer("word", ["One two", "three, one!"])
    assert isinstance(tok, WordTokenizer) and tok.vocab == [BLANK, "one", "three", "two"]
    assert tok.encode("Two one") == [3, 1]
    assert tok.decode([0, 3, 0, 1]) == "two one"
    assert tokenizer_from_dict(tok.to_dict()).vocab == tok.vocab
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.encode("four")
    with pytest.raises(ValueError, match="unknown tokenizer"):
        build_tokenizer("morpheme", ["x"])
    with pytest.raises(ValueError, match="needs a pronunciation lexicon"):
        build_tokenizer("phone", ["x"])


TEXTS = ["the cat sat on the mat", "a cat and a hat", "The Hat's on the cat!", "that cat sat", "at the mat"] * 4


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_sentencepiece_round_trip(model_type):
    from asr.text import WORD_START, SentencePieceTokenizer, build_tokenizer

    tok = build_tokenizer("bpe", TEXTS, vocab_size=24, model_type=model_type)
    assert isinstance(tok, SentencePieceTokenizer) and tok.kind == "bpe"
    assert tok.vocab[0] == BLANK and BLANK not in tok.vocab[1:] and "<unk>" not in tok.vocab
    assert len(tok.vocab) <= 24 and len(set(tok.vocab)) == len(tok.vocab)
    ids = tok.encode("The cat's hat, on a mat!")
    assert ids and 0 not in ids
    pieces = [tok.vocab[i] for i in ids]
    assert pieces[0].startswith(WORD_START) and sum(p.startswith(WORD_START) for p in pieces) == 6
    assert all(WORD_START not in p[1:] for p in pieces)  # pieces never cross words
    assert tok.decode(ids) == "the cat's hat on a mat"  # "▁" -> spaces
    assert tok.decode([0] + ids[:1] + [0, 0] + ids[1:] + [0]) == "the cat's hat on a mat"  # blanks are skipped
    assert tok.encode("") == [] and tok.decode([]) == ""


def test_sentencepiece_is_deterministic_and_survives_to_dict():
    import json
    import pickle

    from asr.text import SentencePieceTokenizer

    a = SentencePieceTokenizer.build(TEXTS, vocab_size=20)
    b = SentencePieceTokenizer.build(list(TEXTS), vocab_size=20)
    assert a.to_dict() == b.to_dict()  # the same text gives the same model, byte for byte
    d = json.loads(json.dumps(a.to_dict()))  # as in ONNX metadata and checkpoints
    assert d["kind"] == "bpe" and d["vocab"] == a.vocab and isinstance(d["model"], str)
    c = tokenizer_from_dict(d)
    assert c.vocab == a.vocab and c.encode("that hat") == a.encode("that hat")
    assert pickle.loads(pickle.dumps(a)).encode("the cat") == a.encode("the cat")
    with pytest.raises(ValueError, match="does not match"):
        tokenizer_from_dict(dict(d, vocab=d["vocab"][::-1]))
    with pytest.raises(ValueError, match="base64"):
        tokenizer_from_dict(dict(d, model="not base64!"))
    with pytest.raises(ValueError, match="needs its SentencePiece"):
        tokenizer_from_dict({"kind": "bpe", "vocab": d["vocab"]})


def test_sentencepiece_ids_are_sentencepiece_ids():
    """The blank takes <unk>'s id 0; every other id is SentencePiece's own."""
    import sentencepiece as spm

    from asr.text import SentencePieceTokenizer

    tok = SentencePieceTokenizer.build(TEXTS, vocab_size=20)
    sp = spm.SentencePieceProcessor(model_proto=tok._proto)
    assert sp.id_to_piece(0) == "<unk>" and sp.get_piece_size() == len(tok.vocab)
    assert all(sp.id_to_piece(i) == tok.vocab[i] for i in range(1, len(tok.vocab)))
    assert tok.encode("the cat") == sp.encode("the cat")


def test_sentencepiece_unknown_characters_and_bad_settings():
    from asr.text import SentencePieceTokenizer

    tok = SentencePieceTokenizer.build(TEXTS, vocab_size=20)
    with pytest.raises(ValueError, match=r"not in the vocabulary: \['x', 'z'\]"):
        tok.encode("the zax")
    with pytest.raises(ValueError, match="too small"):
        SentencePieceTokenizer.build(TEXTS, vocab_size=5)
    with pytest.raises(ValueError, match="model type"):
        SentencePieceTokenizer.build(TEXTS, model_type="word")
    with pytest.raises(ValueError, match="no training text"):
        SentencePieceTokenizer.build(["", "!!"])



def test_phone_tokenizer_from_lexicon(tmp_path):
    from asr.text import PhoneTokenizer

    lex = tmp_path / "lexicon.txt"
    lex.write_text("A\tAH0\nA\tEY1\nCAT\tK AE1 T\nIT'S  IH1 T S\n\n")
    tok = PhoneTokenizer.from_lexicon(str(lex))
    assert tok.vocab == ["<blank>", "AE", "AH", "IH", "K", "S", "T"]  # stress dropped, first pronunciation
    assert tok.decode(tok.encode("It's a cat!")) == "IH T S AH K AE T"
    with pytest.raises(ValueError, match="not in the lexicon.*dog"):
        tok.encode("a dog")
    lex.write_text("CAT\n")
    with pytest.raises(ValueError, match="lexicon.txt:1"):
        PhoneTokenizer.from_lexicon(str(lex))


def test_phone_model_tokenizer_has_a_word_boundary_and_travels_with_its_lexicon(tmp_path):
    from asr.text import WORD_BOUNDARY, PhoneTokenizer, build_tokenizer

    lex = tmp_path / "lexicon.txt"
    lex.write_text("A\tAH0\nA(2)\tEY1\nCAT\tK AE1 T\nDOG D AO1 G\n")
    tok = build_tokenizer("phone", ["a cat", "A CAT!"], lexicon=str(lex))
    assert tok.vocab == [BLANK, WORD_BOUNDARY, "AE", "AH", "EY", "K", "T"]  # every pronunciation's phones; DOG unused
    assert tok.decode(tok.encode("a cat")) == "AH | K AE T" and tok.boundary == 1
    assert tok.pronunciations("a") == [("AH",), ("EY",)] and tok.pronunciations("dog") == []
    back = tokenizer_from_dict(tok.to_dict())
    assert isinstance(back, PhoneTokenizer) and back.vocab == tok.vocab and back.encode("cat a") == tok.encode("cat a")
    assert back.pronunciations("a") == [("AH",), ("EY",)] and back.boundary == 1
    with pytest.raises(ValueError, match="not in the lexicon.*dog"):
        tok.encode("a dog")


def test_word_tokenizer_with_a_closed_vocabulary_has_an_unknown_word_unit():
    from asr.text import UNKNOWN_WORD, WordTokenizer, build_tokenizer

    tok = build_tokenizer("word", ["ignored text"], vocabulary=["two", "One"])
    assert isinstance(tok, WordTokenizer) and tok.vocab == [BLANK, "one", "two", UNKNOWN_WORD]
    assert tok.unknown_id == 3
    assert tok.encode("I want to call one, two!") == [3, 3, 3, 3, 1, 2]  # every other word: one <unk> each
    assert tok.decode([3, 1, 0, 3, 2, 3]) == "one two"  # <unk> never reaches the text
    assert tok.decode([3, 3]) == ""
    again = tokenizer_from_dict(tok.to_dict())  # the model file keeps the behaviour
    assert again.unknown_id == 3 and again.encode("bed") == [3]
    assert build_tokenizer("word", ["one"]).unknown_id is None
