"""``asr export``: a checkpoint -> an ONNX graph (offline or streaming), checked against PyTorch;
or, with ``--model``, the model card of an exported file set in place."""

from __future__ import annotations

__all__ = ["add_parser", "run"]

CARD_HELP = ('the model card, a JSON file {"name": "English digits", "language": "en", "description": "zero to nine, '
             'one at a time or in strings"} (name up to 80 characters, a language tag, a description up to 500): '
             "`asr serve` shows it on its page and in /info")


def add_parser(sub) -> None:
    sp = sub.add_parser("export", help="export a checkpoint to ONNX (offline or streaming graph), checked against PyTorch; "
                                       "or set an exported file's model card (--model FILE --card CARD.json)")
    sp.add_argument("--checkpoint", help="trained checkpoint (best.pt, or avg.pt from `asr average`)")
    sp.add_argument("--out", help="model.onnx path (with --int8 also writes NAME.int8.onnx)")
    sp.add_argument("--streaming", action="store_true", help="the chunk-by-chunk graph with carried states")
    sp.add_argument("--int8", action="store_true", help="also write an int8 dynamically quantized copy")
    sp.add_argument("--chunk-size", type=int, help="streaming chunk size in model frames (default: the model's)")
    sp.add_argument("--right-context", type=int, help="streaming right context in model frames (default: the model's)")
    sp.add_argument("--parity-audio", nargs="*", help="audio files for the parity check (default: the config's dev manifest)")
    sp.add_argument("--card", metavar="CARD.json", help=CARD_HELP)
    sp.add_argument("--model", help="instead of exporting: an exported ONNX file whose card --card sets (or replaces), "
                                    "in place; nothing else in it changes")
    sp.set_defaults(func=run)


def run(args) -> int:
    from asr.runtime.schema import read_card

    card = read_card(args.card) if args.card else None
    if args.model:
        if args.checkpoint or args.out or card is None:
            raise ValueError("--model sets the card of an exported file: give --model FILE --card CARD.json, "
                             "without --checkpoint or --out")
        return _set_card(args.model, card)
    if not (args.checkpoint and args.out):
        raise ValueError("give --checkpoint CKPT --out FILE.onnx to export (or --model FILE --card CARD.json to set a card)")
    from asr.train.export import export_onnx

    r = export_onnx(args.checkpoint, args.out, streaming=args.streaming, int8=args.int8,
                    chunk_size=args.chunk_size, right_context=args.right_context, parity_audio=args.parity_audio or (),
                    card=card)
    print(f"wrote {r.path} ({r.info.graph} graph, {r.info.model_kind}); parity of the runtime with PyTorch: "
          f"max |log-prob diff| {r.max_abs_diff:.1e} at {', '.join(f'{s:g}' for s in r.parity_lengths_s)} s")
    if r.int8_path:
        print(f"wrote {r.int8_path} (int8 dynamic quantization): max |log-prob diff| {r.int8_max_abs_diff:.3f}; "
              f"measure its WER before using it")
    return 0


def _set_card(path: str, card) -> int:
    from asr.runtime import OnnxModel
    from asr.runtime.schema import card_metadata, write_metadata

    OnnxModel(path)  # a model of this toolkit, which loads: its errors name the file
    write_metadata(path, card_metadata(card))
    got = OnnxModel(path).info.card
    print(f"{path}: model card set: {got.name}{f' ({got.language})' if got.language else ''}")
    return 0
