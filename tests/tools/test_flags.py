"""The measuring scripts in tools/ speak the CLI's flag vocabulary (docs/layout.md, "One flag
vocabulary"): no option of theirs uses a spelling the `asr` commands retired."""

import ast

import pytest

from tests.tools import TOOLS

# as in tests/cli/test_options.py: a JSON file written is --out, audio per piece --piece-ms, a rate --sample-rate
RETIRED = ("--json", "--output-format", "--chunk-ms", "--block-ms", "--rate")


def _options(path):
    """Every option string given to an add_argument call in the script at PATH."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument":
            yield from (a.value for a in node.args if isinstance(a, ast.Constant) and str(a.value).startswith("-"))


@pytest.mark.parametrize("path", sorted(TOOLS.glob("*.py")), ids=lambda p: p.name)
def test_no_retired_spelling(path):
    assert not set(_options(path)) & set(RETIRED)


def test_the_scan_sees_the_renamed_flags():
    assert {"--out", "--piece-ms"} <= set(_options(TOOLS / "benchmark.py"))
    assert "--piece-ms" in set(_options(TOOLS / "loadtest.py"))
    assert "--sample-rate" in set(_options(TOOLS / "make_long_recording.py"))
