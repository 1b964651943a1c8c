"""Tar shards (the WebDataset layout) for corpora beyond one disk: written from any manifest by
``asr prepare shards``, read by training (torch-free).

A shard ``shard-NNNNNN.tar`` is a plain (uncompressed) tar in which each utterance is a group
of members sharing one key: ``KEY.flac`` or ``KEY.wav`` (the audio file's own bytes) and
``KEY.json`` (``text``, ``duration``, ``speaker``, ``source``: the manifest's audio path). The
folder's index ``shards.json`` names the shards in order with their utterance counts,
durations and sizes, and the manifest entries that were skipped (a missing or unreadable
audio file), each with its reason.

Reading: :func:`shard_entries` scans each tar's headers (seeking over the audio) and checks its
small ``.json`` members, keeping each utterance's byte ranges in columns
(:class:`ShardEntries`); an utterance asked for becomes an :class:`~asr.manifest.Entry` whose
``extra["shard"]`` holds the tar, the shard's number and the audio member's byte range;
:func:`load_shard_audio` reads those bytes and decodes them. Any WebDataset-style tar with ``KEY.json`` members of
that form can be read, whoever wrote it.
"""

from __future__ import annotations

import io
import json
import logging
import os
import posixpath
import re
import tarfile
from array import array
from typing import Iterable, Optional

import numpy as np
import soundfile as sf

from asr.audio import AudioError, check_finite, read_audio, resample, to_mono
from asr.fileio import atomic_open, temporary_path
from asr.manifest import Entry, LazySequence

log = logging.getLogger(__name__)

__all__ = ["INDEX_NAME", "FORMAT", "ShardError", "write_shards", "is_shard_index", "read_index", "shard_entries",
           "ShardEntries", "load_shard_audio", "shard_name"]

INDEX_NAME = "shards.json"
FORMAT = "asr-shards/1"
AUDIO_SUFFIXES = {"FLAC": ".flac", "WAV": ".wav", "WAVEX": ".wav"}  # soundfile's format -> member suffix
_SHARD_RE = re.compile(r"^shard-\d{6}\.tar$")


class ShardError(ValueError):
    pass


def shard_name(i: int) -> str:
    return f"shard-{i:06d}.tar"


def is_shard_index(path: str | os.PathLike) -> bool:
    """Whether a ``data.train`` path names a shard index (a ``.json`` file) rather than a JSONL
    manifest (``.jsonl``)."""
    return os.fspath(path).endswith(".json")


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    """A member header that depends on nothing but its name and size (deterministic shards)."""
    ti = tarfile.TarInfo(name)
    ti.size, ti.mtime, ti.mode, ti.uid, ti.gid, ti.uname, ti.gname = size, 0, 0o644, 0, 0, "", ""
    return ti


def _audio_bytes(e: Entry) -> tuple[bytes, str]:
    """(bytes, member suffix) of an entry's audio: a FLAC or WAV file's own bytes; a segment
    (an entry with ``offset``) or another format decoded and written as 24-bit FLAC. Raises
    :class:`AudioError` naming the file and why."""
    path = e.audio_filepath
    if e.offset is None:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise AudioError(path, "file not found") from None
        except PermissionError:
            raise AudioError(path, "permission denied") from None
        except OSError as exc:
            raise AudioError(path, f"cannot read ({exc.strerror or exc})") from None
        try:
            info = sf.info(io.BytesIO(data))
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
            raise AudioError(path, f"cannot decode audio ({exc})") from None
        if info.frames <= 0:
            raise AudioError(path, "contains no audio samples")
        suffix = AUDIO_SUFFIXES.get(info.format)
        if suffix is not None:
            return data, suffix
    samples, rate = read_audio(path, *((e.offset, e.duration) if e.offset is not None else (0.0, None)))
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="FLAC", subtype="PCM_24")
    return buf.getvalue(), ".flac"


def write_shards(entries: Iterable[Entry], out_dir: str | os.PathLike, shard_size: Optional[int] = None,
                 shard_mb: Optional[float] = None, source: Optional[str] = None, progress: bool = False) -> dict:
    """Write ``entries`` as shards in ``out_dir`` (``shard-000000.tar``, ...) and the index
    ``shards.json``; returns the index. A shard closes when it holds ``shard_size`` utterances
    or (``shard_mb``) that many megabytes (10^6 bytes) of audio, whichever comes first (neither
    given: 1000 utterances). Keys are the entries' line numbers in manifest order (``000000042``),
    so the same manifest always gives the same bytes. An entry whose audio is missing or
    unreadable is named in a warning, skipped and listed in the index (none usable: the index
    is written, then :class:`ShardError`). Shards of an earlier run beyond the new count are
    removed."""
    from tqdm import tqdm

    if shard_size is None and shard_mb is None:
        shard_size = 1000
    if shard_size is not None and shard_size < 1:
        raise ValueError(f"--shard-size must be >= 1 utterances, got {shard_size}")
    if shard_mb is not None and not shard_mb > 0:
        raise ValueError(f"--shard-mb must be > 0, got {shard_mb}")
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    limit_bytes = None if shard_mb is None else int(shard_mb * 1e6)
    shards: list[dict] = []
    skipped: list[dict] = []
    state: dict = {"tar": None}

    def close() -> None:
        tf, f, tmp, info = state["tar"], state["file"], state["tmp"], state["info"]
        tf.close()
        f.flush()
        os.fsync(f.fileno())
        f.close()
        os.replace(tmp, os.path.join(out_dir, info["name"]))
        info["duration"] = round(info["duration"], 3)
        shards.append(info)
        state["tar"] = None

    def open_next() -> None:
        name = shard_name(len(shards))
        tmp = temporary_path(os.path.join(out_dir, name))
        f = open(tmp, "wb")
        state.update(tar=tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT), file=f, tmp=tmp,
                     info={"name": name, "utterances": 0, "duration": 0.0, "bytes": 0})

    try:
        for i, e in enumerate(tqdm(entries, desc="shards", disable=None if progress else True, leave=False, unit="utt")):
            try:
                data, suffix = _audio_bytes(e)
            except (AudioError, OSError) as exc:
                reason = exc.reason if isinstance(exc, AudioError) else (exc.strerror or str(exc))
                log.warning("skipping %s: %s", e.audio_filepath, reason)
                skipped.append({"audio_filepath": e.audio_filepath, "reason": reason})
                continue
            if state["tar"] is not None:
                info = state["info"]
                if ((shard_size is not None and info["utterances"] >= shard_size)
                        or (limit_bytes is not None and info["bytes"] + len(data) > limit_bytes)):
                    close()
            if state["tar"] is None:
                open_next()
            key = f"{i:09d}"
            meta = {"text": e.text, "duration": round(e.duration, 4), "source": e.audio_filepath}
            if e.speaker is not None:
                meta["speaker"] = e.speaker
            if e.offset is not None:
                meta["offset"] = round(e.offset, 4)
            meta_bytes = json.dumps(meta, ensure_ascii=False, sort_keys=True).encode("utf-8")
            tf = state["tar"]
            tf.addfile(_tarinfo(key + suffix, len(data)), io.BytesIO(data))
            tf.addfile(_tarinfo(key + ".json", len(meta_bytes)), io.BytesIO(meta_bytes))
            info = state["info"]
            info["utterances"] += 1
            info["duration"] += e.duration
            info["bytes"] += len(data)
        if state["tar"] is not None:
            close()
    except BaseException:
        if state["tar"] is not None:
            state["file"].close()
            os.remove(state["tmp"])
        raise
    keep = {s["name"] for s in shards}
    for name in sorted(os.listdir(out_dir)):  # an earlier, longer run's shards would confuse a reader
        if _SHARD_RE.match(name) and name not in keep:
            os.remove(os.path.join(out_dir, name))
    index = {
        "format": FORMAT,
        "source": source,
        "utterances": sum(s["utterances"] for s in shards),
        "duration": round(sum(s["duration"] for s in shards), 3),
        "shards": shards,
        "skipped": skipped,
    }
    with atomic_open(os.path.join(out_dir, INDEX_NAME)) as f:
        json.dump(index, f, ensure_ascii=False, indent=1)
        f.write("\n")
    if not shards:
        raise ShardError(f"{out_dir}: no utterance could be written ({len(skipped)} skipped: see {INDEX_NAME})")
    return index


def read_index(path: str | os.PathLike) -> dict:
    """A shard index (``shards.json``), checked: its format, and a name and a count per shard."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            index = json.load(f)
    except FileNotFoundError:
        raise ShardError(f"{path}: shard index not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ShardError(f"{path}: not a JSON shard index ({exc})") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise ShardError(f"{path}: not a shard index (expected \"format\": \"{FORMAT}\"; `asr prepare shards` writes one)")
    shards = index.get("shards")
    if not isinstance(shards, list) or not shards:
        raise ShardError(f"{path}: \"shards\" must be a non-empty list")
    for k, s in enumerate(shards):
        if not isinstance(s, dict) or not isinstance(s.get("name"), str) or not isinstance(s.get("utterances"), int):
            raise ShardError(f"{path}: shard {k}: expected an object with \"name\" and \"utterances\"")
    return index


def _member_key(name: str) -> tuple[str, str]:
    """WebDataset's split of a member name: the key (folder and the name up to its first dot)
    and the rest (``flac``, ``json``, ...)."""
    folder, base = posixpath.split(name)
    stem, _, ext = base.partition(".")
    return posixpath.join(folder, stem), ext.lower()


def _scan_shard(path: str) -> list[tuple[str, float, int, int, int, int]]:
    """``(audio member's name, duration, .json offset, .json size, audio offset, audio size)`` of
    each utterance of one shard in tar order. A key without both a ``.json`` and a
    ``.flac``/``.wav`` member, or with unusable metadata, is named in a warning and left out."""
    groups: dict[str, dict] = {}
    try:
        tf = tarfile.open(path, mode="r:")  # uncompressed: the members' byte offsets are where they lie
    except FileNotFoundError:
        raise ShardError(f"{path}: shard not found") from None
    except (tarfile.TarError, OSError) as exc:
        raise ShardError(f"{path}: not a readable uncompressed tar ({exc})") from None
    with tf:
        for m in tf:
            if not m.isfile():
                continue
            key, ext = _member_key(m.name)
            g = groups.setdefault(key, {})
            if ext == "json":
                try:
                    g["meta"] = _meta(tf.extractfile(m).read())
                    g["meta_at"] = (m.offset_data, m.size)
                except ValueError as exc:
                    g["bad"] = f"{m.name}: {exc}"
            elif ext in ("flac", "wav"):
                g["audio"] = (m.name, m.offset_data, m.size)
    out = []
    for key, g in groups.items():
        meta, audio = g.get("meta"), g.get("audio")
        problem = g.get("bad")
        if problem is None and (meta is None or audio is None):
            problem = f"key {key!r} has no {'.json' if meta is None else '.flac or .wav'} member"
        if problem is not None:
            log.warning("%s: skipping %s", path, problem)
            continue
        name, offset, size = audio
        out.append((name, float(meta["duration"]), *g["meta_at"], offset, size))
    return out


def _meta(raw: bytes) -> dict:
    """An utterance's ``.json`` member, checked (ValueError says why it is unusable)."""
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not (isinstance(meta, dict) and isinstance(meta.get("text"), str)
            and isinstance(meta.get("duration"), (int, float)) and not isinstance(meta["duration"], bool)
            and meta["duration"] > 0):
        raise ValueError('expected "text" (a string) and "duration" (seconds > 0)')
    return meta


class ShardEntries(LazySequence[Entry]):
    """Every utterance of the shards an index names, shard by shard in tar order, kept as
    columns (its shard, the byte ranges of its ``.json`` and audio members, its duration and
    member name: about 60 bytes an utterance, where an :class:`~asr.manifest.Entry` object
    takes 1.5 KB). ``entries[i]`` reads utterance ``i``'s ``.json`` member again into an
    :class:`Entry` whose ``extra["shard"]`` holds the tar, the shard's number and the audio
    member's byte range (what :func:`load_shard_audio` reads)."""

    def __init__(self, paths: list[str], columns: dict[str, np.ndarray], names: bytes):
        self.paths = paths
        self.shard, self.durations = columns["shard"], columns["duration"]
        self._meta_at, self._meta_size = columns["meta_at"], columns["meta_size"]
        self._audio_at, self._audio_size = columns["audio_at"], columns["audio_size"]
        self._name_end = columns["name_end"]
        self._names = names

    @classmethod
    def read(cls, index_path: str | os.PathLike) -> "ShardEntries":
        index_path = os.fspath(index_path)
        index = read_index(index_path)
        base = os.path.dirname(os.path.abspath(index_path))
        paths: list[str] = []
        cols = {k: array(t) for k, t in (("shard", "i"), ("duration", "d"), ("meta_at", "q"), ("meta_size", "q"),
                                          ("audio_at", "q"), ("audio_size", "q"), ("name_end", "q"))}
        names = bytearray()
        for k, s in enumerate(index["shards"]):
            path = os.path.join(base, s["name"])
            found = _scan_shard(path)
            if len(found) != s["utterances"]:
                log.warning("%s: %s holds %d usable utterances, the index says %d", index_path, s["name"], len(found),
                            s["utterances"])
            paths.append(path)
            for name, duration, meta_at, meta_size, audio_at, audio_size in found:
                names += name.encode("utf-8")
                for col, v in (("shard", k), ("duration", duration), ("meta_at", meta_at), ("meta_size", meta_size),
                               ("audio_at", audio_at), ("audio_size", audio_size), ("name_end", len(names))):
                    cols[col].append(v)
        dtypes = {"i": np.int32, "d": np.float64, "q": np.int64}
        return cls(paths, {k: np.frombuffer(a, dtypes[a.typecode]) for k, a in cols.items()}, bytes(names))

    def __len__(self) -> int:
        return len(self.shard)

    @property
    def nbytes(self) -> int:
        """The memory the columns take (the shards' paths aside)."""
        return len(self._names) + sum(c.nbytes for c in (self.shard, self.durations, self._meta_at, self._meta_size,
                                                           self._audio_at, self._audio_size, self._name_end))

    def _item(self, i: int) -> Entry:
        path = self.paths[int(self.shard[i])]
        try:
            with open(path, "rb") as f:
                f.seek(int(self._meta_at[i]))
                meta = _meta(f.read(int(self._meta_size[i])))
        except (OSError, ValueError) as exc:
            raise ShardError(f"{path}: utterance {i} cannot be read again ({exc})") from None
        name = self._names[int(self._name_end[i - 1]) if i else 0: int(self._name_end[i])].decode("utf-8")
        speaker = meta.get("speaker")
        return Entry(f"{path}:{name}", float(self.durations[i]), meta["text"], None if speaker is None else str(speaker),
                     extra={"shard": {"path": path, "index": int(self.shard[i]), "offset": int(self._audio_at[i]),
                                      "size": int(self._audio_size[i])}})



def shard_entries(index_path: str | os.PathLike) -> ShardEntries:
    """Every utterance of the shards an index names (:class:`ShardEntries`). Shard paths are
    relative to the index's folder."""
    return ShardEntries.read(index_path)


def load_shard_audio(e: Entry, sample_rate: int) -> np.ndarray:
    """The audio of a shard entry (:func:`shard_entries`) as mono float32 at ``sample_rate``;
    raises :class:`AudioError` naming the shard member and why."""
    where = e.extra["shard"]
    try:
        with open(where["path"], "rb") as f:
            f.seek(where["offset"])
            data = f.read(where["size"])
    except OSError as exc:
        raise AudioError(e.audio_filepath, f"cannot read the shard ({exc.strerror or exc})") from None
    if len(data) != where["size"]:
        raise AudioError(e.audio_filepath, f"shard truncated ({len(data)} of {where['size']} bytes)")
    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(e.audio_filepath, f"cannot decode audio ({exc})") from None
    if samples.shape[0] == 0:
        raise AudioError(e.audio_filepath, "contains no audio samples")
    samples = to_mono(samples)
    check_finite(samples, e.audio_filepath)
    if rate != sample_rate:
        samples = resample(samples, rate, sample_rate)
    return np.ascontiguousarray(samples, dtype=np.float32)

