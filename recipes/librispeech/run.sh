#!/usr/bin/env bash
# LibriSpeech recipe: read English audiobooks -> BiGRU + CTC (characters or word pieces), beam
# search with the official LibriSpeech 3-gram.
#
# Stages (start anywhere with --stage, stop with --stop-stage):
#   0  prepare   manifests (--corpus-dir, $ASR_CORPORA, data/corpora, else OpenSLR 31 or 12)
#   1  lm        the official 3-gram (OpenSLR 11), lower-cased for our transcripts; when it cannot
#                be fetched (no copy in --corpus-dir, no network), a word 3-gram of the training
#                transcripts instead (asr lm build), said so
#   2  train     resumes automatically if $exp/last.pt exists
#   3  evaluate  greedy on every dev/test part; LM weight grid on dev, applied to the rest
#   4  export    ONNX offline graph, plus the streaming graph when the model can stream; word
#                confidence calibrated on dev (asr calibrate)
#
# Usage: recipes/librispeech/run.sh [--subset mini|100|960] [--stage N] [--stop-stage N]
#                                   [--exp DIR] [--data DIR] [--corpus-dir DIR] [--nproc N]
#                                   [key=value ...]
# --subset picks the data and the config: mini -> conf.yaml, 100 -> conf_100.yaml,
# 960 -> conf_960.yaml; --exp and --data default to exp/librispeech_SUBSET and
# data/librispeech_SUBSET. --nproc N trains data-parallel under torchrun. Trailing key=value
# arguments override the config.
set -euo pipefail
cd "$(dirname "$0")/../.."
source recipes/lib.sh

subset=mini stage=0 stop_stage=4 exp="" data="" corpus_dir="" nproc=1
options+=(subset nproc)
parse_args "$@"
case "$subset" in
  mini) conf=recipes/librispeech/conf.yaml; dev=dev-clean-2; evals=(dev-clean-2) ;;
  100|960) conf=recipes/librispeech/conf_$subset.yaml; dev=dev-clean; evals=(dev-clean dev-other test-clean test-other) ;;
  *) usage_error "--subset must be mini, 100 or 960, not '$subset'" ;;
esac
data=${data:-data/librispeech_$subset}
exp=${exp:-exp/librispeech_$subset}
lm_name=3-gram.pruned.1e-7
official_lm=data/librispeech_lm/$lm_name.lower.arpa.gz
own_lm=$data/lm_train_3gram.arpa  # stage 1's fallback: the training transcripts' own 3-gram
lm=$official_lm
[ -f "$official_lm" ] || [ ! -f "$own_lm" ] || lm=$own_lm

if run_stage 0; then
  echo "== stage 0: prepare LibriSpeech ($subset) manifests in $data"
  "${ASR[@]}" prepare librispeech --subset "$subset" --out "$data" ${corpus_dir:+--corpus-dir "$corpus_dir"}
fi

if run_stage 1; then
  echo "== stage 1: official LibriSpeech LM ($lm_name) -> $official_lm"
  if "${ASR[@]}" prepare librispeech-lm --parts "$lm_name" --out data/librispeech_lm ${corpus_dir:+--corpus-dir "$corpus_dir"}; then
    lm=$official_lm
  else
    echo "   the official LM cannot be fetched (see above): a word 3-gram of the training transcripts instead -> $own_lm"
    echo "   (it knows no text beyond them: LM results with it are not comparable to published ones)"
    "${ASR[@]}" lm build --manifest "$data/train.jsonl" --order 3 --out "$own_lm"
    lm=$own_lm
  fi
fi

if run_stage 2; then
  echo "== stage 2: train into $exp ($conf)"
  asr_train "$exp" --config "$conf" \
    data.train="$data/train.jsonl" data.dev="$data/dev.jsonl"
fi

if run_stage 3; then
  for part in "${evals[@]}"; do
    echo "== stage 3: greedy decoding of $part"
    asr_evaluate "$exp/best.pt" "$data/$part.jsonl" "$exp/result_${part}_greedy.txt"
  done
  echo "== stage 3: LM weight and word bonus chosen on $dev (beam 16, $lm)"
  asr_evaluate "$exp/best.pt" "$data/$dev.jsonl" "$exp/result_${dev}_lm_grid.txt" \
    --lm "$lm" --alpha 0.3,0.5,0.8,1.0 --beta 0,1,2 --jobs 2
  read -r alpha beta < <(tail -n 1 "$exp/result_${dev}_lm_grid.txt" \
    | python -c 'import json, sys; r = json.load(sys.stdin); print(r["alpha"], r["beta"])')
  for part in "${evals[@]}"; do
    [ "$part" = "$dev" ] && continue
    echo "== stage 3: $part with the LM (alpha $alpha, beta $beta)"
    asr_evaluate "$exp/best.pt" "$data/$part.jsonl" "$exp/result_${part}_lm.txt" \
      --lm "$lm" --alpha "$alpha" --beta "$beta" --jobs 2
  done
fi

if run_stage 4; then
  echo "== stage 4: export to ONNX"
  asr_export "$exp/best.pt" "$exp" "$data/dev.jsonl"
fi
