"""Pictures of training and of what a model hears, with matplotlib (``asr plot``): training
curves (:func:`plot_curves`), one input through a recognizer (:func:`plot_utterance`) or
through a streaming model as a live stream (:func:`plot_stream`), and gradient flow through
time (:func:`plot_gradient_flow`).

matplotlib (and librosa) are imported only inside the functions that draw, which say what to
install when they are missing. Every function writes one file per format in ``formats``
(``out`` + ``.png``, ``.svg``; PNGs at ``dpi``) and returns their paths.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["Experiment", "read_experiment", "plot_curves", "plot_utterance", "plot_stream", "stream_timeline",
           "plot_gradient_flow", "gradient_flow_summary", "VIEWS_HINT"]

VIEWS_HINT = "pip install 'asr-toolkit[views]' (or '.[views]' from a checkout)"
FORMATS = ("png", "svg")


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError(f"asr plot needs matplotlib: {VIEWS_HINT}") from None
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out: str, formats: Sequence[str], dpi: int = 100) -> list[str]:
    plt = _pyplot()
    os.makedirs(os.path.dirname(os.path.abspath(out)) or ".", exist_ok=True)
    paths = []
    for fmt in formats:
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        path = f"{out}.{fmt}"
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
        if fmt == "png":  # a 256-colour palette: a third of the size, no visible change for plots
            from PIL import Image  # matplotlib's own dependency

            with Image.open(path) as img:
                small = img.convert("RGB").quantize(colors=256)
            small.save(path, optimize=True)
        paths.append(path)
    plt.close(fig)
    return paths


# --- training curves ------------------------------------------------------------------------
def _read_csv(path: str) -> list[dict]:
    if not os.path.isfile(path):
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _num(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


@dataclass
class Experiment:
    """What an experiment folder holds, as numbers: ``epochs`` (log.csv columns), ``steps``
    (steps.csv columns, the last row of each step kept), ``gates`` (gates.csv rows)."""

    name: str
    path: str
    epochs: dict = field(default_factory=dict)
    steps: dict = field(default_factory=dict)
    gates: list = field(default_factory=list)

    def column(self, table: str, key: str) -> np.ndarray:
        return np.array([_num(v) for v in getattr(self, table).get(key, [])])


def read_experiment(path: str, name: Optional[str] = None) -> Experiment:
    """Read ``path``/log.csv (required), steps.csv and gates.csv (when there)."""
    log_csv = os.path.join(path, "log.csv")
    if not os.path.isfile(log_csv):
        raise FileNotFoundError(f"{path}: no log.csv (not an experiment folder of `asr train`?)")
    rows = _read_csv(log_csv)
    epochs = {k: [r.get(k) for r in rows] for k in (rows[0] if rows else {})}
    by_step: dict = {}
    for r in _read_csv(os.path.join(path, "steps.csv")):
        by_step[int(r["step"])] = r  # a resumed run repeats steps: the last one counts
    steps_rows = [by_step[k] for k in sorted(by_step)]
    steps = {k: [r.get(k) for r in steps_rows] for k in (steps_rows[0] if steps_rows else {})}
    gates = _read_csv(os.path.join(path, "gates.csv"))
    return Experiment(name or os.path.basename(os.path.normpath(path)), path, epochs, steps, gates)


def _smooth(y: np.ndarray, n: int) -> np.ndarray:
    if y.size < 3 or n < 2:
        return y
    n = min(n, y.size)
    k = np.ones(n) / n
    pad = np.concatenate([np.full(n - 1, y[0]), y])
    return np.convolve(pad, k, mode="valid")


def plot_curves(experiments: Sequence[Experiment], out: str, formats: Sequence[str] = FORMATS,
                grad_clip: Optional[float] = None, dpi: int = 100) -> list[str]:
    """Training curves of ``experiments`` overlaid (one colour each), a 2 x 3 grid: training
    loss, dev WER (solid) and CER (dashed), learning rate, gradient norm before clipping per step
    with the clip threshold, the gradient norm distribution per epoch (median, 10-90% band, max)
    and the share of steps clipped per epoch. ``grad_clip``: the threshold when steps.csv does
    not say (runs before it was recorded)."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(15, 7.5))
    (ax_loss, ax_wer, ax_lr), (ax_norm, ax_dist, ax_clip) = axes
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    thresholds = set()
    for i, e in enumerate(experiments):
        c = colors[i % len(colors)]
        ep = e.column("epochs", "epoch")
        step, loss = e.column("steps", "step"), e.column("steps", "loss")
        if step.size:
            ax_loss.plot(step, loss, color=c, alpha=0.25, lw=0.7)
            ax_loss.plot(step, _smooth(loss, max(1, step.size // 50)), color=c, lw=1.5, label=e.name)
        else:
            ax_loss.plot(e.column("epochs", "step"), e.column("epochs", "train_loss"), "o-", color=c, label=e.name)
        wer, cer = e.column("epochs", "dev_wer"), e.column("epochs", "dev_cer")
        if np.isfinite(wer).any():
            ax_wer.plot(ep, wer, "-", color=c, label=f"{e.name} WER")
            ax_wer.plot(ep, cer, "--", color=c, label=f"{e.name} CER")
        if step.size:
            ax_lr.plot(step, e.column("steps", "lr"), color=c, label=e.name)
        else:
            ax_lr.plot(e.column("epochs", "step"), e.column("epochs", "lr"), "o-", color=c, label=e.name)
        norm = e.column("steps", "grad_norm")
        clip = e.column("steps", "grad_clip")
        threshold = float(clip[np.isfinite(clip)][-1]) if np.isfinite(clip).any() else grad_clip
        if threshold is not None:
            thresholds.add(threshold)
        if step.size:
            ax_norm.plot(step, norm, color=c, lw=0.7, label=e.name)
            epochs_of = e.column("steps", "epoch")
            es = np.unique(epochs_of[np.isfinite(epochs_of)])
            per = [norm[(epochs_of == k) & np.isfinite(norm)] for k in es]
            q = np.array([np.percentile(p, [10, 50, 90]) if p.size else [np.nan] * 3 for p in per])
            ax_dist.fill_between(es, q[:, 0], q[:, 2], color=c, alpha=0.2)
            ax_dist.plot(es, q[:, 1], "-", color=c, label=f"{e.name} median (10-90%)")
            ax_dist.plot(es, [p.max() if p.size else np.nan for p in per], ":", color=c, label=f"{e.name} max")
        elif "grad_norm" in e.epochs:
            ax_norm.plot(e.column("epochs", "step"), e.column("epochs", "grad_norm"), "o-", color=c, label=f"{e.name} (epoch mean)")
        if "clip_rate" in e.epochs:  # measured by training against its own threshold
            ax_clip.plot(ep, 100 * e.column("epochs", "clip_rate"), "o-", color=c, ms=3, label=e.name)
    for t in sorted(thresholds):
        for ax in (ax_norm, ax_dist):
            ax.axhline(t, color="k", ls="--", lw=1)
            ax.annotate(f"clip {t:g}", (0.01, t), xycoords=("axes fraction", "data"), va="bottom", fontsize=8)
    ax_loss.set(title="training loss (CTC, per utterance)", xlabel="step", yscale="log")
    ax_wer.set(title="dev WER (solid) and CER (dashed), %", xlabel="epoch")
    ax_lr.set(title="learning rate", xlabel="step")
    ax_norm.set(title="gradient norm before clipping", xlabel="step", yscale="log")
    ax_dist.set(title="gradient norm per epoch", xlabel="epoch", yscale="log")
    ax_clip.set(title="steps clipped, %", xlabel="epoch", ylim=(-3, 103))
    from matplotlib.ticker import MaxNLocator

    for ax in (ax_wer, ax_dist, ax_clip):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes.flat:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out, formats, dpi)


def plot_gates(experiments: Sequence[Experiment], out: str, formats: Sequence[str] = FORMATS, dpi: int = 100,
               all_gates: bool = False) -> list[str]:
    """Gate statistics per epoch (gates.csv): one panel per experiment and gate; the share of
    values near 1 (solid) and near 0 (dashed) for each layer and direction. Without
    ``all_gates``, each experiment's first gate only: the one that decides what is kept (GRU
    update gate z, LSTM forget gate f; the tanh RNN's |h|)."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    panels = []
    for e in experiments:
        gates = list(dict.fromkeys(r["gate"] for r in e.gates))
        for gate in gates if all_gates else gates[:1]:
            panels.append((e, gate))
    if not panels:
        raise ValueError("no gate statistics (gates.csv) in " + ", ".join(e.path for e in experiments))
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.4 * rows), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (e, gate) in zip(axes.flat, panels):
        keys = list(dict.fromkeys((r["layer"], r["direction"]) for r in e.gates if r["gate"] == gate))
        for k, (layer, direction) in enumerate(keys):
            rs = [r for r in e.gates if r["gate"] == gate and r["layer"] == layer and r["direction"] == direction]
            ep = [int(r["epoch"]) for r in rs]
            c = colors[k % len(colors)]
            ax.plot(ep, [100 * _num(r["near1"]) for r in rs], "-", color=c, label=f"layer {layer} {direction}")
            ax.plot(ep, [100 * _num(r["near0"]) for r in rs], "--", color=c)
        ax.set(title=f"{e.name}: {gate} near 1 (solid) / near 0 (dashed), %", xlabel="epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, out, formats, dpi)


# --- one utterance --------------------------------------------------------------------------
def _symbol(s: str) -> str:
    return {"<blank>": "blank", " ": "space"}.get(s, s)


def plot_utterance(recognizer, audio, out: str, text: Optional[str] = None, formats: Sequence[str] = FORMATS,
                   title: Optional[str] = None, dpi: int = 100) -> list[str]:
    """Waveform, log-mel, CTC posteriors with the greedy path and word boundaries, reference
    (``text``) and hypothesis of one input (a path or a mono array at the model's rate)
    through ``recognizer`` (:func:`asr.load_model`: a checkpoint or an ONNX model)."""
    from asr.audio import read_input
    from asr.decoding.greedy import greedy_alignment
    from asr.frontend import logmel
    from asr.text import normalize_text

    plt = _pyplot()
    fe = recognizer.backend.frontend
    sr = fe.sample_rate
    wave, name = read_input(audio, sr, sr, "input")  # an array is at the model's rate
    (lp,) = recognizer.log_probs([wave])
    result = recognizer.decode(lp, name, wave.size / sr)
    mel = logmel(wave, fe)
    shift = recognizer.frame_shift_s
    vocab = recognizer.tokenizer.vocab
    duration = wave.size / sr

    fig, axes = plt.subplots(3, 1, figsize=(11, 8.2), sharex=True, gridspec_kw={"height_ratios": [1, 1.4, 1.6]})
    ax_w, ax_m, ax_p = axes
    t = np.arange(wave.size) / sr
    ax_w.plot(t, wave, lw=0.5, color="0.2")
    ax_w.set(ylabel="amplitude", xlim=(0, duration))
    ax_w.set_title(title or os.path.basename(str(name)), fontsize=10, loc="left")
    _specshow(ax_m, mel, fe)
    # posteriors: one row per symbol, frame f spans [f * shift, (f + 1) * shift); log scale from
    # 1e-4 (black) to 1 (white), so the runners-up show beside CTC's near-certain spikes
    p = np.maximum(lp.T / np.log(10.0), -4.0)
    ax_p.imshow(p, aspect="auto", origin="lower", cmap="magma", vmin=-4, vmax=0, interpolation="nearest",
                extent=(0, lp.shape[0] * shift, -0.5, len(vocab) - 0.5))
    best = lp.argmax(axis=1)
    ax_p.step((np.arange(lp.shape[0]) + 0.5) * shift, best, where="mid", color="cyan", lw=1.0, alpha=0.9, label="greedy path")
    if len(vocab) <= 40:
        ax_p.set_yticks(range(len(vocab)), [_symbol(v) for v in vocab], fontsize=7)
    ax_p.set(ylabel="CTC posteriors (log, 1e-4 to 1)", xlabel="time (s)")
    for tok, a, _b in greedy_alignment(lp):
        ax_p.annotate(_symbol(vocab[tok]), ((a + 0.5) * shift, tok), color="white", fontsize=7, ha="center", va="bottom",
                      xytext=(0, 3), textcoords="offset points")
    for w in result.words:
        for ax in axes:
            ax.axvline(w.start, color="tab:green", lw=0.8, ls="--")
            ax.axvline(w.end, color="tab:red", lw=0.8, ls=":")
        ax_w.annotate(w.word, ((w.start + w.end) / 2, 0.97), xycoords=("data", "axes fraction"), ha="center", va="top",
                      fontsize=8, color="tab:green")
    ax_p.legend(loc="upper right", fontsize=7)
    ref = f"REF: {normalize_text(text)}\n" if text is not None else ""
    fig.text(0.01, -0.01, f"{ref}HYP: {result.text}\n(word start: green dashes, word end: red dots; "
             f"{lp.shape[0]} model frames of {shift * 1000:g} ms)", fontsize=9, va="top", family="monospace")
    fig.tight_layout()
    return _save(fig, out, formats, dpi)


def _specshow(ax, mel: np.ndarray, fe) -> None:
    """Log-mel (frames, n_mels) with ``librosa.display.specshow`` (time and mel axes), or a
    plain image with a warning when librosa is missing."""
    try:
        import librosa.display
    except ImportError:
        log.warning("librosa is missing: the log-mel is drawn without a mel frequency axis (%s)", VIEWS_HINT)
        ax.imshow(mel.T, aspect="auto", origin="lower", cmap="viridis",
                  extent=(0, mel.shape[0] * fe.frame_shift_s, 0, mel.shape[1]))
        ax.set(ylabel="mel bin")
        return
    # frames are centred at t * hop + n_fft / 2 in this front end; specshow puts frame t at t * hop
    librosa.display.specshow(mel.T, sr=fe.sample_rate, hop_length=fe.hop_length, x_axis="time", y_axis="mel",
                             fmin=fe.f_min, fmax=fe.top_frequency, htk=fe.mel_scale == "htk", ax=ax, cmap="viridis")
    ax.set(ylabel="Hz (mel scale)", xlabel="")


# --- a stream -------------------------------------------------------------------------------
@dataclass
class StreamStep:
    chunk: int  # index of the chunk
    start_s: float  # chunk start (model frames x frame shift)
    end_s: float  # chunk end
    right_end_s: float  # end of its right context
    computed_at_s: float  # audio received when the step ran
    text: str  # the partial result after the step


def stream_timeline(recognizer, wave: np.ndarray, piece_ms: float = 100.0) -> tuple[list[StreamStep], object]:
    """Feed ``wave`` (at the model's rate) to a new stream of an :class:`OnlineRecognizer` in
    pieces of ``piece_ms``, stepping whenever a window is ready; returns each step's chunk, its
    right context, when it ran (audio time received) and the partial text after it, and the
    final result."""
    info = recognizer.info
    sr = info.sample_rate
    shift = info.frame_shift_s
    s = recognizer.create_stream("plot")
    piece = max(1, int(sr * piece_ms / 1000))
    steps: list[StreamStep] = []

    def run(received):
        while recognizer.is_ready(s):
            recognizer.decode_stream(s)
            k = len(steps)
            a, b = k * info.chunk_size * shift, (k + 1) * info.chunk_size * shift
            steps.append(StreamStep(k, a, b, b + info.right_context * shift, received, recognizer.get_result(s).text))

    for i in range(0, wave.size, piece):
        s.accept_waveform(sr, wave[i : i + piece])
        run(min(wave.size, i + piece) / sr)
    s.input_finished()
    run(wave.size / sr)
    return steps, recognizer.get_result(s)


def plot_stream(recognizer, audio, out: str, piece_ms: float = 100.0, text: Optional[str] = None,
                formats: Sequence[str] = FORMATS, title: Optional[str] = None, dpi: int = 100) -> list[str]:
    """A streaming model (:class:`asr.runtime.OnlineRecognizer`) on one input played as a live
    stream: waveform with chunk boundaries; each step's chunk and right context as bars and the
    moment it ran; and the partial results as they appeared, next to the final words."""
    from asr.audio import read_input
    from asr.text import normalize_text

    plt = _pyplot()
    info = recognizer.info
    wave, name = read_input(audio, info.sample_rate, info.sample_rate, "input")  # an array is at the model's rate
    steps, result = stream_timeline(recognizer, wave, piece_ms)
    duration = wave.size / info.sample_rate
    end = max([duration] + [s.computed_at_s for s in steps])
    fig, (ax_w, ax_c, ax_t) = plt.subplots(3, 1, figsize=(11, 7.5), sharex=True,
                                           gridspec_kw={"height_ratios": [1, 1.2, 1.4]})
    t = np.arange(wave.size) / info.sample_rate
    ax_w.plot(t, wave, lw=0.5, color="0.2")
    for s in steps:
        ax_w.axvline(s.start_s, color="tab:blue", lw=0.6, alpha=0.6)
    for w in result.words:
        ax_w.annotate(w.word, ((w.start + w.end) / 2, 0.97), xycoords=("data", "axes fraction"), ha="center", va="top",
                      fontsize=8, color="tab:green")
        ax_w.axvspan(w.start, w.end, color="tab:green", alpha=0.08)
    ax_w.set(ylabel="amplitude", xlim=(0, end * 1.02))
    ax_w.set_title(title or f"{os.path.basename(str(name))}: chunks of {info.chunk_size} + {info.right_context} "
                   f"right-context model frames ({info.frame_shift_s * 1000:g} ms each), audio fed in {piece_ms:g} ms pieces",
                   fontsize=10, loc="left")
    for s in steps:
        y = s.chunk % 4
        ax_c.barh(y, s.end_s - s.start_s, left=s.start_s, height=0.6, color="tab:blue", alpha=0.7)
        if s.right_end_s > s.end_s:
            ax_c.barh(y, s.right_end_s - s.end_s, left=s.end_s, height=0.6, color="tab:orange", alpha=0.6)
        ax_c.plot([s.computed_at_s], [y], "k|", ms=12, mew=2)
        ax_c.plot([s.end_s, s.computed_at_s], [y, y], "k:", lw=0.8)
    ax_c.set_yticks([])
    ax_c.set_ylabel("steps")
    ax_c.bar(0, 0, color="tab:blue", label="chunk")
    ax_c.bar(0, 0, color="tab:orange", label="right context")
    ax_c.plot([], [], "k|", ms=10, mew=2, label="step ran (audio received)")
    ax_c.legend(loc="upper left", fontsize=7, ncol=3)
    changes, last = [], None
    for s in steps:
        if s.text != last:
            changes.append(s)
            last = s.text
    for k, s in enumerate(changes):
        ax_t.plot([s.computed_at_s], [k], "o", color="tab:purple", ms=4)
        ax_t.annotate(s.text or "(nothing yet)", (s.computed_at_s, k), xytext=(4, 0), textcoords="offset points",
                      va="center", fontsize=8)
    ax_t.set(xlabel="time (s): audio position / when it was received", ylabel="partial results", yticks=[],
             ylim=(-1, max(1, len(changes))))
    ref = f"REF:   {normalize_text(text)}\n" if text is not None else ""
    fig.text(0.01, -0.01, f"{ref}FINAL: {result.text}", fontsize=9, va="top", family="monospace")
    fig.tight_layout()
    return _save(fig, out, formats, dpi)


# --- gradient flow through time -------------------------------------------------------------
def _geomean(curves: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Geometric mean of curves of different lengths, index by index (over those that reach
    it); returns (mean, count)."""
    n = max(len(c) for c in curves)
    s, k = np.zeros(n), np.zeros(n)
    for c in curves:
        c = np.asarray(c, np.float64)
        ok = c > 0
        s[: len(c)][ok] += np.log(c[ok])
        k[: len(c)][ok] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(k > 0, np.exp(s / np.maximum(k, 1)), np.nan), k


def _reach_from_end(norm: np.ndarray, direction: str) -> np.ndarray:
    """A reach curve as a function of the distance from the probed end (index 0 = the end),
    relative to its value there."""
    c = norm[::-1] if direction == "fwd" else norm
    return c / c[0] if c[0] > 0 else c * np.nan


def gradient_flow_summary(reach: Mapping[str, Sequence[Mapping[str, np.ndarray]]], frame_shift_s: float,
                          at_s: Sequence[float] = (0.2, 0.5, 1.0, 2.0)) -> dict:
    """model -> layer/direction -> {distance in s: geometric-mean relative gradient} of reach
    curves (lists of per-utterance {"layer1.fwd": norms} dicts)."""
    out: dict = {}
    for model, utts in reach.items():
        out[model] = {}
        for key in utts[0]:
            curves = [_reach_from_end(u[key], key.rsplit(".", 1)[1]) for u in utts]
            mean, count = _geomean(curves)
            out[model][key] = {f"{s:g}": (float(mean[i]) if i < len(mean) and count[i] > 0 else None)
                               for s in at_s for i in [int(round(s / frame_shift_s))]}
    return out


def plot_gradient_flow(loss: Mapping[str, Sequence[Mapping[str, np.ndarray]]],
                       reach: Mapping[str, Sequence[Mapping[str, np.ndarray]]], frame_shift_s: float, out: str,
                       formats: Sequence[str] = FORMATS, note: str = "", dpi: int = 100) -> list[str]:
    """One column per model (the keys of ``loss``/``reach``: lists of per-utterance
    {"layer1.fwd": norms over time} dicts). Top: ||dLoss/dh_t|| against t (CTC loss of each
    utterance; geometric mean over utterances). Bottom: how far back the gradient reaches: ||d
    probe/dh_t|| relative to its value at the probed end, against the distance from it
    (geometric mean over utterances; forward directions probed at the last frame, backward
    ones at the first)."""
    plt = _pyplot()
    models = list(loss or reach)
    fig, axes = plt.subplots(2, len(models), figsize=(4.6 * len(models), 7.2), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    lo = 1.0
    for j, m in enumerate(models):
        ax_l, ax_r = axes[0, j], axes[1, j]
        if loss.get(m):
            for key in loss[m][0]:
                layer, direction = key.rsplit(".", 1)
                c = colors[(int(layer.replace("layer", "")) - 1) % len(colors)]
                mean, _ = _geomean([u[key] for u in loss[m]])
                ax_l.plot(np.arange(len(mean)) * frame_shift_s, mean, "-" if direction == "fwd" else "--", color=c, lw=1,
                          label=f"layer {layer[5:]} {direction}")
            ax_l.set(yscale="log", xlabel="t (s) from the start of the utterance", title=f"{m}: ||dLoss/dh_t||")
            ax_l.legend(fontsize=7)
            ax_l.grid(alpha=0.3)
        if reach.get(m):
            for key in reach[m][0]:
                layer, direction = key.rsplit(".", 1)
                c = colors[(int(layer.replace("layer", "")) - 1) % len(colors)]
                mean, _ = _geomean([_reach_from_end(u[key], direction) for u in reach[m]])
                ax_r.plot(np.arange(len(mean)) * frame_shift_s, mean, "-" if direction == "fwd" else "--", color=c, lw=1,
                          label=f"layer {layer[5:]} {direction}")
                finite = mean[np.isfinite(mean) & (mean > 0)]
                if finite.size:
                    lo = min(lo, float(finite.min()))
            ax_r.set(yscale="log", xlabel="distance from the probed end (s)",
                     title=f"{m}: gradient reach (relative)")
            ax_r.legend(fontsize=7)
            ax_r.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_ylim(max(lo, 1e-12) / 2, 2)
    if note:
        import textwrap

        fig.text(0.01, -0.01, textwrap.fill(note, 45 * len(models)), fontsize=8, va="top")
    fig.tight_layout()
    return _save(fig, out, formats, dpi)


def draw_gradient_flow(checkpoints: Sequence[str], names: Sequence[str], manifest: str, utts: int, concat: int, gap: float,
                       out: str, formats: Sequence[str] = FORMATS, dpi: int = 100) -> list[str]:
    """``asr plot gradflow``: how far back the gradient reaches in each checkpoint (the CTC
    loss of ``utts`` utterances; a random projection of the top layer over inputs of ``concat``
    utterances joined ``gap`` seconds apart), drawn, with a JSON summary beside the pictures."""
    import json

    import torch

    from asr.audio import join_audio, load_audio
    from asr.frontend import logmel
    from asr.manifest import read_manifest
    from asr.text import normalize_text
    from asr.train.checkpoint import build_model, load_checkpoint
    from asr.train.diagnostics import hidden_state_gradients

    torch.set_num_threads(1)
    entries = read_manifest(manifest)[: utts * concat]
    groups = [entries[i : i + concat] for i in range(0, len(entries), concat)]
    groups = [g for g in groups if len(g) == concat]
    if not groups:
        raise ValueError(f"{manifest}: fewer than --concat {concat} utterances")
    singles = entries[: utts]  # the loss: utterances as they are, with their own transcripts
    loss, reach, shifts, facts = {}, {}, set(), {}
    for path, name in zip(checkpoints, names):
        model, cfg, tok = build_model(load_checkpoint(path))
        model.eval()
        fe = cfg.frontend
        shifts.add(fe.output_frame_shift_s(cfg.model.subsampling))
        loss[name], reach[name] = [], []
        for e in singles:
            feats = torch.from_numpy(logmel(load_audio(e.audio_filepath, fe.sample_rate), fe))
            loss[name].append(hidden_state_gradients(model, feats, tok.encode(normalize_text(e.text)), "loss").norms())
        for k, g in enumerate(groups):  # the reach: inputs of --concat utterances joined, to look further back
            wave = join_audio([e.audio_filepath for e in g], fe.sample_rate, gap)
            wave = load_audio(wave, fe.sample_rate) if isinstance(wave, str) else wave
            feats = torch.from_numpy(logmel(wave, fe))
            reach[name].append(hidden_state_gradients(model, feats, measure="reach", seed=k).norms())
        facts[name] = {"checkpoint": path, "rnn_type": cfg.model.rnn_type, "hidden_size": cfg.model.hidden_size,
                       "num_layers": cfg.model.num_layers, "parameters": model.num_parameters(),
                       "loss_grad_norm_mean": {key: float(np.mean([u[key].mean() for u in loss[name]])) for key in loss[name][0]}}
    if len(shifts) != 1:
        raise ValueError("the checkpoints have different frame shifts; draw them separately")
    (shift,) = shifts
    seconds = [len(next(iter(u.values()))) * shift for u in reach[next(iter(reach))]]
    note = (f"Top: CTC loss of each of {len(singles)} utterances of {manifest}. Bottom: a random projection of the top "
            f"layer's output at the last frame (forward directions) or the first (backward), over {len(groups)} inputs of "
            f"{concat} utterance(s) joined ({min(seconds):.1f}-{max(seconds):.1f} s). Full context, eval mode; "
            "geometric means over inputs.")
    paths = plot_gradient_flow(loss, reach, shift, out, formats, note, dpi=dpi)
    summary = {"note": note, "frame_shift_s": shift, "models": facts,
               "reach_relative": gradient_flow_summary(reach, shift)}
    with open(f"{out}.json", "w") as f:
        json.dump(summary, f, indent=1)
    return paths + [f"{out}.json"]
