"""asr.fileio: a file appears complete or not at all."""

import os

import pytest

from asr.fileio import atomic_open, atomic_write


def test_atomic_write_replaces_only_when_the_writer_finishes(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"old")

    def fails(tmp):
        with open(tmp, "wb") as f:
            f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(str(path), fails)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["model.bin"]

    def writes(tmp):
        assert os.path.dirname(tmp) == str(tmp_path) and tmp != str(path)
        with open(tmp, "wb") as f:
            f.write(b"new")

    atomic_write(path, writes)
    assert path.read_bytes() == b"new" and os.listdir(tmp_path) == ["model.bin"]


def test_atomic_open_keeps_the_old_text_on_an_exception(tmp_path):
    path = tmp_path / "a.txt"
    with atomic_open(path) as f:
        f.write("one")
    with pytest.raises(ValueError):
        with atomic_open(path) as f:
            f.write("two")
            raise ValueError
    assert path.read_text() == "one" and os.listdir(tmp_path) == ["a.txt"]
