"""asr.runtime.model: files the runtime refuses, named; metadata that does not fit its graph; the file-kind sniffing.
The metadata schema alone: tests/runtime/test_schema.py."""

import json

import onnx
import pytest

import asr
from asr.runtime import ModelError, OnnxModel
from tests.conftest import FRONTEND, VOCAB


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


def _rewrite(src, dst, symbolic_window=False, **changes):
    """A copy of the model file ``src`` with metadata keys changed (JSON values; None removes)."""
    proto = onnx.load(src)
    meta = {p.key: p.value for p in proto.metadata_props}
    for k, v in changes.items():
        meta.pop("asr." + k, None)
        if v is not None:
            meta["asr." + k] = json.dumps(v)  # NaN for float("nan"), as Python's json writes it
    del proto.metadata_props[:]
    for k, v in meta.items():
        proto.metadata_props.add(key=k, value=v)
    if symbolic_window:  # a graph that takes windows of any length (the static check cannot see a mismatch)
        proto.graph.input[0].type.tensor_type.shape.dim[1].dim_param = "window"
    onnx.save(proto, str(dst))
    return dst


BAD_METADATA = {  # issue 30 #4: each used to give a traceback, a wrong answer or a huge allocation
    "state_shapes a list": (dict(state_shapes=[[2, "batch", 16]]), r"asr\.state_shapes must be an object"),
    "state_names a number": (dict(state_names=5), r"asr\.state_names must be a non-empty list"),
    "state_names repeated": (dict(state_names=["state_h", "state_h"]), r"asr\.state_names must be a non-empty list of distinct"),
    "hidden size 1e9": (dict(state_shapes={"state_h": [2, "batch", 10**9]}),
                        r"asr\.state_shapes\['state_h'\] must be .*hidden \(1\.\.65536\)"),
    "hidden size differs from the graph": (dict(state_shapes={"state_h": [2, "batch", 32]}), r"graph input 'state_h' has shape"),
    "log_floor NaN": (dict(frontend={**FRONTEND.to_dict(), "log_floor": float("nan")}),
                      r"asr\.frontend: .*log_floor must be a finite number"),
    "n_mels a string": (dict(frontend={**FRONTEND.to_dict(), "n_mels": "24"}), r"asr\.frontend: .*n_mels must be an integer"),
    "frontend a list": (dict(frontend=[1, 2]), r"asr\.frontend must be an object"),
    "subsampling a string": (dict(subsampling="2"), r"asr\.subsampling must be an integer"),
    "right_context true": (dict(right_context=True), r"asr\.right_context must be an integer"),
    "chunk_size huge": (dict(chunk_size=10**7), r"asr\.chunk_size must be an integer in 1\.\.10000"),
    "chunk_size 6, window agreeing": (dict(chunk_size=6, window_frames=12, hop_frames=12),
                                     r"graph input 'feats' takes windows of 6 frames but the metadata says 12"),
}


@pytest.mark.parametrize("case", list(BAD_METADATA))
def test_bad_metadata_is_refused_naming_file_and_field(models, tmp_path, case):
    changes, words = BAD_METADATA[case]
    bad = _rewrite(models.get("gru-uni")[0], tmp_path / "bad.onnx", **changes)
    with pytest.raises(ModelError, match=r"bad\.onnx: .*" + words):
        OnnxModel(bad)


def test_a_probe_step_proves_metadata_and_graph_agree(models, tmp_path):
    """What the graph's static shapes cannot show is found by one step on zero input at load:
    a chunk size the graph does not make (its window length left open), a vocabulary the
    graph's output does not have."""
    src = models.get("gru-uni")[0]
    OnnxModel(_rewrite(src, tmp_path / "open.onnx", symbolic_window=True))  # the graph as it is: loads
    bad = _rewrite(src, tmp_path / "chunk.onnx", symbolic_window=True, chunk_size=8, window_frames=16, hop_frames=16)
    with pytest.raises(ModelError, match=r"chunk\.onnx: the metadata does not fit the graph: a streaming step on one zero "
                                         r"window (failed|gave log-probs of shape \(1, \d+, 5\), expected \(1, 8, 5\))"):
        OnnxModel(bad)
    vocab = VOCAB + ["d"]
    bad = _rewrite(src, tmp_path / "vocab.onnx", tokenizer={"kind": "char", "vocab": vocab}, vocab_size=len(vocab))
    with pytest.raises(ModelError, match=r"vocab\.onnx: the metadata does not fit the graph: .*shape \(1, 3, 5\), "
                                         r"expected \(1, 3, 6\)"):
        OnnxModel(bad)


def test_model_file_kind_from_the_bytes_not_the_name(models, tmp_path):
    """One answer to "checkpoint or ONNX model?" for the whole toolkit, whatever the file is called."""
    import shutil

    from asr.runtime.model import is_checkpoint, model_file_kind

    onnx_path = models.get("gru-uni")[0]
    ckpt = onnx_path[: -len(".onnx")] + ".pt"
    swapped_ckpt, swapped_onnx = tmp_path / "model.onnx", tmp_path / "best.pt"
    shutil.copy(ckpt, swapped_ckpt)
    shutil.copy(onnx_path, swapped_onnx)
    assert model_file_kind(onnx_path) == model_file_kind(swapped_onnx) == "onnx"
    assert model_file_kind(ckpt) == model_file_kind(swapped_ckpt) == "checkpoint"
    assert is_checkpoint(swapped_ckpt) and not is_checkpoint(swapped_onnx)
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(open(onnx_path, "rb").read()[:-3])  # a field runs past the end: not a model
    junk, empty = tmp_path / "junk.onnx", tmp_path / "empty.onnx"
    junk.write_bytes(b"definitely not a protobuf")
    empty.write_bytes(b"")
    for path in (cut, junk, empty, tmp_path / "missing.onnx", tmp_path):
        assert model_file_kind(path) is None and not is_checkpoint(path), path
