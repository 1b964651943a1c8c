"""The line between the two install sizes: every module of ``asr`` outside ``asr.nn`` imports,
and the command line builds its parsers, with torch, torchaudio, onnx and yaml unimportable
(the base install, ``pip install .``); ``asr.nn`` and ``export`` import in the full one
(``pip install '.[train]'``). The package is walked, so a new module is covered on arrival."""

import importlib
import json
import os
import pkgutil
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_ONLY = ("torch", "torchaudio", "onnx", "yaml")  # what only the 'train' extra installs
HEAVY_SUBPACKAGES = ("asr.nn",)  # the torch side of the package

# Run in a fresh interpreter: block the train-only packages, import every module of PACKAGE
# except SKIP (and __main__ modules, which run the command), report what failed as JSON.
CHECKER = textwrap.dedent("""
    import importlib, json, pkgutil, sys

    BLOCKED, PACKAGE, SKIP = json.loads(sys.argv[1])

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is not in the base install (blocked by tests/test_layers.py)")

    sys.meta_path.insert(0, Blocker())
    imported, failed = [], {}

    def walk(name):
        try:
            module = importlib.import_module(name)
        except Exception as exc:
            failed[name] = f"{type(exc).__name__}: {exc}"
            return
        imported.append(name)
        for info in pkgutil.iter_modules(getattr(module, "__path__", []), name + "."):
            if info.name.rsplit(".", 1)[1] == "__main__" or any(info.name == s or info.name.startswith(s + ".") for s in SKIP):
                continue
            walk(info.name)

    walk(PACKAGE)
    leaked = sorted({m.split(".")[0] for m in sys.modules} & set(BLOCKED))
    print(json.dumps({"imported": imported, "failed": failed, "leaked": leaked}))
""")


def _run(code: str, *args: str, root: str = ROOT) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-c", code, *args], cwd=root, env=env, capture_output=True, text=True, timeout=300)


def _check(package: str, skip=(), root: str = ROOT) -> dict:
    proc = _run(CHECKER, json.dumps([TRAIN_ONLY, package, list(skip)]), root=root)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_torch_free_modules_import_without_the_train_extra():
    got = _check("asr", skip=HEAVY_SUBPACKAGES)
    assert got["failed"] == {}, "modules outside asr.nn need a train-only package (torch, torchaudio, onnx, yaml) " \
                                "at import time; import it inside the function that needs it:\n" + \
                                "\n".join(f"  {m}: {e}" for m, e in got["failed"].items())
    assert got["leaked"] == []
    # the walk really covered the package: each layer, down to the leaves
    for name in ("asr", "asr.audio", "asr.frontend", "asr.recognizer", "asr.evaluate", "asr.cli", "asr.cli.transcribe",
                 "asr.cli.stream", "asr.corpora.fsdd", "asr.decoding.beam_search", "asr.runtime.online"):
        assert name in got["imported"]
    assert not [m for m in got["imported"] if m == "asr.nn" or m.startswith("asr.nn.")]


def test_command_line_parsers_build_without_the_train_extra():
    """`asr --help`, every subcommand's --help, `asr lm --help` and `asr-stream --help`."""
    code = textwrap.dedent("""
        import argparse, contextlib, io, json, runpy, sys

        BLOCKED = json.loads(sys.argv[1])

        class Blocker:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"{name} is blocked")

        sys.meta_path.insert(0, Blocker())

        def help_of(run):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                try:
                    run()
                except SystemExit as exc:
                    assert exc.code in (0, None), exc.code
            return out.getvalue()

        from asr import cli
        from asr.cli import stream
        from asr.cli.lm import main as lm_main

        def asr_main(*argv):  # python -m asr, as the console script runs it
            sys.argv = ["asr", *argv]
            runpy.run_module("asr", run_name="__main__")

        texts = {"asr": help_of(lambda: asr_main("--help"))}
        (sub,) = [a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
        commands = [c for c in sub.choices if c != "lm"]
        for c in commands:
            texts[c] = help_of(lambda: asr_main(c, "--help"))
        texts["lm"] = help_of(lambda: lm_main(["--help"], prog="asr lm"))
        texts["asr-stream"] = help_of(lambda: stream.main(["--help"]))
        leaked = sorted({m.split(".")[0] for m in sys.modules} & set(BLOCKED))
        print(json.dumps({"texts": texts, "leaked": leaked}))
    """)
    proc = _run(code, json.dumps(TRAIN_ONLY))
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["leaked"] == []
    texts = got["texts"]
    assert {"asr", "prepare", "train", "average", "export", "evaluate", "transcribe", "lm", "asr-stream"} <= set(texts)
    assert all(t.startswith("usage:") for t in texts.values()), texts
    assert "--model" in texts["transcribe"] and "--model" in texts["evaluate"] and "--chunk-ms" in texts["asr-stream"]


def test_the_check_catches_a_torch_import(tmp_path):
    """The checker itself: a torch-free package that gains ``import torch`` (or yaml) fails it."""
    pkg = tmp_path / "lightpkg"
    (pkg / "heavy").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "fine.py").write_text("import json\n")
    (pkg / "leaf.py").write_text("import numpy\nimport torch\n")
    (pkg / "config.py").write_text("import yaml\n")
    (pkg / "heavy" / "__init__.py").write_text("import torch\n")
    got = _check("lightpkg", skip=["lightpkg.heavy"], root=str(tmp_path))
    assert sorted(got["failed"]) == ["lightpkg.config", "lightpkg.leaf"]
    assert "torch is not in the base install" in got["failed"]["lightpkg.leaf"]
    assert sorted(got["imported"]) == ["lightpkg", "lightpkg.fine"]


def test_torch_side_imports_in_the_full_install():
    import export

    names = []
    for package in (importlib.import_module("asr.nn"), export):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            importlib.import_module(info.name)
            names.append(info.name)
    assert {"asr.nn.model", "asr.nn.training", "asr.nn.backend", "export.onnx_export"} <= set(names)


def test_runtime_sources_never_import_torch():
    """Not even lazily, inside a function: the runtime package's sources name no torch import."""
    import pathlib
    import re

    import asr.runtime

    root = pathlib.Path(asr.runtime.__file__).parent
    pattern = re.compile(r"^\s*(import torch|from torch)", re.M)
    offenders = [p.name for p in root.glob("*.py") if pattern.search(p.read_text())]
    assert offenders == []
