"""``asr plot``: pictures (PNG and SVG, matplotlib) of training, of one input through a model, of
a stream, and of the recurrent network's gradient flow through time (:mod:`asr.train.plot`).

    asr plot curves exp/a exp/b --out figs/ab          # figs/ab_curves.png/.svg (+ _gates when recorded)
    asr plot utterance --checkpoint exp/a/best.pt a.wav --text "seven" --out figs/a_utt
    asr plot stream --model exp/a/stream.onnx a.wav b.wav --out figs/a_stream
    asr plot gradflow --checkpoint exp/rnn/best.pt exp/gru/best.pt --manifest data/fsdd/dev.jsonl --out figs/gradflow

``gradflow`` needs PyTorch (the train extra); the others run in the base install plus
matplotlib (and librosa for the log-mel axis): pip install '.[views]'.
"""

from __future__ import annotations

import os

from asr.audio import join_audio
from asr.cli.options import load_recognizer

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    sp = sub.add_parser("plot", help="pictures: training curves, an utterance, a stream, gradient flow through time (PNG, SVG)",
                        description="Write PNG and SVG pictures with matplotlib (pip install '.[views]').")
    kinds = sp.add_subparsers(dest="kind", required=True)

    def common(p, out_help):
        p.add_argument("--out", required=True, help=out_help)
        p.add_argument("--image-format", default="png,svg", help="comma-separated: png, svg (default both)")
        p.add_argument("--dpi", type=int, default=100, help="PNG dots per inch (default 100)")

    p = kinds.add_parser("curves", help="training curves of experiment folders, overlaid")
    p.add_argument("exps", nargs="+", help="experiment folders (log.csv; steps.csv and gates.csv when recorded)")
    p.add_argument("--names", help="comma-separated legend names (default: the folder names)")
    p.add_argument("--grad-clip", type=float, help="clip threshold to draw when steps.csv does not record it")
    p.add_argument("--all-gates", action="store_true", help="every gate (default: the one that decides what is kept: "
                                                           "GRU z, LSTM f; |h| for the tanh RNN)")
    common(p, "path prefix: writes PREFIX_curves.png/.svg, and PREFIX_gates when gates.csv exists")

    def audio_args(p):
        p.add_argument("audio", nargs="+", help="audio files; several are joined, --gap seconds apart, into one input")
        p.add_argument("--gap", type=float, default=0.0, help="seconds of digital silence between joined files (default 0: back to back)")
        p.add_argument("--text", help="the reference transcript, shown beside the hypothesis")
        p.add_argument("--title", help="the picture's title (default: the input's name)")

    p = kinds.add_parser("utterance", help="waveform, log-mel, CTC posteriors with greedy path and word boundaries")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="trained checkpoint (PyTorch)")
    src.add_argument("--model", help="exported ONNX model (offline or streaming graph)")
    p.add_argument("--chunk-size", type=int, help="checkpoints: chunk size in model frames (0: full context; default the model's)")
    audio_args(p)
    common(p, "path prefix: writes PREFIX.png/.svg")

    p = kinds.add_parser("stream", help="a streaming ONNX model on a simulated live stream: chunks, right context, partial results")
    p.add_argument("--model", required=True, help="streaming ONNX graph (asr export --streaming)")
    p.add_argument("--piece-ms", type=float, default=100.0, help="audio arrives in pieces of this many ms (default 100)")
    audio_args(p)
    common(p, "path prefix: writes PREFIX.png/.svg")

    p = kinds.add_parser("gradflow", help="||dLoss/dh_t|| per time step, layer and direction (PyTorch checkpoints)")
    p.add_argument("--checkpoint", nargs="+", required=True, help="one or more checkpoints, drawn side by side")
    p.add_argument("--names", help="comma-separated column names (default: the checkpoints' folder names)")
    p.add_argument("--manifest", required=True, help="utterances to measure on (JSONL manifest)")
    p.add_argument("--utts", type=int, default=8, help="inputs to average over (default 8)")
    p.add_argument("--concat", type=int, default=1, help="manifest utterances joined into each input (longer inputs; default 1)")
    p.add_argument("--gap", type=float, default=0.0, help="seconds of digital silence between joined utterances (default 0)")
    common(p, "path prefix: writes PREFIX.png/.svg and PREFIX.json (the numbers)")
    sp.set_defaults(func=run)


def _formats(text: str) -> list[str]:
    return [f.strip() for f in text.split(",") if f.strip()]


def _names(text, paths) -> list[str]:
    if text:
        names = [n.strip() for n in text.split(",")]
        if len(names) != len(paths):
            raise ValueError(f"--names gives {len(names)} names for {len(paths)} inputs")
        return names
    return [os.path.basename(os.path.dirname(os.path.abspath(p))) if os.path.isfile(p) else os.path.basename(os.path.normpath(p))
            for p in paths]


def run(args) -> int:
    from asr.train import plot

    formats = _formats(args.image_format)
    if args.kind == "curves":
        exps = [plot.read_experiment(p, n) for p, n in zip(args.exps, _names(args.names, args.exps))]
        paths = plot.plot_curves(exps, f"{args.out}_curves", formats, grad_clip=args.grad_clip, dpi=args.dpi)
        if any(e.gates for e in exps):
            paths += plot.plot_gates([e for e in exps if e.gates], f"{args.out}_gates", formats, dpi=args.dpi,
                                     all_gates=args.all_gates)
    elif args.kind == "utterance":
        rec = load_recognizer(args.checkpoint or args.model, chunk_size=args.chunk_size)
        audio = join_audio(args.audio, rec.sample_rate, args.gap)
        paths = plot.plot_utterance(rec, audio, args.out, args.text, formats, args.title, dpi=args.dpi)
    elif args.kind == "stream":
        from asr.runtime import OnlineRecognizer

        rec = OnlineRecognizer(args.model)
        audio = join_audio(args.audio, rec.sample_rate, args.gap)
        paths = plot.plot_stream(rec, audio, args.out, args.piece_ms, args.text, formats, args.title, dpi=args.dpi)
    else:
        paths = _gradflow(args, formats)
    for p in paths:
        print(f"wrote {p}")
    return 0


def _gradflow(args, formats) -> list[str]:
    from asr.train.plot import draw_gradient_flow

    return draw_gradient_flow(args.checkpoint, _names(args.names, args.checkpoint), args.manifest, args.utts, args.concat,
                              args.gap, args.out, formats, dpi=args.dpi)
