#!/usr/bin/env bash
# AN4 recipe: CMU census database (spelled letters, digits, names) -> BiGRU + CTC (characters).
#
# Stages (start anywhere with --stage, stop with --stop-stage):
#   0  prepare   raw big-endian audio -> WAV once, manifests (--corpus-dir, $ASR_CORPORA,
#                data/corpora, else the CMU download)
#   1  train     resumes automatically if $exp/last.pt exists
#   2  evaluate  dev (held-out train speakers) and the official test split
#   3  export    ONNX offline graph, plus the streaming graph when the model can stream; word
#                confidence calibrated on dev (asr calibrate)
#
# Usage: recipes/an4/run.sh [--stage N] [--stop-stage N] [--exp DIR] [--data DIR] [--corpus-dir DIR]
#                          [--nproc N] [key=value ...]
# --nproc N trains data-parallel under torchrun; key=value arguments override conf.yaml.
set -euo pipefail
cd "$(dirname "$0")/../.."
source recipes/lib.sh

stage=0 stop_stage=3 exp=exp/an4 data=data/an4 corpus_dir="" nproc=1
options+=(nproc)
parse_args "$@"

if run_stage 0; then
  echo "== stage 0: prepare AN4 manifests (and WAV files) in $data"
  "${ASR[@]}" prepare an4 --out "$data" ${corpus_dir:+--corpus-dir "$corpus_dir"}
fi

if run_stage 1; then
  echo "== stage 1: train into $exp"
  asr_train "$exp" --config recipes/an4/conf.yaml \
    data.train="$data/train.jsonl" data.dev="$data/dev.jsonl"
fi

if run_stage 2; then
  for split in dev test; do
    echo "== stage 2: evaluate on $data/$split.jsonl"
    asr_evaluate "$exp/best.pt" "$data/$split.jsonl" "$exp/result_$split.txt"
  done
fi

if run_stage 3; then
  echo "== stage 3: export to ONNX"
  asr_export "$exp/best.pt" "$exp" "$data/dev.jsonl"
fi
