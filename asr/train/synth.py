"""Synthetic speech for training: text rendered by the speech synthesizers in Debian's archive
(espeak-ng, flite, festival) through their command-line programs, with the voice, speaking rate,
pitch and vocal tract length varied per rendering, noise on top, written as a JSONL manifest of
the project's own format (torch-free).

A rendering is planned from ``(seed, index)`` alone, so a run is repeatable and resumable: an
audio file that already exists is kept, a missing one is rendered (into a temporary name, then
renamed). ``synth.json`` beside the manifest records the options; a second run into the same
folder with other options is refused rather than mixed.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
import soundfile as sf

from asr.audio import resample, to_mono
from asr.fileio import atomic_open, temporary_path
from asr.manifest import Entry, write_manifest
from asr.text import normalize_text, strip_control

__all__ = ["ENGINES", "SynthOptions", "Rendering", "Room", "plan", "render", "synthesize", "available_engines",
           "missing_engines", "read_texts"]

log = logging.getLogger(__name__)

# espeak-ng: its English accents and the voice variants that sound like people (the variant
# folder also holds robots, whispers and a croak; those are left out). Rate in words per minute
# (default 175), pitch 0-99 (default 50).
ESPEAK_ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029",
                  "en-us-nyc")
ESPEAK_VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2",
                   "klatt3", "Alex", "Andy", "Annie", "adam", "aunty", "belinda", "benjamin", "caleb", "david", "ed",
                   "edward", "grandma", "grandpa", "john", "linda", "max", "norbert", "paul", "quincy", "rob",
                   "robert", "steph", "travis", "victor", "zac")
# flite's built-in voices (awb_time only knows clock times); f0 in Hz around each voice's own.
FLITE_VOICES = {"kal": 105.0, "kal16": 105.0, "awb": 110.0, "rms": 105.0, "slt": 175.0}
# festival voices from Debian (festvox-kallpc16k, festvox-kdlpc16k, festvox-us-slt-hts)
FESTIVAL_VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")
ENGINES = {
    "espeak-ng": ("espeak-ng", "espeak-ng"),  # engine: (program, Debian package(s))
    "flite": ("flite", "flite"),
    "festival": ("text2wave", "festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts"),
}
NOISES = ("white", "pink", "brown")


@dataclass(frozen=True)
class SynthOptions:
    """What is rendered and how much it varies. ``variety=False`` is the plain baseline: each
    engine's default voice, rate and pitch, no vocal tract shift and no noise."""

    engines: tuple[str, ...] = ("espeak-ng", "flite", "festival")
    takes: int = 2  # renderings of every text
    sample_rate: int = 16000
    variety: bool = True
    rate: tuple[float, float] = (0.8, 1.25)  # speaking rate, a factor of the engine's default
    child_share: float = 0.3  # share of renderings made child-like (vocal tract shift up)
    child_shift: tuple[float, float] = (1.15, 1.4)
    adult_shift: tuple[float, float] = (0.92, 1.08)  # everyone else: a small shift either way
    noise_share: float = 0.5  # share of renderings with noise added
    snr_db: tuple[float, float] = (10.0, 35.0)
    pad_s: tuple[float, float] = (0.05, 0.4)  # silence before and after the speech
    room_share: float = 0.0  # share of renderings heard through a simulated room (needs pyroomacoustics)
    rt60: tuple[float, float] = (0.15, 0.6)  # the room's reverberation time, seconds
    mic_distance: tuple[float, float] = (0.2, 1.5)  # talker to microphone, metres
    seed: int = 1234

    def __post_init__(self):
        problems = []
        unknown = [e for e in self.engines if e not in ENGINES]
        if not self.engines or unknown:
            problems.append(f"engines must be some of {', '.join(ENGINES)}, got {', '.join(self.engines) or 'none'}")
        if self.takes < 1:
            problems.append(f"takes must be >= 1, got {self.takes}")
        if not 4000 <= self.sample_rate <= 48000:
            problems.append(f"sample_rate must be in [4000, 48000] Hz, got {self.sample_rate}")
        for name, low_ok, rule in (("rate", lambda v: v > 0, "0 < low"), ("child_shift", lambda v: v > 0, "0 < low"),
                                   ("adult_shift", lambda v: v > 0, "0 < low"), ("pad_s", lambda v: v >= 0, "0 <= low"),
                                   ("snr_db", lambda v: v >= -20, "-20 <= low"),
                                   ("rt60", lambda v: v >= 0.05, "0.05 <= low"),
                                   ("mic_distance", lambda v: v >= 0.05, "0.05 <= low")):
            lo, hi = getattr(self, name)
            if not (low_ok(lo) and lo <= hi):
                problems.append(f"{name} must be [low, high] with {rule} <= high, got {[lo, hi]}")
        if self.rt60[1] > 2.0 or self.mic_distance[1] > 4.0:
            problems.append(f"rt60 must end at most at 2 s and mic_distance at 4 m, got {list(self.rt60)}, "
                            f"{list(self.mic_distance)}")
        for name in ("child_share", "noise_share", "room_share"):
            if not 0 <= getattr(self, name) <= 1:
                problems.append(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if problems:
            raise ValueError("synthesis options: " + "; ".join(problems))

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


@dataclass(frozen=True)
class Rendering:
    """One planned rendering: everything needed to make its audio again."""

    index: int
    text: str
    engine: str
    voice: str
    rate: float  # speaking rate factor (before the shift is undone)
    pitch: Optional[float]  # espeak-ng 0-99 or flite f0 in Hz; None: the voice's own
    # vocal tract shift (> 1: shorter tract, child-like; the engines have no children's voices):
    # the engine speaks ``shift`` times slower and the result is played ``shift`` times faster
    # (resampled), so its length comes back and pitch and formants rise by ``shift``
    shift: float
    noise: Optional[str]
    snr_db: Optional[float]
    pad: tuple[float, float]
    level: float  # peak level of the result
    room: Optional["Room"] = None  # heard through this simulated room; None: dry

    @property
    def speaker(self) -> str:
        return f"synth-{self.engine}-{self.voice}"

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        del d["index"], d["text"]
        d["pad"] = [round(p, 3) for p in self.pad]
        if self.room is None:
            del d["room"]
        else:
            d["room"] = {k: round(v, 3) if isinstance(v, float) else [round(x, 3) for x in v] for k, v in d["room"].items()}
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in d.items()}


@dataclass(frozen=True)
class Room:
    """A simulated shoebox room: its size and reverberation time, where the talker and the
    microphone stand (metres from one corner). The engines speak into an anechoic void; a share
    of renderings (``room_share``) is heard through a room, its wall absorption giving the drawn
    reverberation time (RT60, by Sabine's formula), its impulse response convolved with the
    speech before the noise goes on."""

    size: tuple[float, float, float]
    rt60: float
    source: tuple[float, float, float]
    mic: tuple[float, float, float]

    def impulse_response(self, sample_rate: int) -> np.ndarray:
        """The room's impulse response from talker to microphone (image source method), peak 1."""
        pra = _pyroomacoustics()
        absorption, max_order = pra.inverse_sabine(self.rt60, list(self.size))
        room = pra.ShoeBox(list(self.size), fs=sample_rate, materials=pra.Material(absorption), max_order=max_order)
        room.add_source(list(self.source))
        room.add_microphone(list(self.mic))
        room.compute_rir()
        h = np.asarray(room.rir[0][0], dtype=np.float64)
        return h / max(float(np.max(np.abs(h))), 1e-12)


def _pyroomacoustics():
    try:
        import pyroomacoustics
    except ImportError:
        raise RuntimeError("room simulation (room_share > 0, --room-share) needs pyroomacoustics: "
                           "pip install '.[synth]' (or pip install pyroomacoustics)") from None
    return pyroomacoustics


def _draw_room(rng: np.random.Generator, opts: SynthOptions) -> Room:
    """A room 3-8 x 2.5-6 x 2.4-3.2 m; the talker anywhere at least 0.5 m from the walls, the
    microphone ``mic_distance`` away in a random direction (turned back inside if it would
    leave the room)."""
    size = np.array([rng.uniform(3.0, 8.0), rng.uniform(2.5, 6.0), rng.uniform(2.4, 3.2)])
    rt60 = float(rng.uniform(*opts.rt60))
    source = np.array([rng.uniform(0.5, size[0] - 0.5), rng.uniform(0.5, size[1] - 0.5), rng.uniform(1.0, 1.8)])
    distance = float(rng.uniform(*opts.mic_distance))
    angle, lift = rng.uniform(0, 2 * np.pi), rng.uniform(-0.3, 0.3)
    step = distance * np.array([np.cos(angle), np.sin(angle), lift]) / np.sqrt(1 + lift**2)
    mic = source + step
    outside = (mic < 0.2) | (mic > size - 0.2)
    mic = np.where(outside, source - step, mic).clip(0.2, size - 0.2)
    return Room(tuple(float(v) for v in size), rt60, tuple(float(v) for v in source), tuple(float(v) for v in mic))


def available_engines() -> list[str]:
    """The engines whose program is on the PATH."""
    return [e for e, (prog, _) in ENGINES.items() if shutil.which(prog)]


def missing_engines(engines: Iterable[str]) -> list[str]:
    return [e for e in engines if not shutil.which(ENGINES[e][0])]


def install_hint(engines: Sequence[str]) -> str:
    pkgs = " ".join(ENGINES[e][1] for e in engines)
    return f"apt-get install {pkgs}"


def read_texts(path: str, manifest: bool = False) -> list[str]:
    """Unique normalized texts, in order of first appearance: one a line of a text file, or the
    transcripts of a manifest. Empty lines (or texts that normalize to nothing) are left out."""
    if manifest:
        from asr.manifest import read_manifest

        raw = [e.text for e in read_manifest(path)]
    else:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: text file not found")
        try:
            with open(path, encoding="utf-8-sig") as f:
                raw = f.read().splitlines()
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    texts = list(dict.fromkeys(t for t in (normalize_text(r) for r in raw) if t))
    if not texts:
        raise ValueError(f"{path}: no text to render")
    return texts


def plan(texts: Sequence[str], opts: SynthOptions) -> list[Rendering]:
    """``opts.takes`` renderings of every text, the engines taking turns; each rendering's
    voice and settings drawn from ``(opts.seed, index)``."""
    out = []
    for take in range(opts.takes):
        for t, text in enumerate(texts):
            index = take * len(texts) + t
            rng = np.random.default_rng([opts.seed, index])
            engine = opts.engines[index % len(opts.engines)]
            out.append(_draw(index, text, engine, rng, opts))
    return out


def _draw(index: int, text: str, engine: str, rng: np.random.Generator, opts: SynthOptions) -> Rendering:
    if not opts.variety:
        voice = {"espeak-ng": "en-us", "flite": "slt", "festival": "kal_diphone"}[engine]
        return Rendering(index, text, engine, voice, 1.0, None, 1.0, None, None, (0.15, 0.15), 0.5)
    rate = float(np.exp(rng.uniform(*np.log(opts.rate))))
    child = rng.random() < opts.child_share
    shift = float(rng.uniform(*(opts.child_shift if child else opts.adult_shift)))
    pitch = None
    if engine == "espeak-ng":
        variant = ESPEAK_VARIANTS[rng.integers(len(ESPEAK_VARIANTS))]
        voice = ESPEAK_ACCENTS[rng.integers(len(ESPEAK_ACCENTS))] + (f"+{variant}" if variant else "")
        pitch = float(rng.integers(20, 81))
    elif engine == "flite":
        voice = list(FLITE_VOICES)[rng.integers(len(FLITE_VOICES))]
        pitch = FLITE_VOICES[voice] * float(rng.uniform(0.85, 1.2))
    else:
        voice = FESTIVAL_VOICES[rng.integers(len(FESTIVAL_VOICES))]
    noise = snr = None
    if rng.random() < opts.noise_share:
        noise = NOISES[rng.integers(len(NOISES))]
        snr = float(rng.uniform(*opts.snr_db))
    pad = (float(rng.uniform(*opts.pad_s)), float(rng.uniform(*opts.pad_s)))
    level = float(rng.uniform(0.1, 0.9))
    # drawn after everything else, so that sets planned before rooms existed plan the same
    room = _draw_room(rng, opts) if opts.room_share > 0 and rng.random() < opts.room_share else None
    return Rendering(index, text, engine, voice, rate, pitch, shift, noise, snr, pad, level, room)


def _engine_command(r: Rendering, text_file: str, wav: str) -> list[str]:
    """The engine's command line: speaking rate ``r.rate / r.shift`` (the shift speeds it up again)."""
    speed = r.rate / r.shift
    if r.engine == "espeak-ng":
        cmd = ["espeak-ng", "-v", r.voice, "-s", str(int(round(175 * speed))), "-w", wav, "-f", text_file]
        return cmd + (["-p", str(int(r.pitch))] if r.pitch is not None else [])
    if r.engine == "flite":
        cmd = ["flite", "-voice", r.voice, "-f", text_file, "-o", wav, "--setf", f"duration_stretch={1 / speed:.4f}"]
        # the shift raises pitch by r.shift too: ask for a pitch that lands on r.pitch
        return cmd + (["--setf", f"int_f0_target_mean={r.pitch / r.shift:.1f}"] if r.pitch is not None else [])
    return ["text2wave", "-eval", f"(voice_{r.voice})", "-eval", f"(Parameter.set 'Duration_Stretch {1 / speed:.4f})",
            "-o", wav, text_file]


def _noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(n)
    if kind == "white":
        return white
    spectrum = np.fft.rfft(white)
    f = np.arange(len(spectrum), dtype=np.float64)
    f[0] = 1.0
    spectrum /= np.sqrt(f) if kind == "pink" else f  # 1/f or 1/f^2 power
    return np.fft.irfft(spectrum, n)


def render(r: Rendering, sample_rate: int, seed: int = 0, timeout_s: float = 60.0) -> np.ndarray:
    """Run the engine for ``r`` and return float32 samples at ``sample_rate``. Raises
    RuntimeError (with the engine's message) when the engine fails or gives no sound."""
    with tempfile.TemporaryDirectory(prefix="asr-synth-") as tmp:
        text_file, wav = os.path.join(tmp, "text.txt"), os.path.join(tmp, "out.wav")
        with open(text_file, "w", encoding="utf-8") as f:
            f.write(r.text + "\n")
        cmd = _engine_command(r, text_file, wav)
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{r.engine} took more than {timeout_s:g} s") from None
        err = strip_control(done.stderr.decode("utf-8", "replace")).strip().splitlines()  # no colours in our logs
        if done.returncode != 0 or not os.path.isfile(wav):
            raise RuntimeError(f"{r.engine} failed (exit {done.returncode}): {err[-1] if err else 'no message'}")
        try:
            samples, rate = sf.read(wav, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise RuntimeError(f"{r.engine} wrote no readable audio: {exc}") from None
    samples = to_mono(samples)
    if samples.size == 0 or not np.any(samples):
        raise RuntimeError(f"{r.engine} gave no sound for {r.text!r}")
    # played r.shift times faster: the same samples taken to be at rate * shift
    samples = resample(samples, int(round(rate * r.shift)), sample_rate).astype(np.float64)
    rng = np.random.default_rng([seed, r.index, 1])
    pad = [np.zeros(int(p * sample_rate)) for p in r.pad]
    samples = np.concatenate([pad[0], samples, pad[1]])
    if r.room is not None:  # reverberation: the tail runs on into the trailing silence, and 0.2 s past it
        from scipy.signal import fftconvolve

        samples = fftconvolve(samples, r.room.impulse_response(sample_rate))[: len(samples) + int(0.2 * sample_rate)]
    if r.noise is not None:
        speech_power = float(np.mean(samples[len(pad[0]) : len(samples) - len(pad[1])] ** 2)) + 1e-12
        noise = _noise(r.noise, len(samples), rng)
        noise *= np.sqrt(speech_power / (np.mean(noise**2) + 1e-12) / 10 ** (r.snr_db / 10))
        samples = samples + noise
    samples *= r.level / max(float(np.max(np.abs(samples))), 1e-9)
    return samples.astype(np.float32)


def _audio_path(out_dir: str, r: Rendering) -> str:
    return os.path.join(out_dir, "audio", f"{r.index // 1000:03d}", f"{r.index:07d}.flac")


def _existing(path: str) -> Optional[float]:
    """Duration of a finished audio file (None if missing or unreadable)."""
    try:
        info = sf.info(path)
    except (sf.LibsndfileError, RuntimeError, OSError):
        return None
    return info.frames / info.samplerate if info.frames > 0 else None


def _entry(r: Rendering, path: str, duration: float) -> Entry:
    return Entry(os.path.abspath(path), duration, r.text, speaker=r.speaker, extra={"synth": r.to_json()})


def synthesize(
    texts: Sequence[str],
    out_dir: str,
    opts: SynthOptions,
    jobs: int = 2,
    progress: bool = True,
    limit: Optional[int] = None,
    on_failure: Optional[Callable[[Rendering, str], None]] = None,
) -> dict:
    """Render every planned rendering that ``out_dir`` lacks (``jobs`` at a time) and write
    ``out_dir/manifest.jsonl`` listing all that exist. Failures are logged, listed in
    ``out_dir/failed.jsonl`` and left out; the next run tries them again. Returns counts:
    ``planned``, ``rendered`` (this run), ``kept`` (already there), ``failed``, ``seconds``
    (audio in the manifest)."""
    from tqdm import tqdm

    missing = missing_engines(opts.engines)
    if missing:
        raise RuntimeError(f"speech synthesizer(s) not installed: {', '.join(missing)} "
                           f"(Debian/Ubuntu: {install_hint(missing)}; or leave them out with --engines)")
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    if opts.room_share > 0:
        _pyroomacoustics()  # say what to install before anything is rendered
    os.makedirs(out_dir, exist_ok=True)
    meta_path = os.path.join(out_dir, "synth.json")
    # takes may grow between runs (renderings are planned take by take): more takes of the same
    # texts and settings add to what is there
    meta = {"options": _resumable_options(opts), "texts": len(texts),
            "text_digest": _digest(texts)}
    if os.path.isfile(meta_path):
        with open(meta_path, encoding="utf-8") as f:
            old = json.load(f)
        # options added since that set was made (e.g. room_share) count as their defaults there
        defaults = _resumable_options(SynthOptions())
        if isinstance(old.get("options"), dict):
            old["options"] = {**{k: v for k, v in defaults.items() if k not in old["options"]}, **old["options"]}
        if old != meta:
            changed = sorted(k for k in set(old.get("options", {})) | set(meta["options"])
                             if old.get("options", {}).get(k) != meta["options"].get(k))
            what = ", ".join(changed) if changed else "the texts"
            raise ValueError(f"{out_dir} holds a synthesis with other settings ({what} differ): "
                             "use a new --out, or the same settings to resume it")
    else:
        with atomic_open(meta_path) as f:
            json.dump(meta, f, indent=1)
    # the manifest lists what exists of this run's plan: a run with fewer takes lists fewer
    todo_all = plan(texts, opts)
    if limit is not None:
        todo_all = todo_all[:limit]
    done: dict[int, Entry] = {}
    todo = []
    for r in todo_all:
        d = _existing(_audio_path(out_dir, r))
        if d is None:
            todo.append(r)
        else:
            done[r.index] = _entry(r, _audio_path(out_dir, r), d)
    kept = len(done)
    failed: list[dict] = []

    def work(r: Rendering) -> Entry:
        samples = render(r, opts.sample_rate, opts.seed)
        path = _audio_path(out_dir, r)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = temporary_path(path)
        sf.write(tmp, samples, opts.sample_rate, format="FLAC", subtype="PCM_16")
        os.replace(tmp, path)
        return _entry(r, path, len(samples) / opts.sample_rate)

    bar = tqdm(total=len(todo_all), initial=kept, desc="synthesize", unit="utt", disable=None if progress else True)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=jobs)
    try:
        futures = {pool.submit(work, r): r for r in todo}
        for fut in concurrent.futures.as_completed(futures):
            r = futures[fut]
            try:
                done[r.index] = fut.result()
            except (RuntimeError, OSError, ValueError) as exc:
                log.warning("rendering %d (%s %s, %r) failed: %s", r.index, r.engine, r.voice, r.text, exc)
                failed.append({"index": r.index, "text": r.text, "engine": r.engine, "voice": r.voice, "error": str(exc)})
                if on_failure is not None:
                    on_failure(r, str(exc))
            bar.update(1)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # Ctrl-C: finish what runs, keep what is done
        bar.close()
        entries = [done[i] for i in sorted(done)]
        write_manifest(os.path.join(out_dir, "manifest.jsonl"), entries)
        with atomic_open(os.path.join(out_dir, "failed.jsonl")) as f:
            for row in failed:
                f.write(json.dumps(row) + "\n")
    return {"planned": len(todo_all), "rendered": len(done) - kept, "kept": kept, "failed": len(failed),
            "seconds": round(sum(e.duration for e in entries), 1)}


def _resumable_options(opts: SynthOptions) -> dict:
    """The options a folder's renderings depend on (all but ``takes``, which may grow)."""
    return {k: v for k, v in opts.to_dict().items() if k != "takes"}


def _digest(texts: Sequence[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8") + b"\n")
    return h.hexdigest()[:16]
