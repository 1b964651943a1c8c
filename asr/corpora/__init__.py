"""Corpus preparation: each module turns one public corpus into JSONL manifests."""

import os
from typing import Optional

__all__ = ["find_corpus"]

ENV = "ASR_CORPORA"


def find_corpus(name: str, corpus_dir: Optional[str], marker: str) -> Optional[str]:
    """Where corpus ``name`` lies: ``corpus_dir`` (the corpus itself or a folder holding
    ``name/``), else ``$ASR_CORPORA/name``, else ``data/corpora/name``. ``marker`` is a path
    inside the corpus that must exist. Returns None when it is nowhere."""
    candidates = []
    if corpus_dir:
        candidates += [corpus_dir, os.path.join(corpus_dir, name)]
    elif os.environ.get(ENV):
        candidates.append(os.path.join(os.environ[ENV], name))
    candidates.append(os.path.join("data", "corpora", name))
    for c in candidates:
        if os.path.exists(os.path.join(c, marker)):
            return c
    return None
