"""``asr export``: a checkpoint -> an ONNX graph (offline or streaming), checked against PyTorch."""

from __future__ import annotations

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    sp = sub.add_parser("export", help="export a checkpoint to ONNX (offline or streaming graph), checked against PyTorch")
    sp.add_argument("--checkpoint", required=True, help="trained checkpoint (best.pt, or avg.pt from `asr average`)")
    sp.add_argument("--out", required=True, help="model.onnx path (with --int8 also writes NAME.int8.onnx)")
    sp.add_argument("--streaming", action="store_true", help="the chunk-by-chunk graph with carried states")
    sp.add_argument("--int8", action="store_true", help="also write an int8 dynamically quantized copy")
    sp.add_argument("--chunk-size", type=int, help="streaming chunk size in model frames (default: the model's)")
    sp.add_argument("--right-context", type=int, help="streaming right context in model frames (default: the model's)")
    sp.add_argument("--parity-audio", nargs="*", help="audio files for the parity check (default: the config's dev manifest)")
    sp.set_defaults(func=run)


def run(args) -> int:
    from asr.train.export import export_onnx

    r = export_onnx(args.checkpoint, args.out, streaming=args.streaming, int8=args.int8,
                    chunk_size=args.chunk_size, right_context=args.right_context, parity_audio=args.parity_audio or ())
    print(f"wrote {r.path} ({r.info.graph} graph, {r.info.model_kind}); parity of the runtime with PyTorch: "
          f"max |log-prob diff| {r.max_abs_diff:.1e} at {', '.join(f'{s:g}' for s in r.parity_lengths_s)} s")
    if r.int8_path:
        print(f"wrote {r.int8_path} (int8 dynamic quantization): max |log-prob diff| {r.int8_max_abs_diff:.3f}; "
              f"measure its WER before using it")
    return 0
