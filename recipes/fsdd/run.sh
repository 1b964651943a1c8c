#!/usr/bin/env bash
# FSDD recipe: the built-in English digits model. Spoken digits -> BiGRU + CTC on a CPU, trained
# on FSDD's recordings joined on the fly into strings (train.concat) beside other speech whose
# words become the unknown-word unit (speechocean762: other voices, and what is not a digit).
#
# Stages (start anywhere with --stage, stop with --stop-stage):
#   0  prepare   FSDD and speechocean762 manifests from local copies (--corpus-dir for FSDD,
#                $ASR_CORPORA) or downloads; the training mix and the dev/test sets built from
#                them (recipes/fsdd/other_speech.py, tools/make_digit_strings.py,
#                tools/make_long_recording.py)
#   1  train     resumes automatically if $exp/last.pt exists
#   2  evaluate  WER/CER on the isolated test recordings
#   3  transcribe a few test files (PyTorch checkpoint)
#   4  export to ONNX (offline and streaming graphs), each with its word confidence calibrated on
#      dev (asr calibrate), then its model card set (recipes/fsdd/card.json: what asr serve's
#      page shows)
#   5  stream a few test files through the torch-free runtime
#   6  what the model recognizes (tools/measure_digits.py): isolated test recordings, strings of
#      3-8 of them, a 10-minute continuous recording through asr stream, other voices' digit
#      strings and speech without digits, offline and streamed; into $exp/digits.json
#   7  ship $exp as the package's built-in model (recipes/fsdd/ship.py; runs only when asked:
#      --stage 7 --stop-stage 7)
#
# Usage: recipes/fsdd/run.sh [--stage N] [--stop-stage N] [--exp DIR] [--data DIR]
#                            [--corpus-dir DIR] [--test-speaker NAME] [key=value ...]
# Trailing key=value arguments override recipes/fsdd/conf.yaml (e.g. train.epochs=5).
set -euo pipefail
cd "$(dirname "$0")/../.."
source recipes/lib.sh

stage=0 stop_stage=6 exp=exp/fsdd data=data/fsdd corpus_dir="" test_speaker=""
options+=(test_speaker)
parse_args "$@"
conf=recipes/fsdd/conf.yaml
start=$(date +%s)

if run_stage 0; then
  echo "== stage 0: prepare FSDD and speechocean762 manifests; the training mix and test sets in $data"
  "${ASR[@]}" prepare fsdd --out "$data" ${corpus_dir:+--corpus-dir "$corpus_dir"} ${test_speaker:+--test-speaker "$test_speaker"}
  [ -f data/speechocean762/train.jsonl ] || "${ASR[@]}" prepare speechocean762 --out data/speechocean762 --no-progress
  "$PY" recipes/fsdd/other_speech.py --speechocean data/speechocean762 --fsdd "$data" --out "$data" --others 300
  for split in dev test; do
    "$PY" tools/make_digit_strings.py --manifest "$data/$split.jsonl" --out "$data/strings_$split"
    "$PY" tools/make_long_recording.py --manifest "$data/$split.jsonl" --hours 0.1667 --out "$data/long_$split" >/dev/null
  done
  cat "$data/dev.jsonl" "$data/strings_dev/manifest.jsonl" "$data/sodigits_dev.jsonl" > "$data/dev_mix.jsonl"
fi

if run_stage 1; then
  echo "== stage 1: train into $exp"
  asr_train "$exp" --config "$conf" \
    data.train="$data/train_mix.jsonl" data.dev="$data/dev_mix.jsonl"
fi

if run_stage 2; then
  echo "== stage 2: evaluate on $data/test.jsonl"
  asr_evaluate "$exp/best.pt" "$data/test.jsonl" "$exp/test_result.txt"
fi

if run_stage 3; then
  echo "== stage 3: transcribe a few test files"
  mapfile -t files < <(python -c "import json,sys; [print(json.loads(l)['audio_filepath']) for l in list(open(sys.argv[1]))[::67]]" "$data/test.jsonl")
  "${ASR[@]}" transcribe --checkpoint "$exp/best.pt" "${files[@]}"
fi

if run_stage 4; then
  echo "== stage 4: export $exp/best.pt to ONNX"
  "${ASR[@]}" export --checkpoint "$exp/best.pt" --out "$exp/model.onnx"
  asr_calibrate "$exp/model.onnx" "$data/dev.jsonl"
  "${ASR[@]}" export --model "$exp/model.onnx" --card recipes/fsdd/card.json  # after calibrating, as the shipped files were made
  if python - "$exp/best.pt" <<'PY'
import sys, torch
m = torch.load(sys.argv[1], weights_only=True)["config"]["model"]
sys.exit(0 if m["chunk_size"] > 0 or not m["bidirectional"] else 1)
PY
  then
    "${ASR[@]}" export --checkpoint "$exp/best.pt" --out "$exp/stream.onnx" --streaming
    asr_calibrate "$exp/stream.onnx" "$data/dev.jsonl"
    "${ASR[@]}" export --model "$exp/stream.onnx" --card recipes/fsdd/card.json
  else
    echo "   (full-context bidirectional model: no streaming graph; see recipes/fsdd/README.md)"
  fi
fi

if run_stage 5; then
  mapfile -t files < <(python -c "import json,sys; [print(json.loads(l)['audio_filepath']) for l in list(open(sys.argv[1]))[33::67]]" "$data/test.jsonl")
  if [ -f "$exp/stream.onnx" ]; then
    echo "== stage 5: stream test files through the runtime (asr stream, 100 ms pieces)"
    "${ASR[@]}" stream --model "$exp/stream.onnx" --no-partials "${files[@]}"
  else
    echo "== stage 5: transcribe test files with the runtime (asr transcribe --model)"
    "${ASR[@]}" transcribe --model "$exp/model.onnx" "${files[@]}"
  fi
fi

if run_stage 6; then
  echo "== stage 6: what the model recognizes (WER %; the continuous recording through asr stream)"
  "$PY" tools/measure_digits.py --model "$exp/model.onnx" --stream "$exp/stream.onnx" \
    --set "isolated test=$data/test.jsonl" --set "strings of 3-8, test=$data/strings_test/manifest.jsonl" \
    --set "other voices' strings, dev=$data/sodigits_dev.jsonl" --long "$data/long_test" \
    --nondigit "sentences=$data/nondigit_dev.jsonl" \
    --out "$exp/digits.json"
fi

if run_stage 7; then  # default --stop-stage is 6
  echo "== stage 7: ship $exp as the built-in digits model (asr/assets/digits)"
  "$PY" recipes/fsdd/ship.py --exp "$exp"
fi

echo "== done in $(( $(date +%s) - start )) s"
if [ -f "$exp/test_result.txt" ]; then
  python - "$exp/test_result.txt" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
wer, cer = r.get("wer_percent", r.get("wer")), r.get("cer_percent", r.get("cer"))  # older files: wer, cer
print(f"test WER {wer:.2f}% (CER {cer:.2f}%) on {r['num_utts']} utterances")
PY
fi
echo "model: $exp/best.pt   (try: asr transcribe --checkpoint $exp/best.pt FILE.wav)"
