"""The recipes' shared command line (recipes/lib.sh: parse_args, run_stage), run as the scripts
themselves: --help, an unknown option, a --stage past the last one. Nothing here trains."""
import glob
import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
RUN_SCRIPTS = sorted(glob.glob(os.path.join(ROOT, "recipes", "*", "run.sh")) +
                     glob.glob(os.path.join(ROOT, "recipes", "*", "synth.sh")))  # the staged scripts
SCRIPTS = RUN_SCRIPTS + sorted(glob.glob(os.path.join(ROOT, "recipes", "*", "sweep.sh")))

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="the recipes are bash scripts")


def run(script, *args, cwd=None):
    return subprocess.run(["bash", script, *args], cwd=cwd or ROOT, capture_output=True, text=True, timeout=60)


def name(script):
    return os.path.relpath(script, os.path.join(ROOT, "recipes"))


def test_every_recipe_found():
    assert {name(s).split("/")[0] for s in RUN_SCRIPTS} >= {"fsdd", "speechocean762", "librispeech", "an4", "commonvoice"}


@pytest.mark.parametrize("script", RUN_SCRIPTS, ids=name)
def test_help_names_every_stage(script, tmp_path):
    r = run(script, "--help", cwd=tmp_path)  # help is found from any folder the script starts in
    assert r.returncode == 0, r.stderr
    stages = sorted({int(n) for n in re.findall(r"\brun_stage (\d+)", open(script).read())})
    assert stages == list(range(len(stages))) and len(stages) >= 4
    for n in stages:
        assert re.search(rf"^\s+{n}\s+\w", r.stdout, re.M), f"{name(script)} --help does not describe stage {n}"
    assert "Usage:" in r.stdout and "Defaults: --stage 0 --stop-stage" in r.stdout
    assert "set -euo" not in r.stdout  # the header comment only


@pytest.mark.parametrize("script", SCRIPTS, ids=name)
def test_unknown_arguments_fail(script):
    for args, says in [(["--no-such-option", "1"], "unknown option --no-such-option"),
                       (["stray"], "unknown argument 'stray'")]:
        r = run(script, *args)
        assert r.returncode == 2 and says in r.stderr, (args, r.stderr)
        assert r.stdout == ""


@pytest.mark.parametrize("script", RUN_SCRIPTS, ids=name)
def test_stage_options_checked(script):
    r = run(script, "--stage")
    assert r.returncode == 2 and "--stage needs a value" in r.stderr
    r = run(script, "--stop-stage", "two")
    assert r.returncode == 2 and "--stop-stage must be a stage number" in r.stderr
    r = run(script, "--stage", "99", "--exp", "/nonexistent/exp")  # past the last stage: nothing runs
    assert r.returncode == 0 and r.stdout == "" and "nothing to run" in r.stderr


def test_sweep_has_no_stages():
    r = run(os.path.join(ROOT, "recipes", "speechocean762", "sweep.sh"), "--help")
    assert r.returncode == 0 and "Defaults: --data data/speechocean762 --limit 440 --device cuda --set 1" in r.stdout
    r = run(os.path.join(ROOT, "recipes", "speechocean762", "sweep.sh"), "--stage", "1")
    assert r.returncode == 2 and "unknown option --stage" in r.stderr


def test_overrides_reach_training_last(tmp_path):
    """key=value arguments, spaces and all, end the `asr train` command line, so they win."""
    script = """source recipes/lib.sh
stage=0 stop_stage=3 exp="$1" data=d corpus_dir="" nproc=1
options+=(nproc)
shift; parse_args "$@"
ASR=(printf '<%s>'); run_stage 0 || asr_train "$exp" --config c.yaml train.epochs=3"""
    r = subprocess.run(["bash", "-c", script, "x", str(tmp_path / "e"), "--stage=1",
                        "train.specaugment={freq_masks: 2}", "train.epochs=5"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == (f"<train><--exp><{tmp_path / 'e'}><--config><c.yaml><train.epochs=3>"
                        "<train.specaugment={freq_masks: 2}><train.epochs=5>")


@pytest.mark.parametrize("corpus,stages", [("fsdd", 5), ("speechocean762", 4)])
def test_rnn_comparison_scripts_share_the_command_line(tmp_path, corpus, stages):
    """recipes/*/compare_rnn.sh (tanh RNN vs GRU vs LSTM): the same parse_args and stages."""
    script = os.path.join(ROOT, "recipes", corpus, "compare_rnn.sh")
    r = run(script, "--help", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for n in range(stages):
        assert re.search(rf"^\s+{n}\s+\w", r.stdout, re.M)
    assert "--figs docs/looking_inside" in r.stdout
    r = run(script, "--no-such-option", "1")
    assert r.returncode == 2 and "unknown option --no-such-option" in r.stderr
    r = run(script, "--stage", "99", "--exp", "/nonexistent/exp")
    assert r.returncode == 0 and r.stdout == "" and "nothing to run" in r.stderr
