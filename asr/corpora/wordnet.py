"""Sentences for synthetic speech with new words: the example sentences of WordNet 3.0.

WordNet's data files (``data.noun``, ``data.verb``, ``data.adj``, ``data.adv``; Debian package
``wordnet-base``, in ``/usr/share/wordnet``) give each sense a gloss followed by examples in
double quotes. Most are phrases ("fly a kite"); the full sentences start with a capital letter
("The snow damaged the roof"). :func:`example_sentences` keeps those, normalized like
transcripts, of a chosen length, spelled with a chosen alphabet, minus any text to exclude (a
recipe's dev and test transcripts, so that no held-out sentence is ever rendered).

License: WordNet 3.0, Princeton University (permission to use, copy, modify and distribute for
any purpose, keeping its copyright notice and disclaimer: ``/usr/share/doc/wordnet-base/copyright``).
The sentences are read from the installed package, never copied into this repository.
"""

from __future__ import annotations

import os
import re
from typing import Iterable, Optional

from asr.text import normalize_text

__all__ = ["DEFAULT_DIR", "INSTALL", "example_sentences", "prepare_text"]

DEFAULT_DIR = "/usr/share/wordnet"
INSTALL = "apt-get install wordnet-base"
FILES = ("data.noun", "data.verb", "data.adj", "data.adv")
_QUOTED = re.compile(r'"([^"]+)"')


def example_sentences(folder: str = DEFAULT_DIR, min_words: int = 4, max_words: int = 12,
                      alphabet: Optional[str] = "abcdefghijklmnopqrstuvwxyz' ",
                      exclude: Iterable[str] = ()) -> list[str]:
    """The full-sentence examples of WordNet's data files in ``folder``, normalized, unique, in
    file order: those starting with a capital letter, of ``min_words`` to ``max_words`` words,
    every character in ``alphabet`` (None: any), and not among ``exclude`` (normalized texts).
    Raises FileNotFoundError naming the package when the files are missing."""
    paths = [os.path.join(folder, name) for name in FILES]
    if not any(os.path.isfile(p) for p in paths):
        raise FileNotFoundError(f"{folder}: no WordNet data files ({', '.join(FILES)}); install them with `{INSTALL}`")
    skip = {normalize_text(t) for t in exclude}
    allowed = set(alphabet) if alphabet is not None else None
    out: dict[str, None] = {}
    for path in paths:
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(" ") or " | " not in line:  # the license header; a line without a gloss
                    continue
                for example in _QUOTED.findall(line.split(" | ", 1)[1]):
                    example = example.strip()
                    if not example[:1].isupper():
                        continue  # a phrase, not a sentence
                    text = normalize_text(example)
                    n = len(text.split())
                    if not min_words <= n <= max_words or text in skip:
                        continue
                    if allowed is not None and not set(text) <= allowed:
                        continue
                    out[text] = None
    return list(out)


def prepare_text(out: str, folder: str = DEFAULT_DIR, exclude_manifests: Iterable[str] = (), **kw) -> int:
    """Write :func:`example_sentences` to ``out``, one a line, leaving out the transcripts of
    ``exclude_manifests``; returns how many."""
    from asr.fileio import atomic_open
    from asr.manifest import read_manifest

    exclude = [e.text for m in exclude_manifests for e in read_manifest(m)]
    texts = example_sentences(folder, exclude=exclude, **kw)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with atomic_open(out) as f:
        f.writelines(t + "\n" for t in texts)
    return len(texts)
