"""Transcript files: txt, json, srt, vtt and tsv, written utterance by utterance.

Each writer makes ``OUTPUT_DIR/<input name without extension>.<format>``; when one run writes
several inputs, :func:`output_stems` gives each its own name first (``c1/x.wav``, ``c2/x.wav``
-> ``x``, ``x-2``), so that no input's file replaces another's. A writer takes a whole
:class:`Result` (``w.write(result, "talk.wav")``), or, for a long recording, one utterance at
a time (``sink = w.open("talk.wav")``, ``sink.add(utt)`` per utterance, ``sink.close(duration)``):
nothing is kept but the open file, which appears under its name only when complete.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Optional, Sequence, TextIO

from asr.decoding.result import Result, Utterance
from asr.itn import ABBREVIATIONS

__all__ = ["SubtitleOptions", "subtitle_lines", "format_timestamp", "Writer", "Sink", "get_writers", "FORMATS",
           "input_stem", "output_stems"]

FORMATS = ("txt", "json", "srt", "vtt", "tsv")


@dataclass(frozen=True)
class SubtitleOptions:
    max_line_chars: int = 42  # the usual subtitle line length
    max_line_s: float = 7.0

    def __post_init__(self):
        if self.max_line_chars < 1 or not self.max_line_s > 0:
            raise ValueError(f"invalid SubtitleOptions: max_line_chars >= 1 and max_line_s > 0, got "
                             f"{self.max_line_chars}, {self.max_line_s}")


def subtitle_lines(utt: Utterance, options: Optional[SubtitleOptions] = None) -> list[tuple[float, float, str]]:
    """(start, end, text) lines of one utterance, split at word boundaries: a line takes words
    while it stays within ``max_line_chars`` characters and ``max_line_s`` seconds (a longer word
    gets a line of its own), and a punctuated sentence's end (``.``, ``?`` or ``!``, not an
    abbreviation such as ``Dr.`` or ``p.m.``) ends its line, so that a new sentence starts a new
    one. Each line lasts until the next one starts; the last until the utterance ends."""
    o = options or SubtitleOptions()
    if not utt.words:
        return [(utt.start, utt.end, utt.text)] if utt.text else []
    lines: list[list] = []  # [start, words]
    for w in utt.words:
        if lines and not _ends_sentence(lines[-1][1][-1].word):
            start, words = lines[-1]
            text = " ".join(x.word for x in words + [w])
            if len(text) <= o.max_line_chars and w.end - start <= o.max_line_s:
                words.append(w)
                continue
        lines.append([w.start, [w]])
    out = []
    for i, (start, words) in enumerate(lines):
        end = lines[i + 1][0] if i + 1 < len(lines) else max(utt.end, words[-1].end)
        out.append((start, max(end, start), " ".join(x.word for x in words)))
    return out


def _ends_sentence(word: str) -> bool:
    return word.endswith((".", "?", "!")) and word not in ABBREVIATIONS


def format_timestamp(seconds: float, decimal: str = ".", always_hours: bool = True) -> str:
    """``HH:MM:SS.mmm`` (``decimal=","`` for SubRip)."""
    ms = int(round(max(0.0, seconds) * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    head = f"{h:02d}:" if always_hours or h else ""
    return f"{head}{m:02d}:{s:02d}{decimal}{ms:03d}"


def input_stem(audio_path: str) -> str:
    """The output name of one input: its file name without extension (``-``: ``stdin``)."""
    return "stdin" if audio_path == "-" else os.path.splitext(os.path.basename(audio_path))[0]


def output_stems(audio_paths: Sequence[str]) -> list[str]:
    """One distinct output name per input, in order: its :func:`input_stem`, or when an earlier
    input already has that name (compared case-insensitively, as some file systems do), the
    first free ``<stem>-2``, ``<stem>-3``, ... . An input given twice gets two names, as does
    each segment of one file in a manifest. Deterministic: the same inputs in the same order
    always get the same names."""
    stems = [input_stem(p) for p in audio_paths]
    wanted = {s.casefold() for s in stems}
    taken: set[str] = set()
    out = []
    for stem in stems:
        name, k = stem, 1
        while name.casefold() in taken or (name != stem and name.casefold() in wanted):
            k += 1
            name = f"{stem}-{k}"
        taken.add(name.casefold())
        out.append(name)
    return out


class Sink:
    """One output file being written; it gets its final name at :meth:`close`."""

    def __init__(self, writer: "Writer", path: str, name: str):
        self.writer, self.path, self.name = writer, path, name
        self._tmp = path + ".part"
        self.f: TextIO = open(self._tmp, "w", encoding="utf-8")
        self.count = 0
        self.texts: list[str] = []  # json: the utterances' texts, for the whole text at the end
        writer._begin(self)

    def add(self, utt: Utterance) -> None:
        if utt.text:
            self.writer._add(self, utt)

    def close(self, duration: float) -> str:
        self.writer._end(self, duration)
        self.f.close()
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop the unfinished file."""
        self.f.close()
        if os.path.exists(self._tmp):
            os.remove(self._tmp)


class Writer:
    extension = ""

    def __init__(self, output_dir: str, options: Optional[SubtitleOptions] = None):
        self.output_dir = output_dir
        self.options = options or SubtitleOptions()

    def output_path(self, audio_path: str, stem: Optional[str] = None) -> str:
        """``OUTPUT_DIR/<stem>.<format>``; ``stem`` defaults to :func:`input_stem` of the input
        (give the one :func:`output_stems` chose when a run writes several inputs)."""
        return os.path.join(self.output_dir, f"{stem or input_stem(audio_path)}.{self.extension}")

    def open(self, audio_path: str, stem: Optional[str] = None) -> Sink:
        os.makedirs(self.output_dir, exist_ok=True)
        return Sink(self, self.output_path(audio_path, stem), audio_path)

    def write(self, result: Result, audio_path: Optional[str] = None, stem: Optional[str] = None) -> str:
        """Write a whole :class:`Result`; returns the file's path."""
        sink = self.open(audio_path or result.name, stem)
        for utt in result.utterances:
            sink.add(utt)
        return sink.close(result.duration)

    # per format
    def _begin(self, sink: Sink) -> None:
        pass

    def _add(self, sink: Sink, utt: Utterance) -> None:
        raise NotImplementedError

    def _end(self, sink: Sink, duration: float) -> None:
        pass


class TxtWriter(Writer):
    """One utterance a line."""

    extension = "txt"

    def _add(self, sink, utt):
        sink.f.write(utt.text + "\n")


class SrtWriter(Writer):
    """SubRip: numbered cues (``00:01:02,345``), the lines of :func:`subtitle_lines`."""

    extension = "srt"

    def _add(self, sink, utt):
        for start, end, text in subtitle_lines(utt, self.options):
            sink.count += 1
            sink.f.write(f"{sink.count}\n{format_timestamp(start, ',')} --> {format_timestamp(end, ',')}\n{text}\n\n")


class VttWriter(Writer):
    """WebVTT: cues (``00:01:02.345``), the lines of :func:`subtitle_lines`."""

    extension = "vtt"

    def _begin(self, sink):
        sink.f.write("WEBVTT\n\n")

    def _add(self, sink, utt):
        for start, end, text in subtitle_lines(utt, self.options):
            sink.f.write(f"{format_timestamp(start)} --> {format_timestamp(end)}\n{text}\n\n")


class TsvWriter(Writer):
    """``start<TAB>end<TAB>text`` per subtitle line, times in integer milliseconds (as Whisper
    writes them)."""

    extension = "tsv"

    def _begin(self, sink):
        sink.f.write("start\tend\ttext\n")

    def _add(self, sink, utt):
        for start, end, text in subtitle_lines(utt, self.options):
            sink.f.write(f"{int(round(start * 1000))}\t{int(round(end * 1000))}\t{text}\n")


class JsonWriter(Writer):
    """``{"name", "utterances": [{"text", "start", "end", "words": [{"word", "start", "end",
    "confidence"}]}], "text", "duration"}``, times in seconds."""

    extension = "json"

    def _begin(self, sink):
        sink.f.write('{"name": ' + json.dumps(sink.name) + ', "utterances": [')

    def _add(self, sink, utt):
        d = {"text": utt.text, "start": utt.start, "end": utt.end,
             "words": [{"word": w.word, "start": w.start, "end": w.end, "confidence": w.confidence} for w in utt.words]}
        sink.f.write(("," if sink.count else "") + "\n  " + json.dumps(d))
        sink.count += 1
        sink.texts.append(utt.text)

    def _end(self, sink, duration):
        sink.f.write(f'\n], "text": {json.dumps(" ".join(sink.texts))}, "duration": {round(duration, 3)}}}\n')


WRITERS = {"txt": TxtWriter, "json": JsonWriter, "srt": SrtWriter, "vtt": VttWriter, "tsv": TsvWriter}


def get_writers(output_format: str, output_dir: str, options: Optional[SubtitleOptions] = None) -> list[Writer]:
    """The writers of one format (``txt``, ``json``, ``srt``, ``vtt``, ``tsv``) or of ``all``."""
    if output_format == "all":
        return [cls(output_dir, options) for cls in WRITERS.values()]
    if output_format not in WRITERS:
        raise ValueError(f"unknown output format {output_format!r}: expected one of {', '.join(FORMATS)} or all")
    return [WRITERS[output_format](output_dir, options)]
