"""asr.server.protocol: Vosk's messages parsed and checked, replies in Vosk's shape."""

import json
import math

import numpy as np
import pytest

from asr.decoding.result import Alternative, Utterance, Word
from asr.runtime.endpoint import EndpointConfig
from asr.server.protocol import (
    ProtocolError,
    StreamConfig,
    error_reply,
    parse_audio,
    parse_config,
    parse_text,
    partial_reply,
    result_reply,
    with_warning,
)

DEFAULTS = StreamConfig(sample_rate=8000)


def test_vosk_config_and_eof_messages():
    # exactly what Vosk's test clients send
    kind, body = parse_text('{ "config" : { "sample_rate" : 16000 } }')
    assert kind == "config" and parse_config(body, DEFAULTS) == StreamConfig(sample_rate=16000)
    kind, body = parse_text('{"config" : { "phrase_list" : ["zero one two", "[unk]"], "sample_rate" : 16000.0, "words" : 0}}')
    cfg = parse_config(body, DEFAULTS)
    assert cfg.sample_rate == 16000 and cfg.words is False and cfg.phrase_list == ("zero one two", "[unk]")  # [unk]: anything else
    assert parse_text('{"eof" : 1}') == ("eof", None)
    assert parse_text('{"eof":1}') == ("eof", None)
    assert parse_config({}, DEFAULTS) == DEFAULTS
    assert parse_config({"max_alternatives": 0, "format": "float32"}, DEFAULTS).format == "float32"
    assert parse_config({"max_alternatives": 20}, DEFAULTS).max_alternatives == 20  # Vosk: no bound; cut when the stream opens


@pytest.mark.parametrize("text, words", [
    ("not json", "not valid JSON"),
    ('{"eof": 0}', "eof message"),
    ('{"eof": true}', "eof message"),
    ('{"eof": NaN}', "not valid JSON"),
    ('["config"]', "must be"),
    ('{"config": {}, "eof": 1}', "must be"),
    ('{"reset": 0}', "reset message"),
    ('{"reset": true}', "reset message"),
    ('{"rest": 1}', "unknown text message"),
])
def test_bad_text_messages(text, words):
    with pytest.raises(ProtocolError, match=words):
        parse_text(text)


@pytest.mark.parametrize("body, words", [
    ({"sample_rate": "16000"}, "sample_rate"),
    ({"sample_rate": 16000.5}, "whole number"),
    ({"sample_rate": 0}, "sample_rate"),
    ({"sample_rate": True}, "sample_rate"),
    ({"sample_rate": 10**9}, "sample_rate"),
    ({"sample_rate": math.inf}, "sample_rate"),
    ({"words": "yes"}, "words"),
    ({"words": 2}, "words"),
    ({"phrase_list": "one two"}, "list of strings"),
    ({"phrase_list": ["ok", 3]}, "list of strings"),
    ({"phrase_list": ["x" * 500]}, "longer than"),
    ({"format": "mp3"}, "format"),
    ({"max_alternatives": float("inf")}, r"max_alternatives must be a whole number >= 0"),
    ({"max_alternatives": -1}, "max_alternatives"),
    ({"max_alternatives": 2.5}, "max_alternatives"),
    ({"max_alternatives": True}, "max_alternatives"),
    ({"max_alternatives": "3"}, "max_alternatives"),
    ({"hotwords": "ab"}, "hotwords must be a list of strings"),
    ({"hotwords": ["a"] * 1001}, "hotwords has 1001 phrases; at most 1000"),
    ({"smaple_rate": 8000}, "unknown field"),
    ([1, 2], "must be an object"),
])
def test_bad_configs_are_named(body, words):
    with pytest.raises(ProtocolError, match=words):
        parse_config(body, DEFAULTS)


def test_reset_message_as_vosk_sends_it():
    assert parse_text('{"reset" : 1}') == ("reset", None)
    assert parse_text('{"reset":1}') == ("reset", None)


SERVER_RULES = StreamConfig(sample_rate=8000, endpoint=EndpointConfig(rule1=2.4, rule2=1.2, rule3=20.0))


def test_endpoint_rules_per_stream_over_the_servers():
    """config.endpoint: the rules given replace the server's, the others stay; rule1/rule2 may be off."""
    cfg = parse_config({"endpoint": {"rule2": 0.5}}, SERVER_RULES)
    assert cfg.endpoint == EndpointConfig(rule1=2.4, rule2=0.5, rule3=20.0)
    cfg = parse_config({"endpoint": {"rule1": "off", "rule2": None, "rule3": 5}}, SERVER_RULES)
    assert cfg.endpoint == EndpointConfig(rule1=None, rule2=None, rule3=5.0)
    assert parse_config({"endpoint": {}}, SERVER_RULES).endpoint == SERVER_RULES.endpoint
    assert parse_config({}, SERVER_RULES).endpoint == SERVER_RULES.endpoint
    assert parse_config({"endpoint": {"rule3": 20}}, SERVER_RULES).endpoint.rule3 == 20.0  # the server's own is allowed


@pytest.mark.parametrize("rules, words", [
    ({"rule3": 21}, r"config\.endpoint\.rule3 must be seconds in \(0, 20\] \(the server's --rule3"),
    ({"rule3": "off"}, r"config\.endpoint\.rule3 must be seconds"),
    ({"rule3": None}, r"config\.endpoint\.rule3 must be seconds"),
    ({"rule2": 0}, r"config\.endpoint\.rule2 must be seconds in \(0, 3600\], or \"off\", got 0"),
    ({"rule1": -1}, r"config\.endpoint\.rule1 must be seconds"),
    ({"rule2": math.nan}, r"config\.endpoint\.rule2"),
    ({"rule2": math.inf}, r"config\.endpoint\.rule2"),
    ({"rule2": 3601}, r"config\.endpoint\.rule2"),
    ({"rule2": "0.5"}, r"config\.endpoint\.rule2"),
    ({"rule2": True}, r"config\.endpoint\.rule2"),
    ({"t_end": 0.5}, r"config\.endpoint: unknown field\(s\) \['t_end'\]; known: \['rule1', 'rule2', 'rule3'\]"),
])
def test_bad_endpoint_rules_are_named(rules, words):
    with pytest.raises(ProtocolError, match=words):
        parse_config({"endpoint": rules}, SERVER_RULES)
    with pytest.raises(ProtocolError, match="config.endpoint must be an object"):
        parse_config({"endpoint": 0.5}, SERVER_RULES)


def test_times_after_a_reset_run_on():
    """offset_s (the audio before the last reset) moves every time, in both result forms."""
    words = [Word("ab", 0.1, 0.3, 0.9)]
    utt = Utterance("ab", 0.1, 0.3, words, alternatives=[Alternative("ab", -0.5, -0.5, 0.0, words)])
    plain = json.loads(result_reply([utt], True, offset_s=2.5))
    assert plain["result"][0]["start"] == 2.6 and plain["result"][0]["end"] == 2.8
    nbest = json.loads(result_reply([utt], True, alternatives=2, offset_s=2.5))
    assert nbest["alternatives"][0]["result"][0]["start"] == 2.6
    assert json.loads(result_reply([utt], True))["result"][0]["start"] == 0.1


def test_sample_rate_bounds_the_resampling_work():
    """A rate below 8 kHz would let one small message become millions of samples at the
    model's rate (issue 30: {"sample_rate": 1} and 2 KB -> 930 MB): refused, naming the field
    and the range."""
    for rate in (1, 100, 7999, 384_001):
        with pytest.raises(ProtocolError, match=r"config\.sample_rate must be a whole number of Hz in 8000\.\.384000"):
            parse_config({"sample_rate": rate}, DEFAULTS)
    assert parse_config({"sample_rate": 8000}, DEFAULTS).sample_rate == 8000
    assert parse_config({"sample_rate": 384_000}, DEFAULTS).sample_rate == 384_000
    with pytest.raises(ProtocolError, match=r"in 4000\.\.48000, got 1"):
        parse_config({"sample_rate": 1}, DEFAULTS, min_rate=4000, max_rate=48000)


@pytest.mark.parametrize("text", ["[" * 100_000, '{"config": ' + "{\"a\": " * 50_000])
def test_deep_nesting_is_a_protocol_error(text):
    with pytest.raises(ProtocolError, match="nests too deeply"):
        parse_text(text)


def test_audio_messages():
    pcm = np.array([0, 1, -2, 32767, -32768], "<i2")
    assert np.array_equal(parse_audio(pcm.tobytes(), DEFAULTS), pcm)
    assert parse_audio(b"", DEFAULTS).size == 0
    with pytest.raises(ProtocolError, match="3 bytes"):
        parse_audio(b"abc", DEFAULTS)
    f32 = StreamConfig(8000, format="float32")
    x = np.array([0.5, -0.25], "<f4")
    assert np.array_equal(parse_audio(x.tobytes(), f32), x)
    with pytest.raises(ProtocolError, match="float32"):
        parse_audio(b"\x00" * 6, f32)
    with pytest.raises(ProtocolError, match="NaN or infinite"):
        parse_audio(np.array([0.1, np.inf], "<f4").tobytes(), f32)


def test_replies_in_vosk_shape():
    assert json.loads(partial_reply("one tw")) == {"partial": "one tw"}
    u1 = Utterance("one two", 0.0, 1.0, [Word("one", 0.1, 0.4), Word("two", 0.5, 0.9)])
    u2 = Utterance("three", 1.0, 2.0, [Word("three", 1.2, 1.6)])
    r = json.loads(result_reply([u1, u2], words=True))
    assert r == {"result": [{"conf": 1.0, "end": 0.4, "start": 0.1, "word": "one"},
                            {"conf": 1.0, "end": 0.9, "start": 0.5, "word": "two"},
                            {"conf": 1.0, "end": 1.6, "start": 1.2, "word": "three"}],
                 "text": "one two three"}
    assert json.loads(result_reply([u1], words=False)) == {"text": "one two"}
    assert json.loads(result_reply([], words=True)) == {"result": [], "text": ""}
    assert json.loads(error_reply("bad")) == {"error": "bad"}


def test_conf_is_the_words_confidence_when_it_has_one():
    class ScoredWord(Word):
        def __init__(self, *a, confidence):
            super().__init__(*a)
            self.confidence = confidence

    u = Utterance("one", 0.0, 1.0, [ScoredWord("one", 0.1, 0.4, confidence=0.75)])
    assert json.loads(result_reply([u], words=True))["result"][0]["conf"] == 0.75


def test_nbest_results_in_vosk_shape():
    """max_alternatives > 0: {"alternatives": [{"confidence", "result": [{"end", "start", "word"}],
    "text"}, ...]} as Vosk's NbestResult writes it (words without conf), plus "acoustic" and "lm";
    at most N; nothing recognized: Vosk's empty entry; several utterances in one result join
    their k-th alternatives."""
    from asr.decoding.result import Alternative

    w1, w2, w3 = Word("one", 0.1, 0.4, 0.9), Word("two", 0.5, 0.9, 0.8), Word("three", 1.2, 1.6)
    u1 = Utterance("one two", 0.0, 1.0, [w1, w2], alternatives=[
        Alternative("one two", -1.5, -1.0, -0.5, [w1, w2]), Alternative("one", -3.0, -2.0, -1.0, [w1]),
        Alternative("", -9.0, -9.0, 0.0, [])])
    r = json.loads(result_reply([u1], words=True, alternatives=2))
    assert r == {"alternatives": [
        {"confidence": -1.5, "result": [{"end": 0.4, "start": 0.1, "word": "one"}, {"end": 0.9, "start": 0.5, "word": "two"}],
         "text": "one two", "acoustic": -1.0, "lm": -0.5},
        {"confidence": -3.0, "result": [{"end": 0.4, "start": 0.1, "word": "one"}], "text": "one", "acoustic": -2.0, "lm": -1.0}]}
    assert json.loads(result_reply([u1], words=False, alternatives=1)) == {
        "alternatives": [{"confidence": -1.5, "text": "one two", "acoustic": -1.0, "lm": -0.5}]}
    assert json.loads(result_reply([], words=True, alternatives=3)) == {"alternatives": [{"text": "", "confidence": 1.0}]}
    u2 = Utterance("three", 1.0, 2.0, [w3], alternatives=[Alternative("three", -0.25, -0.25, 0.0, [w3])])
    both = json.loads(result_reply([u1, u2], words=False, alternatives=3))["alternatives"]
    assert [(a["text"], a["confidence"]) for a in both] == [("one two three", -1.75), ("one three", -3.25), ("three", -9.25)]
    # an utterance without a list (decoded before n-best was asked) counts as its own text
    u3 = Utterance("four", 2.0, 3.0, [Word("four", 2.1, 2.5)])
    assert json.loads(result_reply([u3], words=False, alternatives=2))["alternatives"][0]["text"] == "four"


def test_warning_rides_on_a_reply():
    assert json.loads(with_warning(partial_reply("ab"), "config.phrase_list: left out 'xyz'")) == {
        "partial": "ab", "warning": "config.phrase_list: left out 'xyz'"}


def test_phrase_list_keeps_unk_and_hotwords_do_not():
    cfg = parse_config({"phrase_list": ["one two", "[UNK]", " "], "hotwords": ["tina", "[unk]"], "max_alternatives": 10.0},
                       DEFAULTS)
    assert cfg.phrase_list == ("one two", "[UNK]") and cfg.hotwords == ("tina",) and cfg.max_alternatives == 10
    assert parse_config({"phrase_list": []}, DEFAULTS).phrase_list == ()  # Vosk: an empty list restricts nothing
