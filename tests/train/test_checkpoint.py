"""asr.train.checkpoint: a checkpoint round-trips, is saved atomically (data on the disk before
the rename), and a file that cannot be read as one is reported by its path and the reason."""

import builtins
import os

import pytest
import torch

from asr import cli
from asr.text import CharTokenizer
from asr.train.checkpoint import CheckpointError, build_model, load_checkpoint, save_checkpoint
from asr.train.config import load_config


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    cfg = load_config(None, ["model.input_dim=8", "model.conv_dim=8", "model.hidden_size=8", "model.num_layers=1",
                             "frontend.n_mels=8"])
    tok = CharTokenizer(["<blank>", " ", "a", "b"])
    cfg.model.vocab_size = len(tok.vocab)
    from asr.train.model import CTCModel

    model = CTCModel(cfg.model)
    path = str(tmp_path / "best.pt")
    save_checkpoint(path, model, cfg, tok, progress={"epoch": 1})
    return path, model


def test_round_trip(saved):
    path, model = saved
    state = load_checkpoint(path)
    assert state["progress"] == {"epoch": 1}
    back, cfg, tok = build_model(state)
    assert tok.vocab == ["<blank>", " ", "a", "b"] and cfg.model.hidden_size == 8
    for k, v in model.state_dict().items():
        assert torch.equal(v, back.state_dict()[k]), k


def test_save_fsyncs_the_temporary_file_before_the_rename(tmp_path, monkeypatch, saved):
    """os.replace alone can leave an empty or partial file after a power cut (the rename may
    reach the disk before the data): the temporary file must be fsynced first."""
    _, model = saved
    state = load_checkpoint(saved[0])
    cfg, tok = build_model(state)[1:]
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.path.abspath(src), os.path.abspath(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    path = str(tmp_path / "last.pt")
    save_checkpoint(path, model, cfg, tok)
    renames = [e for e in events if e[0] == "replace"]
    assert len(renames) == 1 and renames[0][2] == path
    tmp = renames[0][1]
    assert os.path.dirname(tmp) == str(tmp_path)  # same folder: the rename is atomic
    assert ("fsync", tmp) in events[: events.index(renames[0])]
    assert not [n for n in os.listdir(tmp_path) if ".tmp" in n]
    load_checkpoint(path)


def test_unreadable_checkpoint_says_permission_denied(saved, monkeypatch, capsys):
    path, _ = saved
    real_open = builtins.open

    def denying_open(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and os.fspath(file) == path:
            raise PermissionError(13, "Permission denied", path)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", denying_open)
    with pytest.raises(CheckpointError, match=rf"^{path}: permission denied"):
        load_checkpoint(path)


def tiny_onnx(path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph), path)


@pytest.mark.parametrize("name", ["model.onnx", "model.bin"])
def test_onnx_model_as_checkpoint_says_so(tmp_path, capsys, name):
    """An exported model where a checkpoint is needed: one line naming the file and what it
    is, not torch.load's page of weights_only advice."""
    path = str(tmp_path / name)
    tiny_onnx(path)
    message = f"{path} is an ONNX model, not a checkpoint: use --model to run it (export and averaging need the PyTorch checkpoint)"
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(info.value) == message
    rc = cli.main(["export", "--checkpoint", path, "--out", str(tmp_path / "again.onnx")])
    err = capsys.readouterr().err
    assert rc == 2 and err == f"error: {message}\n"


def test_other_unreadable_files_say_so(tmp_path):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match=rf"{broken}: cannot read checkpoint"):
        load_checkpoint(str(broken))
    garbage_onnx = tmp_path / "garbage.onnx"
    garbage_onnx.write_bytes(b"")  # named .onnx but not a model: no ONNX advice
    with pytest.raises(CheckpointError, match=rf"{garbage_onnx}: cannot read checkpoint"):
        load_checkpoint(str(garbage_onnx))
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(str(tmp_path / "missing.pt"))


def test_epoch_snapshots_come_in_epoch_order(tmp_path, saved, capsys):
    """epoch-10.pt comes after epoch-9.pt (not between epoch-1 and epoch-2, as names sort), so
    ``asr average --last 2`` past epoch 9 averages the last two epochs."""
    import shutil

    from asr.train.checkpoint import epoch_checkpoints

    exp = tmp_path / "exp"
    exp.mkdir()
    for n in (1, 2, 9, 10, 11):
        shutil.copy(saved[0], exp / f"epoch-{n}.pt")
    for other in ("epoch-x.pt", "epoch-3.txt", "best.pt", "epoch-.pt"):
        (exp / other).write_bytes(b"")
    assert [os.path.basename(p) for p in epoch_checkpoints(str(exp))] == [f"epoch-{n}.pt" for n in (1, 2, 9, 10, 11)]
    assert epoch_checkpoints(str(tmp_path / "missing")) == []
    assert cli.main(["average", "--exp", str(exp), "--last", "2"]) == 0
    assert "mean of epoch-10.pt, epoch-11.pt" in capsys.readouterr().out
    assert torch.load(exp / "avg.pt", weights_only=False)["averaged"] == ["epoch-10.pt", "epoch-11.pt"]
