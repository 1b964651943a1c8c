"""``asr prepare CORPUS``: JSONL manifests for a corpus, or an import of Kaldi/NeMo data (torch-free)."""

from __future__ import annotations

__all__ = ["add_parser", "run"]



def add_parser(sub) -> None:
    sp = sub.add_parser(
        "prepare", help="write JSONL manifests for a corpus, or import a Kaldi data folder or a NeMo manifest",
        description="Write JSONL manifests. Corpora: fsdd, speechocean762, librispeech (--subset mini|100|960 or "
        "--parts), an4, commonvoice (needs --corpus-dir: its terms must be accepted before download); "
        "librispeech-lm fetches the official ARPA models; wordnet-text writes WordNet's example sentences (new words "
        "for `asr synth --text`; Debian package wordnet-base) to the text file --out. Imports: `asr prepare kaldi DATA_DIR --out OUT`, "
        "`asr prepare manifest FILE.jsonl --out OUT`. Bad entries are reported (file, line, reason) and left out. "
        "`asr prepare shards --manifest M --out DIR` writes a manifest's utterances as tar shards (DIR/shard-000000.tar, "
        "... and the index DIR/shards.json, which data.train can name) for corpora read as a stream.")
    sp.add_argument("corpus", choices=["fsdd", "speechocean762", "librispeech", "librispeech-lm", "an4", "commonvoice",
                                       "kaldi", "manifest", "wordnet-text", "shards"],
                    help="which corpus, or kaldi/manifest to import data, or wordnet-text for sentences to synthesize, "
                    "or shards to write a manifest as tar shards")
    sp.add_argument("source", nargs="?", help="kaldi: the data folder (wav.scp, text, optional segments and utt2spk); "
                    "manifest: the NeMo-style JSONL file; wordnet-text: WordNet's folder (default /usr/share/wordnet)")
    sp.add_argument("--corpus-dir",
                    help="local copy: the corpus folder or a folder holding it (default: $ASR_CORPORA, then data/corpora; else download)")
    sp.add_argument("--out", required=True, help="folder for the manifests (train.jsonl, dev.jsonl, test.jsonl, ...); "
                    "kaldi/manifest: a .jsonl path or a folder")
    sp.add_argument("--test-speaker", help="FSDD: leave this speaker out as the test set")
    sp.add_argument("--exclude", action="append", metavar="MANIFEST",
                    help="wordnet-text: leave out the transcripts of this manifest (dev, test; repeatable)")
    sp.add_argument("--subset", choices=["mini", "100", "960"], help="LibriSpeech: mini (train-clean-5, dev-clean-2; "
                    "the default), 100 (train-clean-100) or 960 (all train parts), each with dev/test clean and other")
    sp.add_argument("--parts", nargs="+", metavar="PART", help="LibriSpeech: these parts instead of a subset "
                    "(train-clean-100 dev-clean ...); librispeech-lm: which models (default 3-gram.pruned.1e-7; "
                    "also 3-gram.pruned.3e-7, 3-gram, 4-gram)")
    sp.add_argument("--manifest", help="shards: the JSONL manifest whose utterances the shards hold")
    sp.add_argument("--shard-size", type=int, metavar="N",
                    help="shards: utterances per shard (default 1000 unless --shard-mb is given)")
    sp.add_argument("--shard-mb", type=float, metavar="MB", help="shards: megabytes of audio per shard at most "
                    "(with --shard-size too, a shard closes at whichever comes first)")
    sp.add_argument("--no-download", action="store_true", help="fail instead of downloading when no local copy is found")
    sp.add_argument("--no-progress", action="store_true", help="no progress bars")
    sp.set_defaults(func=run)


# prepare: which options apply to which corpus (the others are refused with a clear message)
_PREPARE_OPTIONS = {
    "test_speaker": ("--test-speaker", {"fsdd"}),
    "subset": ("--subset", {"librispeech"}),
    "parts": ("--parts", {"librispeech", "librispeech-lm"}),
    "source": ("a source path", {"kaldi", "manifest", "wordnet-text"}),
    "exclude": ("--exclude", {"wordnet-text"}),
    "manifest": ("--manifest", {"shards"}),
    "shard_size": ("--shard-size", {"shards"}),
    "shard_mb": ("--shard-mb", {"shards"}),
}


def run(args) -> int:
    for key, (flag, corpora) in _PREPARE_OPTIONS.items():
        if getattr(args, key) is not None and args.corpus not in corpora:
            names = sorted(corpora)
            listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
            raise ValueError(f"{flag} applies to {listed} only")
    if args.corpus in ("kaldi", "manifest") and args.source is None:
        what = "a Kaldi data folder (with wav.scp and text)" if args.corpus == "kaldi" else "a JSONL manifest file"
        raise ValueError(f"asr prepare {args.corpus} needs {what}: asr prepare {args.corpus} PATH --out OUT")
    download = not args.no_download
    progress = not args.no_progress
    if args.corpus == "shards":
        if args.manifest is None:
            raise ValueError("asr prepare shards needs --manifest: asr prepare shards --manifest M.jsonl --out DIR")
        from asr.manifest import read_manifest
        from asr.shards import INDEX_NAME, write_shards

        index = write_shards(read_manifest(args.manifest), args.out, args.shard_size, args.shard_mb,
                             source=args.manifest, progress=progress)
        print(f"wrote {len(index['shards'])} shard(s) of {index['utterances']} utterances ({index['duration'] / 3600:.2f} h) "
              f"to {args.out}; index {args.out.rstrip('/')}/{INDEX_NAME}"
              + (f"; skipped {len(index['skipped'])} unreadable or missing (listed in the index)" if index["skipped"] else ""))
        return 0
    if args.corpus == "wordnet-text":
        from asr.corpora import wordnet

        n = wordnet.prepare_text(args.out, args.source or wordnet.DEFAULT_DIR, args.exclude or ())
        print(f"wrote {n} WordNet example sentences to {args.out} (WordNet 3.0 license: "
              "/usr/share/doc/wordnet-base/copyright)")
        return 0
    if args.corpus == "fsdd":
        from asr.corpora import fsdd

        counts = fsdd.prepare(args.corpus_dir, args.out, test_speaker=args.test_speaker, allow_download=download)
    elif args.corpus == "speechocean762":
        from asr.corpora import speechocean762

        counts = speechocean762.prepare(args.corpus_dir, args.out, allow_download=download)
    elif args.corpus == "librispeech":
        from asr.corpora import librispeech

        counts = librispeech.prepare(args.corpus_dir, args.out, subset=args.subset, parts=args.parts,
                                     allow_download=download, progress=progress)
    elif args.corpus == "librispeech-lm":
        from asr.corpora import librispeech

        written = librispeech.prepare_lm(args.corpus_dir, args.out, args.parts or librispeech.DEFAULT_LMS,
                                         allow_download=download)
        for name, path in written.items():
            print(f"LibriSpeech {name} LM, lower-cased: {path}")
        return 0
    elif args.corpus == "an4":
        from asr.corpora import an4

        counts = an4.prepare(args.corpus_dir, args.out, allow_download=download, progress=progress)
    elif args.corpus == "commonvoice":
        from asr.corpora import commonvoice

        counts = commonvoice.prepare(args.corpus_dir, args.out, progress=progress)
    elif args.corpus == "kaldi":
        from asr.corpora import kaldi

        counts = kaldi.prepare(args.source, args.out)
    elif args.corpus == "manifest":
        from asr.corpora import nemo

        counts = nemo.prepare(args.source, args.out)
    else:  # argparse restricts the choices
        raise AssertionError(args.corpus)
    print(f"wrote manifests to {args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0
