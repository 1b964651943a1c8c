"""The layers hold: torch-free modules never import torch."""


def test_runtime_sources_never_import_torch():
    import pathlib
    import re

    import asr.runtime

    root = pathlib.Path(asr.runtime.__file__).parent
    pattern = re.compile(r"^\s*(import torch|from torch)", re.M)
    offenders = [p.name for p in root.glob("*.py") if pattern.search(p.read_text())]
    assert offenders == []
