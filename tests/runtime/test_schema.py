"""asr.runtime.schema on its own: the metadata an exported file carries, read back as written,
refused field by field (naming the file and the field) without an onnxruntime session, the graph
signature it implies, metadata rewritten in place, and the model card (``asr.card``)."""

import json
import os
import shutil

import numpy as np
import pytest

from asr.decoding.confidence import ConfidenceCalibration
from asr.runtime import ModelError, OnnxModel
from asr.runtime.schema import (
    METADATA_FORMAT,
    ModelCard,
    ModelInfo,
    card_metadata,
    confidence_metadata,
    graph_signature,
    read_card,
    write_metadata,
)
from tests.conftest import FRONTEND, VOCAB
from tests.runtime.test_model import BAD_METADATA


def test_metadata_round_trip(models):
    for name in ("lstm-lc", "gru-offline"):
        path, model, report = models.get(name)
        info = OnnxModel(path).info
        assert info.frontend == FRONTEND
        assert info.tokenizer.vocab == VOCAB
        assert info.to_metadata() == report.info.to_metadata()  # what the exporter wrote is what the runtime reads
        assert info.subsampling == model.cfg.subsampling and info.vocab_size == len(VOCAB)
        assert info.graph == ("streaming" if name == "lstm-lc" else "offline")
    info = OnnxModel(models.get("lstm-lc")[0]).info
    assert (info.chunk_size, info.right_context, info.window_frames, info.hop_frames) == (4, 2, 12, 8)
    assert info.state_names == ("state_h", "state_c") and info.state_shapes["state_c"] == (2, 16)


def _props(models, name="gru-uni") -> dict:
    return dict(OnnxModel(models.get(name)[0]).session.get_modelmeta().custom_metadata_map)


def test_to_metadata_and_from_metadata_are_inverse(models):
    for name in ("lstm-lc", "gru-offline", "gru-uni"):
        info = ModelInfo.from_metadata("m.onnx", _props(models, name))
        again = ModelInfo.from_metadata("m.onnx", info.to_metadata())
        assert again.to_metadata() == info.to_metadata() and json.loads(info.to_metadata()["asr.format"]) == METADATA_FORMAT


SCHEMA_ONLY = [c for c, (_, words) in BAD_METADATA.items() if words.startswith(r"asr\.")]


@pytest.mark.parametrize("case", SCHEMA_ONLY)
def test_each_bad_field_is_named_before_any_session(models, case):
    changes, words = BAD_METADATA[case]
    props = _props(models)
    for k, v in changes.items():
        props["asr." + k] = json.dumps(v)
    with pytest.raises(ModelError, match=r"m\.onnx: .*" + words):
        ModelInfo.from_metadata("m.onnx", props)


def test_missing_keys_and_foreign_formats_are_named(models):
    props = _props(models)
    del props["asr.tokenizer"]
    with pytest.raises(ModelError, match=r"m\.onnx: .*tokenizer"):
        ModelInfo.from_metadata("m.onnx", props)
    with pytest.raises(ModelError, match=r"m\.onnx: no 'asr\.\*' metadata"):
        ModelInfo.from_metadata("m.onnx", {"producer": "someone else"})


def test_graph_signature_follows_the_states(models):
    stream = ModelInfo.from_metadata("s.onnx", _props(models, "lstm-lc"))
    assert graph_signature(stream) == (["feats", "lengths", "state_h", "state_c"], ["log_probs", "next_state_h", "next_state_c"])
    offline = ModelInfo.from_metadata("o.onnx", _props(models, "gru-offline"))
    assert graph_signature(offline) == (["feats", "lengths"], ["log_probs", "out_lengths"])


def test_write_metadata_sets_and_removes_keys_and_keeps_the_rest(models, tmp_path):
    pytest.importorskip("onnx")
    path = str(tmp_path / "m.onnx")
    shutil.copy(models.get("gru-uni")[0], path)
    before = _props(models)
    cal = ConfidenceCalibration(scale=1.5, bias=-0.25)
    write_metadata(path, confidence_metadata(cal))
    info = OnnxModel(path).info
    assert info.confidence == cal
    after = dict(OnnxModel(path).session.get_modelmeta().custom_metadata_map)
    assert {k: v for k, v in after.items() if k != "asr.confidence"} == {k: v for k, v in before.items() if k != "asr.confidence"}
    write_metadata(path, confidence_metadata(None))
    assert "asr.confidence" not in OnnxModel(path).session.get_modelmeta().custom_metadata_map
    assert np.isclose(OnnxModel(path).info.frontend.sample_rate, FRONTEND.sample_rate) and OnnxModel(path).info.tokenizer.vocab == VOCAB


CARD = ModelCard("Test letters", "en", 'The letters "a", "b" and "c", and spaces.')


def test_a_card_is_written_read_back_and_described(models, tmp_path):
    """``asr.card``: what the page and /info show, beside what the file itself says."""
    pytest.importorskip("onnx")
    path = str(tmp_path / "stream.onnx")
    shutil.copy(models.get("lstm-lc")[0], path)
    assert OnnxModel(path).info.card is None
    write_metadata(path, card_metadata(CARD))
    info = OnnxModel(path).info
    assert info.card == CARD and ModelInfo.from_metadata(path, info.to_metadata()).card == CARD
    d = info.describe()
    assert d["file"] == "stream.onnx" and d["card"] == CARD.to_dict() and d["graph"] == "streaming"
    assert d["vocabulary"] == {"kind": "characters", "size": 4, "symbols": [" ", "a", "b", "c"]}
    assert d["sample_rate"] == FRONTEND.sample_rate
    assert d["latency_s"] == round(d["chunk_s"] + d["right_context_s"], 3) and d["right_context_s"] > 0
    assert ModelInfo.from_metadata(path, info.to_metadata()).describe(max_symbols=3)["vocabulary"] == {"kind": "characters", "size": 4}
    write_metadata(path, card_metadata(None))
    assert OnnxModel(path).info.card is None and OnnxModel(path).info.describe()["card"] is None


@pytest.mark.parametrize("card, words", [
    ({"name": "x" * 81}, r"name has 81 characters, more than 80"),
    ({"name": "digits", "description": "y" * 501}, r"description has 501 characters, more than 500"),
    ({"name": "digits", "language": "English"}, r"language must be a language tag"),
    ({"name": "digits\n<script>"}, r"name has control characters"),
    ({"name": ""}, r"name is empty"),
    ({"name": 5}, r"name must be a string"),
    ({"language": "en"}, r"lacks a name"),
    ({"name": "digits", "licence": "mine"}, r"unknown keys \['licence'\]"),
    (["digits"], r"must be an object"),
])
def test_a_bad_card_is_refused_naming_the_field(models, tmp_path, card, words):
    props = _props(models)
    props["asr.card"] = json.dumps(card)
    with pytest.raises(ModelError, match=r"m\.onnx: asr\.card: " + words):
        ModelInfo.from_metadata("m.onnx", props)
    path = tmp_path / "card.json"
    path.write_text(json.dumps(card))
    with pytest.raises(ValueError, match=r"card\.json: model card: " + words):
        read_card(path)


def test_the_built_in_model_carries_the_recipes_card():
    """recipes/fsdd/run.sh stage 4 sets recipes/fsdd/card.json on both graphs; ship.py ships them."""
    from asr.runtime.builtin import builtin_model

    card = read_card(os.path.join(os.path.dirname(__file__), "..", "..", "recipes", "fsdd", "card.json"))
    assert card.name == "English digits" and card.language == "en" and "zero" in card.description
    for streaming in (False, True):
        assert OnnxModel(builtin_model(streaming)).info.card == card
