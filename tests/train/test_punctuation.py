"""asr.train.punctuation: the config is validated, the checkpoint and the exported file carry the
vocabulary, the export is checked against the runtime, int8 keeps the labels, evaluation scores
the runtime."""

import dataclasses
import json

import numpy as np
import onnx
import pytest
import torch

from asr.punctuation import Punctuator, TaggerInfo
from asr.train.punctuation import PunctuationConfig, evaluate, export, load_checkpoint, load_config, main, train


def test_config_is_validated(tmp_path):
    assert PunctuationConfig().train.window == 128
    with pytest.raises(ValueError, match="unknown config key"):
        load_config(None, ["model.hiden_size=3"])
    with pytest.raises(ValueError, match="mark_weights must be 4 positive numbers"):
        load_config(None, ["train.mark_weights=[1, 1, 1]"])
    with pytest.raises(ValueError, match="context must be"):
        load_config(None, ["train.window=16", "train.context=8"])
    with pytest.raises(ValueError, match="model.dropout must be in"):
        load_config(None, ["model.dropout=1.0"])
    with pytest.raises(ValueError, match="model.hidden_size must be an integer"):
        load_config(None, ["model.hidden_size=2.5"])
    (tmp_path / "c.yaml").write_text("train: [1\n")
    with pytest.raises(ValueError, match="c.yaml: not valid YAML"):
        load_config(str(tmp_path / "c.yaml"))
    (tmp_path / "c.yaml").write_text("optim: {}\n")
    with pytest.raises(ValueError, match="unknown config section"):
        load_config(str(tmp_path / "c.yaml"))


def test_checkpoint_and_model_file_share_the_vocabulary(punct_model):
    path, ckpt = punct_model
    model, cfg, vocab, state = load_checkpoint(ckpt)
    props = {p.key: p.value for p in onnx.load(path).metadata_props}
    info = TaggerInfo.from_metadata(path, props)
    assert list(info.vocab) == vocab and info.config == cfg.to_dict()
    assert (info.window, info.context) == (cfg.train.window, cfg.train.context)
    ids = torch.from_numpy(Punctuator(path).encode("where is the cat".split()))[None]
    with torch.no_grad():
        m, c = model(ids)
    om, oc = Punctuator(path).session.run(None, {"ids": ids.numpy()})
    assert abs(om - m.numpy()).max() < 1e-4 and abs(oc - c.numpy()).max() < 1e-4


def test_int8_export_keeps_the_labels(punct_model, tmp_path):
    _, ckpt = punct_model
    report = export(ckpt, str(tmp_path / "q.onnx"), int8=True,
                    parity_lines=["where is the cat", "yes the dog is here tom has the key"])
    assert report["int8"] and report["label_agreement"] >= 0.98 and report["max_abs_diff_float"] < 1e-4
    assert Punctuator(tmp_path / "q.onnx").punctuate("where is the cat") == "Where is the cat?"
    assert not (tmp_path / "q.onnx.float.onnx").exists()


def test_the_mark_bias_is_tuned_on_dev_and_used_by_the_runtime(punct_model, tmp_path):
    _, ckpt = punct_model
    (tmp_path / "dev.txt").write_text("Where is the cat? Tom has the key.\nYes, the dog is here.\n")
    report = export(ckpt, str(tmp_path / "t.onnx"), tune=str(tmp_path / "dev.txt"))
    bias = report["tuned"]["mark_bias"]
    assert len(bias) == 4 and bias[0] == 0.0 and sum(report["tuned"]["dev_f1_after"]) >= sum(report["tuned"]["dev_f1_before"])
    p = Punctuator(tmp_path / "t.onnx")
    assert list(p.info.mark_bias) == bias
    p.info = dataclasses.replace(p.info, mark_bias=(0.0, 0.0, 0.0, 20.0))  # a huge question bias: every word
    p._bias = np.asarray(p.info.mark_bias, np.float32)
    assert p.punctuate("the cat is here") == "The? Cat? Is? Here?"


def test_evaluate_scores_the_runtime(punct_model, tmp_path):
    (tmp_path / "t.txt").write_text("Where is the cat? Tom has the key.\nYes, the dog is here.\n")
    s = evaluate(punct_model[0], [str(tmp_path / "t.txt")])
    assert s["all"]["words"] == 13 and s["all"]["question"]["f1"] == 1.0 and s["all"]["case_accuracy"] == 1.0
    (tmp_path / "bad.txt").write_text("It costs 5 dollars.\n")
    with pytest.raises(ValueError, match="bad.txt:1: not text a recognizer writes"):
        evaluate(punct_model[0], [str(tmp_path / "bad.txt")])


def test_resume_checks_the_vocabulary(punct_model, tmp_path):
    _, ckpt = punct_model
    exp = tmp_path / "exp"
    _, cfg, _, _ = load_checkpoint(ckpt)
    (tmp_path / "t.txt").write_text("Where is the zebra?\n")
    cfg.data.train = cfg.data.dev = str(tmp_path / "t.txt")
    cfg.train.epochs = 1
    train(cfg, str(exp))
    log = [json.loads(x) for x in (exp / "log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log] == [1]
    train(cfg, str(exp), resume=True)  # finished: nothing more
    assert len((exp / "log.jsonl").read_text().splitlines()) == 1
    (tmp_path / "t.txt").write_text("Where is the horse?\n")
    with pytest.raises(ValueError, match="vocabulary differs"):
        train(cfg, str(exp), resume=True)


def test_command_line_errors(tmp_path, capsys):
    assert main(["train", "--exp", str(tmp_path / "e"), "--config", str(tmp_path / "none.yaml")]) == 2
    assert "none.yaml: cannot read the config" in capsys.readouterr().err
    assert main(["prepare", "--out", str(tmp_path), "--train-sources", "kjv", "--test-sources", "kjv"]) == 2
    assert "both training and held-out" in capsys.readouterr().err
