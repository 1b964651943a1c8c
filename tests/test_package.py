"""The install line is the folder line: every module of ``asr`` outside ``asr.train`` imports,
and the command line builds its parsers, with torch, torchaudio, onnx and yaml unimportable
(the base install, ``pip install .``); ``asr.train`` imports in the full one (``pip install
'.[train]'``). The import graph read from the sources has no circles, no arrow from the base
into ``asr.train``, and no torch outside it. The package is walked, so a new module is covered
on arrival."""

import ast
import importlib
import json
import os
import pkgutil
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_ONLY = ("torch", "torchaudio", "onnx", "yaml")  # what only the 'train' extra installs
HEAVY_SUBPACKAGES = ("asr.train",)  # the torch side of the package

# Run in a fresh interpreter: block the train-only packages, import every module of PACKAGE
# except SKIP (and __main__ modules, which run the command), report what failed as JSON.
CHECKER = textwrap.dedent("""
    import importlib, json, pkgutil, sys

    BLOCKED, PACKAGE, SKIP = json.loads(sys.argv[1])

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is not in the base install (blocked by tests/test_package.py)")

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
    assert got["failed"] == {}, "modules outside asr.train need a train-only package (torch, torchaudio, onnx, yaml) " \
                                "at import time; import it inside the function that needs it:\n" + \
                                "\n".join(f"  {m}: {e}" for m, e in got["failed"].items())
    assert got["leaked"] == []
    # the walk really covered the package: each layer, down to the leaves
    for name in ("asr", "asr.audio", "asr.frontend", "asr.runtime.offline", "asr.evaluate", "asr.cli", "asr.cli.transcribe",
                 "asr.cli.stream", "asr.corpora.fsdd", "asr.decoding.beam_search", "asr.runtime.online"):
        assert name in got["imported"]
    assert not [m for m in got["imported"] if m == "asr.train" or m.startswith("asr.train.")]


def test_command_line_parsers_build_without_the_train_extra():
    """`asr --help`, every subcommand's --help (`asr stream` among them), `asr lm --help` and `asr-stream --help`."""
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
    assert {"asr", "prepare", "train", "average", "export", "evaluate", "transcribe", "stream", "lm", "asr-stream"} <= set(texts)
    assert all(t.startswith("usage:") for t in texts.values()), texts
    assert "--model" in texts["transcribe"] and "--model" in texts["evaluate"] and "--piece-ms" in texts["asr-stream"]
    assert texts["asr-stream"] == texts["stream"]  # the same command: the same parser


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
    import asr.train

    names = [info.name for info in pkgutil.walk_packages(asr.train.__path__, "asr.train.")]
    for name in names:
        importlib.import_module(name)
    assert {"asr.train.model", "asr.train.trainer", "asr.train.backend", "asr.train.export"} <= set(names)


def import_graph(root: str = os.path.join(ROOT, "asr")) -> dict[str, set[str]]:
    """Module -> the modules and packages it imports, read from the sources: imports at the top
    and inside functions alike, but not those under ``if TYPE_CHECKING:`` (types only)."""
    graph = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            if not f.endswith(".py"):
                continue
            path = os.path.join(dirpath, f)
            parts = os.path.relpath(path, os.path.dirname(root))[:-3].split(os.sep)
            is_pkg = parts[-1] == "__init__"
            name = ".".join(parts[:-1] if is_pkg else parts)
            tree = ast.parse(open(path).read())
            skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                    for n in ast.walk(node)}
            deps = set()
            for node in ast.walk(tree):
                if id(node) in skip:
                    continue
                if isinstance(node, ast.Import):
                    deps.update(a.name for a in node.names)
                elif isinstance(node, ast.ImportFrom):
                    if node.level:
                        base = name.split(".") if is_pkg else name.split(".")[:-1]
                        base = base[: len(base) - node.level + 1]
                        module = ".".join(base + ([node.module] if node.module else []))
                    else:
                        module = node.module
                    deps.add(module)
                    deps.update(f"{module}.{a.name}" for a in node.names)
            graph[name] = deps
    return {m: {d for d in deps if d in graph or d.split(".")[0] in TRAIN_ONLY} - {m} for m, deps in graph.items()}


def _side(module: str) -> str:
    return "train" if module == "asr.train" or module.startswith("asr.train.") else \
        "cli" if module == "asr.cli" or module.startswith("asr.cli.") else "base"


def test_the_base_never_imports_the_training_side_and_only_it_imports_torch():
    graph = import_graph()
    assert {"asr.audio", "asr.runtime.offline", "asr.train.trainer", "asr.cli.transcribe"} <= set(graph)
    into_train = sorted(f"{m} -> {d}" for m, deps in graph.items() for d in deps
                        if _side(m) == "base" and d.startswith("asr.") and _side(d) == "train")
    assert into_train == []
    torch_outside = sorted(f"{m} -> {d}" for m, deps in graph.items() for d in deps
                           if d.split(".")[0] in ("torch", "torchaudio") and _side(m) != "train")
    assert torch_outside == []


def test_the_import_graph_of_the_base_has_no_circles():
    graph = {m: {d for d in deps if d.startswith("asr.") and _side(d) == "base"}
             for m, deps in import_graph().items() if _side(m) == "base"}
    for m, deps in graph.items():  # importing a package's module runs the package's __init__ first
        deps |= {".".join(d.split(".")[:k]) for d in list(deps) for k in range(2, d.count(".") + 1)} & set(graph)
        deps.discard(m)
    circles, state = [], {}

    def visit(m, path):
        state[m] = "open"
        for d in sorted(graph.get(m, ())):
            if d.startswith(m + "."):  # a package importing its own modules is not a circle
                continue
            if state.get(d) == "open":
                circles.append(" -> ".join(path[path.index(d):] + [d]))
            elif d not in state:
                visit(d, path + [d])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert circles == []


def test_only_asr_is_installed():
    """No generic top-level package (such as ``export``) lands in site-packages beside ``asr``."""
    text = open(os.path.join(ROOT, "pyproject.toml")).read()
    assert 'include = ["asr*"]' in text
    tops = [d for d in os.listdir(ROOT) if os.path.isfile(os.path.join(ROOT, d, "__init__.py"))]
    assert sorted(tops) == ["asr", "tests"]
