"""Tar shards (the WebDataset layout) for corpora beyond one disk: written from any manifest by
``asr prepare shards``, read by training (torch-free).

A shard ``shard-NNNNNN.tar`` is a plain (uncompressed) tar in which each utterance is a group
of members sharing one key: ``KEY.flac`` or ``KEY.wav`` (the audio file's own bytes) and
``KEY.json`` (``text``, ``duration``, ``speaker``, ``source``: the manifest's audio path). The
folder's index ``shards.json`` names the shards in order with their utterance counts,
durations and sizes, and the manifest entries that were skipped (a missing or unreadable
audio file), each with its reason.

Reading: :func:`shard_entries` scans each tar's headers (seeking over the audio) and its
small ``.json`` members into :class:`~asr.manifest.Entry` objects whose ``extra["shard"]``
holds the tar, the shard's number and the audio member's byte range; :func:`load_shard_audio`
reads those bytes and decodes them. Any WebDataset-style tar with ``KEY.json`` members of
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
from typing import Iterable, Optional

import numpy as np
import soundfile as sf

from asr.audio import AudioError, check_finite, read_audio, resample, to_mono
from asr.fileio import atomic_open, temporary_path
from asr.manifest import Entry

log = logging.getLogger(__name__)

__all__ = ["INDEX_NAME", "FORMAT", "ShardError", "write_shards", "is_shard_index", "read_index", "shard_entries",
           "load_shard_audio", "shard_name"]

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


def scan_shard(path: str, shard: int) -> list[Entry]:
    """The utterances of one shard in tar order. A key without both a ``.json`` and a
    ``.flac``/``.wav`` member, or with unusable metadata, is named in a warning and left out."""
    groups: dict[str, dict] = {}
    try:
        tf = tarfile.open(path, mode="r:")  # uncompressed: the audio's byte offsets are where it lies
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
                    g["meta"] = json.loads(tf.extractfile(m).read().decode("utf-8"))
                except (ValueError, UnicodeDecodeError) as exc:
                    g["bad"] = f"{m.name}: not JSON ({exc})"
            elif ext in ("flac", "wav"):
                g["audio"] = (m.name, m.offset_data, m.size)
    out = []
    for key, g in groups.items():
        meta, audio = g.get("meta"), g.get("audio")
        problem = g.get("bad")
        if problem is None and (meta is None or audio is None):
            problem = f"key {key!r} has no {'.json' if meta is None else '.flac or .wav'} member"
        if problem is None and not (isinstance(meta, dict) and isinstance(meta.get("text"), str)
                                    and isinstance(meta.get("duration"), (int, float)) and meta["duration"] > 0):
            problem = f"{key}.json: expected \"text\" (a string) and \"duration\" (seconds > 0)"
        if problem is not None:
            log.warning("%s: skipping %s", path, problem)
            continue
        name, offset, size = audio
        speaker = meta.get("speaker")
        out.append(Entry(f"{path}:{name}", float(meta["duration"]), meta["text"], None if speaker is None else str(speaker),
                         extra={"shard": {"path": path, "index": shard, "offset": offset, "size": size}}))
    return out


def shard_entries(index_path: str | os.PathLike) -> list[Entry]:
    """Every utterance of the shards an index names, shard by shard in tar order (an entry's
    ``extra["shard"]["index"]`` is its shard's number). Shard paths are relative to the
    index's folder."""
    index_path = os.fspath(index_path)
    index = read_index(index_path)
    base = os.path.dirname(os.path.abspath(index_path))
    entries: list[Entry] = []
    for k, s in enumerate(index["shards"]):
        found = scan_shard(os.path.join(base, s["name"]), k)
        if len(found) != s["utterances"]:
            log.warning("%s: %s holds %d usable utterances, the index says %d", index_path, s["name"], len(found),
                        s["utterances"])
        entries += found
    return entries


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

