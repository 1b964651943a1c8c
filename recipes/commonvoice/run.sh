#!/usr/bin/env bash
# Common Voice English recipe: crowd-sourced read sentences -> BiGRU + CTC (characters).
# Common Voice cannot be downloaded by a script (its terms must be accepted at
# https://commonvoice.mozilla.org/datasets): download the English release, unpack it, and pass
# the folder with --corpus-dir (or put it under $ASR_CORPORA/commonvoice).
#
# Stages (start anywhere with --stage, stop with --stop-stage):
#   0  prepare   manifests with clip durations; train_<N>h.jsonl = the first N hours of train
#   1  train     resumes automatically if $exp/last.pt exists
#   2  evaluate  dev and test (official splits)
#   3  export    ONNX offline graph, plus the streaming graph when the model can stream; word
#                confidence calibrated on dev (asr calibrate)
#
# Usage: recipes/commonvoice/run.sh --corpus-dir DIR [--hours N] [--stage N] [--stop-stage N]
#                                   [--exp DIR] [--data DIR] [--nproc N] [key=value ...]
# --nproc N trains data-parallel under torchrun; key=value arguments override conf.yaml.
set -euo pipefail
cd "$(dirname "$0")/../.."
source recipes/lib.sh

stage=0 stop_stage=3 exp=exp/commonvoice data=data/commonvoice corpus_dir="" hours=100 nproc=1
options+=(hours nproc)
parse_args "$@"

if run_stage 0; then
  echo "== stage 0: prepare Common Voice manifests in $data"
  "${ASR[@]}" prepare commonvoice --out "$data" ${corpus_dir:+--corpus-dir "$corpus_dir"}
  echo "== stage 0: the first $hours h of train -> $data/train_${hours}h.jsonl"
  "$PY" - "$data/train.jsonl" "$data/train_${hours}h.jsonl" "$hours" <<'PYEOF'
import json, sys
src, dest, hours = sys.argv[1], sys.argv[2], float(sys.argv[3])
total, n = 0.0, 0
with open(src) as f, open(dest, "w") as out:
    for line in f:
        if total >= hours * 3600:
            break
        total += json.loads(line)["duration"]
        out.write(line)
        n += 1
print(f"   {n} clips, {total / 3600:.1f} h")
PYEOF
fi

if run_stage 1; then
  echo "== stage 1: train into $exp"
  asr_train "$exp" --config recipes/commonvoice/conf.yaml \
    data.train="$data/train_${hours}h.jsonl" data.dev="$data/dev.jsonl"
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
