"""Tar shards against loose files: the time to write shards from a manifest (`asr prepare
shards`), to scan their metadata (what training does once at the start), and to decode
utterances from the shards and from the original files.

    python tools/measure_shards.py --manifest data/x/train.jsonl --out /tmp/shards
    python tools/measure_shards.py --generate 3000 --out /tmp/shards     # 2 s noise FLACs, 16 kHz

Prints one JSON line. The figures in docs/training.md ("Sharded data") come from the second
command. The page cache is not dropped: run it twice apart to see cold-disk times.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import soundfile as sf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from asr.audio import load_audio  # noqa: E402
from asr.manifest import Entry, read_manifest  # noqa: E402
from asr.shards import INDEX_NAME, load_shard_audio, shard_entries, write_shards  # noqa: E402


def generated(n: int, folder: str) -> list[Entry]:
    """``n`` utterances of 2 s of noise as 16-bit FLAC at 16 kHz (kept between runs)."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        path = os.path.join(folder, f"{i:06d}.flac")
        wave = (0.1 * rng.standard_normal(32000)).astype(np.float32)
        if not os.path.exists(path):
            sf.write(path, wave, 16000, subtype="PCM_16")
        out.append(Entry(path, 2.0, "a b", "s"))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--manifest", help="a JSONL manifest to write as shards")
    src.add_argument("--generate", type=int, metavar="N", help="N generated utterances instead (OUT/audio)")
    p.add_argument("--out", required=True, help="folder for the shards (and generated audio)")
    p.add_argument("--shard-size", type=int, default=1000, help="utterances per shard")
    p.add_argument("--decode", type=int, default=1000, help="utterances to decode each way")
    p.add_argument("--sample-rate", type=int, default=16000, help="rate the decoded audio is resampled to")
    args = p.parse_args(argv)
    entries = read_manifest(args.manifest) if args.manifest else generated(args.generate, os.path.join(args.out, "audio"))
    shard_dir = os.path.join(args.out, "shards")
    t = time.perf_counter()
    index = write_shards(entries, shard_dir, shard_size=args.shard_size)
    write_s = time.perf_counter() - t
    t = time.perf_counter()
    back = shard_entries(os.path.join(shard_dir, INDEX_NAME))
    scan_s = time.perf_counter() - t
    k = min(args.decode, len(back))
    t = time.perf_counter()
    for e in back[:k]:
        load_shard_audio(e, args.sample_rate)
    shard_decode_s = time.perf_counter() - t
    readable = {s["audio_filepath"] for s in index["skipped"]}
    files = [e for e in entries if e.audio_filepath not in readable][:k]
    t = time.perf_counter()
    for e in files:
        load_audio(e.audio_filepath, args.sample_rate)
    file_decode_s = time.perf_counter() - t
    n = index["utterances"]
    print(json.dumps({
        "utterances": n, "hours": round(index["duration"] / 3600, 3), "shards": len(index["shards"]),
        "bytes": sum(s["bytes"] for s in index["shards"]), "skipped": len(index["skipped"]),
        "write_s": round(write_s, 3), "write_utt_per_s": round(n / write_s),
        "scan_s": round(scan_s, 3), "scan_utt_per_s": round(n / scan_s),
        "kept_bytes_per_utterance": round(back.nbytes / len(back), 1),
        "decoded": k, "shard_decode_s": round(shard_decode_s, 3), "file_decode_s": round(file_decode_s, 3),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
