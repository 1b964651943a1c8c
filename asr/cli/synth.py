"""``asr synth``: render text to a training manifest with the Debian speech synthesizers (torch-free)."""

from __future__ import annotations

__all__ = ["add_parser", "run"]


def _pair(text: str) -> tuple[float, float]:
    import argparse

    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH (two numbers), got {text!r}") from None
    return lo, hi


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def add_parser(sub) -> None:
    from asr.cli.options import positive

    sp = sub.add_parser(
        "synth", help="render text to a training manifest with espeak-ng, flite and festival",
        description="Render every text TAKES times with the speech synthesizers from Debian's archive "
        "(espeak-ng, flite, festival: `apt-get install espeak-ng flite festival festvox-kallpc16k "
        "festvox-kdlpc16k festvox-us-slt-hts`), varying voice, accent, speaking rate, pitch and vocal tract "
        "length (a share made child-like), with noise on a share and, with --room-share, simulated rooms' "
        "reverberation. Writes OUT/audio/*.flac, OUT/manifest.jsonl "
        "(the project's manifest format: train on it with data.synthetic=OUT/manifest.jsonl) and "
        "OUT/synth.json (the settings). Resumable: run it again to finish or to retry failures; run it with "
        "more --takes to add renderings to the same folder.")
    src = sp.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", help="a UTF-8 text file, one sentence a line")
    src.add_argument("--manifest", help="a JSONL manifest whose transcripts are rendered")
    sp.add_argument("--out", required=True, help="output folder")
    sp.add_argument("--engines", default="espeak-ng,flite,festival", help="comma-separated, taking turns "
                    "(default: espeak-ng,flite,festival)")
    sp.add_argument("--takes", type=positive(int), default=2, help="renderings of every text (default 2)")
    sp.add_argument("--sample-rate", type=positive(int), default=16000, help="of the written audio (default 16000)")
    sp.add_argument("--plain", action="store_true", help="no variety: each engine's default voice, rate and pitch, "
                    "no child-like voices, no noise (the baseline variety is measured against)")
    sp.add_argument("--speed", type=_pair, default=(0.8, 1.25), help="speaking rate range, factors of the "
                    "engine's default (default 0.8,1.25)")
    sp.add_argument("--child-share", type=float, default=0.3, help="share of child-like renderings (default 0.3)")
    sp.add_argument("--noise-share", type=float, default=0.5, help="share of renderings with white, pink or brown "
                    "noise (default 0.5)")
    sp.add_argument("--pad", type=_pair, default=(0.05, 0.4), help="silence before and after the speech, seconds "
                    "(default 0.05,0.4; tightly cut clips such as FSDD's: 0.02,0.15)")
    sp.add_argument("--snr", type=_pair, default=(10.0, 35.0), help="noise SNR range in dB (default 10,35)")
    sp.add_argument("--room-share", type=float, default=0.0, help="share of renderings heard through a simulated "
                    "room, reverberation before the noise (default 0: none; needs pyroomacoustics: "
                    "pip install '.[synth]')")
    sp.add_argument("--rt60", type=_pair, default=(0.15, 0.6), help="the rooms' reverberation time range, seconds "
                    "(default 0.15,0.6)")
    sp.add_argument("--mic-distance", type=_pair, default=(0.2, 1.5), help="talker to microphone, metres "
                    "(default 0.2,1.5)")
    sp.add_argument("--seed", type=int, default=1234, help="random seed of the choices (voices, rates, noise, rooms; default 1234)")
    sp.add_argument("--jobs", type=positive(int), default=2, help="renderings at a time (default 2: both cores)")
    sp.add_argument("--limit", type=positive(int), help="only the first N renderings (a quick look)")
    sp.add_argument("--no-progress", action="store_true", help="no progress bar")
    sp.set_defaults(func=run)


def run(args) -> int:
    from asr.train.synth import SynthOptions, read_texts, synthesize

    opts = SynthOptions(engines=tuple(e.strip() for e in args.engines.split(",") if e.strip()), takes=args.takes,
                        sample_rate=args.sample_rate, variety=not args.plain, rate=args.speed,
                        child_share=args.child_share, noise_share=args.noise_share, snr_db=args.snr, pad_s=args.pad,
                        room_share=args.room_share, rt60=args.rt60, mic_distance=args.mic_distance, seed=args.seed)
    texts = read_texts(args.text or args.manifest, manifest=args.manifest is not None)
    counts = synthesize(texts, args.out, opts, jobs=args.jobs, progress=not args.no_progress, limit=args.limit)
    print(f"{args.out}/manifest.jsonl: {counts['rendered'] + counts['kept']} of {counts['planned']} renderings "
          f"({_hours(counts['seconds'])}; {counts['rendered']} rendered now, {counts['kept']} kept) "
          f"of {len(texts)} texts")
    if counts["failed"]:
        print(f"{counts['failed']} failed (listed in {args.out}/failed.jsonl); run the same command again to retry them")
        return 1
    return 0
