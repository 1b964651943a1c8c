import pytest

from asr.text import BLANK, CharTokenizer, normalize_text, tokenizer_from_dict


@pytest.mark.parametrize("raw,norm", [
    ("Hello, World!", "hello world"),
    ("  It's   MY  turn. ", "it's my turn"),
    ("Café-au-lait", "cafe au lait"),
    ("'quoted'", "quoted"),
    ("seven", "seven"),
    ("", ""),
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
        tokenizer_from_dict({"kind": "bpe"})


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
        build_tokenizer("bpe", ["x"])
