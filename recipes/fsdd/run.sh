#!/usr/bin/env bash
# FSDD recipe: spoken digits -> BiGRU + CTC, on a CPU in a few minutes.
#
# Stages (start anywhere with --stage, stop with --stop-stage):
#   0  prepare   manifests from a local copy (--corpus-dir, $ASR_CORPORA) or a download
#   1  train     resumes automatically if $exp/last.pt exists
#   2  evaluate  WER/CER on the test split
#   3  transcribe a few test files (PyTorch checkpoint)
#   4  export to ONNX (offline graph; plus the streaming graph when the model can stream), each
#      with its word confidence calibrated on dev (asr calibrate)
#   5  stream a few test files through the torch-free runtime
#
# Usage: recipes/fsdd/run.sh [--stage N] [--stop-stage N] [--exp DIR] [--data DIR]
#                            [--corpus-dir DIR] [--test-speaker NAME] [key=value ...]
# Trailing key=value arguments override recipes/fsdd/conf.yaml (e.g. train.epochs=5).
set -euo pipefail
cd "$(dirname "$0")/../.."
source recipes/lib.sh

stage=0 stop_stage=5 exp=exp/fsdd data=data/fsdd corpus_dir="" test_speaker=""
options+=(test_speaker)
parse_args "$@"
if command -v asr-stream >/dev/null 2>&1; then STREAM=(asr-stream); else STREAM=(python -m asr.cli.stream); fi
conf=recipes/fsdd/conf.yaml
start=$(date +%s)

if run_stage 0; then
  echo "== stage 0: prepare FSDD manifests in $data"
  "${ASR[@]}" prepare fsdd --out "$data" ${corpus_dir:+--corpus-dir "$corpus_dir"} ${test_speaker:+--test-speaker "$test_speaker"}
fi

if run_stage 1; then
  echo "== stage 1: train into $exp"
  asr_train "$exp" --config "$conf" \
    data.train="$data/train.jsonl" data.dev="$data/dev.jsonl"
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
  if python - "$exp/best.pt" <<'PY'
import sys, torch
m = torch.load(sys.argv[1], weights_only=True)["config"]["model"]
sys.exit(0 if m["chunk_size"] > 0 or not m["bidirectional"] else 1)
PY
  then
    "${ASR[@]}" export --checkpoint "$exp/best.pt" --out "$exp/stream.onnx" --streaming
    asr_calibrate "$exp/stream.onnx" "$data/dev.jsonl"
  else
    echo "   (full-context bidirectional model: no streaming graph; see recipes/fsdd/README.md)"
  fi
fi

if run_stage 5; then
  mapfile -t files < <(python -c "import json,sys; [print(json.loads(l)['audio_filepath']) for l in list(open(sys.argv[1]))[33::67]]" "$data/test.jsonl")
  if [ -f "$exp/stream.onnx" ]; then
    echo "== stage 5: stream test files through the runtime (asr-stream, 100 ms pieces)"
    "${STREAM[@]}" --model "$exp/stream.onnx" --no-partials "${files[@]}"
  else
    echo "== stage 5: transcribe test files with the runtime (asr transcribe --model)"
    "${ASR[@]}" transcribe --model "$exp/model.onnx" "${files[@]}"
  fi
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
