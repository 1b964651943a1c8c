#!/usr/bin/env bash
# Plain tanh RNN vs GRU vs LSTM at equal parameter counts on FSDD, and the pictures of the
# docs/looking_inside.md. Each model is recipes/fsdd/run.sh (conf.yaml: three
# latency-controlled bidirectional layers, 20 epochs) with only model.rnn_type and
# model.hidden_size changed: 285, 160 and 137 units per direction give 1.26M parameters each.
#
# Stages (start anywhere with --stage, stop with --stop-stage):
#   0  prepare   FSDD manifests (as run.sh stage 0)
#   1  train     each model, then run.sh's evaluate, transcribe, export and stream stages
#   2  runtime   test WER of each streaming ONNX graph through the torch-free runtime
#   3  pictures  training curves, gates, gradient flow, one utterance, a stream (into --figs)
#   4  table     the results table (markdown) from the experiment folders
#
# Usage: recipes/fsdd/compare_rnn.sh [--stage N] [--stop-stage N] [--exp PREFIX] [--data DIR]
#                                    [--corpus-dir DIR] [--figs DIR] [key=value ...]
# Experiments go to PREFIX_rnn, PREFIX_gru, PREFIX_lstm; trailing key=value arguments override
# conf.yaml for all three.
set -euo pipefail
cd "$(dirname "$0")/../.."
source recipes/lib.sh

stage=0 stop_stage=4 exp=exp/fsdd data=data/fsdd corpus_dir="" figs=docs/looking_inside
options+=(figs)
parse_args "$@"
MODELS=("rnn 285" "gru 160" "lstm 137")  # rnn_type, hidden size per direction: 1.26M parameters each

if run_stage 0; then
  bash recipes/fsdd/run.sh --stop-stage 0 --data "$data" ${corpus_dir:+--corpus-dir "$corpus_dir"}
fi

if run_stage 1; then
  for spec in "${MODELS[@]}"; do
    set -- $spec
    echo "== stage 1: $1 ($2 units) into ${exp}_$1"
    bash recipes/fsdd/run.sh --stage 1 --data "$data" --exp "${exp}_$1" \
      model.rnn_type="$1" model.hidden_size="$2" ${overrides[@]+"${overrides[@]}"}
  done
fi

if run_stage 2; then
  for spec in "${MODELS[@]}"; do
    set -- $spec
    echo "== stage 2: ${exp}_$1/stream.onnx on the test split, torch-free runtime"
    "${ASR[@]}" evaluate --model "${exp}_$1/stream.onnx" --manifest "$data/test.jsonl" --no-progress \
      --out "${exp}_$1/test_result_onnx.utterances.txt" | tee "${exp}_$1/test_result_onnx.txt"
  done
fi

# five test recordings of one speaker, joined: "three one four one five"
pick() {
  python - "$data/test.jsonl" "$@" <<'PY'
import json, os, sys
entries = {os.path.basename(e["audio_filepath"]): e for e in map(json.loads, open(sys.argv[1]))}
print(" ".join(entries[n]["audio_filepath"] for n in sys.argv[2:]))
PY
}

if run_stage 3; then
  echo "== stage 3: pictures into $figs"
  mkdir -p "$figs"
  P=("${ASR[@]}" plot)
  "${P[@]}" curves "${exp}_rnn" "${exp}_gru" "${exp}_lstm" --names "tanh RNN,GRU,LSTM" --grad-clip 5 \
    --out "$figs/fsdd" --image-format png --dpi 80
  "${P[@]}" gradflow --checkpoint "${exp}_rnn/best.pt" "${exp}_gru/best.pt" "${exp}_lstm/best.pt" \
    --names "tanh RNN,GRU,LSTM" --manifest "$data/test.jsonl" --utts 8 --concat 16 --out "$figs/fsdd_gradflow" \
    --image-format png --dpi 80
  read -r -a pi <<< "$(pick 3_jackson_0.wav 1_jackson_0.wav 4_jackson_0.wav 1_jackson_1.wav 5_jackson_0.wav)"
  "${P[@]}" utterance --checkpoint "${exp}_gru/best.pt" "${pi[@]}" --text "three one four one five" \
    --title "GRU model (${exp}_gru): five test recordings of one speaker, joined" --out "$figs/fsdd_utterance" \
    --image-format png --dpi 80
  "${P[@]}" stream --model "${exp}_gru/stream.onnx" "${pi[@]}" --text "three one four one five" \
    --out "$figs/fsdd_stream" --image-format png --dpi 80
  ls -l "$figs"
fi

if run_stage 4; then
  python - "$exp" "$figs/fsdd_gradflow.json" <<'PY'
import csv, json, os, re, sys
prefix, gradflow = sys.argv[1], sys.argv[2]
flow = json.load(open(gradflow))["reach_relative"] if os.path.isfile(gradflow) else {}
names = {"rnn": "tanh RNN", "gru": "GRU", "lstm": "LSTM"}
hidden = {"rnn": 285, "gru": 160, "lstm": 137}  # as MODELS above
print("| model | units per direction | parameters | best dev WER (epoch) | dev WER, last 5 epochs "
      "| test WER, streaming C = 16: PyTorch / ONNX runtime | gradient norm after epoch 1: median / largest "
      "| steps clipped: epoch 1 / later | gradient reach 0.5 s / 1 s back: layer 1 fwd; top layer fwd |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for kind in ("rnn", "gru", "lstm"):
    d = f"{prefix}_{kind}"
    log = list(csv.DictReader(open(f"{d}/log.csv")))
    steps = list({int(r["step"]): r for r in csv.DictReader(open(f"{d}/steps.csv"))}.values())
    m = re.search(r"model: \w+, ([\d.]+)M parameters", open(f"{d}/train.log").read())
    test = json.loads(open(f"{d}/test_result.txt").read().strip().splitlines()[-1])
    onnx_txt = f"{d}/test_result_onnx.txt"
    last = lambda path: json.loads(open(path).read().strip().splitlines()[-1])
    wer_of = lambda r: r.get("wer_percent", r.get("wer"))  # older results: "wer", also in percent
    onnx = f"{wer_of(last(onnx_txt)):.2f}" if os.path.isfile(onnx_txt) else "n/a"
    wers = [float(r["dev_wer"]) for r in log]
    best = min(range(len(wers)), key=lambda i: wers[i])
    first = [r for r in steps if int(r["epoch"]) == 1]
    later = [r for r in steps if int(r["epoch"]) > 1]
    norms = sorted(float(r["grad_norm"]) for r in later)
    clip = lambda rows: f"{100 * sum(int(r['clipped']) for r in rows) / max(1, len(rows)):.0f}%"
    name = names[kind]
    reach = flow.get(name, {})
    layers = sorted({k.split(".")[0] for k in reach})
    def r(layer, s):
        v = reach.get(f"{layer}.fwd", {}).get(s)
        return "n/a" if v is None else f"{v:.0e}" if v < 0.01 else f"{v:.2f}"
    rch = "; ".join(f"{r(l, '0.5')} / {r(l, '1')}" for l in (layers[:1] + layers[-1:])) if layers else "n/a"
    print(f"| {name} | {hidden[kind]} | {m.group(1) if m else '?'}M "
          f"| {wers[best]:.2f} ({best + 1}) | {min(wers[-5:]):.2f}-{max(wers[-5:]):.2f} | {wer_of(test):.2f} / {onnx} "
          f"| {norms[len(norms) // 2]:.2f} / {norms[-1]:.1f} | {clip(first)} / {clip(later)} | {rch} |")
PY
fi
