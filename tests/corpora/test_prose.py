"""asr.corpora.prose: sentences, examples of whole sentences, and the readers' filters, on text
written here (the installed packages are the recipe's business)."""

import gzip

import pytest

from asr.corpora import prose


def test_sentences():
    assert prose.sentences('He came. "Who are you?" she asked. Nobody knew! and then') == \
        ["He came.", '"Who are you?" she asked.', "Nobody knew! and then"]  # a capital must follow
    assert prose.sentences("") == []


def test_examples_are_runs_of_whole_labelled_sentences():
    paras = ["One is here. Two is there? It costs 5 dollars. Three, four.", "no mark at the end"]
    ex = list(prose.examples(paras, seed=0, max_sentences=1))
    assert ex == ["One is here.", "Two is there?", "Three, four."]
    ex = list(prose.examples(paras, seed=0, max_sentences=5))
    assert all(x in ("One is here. Two is there?", "One is here.", "Two is there?", "Three, four.") for x in ex)
    assert "Three, four." in " ".join(ex) and "5" not in " ".join(ex)
    assert list(prose.examples(["A b c d e f. G h."], seed=0, max_words=3)) == ["G h."]


def test_unknown_source():
    with pytest.raises(ValueError, match="unknown prose source"):
        list(prose.paragraphs("novels"))


def test_fortunes_reader(tmp_path):
    (tmp_path / "wisdom").write_text("A fool and his money\nare soon parted.\n\t\t-- Anon\n%\n"
                                     "laid   out    verse\n%\nWhat now?\n")
    (tmp_path / "wisdom.dat").write_bytes(b"\x00")
    assert list(prose._fortunes(str(tmp_path))) == ["A fool and his money are soon parted.", "What now?"]
    with pytest.raises(FileNotFoundError, match="apt-get install fortunes"):
        list(prose._fortunes(str(tmp_path / "none")))


def test_jargon_reader(tmp_path):
    path = tmp_path / "jargon.txt.gz"
    with gzip.open(path, "wt") as f:
        f.write("   :gobble: vt.\n\n   1. To consume, usually with {up} in\n   a sentence.\n\n   [Usenet] Short one.\n")
    assert list(prose._jargon(str(path))) == ["To consume, usually with up in a sentence."]


def test_linux_docs_reader(tmp_path):
    def write(rel, text):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(path, "wt") as f:
            f.write(text)

    write("process/howto.rst.gz", ".. SPDX-License-Identifier: GPL-2.0\n\nHow to help\n===========\n\n"
                                  "Read the code first, and then\nask questions.\n\n::\n\n    make all\n\n"
                                  "Call ``kmalloc()`` here.\n")
    write("translations/it_IT/howto.rst.gz", "Leggete prima il codice.\n")  # not English
    write("index.txt.gz", "Not a reStructuredText file.\n")
    assert list(prose._linux_docs(str(tmp_path))) == ["Read the code first, and then ask questions."]
    with pytest.raises(FileNotFoundError, match="apt-get install linux-doc"):
        list(prose._linux_docs(str(tmp_path / "none")))


def test_git_docs_reader(tmp_path):
    (tmp_path / "technical").mkdir()
    (tmp_path / "technical" / "pack.txt").write_text("Pack format\n-----------\n\nA pack holds objects,\n"
                                                      "each compressed.\n\n  $ git gc\n\nSee `git-gc`.\n")
    (tmp_path / "pack.html").write_text("<p>A pack holds objects.</p>\n")
    assert list(prose._git_docs(str(tmp_path))) == ["A pack holds objects, each compressed."]
    with pytest.raises(FileNotFoundError, match="apt-get install git-doc"):
        list(prose._git_docs(str(tmp_path / "none")))


def test_perl_docs_reader(tmp_path):
    (tmp_path / "perlintro.pod").write_text("=head1 NAME\n\nperlintro - an overview\n\n=head2 Basics\n\n"
                                            "Perl is I<easy> to learn,\nand B<fun>. Run the C<perldoc> command.\n\n"
                                            "    print \"hello\";\n")
    (tmp_path / "perl5360delta.pod").write_text("This release fixes bugs.\n")  # change notes
    (tmp_path / "perltoc.pod").write_text("The contents, in order.\n")
    assert list(prose._perl_docs(str(tmp_path))) == ["perlintro - an overview",
                                                     "Perl is easy to learn, and fun. Run the C<perldoc> command."]
    # the sentence with code is left out by the labeller, not the reader
    assert list(prose.examples(prose._perl_docs(str(tmp_path)), seed=0, max_sentences=1)) == \
        ["Perl is easy to learn, and fun."]
    with pytest.raises(FileNotFoundError, match="apt-get install perl-doc"):
        list(prose._perl_docs(str(tmp_path / "none")))


def test_debian_handbook_reader(tmp_path):
    (tmp_path / "apt.html").write_text(
        '<html><body><h1 class="title">APT</h1><div class="para">\nThe <span class="emphasis"><em>APT</em></span> '
        'tools fetch packages,\nthen install them &amp; their dependencies.\n</div>'
        '<div class="para">Run this:<div class="informalexample"><pre>apt update</pre></div></div>'
        '<p class="title">Not a paragraph.</p></body></html>')
    assert list(prose._debian_handbook(str(tmp_path))) == \
        ["\nThe APT tools fetch packages,\nthen install them & their dependencies.\n"]
    assert list(prose.paragraphs("debian-handbook", str(tmp_path))) == \
        ["The APT tools fetch packages, then install them & their dependencies."]
    with pytest.raises(FileNotFoundError, match="apt-get install debian-handbook"):
        list(prose._debian_handbook(str(tmp_path / "none")))
