#!/usr/bin/env bash
# FSDD leave-one-speaker-out, with and without synthetic digits: does speech from espeak-ng,
# flite and festival teach the model a voice it has never heard?
#
# Stages (start anywhere with --stage, stop with --stop-stage):
#   0  synth     render the ten digits --takes times (default 300: 3,000 utterances, about 3 min
#                on two cores) into $exp/digits; installs the synthesizers with apt when missing
#                and allowed (root), else says which packages to install
#   1  prepare   one split per held-out speaker: data/fsdd_loso/SPEAKER/{train,dev,test}.jsonl
#   2  train     for each speaker of --speakers and each of --variants: "real" trains on the real
#                recordings only; any other name is a folder of $exp holding a synthetic set
#                (stage 0 makes "digits"; other sets with `asr synth ... --out $exp/NAME`), which
#                joins training with train.synthetic_ratio=--ratio. Into $exp/SPEAKER/VARIANT,
#                --jobs trainings at a time (one thread each); each evaluates best.pt on the
#                held-out speaker (test.jsonl). Every run trains with recording-level perturbation
#                train.gain_db=[--gain] (default -24,6; "none": off): the held-out speaker may
#                have recorded far quieter or louder than the others (theo: 15 dB quieter)
#   3  table     test WER of every run in $exp/results.md
#
# Usage: recipes/fsdd/synth.sh [--stage N] [--stop-stage N] [--exp DIR] [--data DIR]
#                              [--corpus-dir DIR] [--speakers "theo ..."] [--takes N] [--ratio R]
#                              [--variants "real digits"] [--jobs N] [--gain LOW,HIGH|none]
#                              [key=value ...]
# Trailing key=value arguments override recipes/fsdd/conf.yaml in every training.
set -euo pipefail
cd "$(dirname "$0")/../.."
source recipes/lib.sh

stage=0 stop_stage=3 exp=exp/fsdd_synth data=data/fsdd_loso corpus_dir=""
speakers="george jackson lucas nicolas theo yweweler" takes=300 ratio=1.0 variants="real digits" jobs=2 gain=-24,6
options+=(speakers takes ratio variants jobs gain)
parse_args "$@"
conf=recipes/fsdd/conf.yaml

if run_stage 0; then
  echo "== stage 0: synthetic digits ($takes takes of each) -> $exp/digits"
  need_synthesizers
  mkdir -p "$exp"
  printf '%s\n' zero one two three four five six seven eight nine > "$exp/digits.txt"
  "${ASR[@]}" synth --text "$exp/digits.txt" --out "$exp/digits" --takes "$takes" --sample-rate 8000 --no-progress
fi

if run_stage 1; then
  echo "== stage 1: leave-one-speaker-out splits in $data"
  for s in $speakers; do
    "${ASR[@]}" prepare fsdd --out "$data/$s" --test-speaker "$s" ${corpus_dir:+--corpus-dir "$corpus_dir"}
  done
fi

# one_run SPEAKER VARIANT: train and evaluate one run (its output in $exp/SPEAKER/VARIANT/run.log)
one_run() {
  local s=$1 v=$2 dir=$exp/$1/$2 extra=()
  [ "$gain" = none ] || extra+=("train.gain_db=[$gain]")
  if [ "$v" != real ]; then
    [ -f "$exp/$v/manifest.jsonl" ] || { echo "   $s/$v: no synthetic set $exp/$v/manifest.jsonl (stage 0, or asr synth --out $exp/$v)"; return 1; }
    extra+=(data.synthetic="$exp/$v/manifest.jsonl" train.synthetic_ratio="$ratio")
  fi
  mkdir -p "$dir"
  {
    OMP_NUM_THREADS=1 asr_train "$dir" --config "$conf" --no-progress \
      data.train="$data/$s/train.jsonl" data.dev="$data/$s/dev.jsonl" ${extra[@]+"${extra[@]}"}
    asr_evaluate "$dir/best.pt" "$data/$s/test.jsonl" "$dir/test_result.txt"
  } > "$dir/run.log" 2>&1 && echo "   $s/$v: test WER $(result_wer "$dir/test_result.txt")%" \
    || { echo "   $s/$v FAILED: see $dir/run.log"; return 1; }
}

if run_stage 2; then
  echo "== stage 2: train and evaluate ($variants) x ($speakers), $jobs at a time"
  failed=0 running=0
  for s in $speakers; do
    for v in $variants; do
      if [ -f "$exp/$s/$v/test_result.txt" ]; then echo "   $s/$v: done before"; continue; fi
      one_run "$s" "$v" &
      running=$((running + 1))
      if [ "$running" -ge "$jobs" ]; then wait -n || failed=$((failed + 1)); running=$((running - 1)); fi
    done
  done
  while [ "$running" -gt 0 ]; do wait -n || failed=$((failed + 1)); running=$((running - 1)); done
  [ "$failed" -eq 0 ] || { echo "$failed run(s) failed" >&2; exit 1; }
fi

if run_stage 3; then
  echo "== stage 3: results -> $exp/results.md"
  "$PY" - "$exp" $speakers <<'PY' | tee "$exp/results.md"
import json, os, sys
exp, speakers = sys.argv[1], sys.argv[2:]
variants = sorted({v for s in speakers if os.path.isdir(os.path.join(exp, s)) for v in os.listdir(os.path.join(exp, s))},
                  key=lambda v: (v != "real", v))
def wer(s, v):
    p = os.path.join(exp, s, v, "test_result.txt")
    if not os.path.isfile(p):
        return None
    with open(p) as f:
        r = json.loads(f.read().strip().splitlines()[-1])
        return r.get("wer_percent", r.get("wer"))  # older results: "wer", also in percent
print("| held-out speaker | " + " | ".join(f"{v}: test WER %" for v in variants) + " |")
print("| --- |" + " --- |" * len(variants))
cols = {v: [] for v in variants}
for s in speakers:
    row = []
    for v in variants:
        w = wer(s, v)
        row.append("" if w is None else f"{w:.1f}")
        if w is not None:
            cols[v].append(w)
    print(f"| {s} | " + " | ".join(row) + " |")
print("| mean | " + " | ".join(f"{sum(c) / len(c):.1f}" if c else "" for c in cols.values()) + " |")
PY
fi
