#!/usr/bin/env bash
# LibriSpeech recipe: read English audiobooks -> BiGRU + CTC (characters), beam search with the
# official LibriSpeech 3-gram.
#
# Stages (start anywhere with --stage, stop with --stop-stage):
#   0  prepare   manifests (--corpus-dir, $ASR_CORPORA, data/corpora, else OpenSLR 31 or 12)
#   1  lm        the official 3-gram (OpenSLR 11), lower-cased for our transcripts
#   2  train     resumes automatically if $exp/last.pt exists
#   3  evaluate  greedy on every dev/test part; LM weight grid on dev, applied to the rest
#   4  export    ONNX offline graph, plus the streaming graph when the model can stream
#
# Usage: recipes/librispeech/run.sh [--subset mini|100|960] [--stage N] [--stop-stage N]
#                                   [--exp DIR] [--corpus-dir DIR] [--nproc N] [key=value ...]
# --subset picks the data and the config: mini -> conf.yaml, 100 -> conf_100.yaml,
# 960 -> conf_960.yaml. Trailing key=value arguments override the config.
set -euo pipefail
cd "$(dirname "$0")/../.."

subset=mini
stage=0
stop_stage=4
exp=""
corpus_dir=""
lm_name=3-gram.pruned.1e-7
nproc=1
overrides=()
while [ $# -gt 0 ]; do
  case "$1" in
    --nproc) nproc=$2; shift 2 ;;
    --subset) subset=$2; shift 2 ;;
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    --exp) exp=$2; shift 2 ;;
    --corpus-dir) corpus_dir=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *=*) overrides+=("$1"); shift ;;
    *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$subset" in
  mini) conf=recipes/librispeech/conf.yaml; dev=dev-clean-2; evals=(dev-clean-2) ;;
  100|960) conf=recipes/librispeech/conf_$subset.yaml; dev=dev-clean; evals=(dev-clean dev-other test-clean test-other) ;;
  *) echo "run.sh: --subset must be mini, 100 or 960" >&2; exit 2 ;;
esac
data=data/librispeech_$subset
exp=${exp:-exp/librispeech_$subset}
lm=data/librispeech_lm/$lm_name.lower.arpa.gz

source recipes/lib.sh

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  echo "== stage 0: prepare LibriSpeech ($subset) manifests in $data"
  "${ASR[@]}" prepare librispeech --subset "$subset" --out "$data" ${corpus_dir:+--corpus-dir "$corpus_dir"}
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  echo "== stage 1: official LibriSpeech LM ($lm_name) -> $lm"
  "${ASR[@]}" prepare librispeech-lm --parts "$lm_name" --out data/librispeech_lm ${corpus_dir:+--corpus-dir "$corpus_dir"}
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  echo "== stage 2: train into $exp ($conf)"
  asr_train "$exp" --config "$conf" \
    data.train="$data/train.jsonl" data.dev="$data/dev.jsonl" ${overrides[@]+"${overrides[@]}"}
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  for part in "${evals[@]}"; do
    echo "== stage 3: greedy decoding of $part"
    "${ASR[@]}" evaluate --checkpoint "$exp/best.pt" --manifest "$data/$part.jsonl" --no-progress \
      | tee "$exp/result_${part}_greedy.txt"
  done
  echo "== stage 3: LM weight and word bonus chosen on $dev (beam 16, $lm_name)"
  "${ASR[@]}" evaluate --checkpoint "$exp/best.pt" --manifest "$data/$dev.jsonl" --no-progress \
    --lm "$lm" --alpha 0.3,0.5,0.8,1.0 --beta 0,1,2 --jobs 2 | tee "$exp/result_${dev}_lm_grid.txt"
  read -r alpha beta < <(tail -n 1 "$exp/result_${dev}_lm_grid.txt" \
    | python -c 'import json, sys; r = json.load(sys.stdin); print(r["alpha"], r["beta"])')
  for part in "${evals[@]}"; do
    [ "$part" = "$dev" ] && continue
    echo "== stage 3: $part with the LM (alpha $alpha, beta $beta)"
    "${ASR[@]}" evaluate --checkpoint "$exp/best.pt" --manifest "$data/$part.jsonl" --no-progress \
      --lm "$lm" --alpha "$alpha" --beta "$beta" --jobs 2 | tee "$exp/result_${part}_lm.txt"
  done
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  echo "== stage 4: export to ONNX"
  asr_export "$exp/best.pt" "$exp"
fi
