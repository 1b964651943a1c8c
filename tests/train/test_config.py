"""asr.train.config: YAML and ``key=value`` overrides become typed settings; a wrong value is
refused by ``load_config``, before any work, with a message that names the key and what it
expected."""

import builtins
import os

import pytest

from asr import cli
from asr.train.config import load_config


def test_yaml_strings_and_ints_become_floats(tmp_path):
    conf = tmp_path / "conf.yaml"
    conf.write_text("train:\n  lr: 4e-3\n  grad_clip: 5\n")  # PyYAML reads 4e-3 as a string
    cfg = load_config(str(conf), ["train.weight_decay=1e-2"])
    assert cfg.train.lr == 4e-3 and isinstance(cfg.train.lr, float)
    assert cfg.train.grad_clip == 5.0 and isinstance(cfg.train.grad_clip, float)
    assert cfg.train.weight_decay == 0.01
    assert load_config(None, ["train.epochs=3", "train.max_frames=2e4"]).train.max_frames == 20000


@pytest.mark.parametrize("override,key,expected", [
    ("model.hidden_size=true", "model.hidden_size", "an integer"),
    ("train.epochs=2.5", "train.epochs", "an integer"),
    ("train.epochs=lots", "train.epochs", "an integer"),
    ("train.lr=true", "train.lr", "a number"),
    ("model.bidirectional=1", "model.bidirectional", "true or false"),
    ("model.rnn_type=7", "model.rnn_type", "a string"),
    ("data.train=[a.jsonl]", "data.train", "a string"),
    ("train.speed_perturb=1.0", "train.speed_perturb", "a list"),
    ("train.speed_perturb=[0.9,fast]", "train.speed_perturb", "a number"),
    ("train.chunk_sizes=[8,true]", "train.chunk_sizes", "an integer"),
    ("train.epochs=null", "train.epochs", "an integer"),
    ("train.specaugment={freq_masks: 1.5}", "train.specaugment.freq_masks", "an integer"),
])
def test_wrong_types_are_refused(override, key, expected):
    with pytest.raises(ValueError, match=rf"{key}\b.*must be {expected}"):
        load_config(None, [override])


@pytest.mark.parametrize("override,key", [
    ("train.lr=-0.1", "train.lr"),
    ("train.lr=0", "train.lr"),
    ("train.epochs=-1", "train.epochs"),
    ("train.epochs=0", "train.epochs"),
    ("train.max_frames=0", "train.max_frames"),
    ("train.max_batch=0", "train.max_batch"),
    ("train.warmup_steps=-1", "train.warmup_steps"),
    ("train.grad_clip=0", "train.grad_clip"),
    ("train.weight_decay=-0.01", "train.weight_decay"),
    ("train.min_lr_ratio=1.5", "train.min_lr_ratio"),
    ("train.save_every_steps=-5", "train.save_every_steps"),
    ("train.keep_epochs=-1", "train.keep_epochs"),
    ("train.num_threads=0", "train.num_threads"),
    ("train.speed_perturb=[]", "train.speed_perturb"),
    ("train.speed_perturb=[0.9,-1.0]", "train.speed_perturb"),
    ("train.chunk_sizes=[8,-1]", "train.chunk_sizes"),
    ("train.chunk_sizes=[0,0]", "train.chunk_sizes"),
    ("train.specaugment={time_width_ratio: 2.0}", "train.specaugment.time_width_ratio"),
    ("train.specaugment={freq_masks: -1}", "train.specaugment.freq_masks"),
    ("data.tokenizer=phones", "data.tokenizer"),
    ("model.dropout=1.5", "model.dropout"),
    ("model.dropout=-0.1", "model.dropout"),
    ("model.rnn_type=transfomer", "model.rnn_type"),
    ("model.hidden_size=0", "model.hidden_size"),
    ("model.subsampling=3", "model.subsampling"),
    ("model.right_context=4", "model.right_context"),  # needs chunk_size > 0
])
def test_out_of_range_values_are_refused(override, key):
    with pytest.raises(ValueError, match=rf"{key}\b.*must|{key}\b.*needs"):
        load_config(None, [override])


def test_defaults_and_recipe_style_values_pass():
    cfg = load_config(None)
    assert cfg.model.vocab_size == 0  # comes from the tokenizer when training starts
    cfg = load_config(None, ["train.warmup_steps=0", "train.save_every_steps=0", "train.keep_epochs=0",
                             "model.dropout=0.0", "train.specaugment=null", "train.chunk_sizes=null",
                             "model.chunk_size=16", "model.right_context=4", "train.chunk_sizes=[8,16]"])
    assert cfg.train.specaugment is None and cfg.train.chunk_sizes == [8, 16]


def test_model_config_is_checked_before_any_work(tmp_path, monkeypatch, capsys):
    """A misspelt rnn_type is refused when the config is read, not when the model is built
    after the features are computed: training never starts."""
    import asr.train.trainer

    def no_training(*args, **kwargs):
        raise AssertionError("training started before the model config was checked")

    monkeypatch.setattr(asr.train.trainer, "train", no_training)
    exp = tmp_path / "e"
    rc = cli.main(["train", "--config", "recipes/fsdd/conf.yaml", "--exp", str(exp), "model.rnn_type=transfomer"])
    err = capsys.readouterr().err
    assert rc == 2 and "model.rnn_type must be 'gru', 'lstm' or 'rnn', got 'transfomer'" in err
    assert not exp.exists()


def test_best_metric_is_validated():
    with pytest.raises(ValueError, match="best_metric"):
        load_config(None, ["train.best_metric=loss"])
    assert load_config(None, ["train.best_metric=cer"]).train.best_metric == "cer"


@pytest.mark.parametrize("value", ["[1.1,0.9]", "[0.9]", "[0.5,2.0]"])
def test_vtlp_is_validated(value):
    with pytest.raises(ValueError, match="train.vtlp"):
        load_config(None, [f"train.vtlp={value}"])


@pytest.mark.parametrize("value", ["[40, 5]", "[-20, 10]", "[5, 70]", "[10]", "loud"])
def test_noise_snr_is_validated(value):
    with pytest.raises(ValueError, match="train.noise_snr"):
        load_config(None, [f"train.noise_snr={value}"])
    assert load_config(None, ["train.noise_snr=[5,40]"]).train.noise_snr == [5.0, 40.0]


@pytest.mark.parametrize("value", ["0", "-3", "31", "[6, 12]", "loud"])
def test_eq_db_is_validated(value):
    with pytest.raises(ValueError, match="train.eq_db"):
        load_config(None, [f"train.eq_db={value}"])
    assert load_config(None, ["train.eq_db=12"]).train.eq_db == 12.0


@pytest.mark.parametrize("value", ["[6, -24]", "[-90, 0]", "[0, 40]", "[1]", "loud"])
def test_gain_db_is_validated(value):
    with pytest.raises(ValueError, match="train.gain_db"):
        load_config(None, [f"train.gain_db={value}"])
    assert load_config(None, ["train.gain_db=[-24, 6]"]).train.gain_db == [-24, 6]


def test_unreadable_config_names_the_file(tmp_path, monkeypatch, capsys):
    conf = tmp_path / "conf.yaml"
    conf.write_text("train:\n  epochs: 2\n")
    real_open = builtins.open

    def denying_open(file, *args, **kwargs):
        if os.fspath(file) == str(conf):
            raise PermissionError(13, "Permission denied", str(conf))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", denying_open)
    with pytest.raises(ValueError, match=rf"{conf}: permission denied"):
        load_config(str(conf))
    rc = cli.main(["train", "--config", str(conf), "--exp", str(tmp_path / "e")])
    assert rc == 2 and f"{conf}: permission denied" in capsys.readouterr().err


@pytest.mark.parametrize("override, key", [
    ("train.concat={ratio: 0}", "train.concat.ratio"),
    ("train.concat={items: [5, 2]}", "train.concat.items"),
    ("train.concat={items: [0, 2]}", "train.concat.items"),
    ("train.concat={pause_s: -1}", "train.concat.pause_s"),
    ("train.concat={gain_db: [3, -3]}", "train.concat.gain_db"),
    ("train.concat={max_part_s: 0}", "train.concat.max_part_s"),
    ("train.concat={pauses: 1}", "train.concat"),  # unknown key
])
def test_concat_is_validated(override, key):
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        load_config(None, [override])
    c = load_config(None, ["train.concat={ratio: 0.5, items: [2, 8]}"]).train.concat
    assert c.ratio == 0.5 and c.items == [2, 8] and c.pause_s == 1.0


def test_vocabulary_is_validated():
    with pytest.raises(ValueError, match="data.vocabulary applies to the word tokenizer"):
        load_config(None, ["data.vocabulary=[one,two]", "data.tokenizer=char"])
    with pytest.raises(ValueError, match="data.vocabulary must be a non-empty list"):
        load_config(None, ["data.vocabulary=[]", "data.tokenizer=word"])
    assert load_config(None, ["data.vocabulary=[one,two]", "data.tokenizer=word"]).data.vocabulary == ["one", "two"]
