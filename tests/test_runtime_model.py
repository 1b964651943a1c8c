"""The model file: its metadata schema read back as written, and files the runtime refuses, named."""

import json

import onnx
import pytest
from conftest import FRONTEND, VOCAB

import asr
from asr.runtime import ModelError, OnnxModel


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


def test_model_file_errors(models, tmp_path):
    with pytest.raises(ModelError, match="not found"):
        OnnxModel(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"definitely not a protobuf")
    with pytest.raises(ModelError, match=r"junk\.onnx: cannot load as an ONNX model"):
        OnnxModel(junk)
    proto = onnx.load(models.get("gru-uni")[0])
    bare = tmp_path / "bare.onnx"
    del proto.metadata_props[:]
    onnx.save(proto, str(bare))
    with pytest.raises(ModelError, match=r"bare\.onnx: no 'asr\.\*' metadata"):
        OnnxModel(bare)
    proto.metadata_props.add(key="asr.format", value=json.dumps("other/9"))
    onnx.save(proto, str(bare))
    with pytest.raises(ModelError, match="format is 'other/9', expected 'asr-onnx/1'"):
        OnnxModel(bare)
    with pytest.raises(ValueError, match="not found"):
        asr.load_model(tmp_path / "missing.onnx")
