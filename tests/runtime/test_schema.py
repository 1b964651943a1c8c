"""asr.runtime.schema on its own: the metadata an exported file carries, read back as written,
refused field by field (naming the file and the field) without an onnxruntime session, the graph
signature it implies, and metadata rewritten in place."""

import json
import shutil

import numpy as np
import pytest

from asr.decoding.confidence import ConfidenceCalibration
from asr.runtime import ModelError, OnnxModel
from asr.runtime.schema import METADATA_FORMAT, ModelInfo, confidence_metadata, graph_signature, write_metadata
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
