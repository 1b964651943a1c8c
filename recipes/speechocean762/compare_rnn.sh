#!/usr/bin/env bash
# Plain tanh RNN vs GRU vs LSTM at equal parameter counts on speechocean762 (issue 16's second
# table; the FSDD one is recipes/fsdd/compare_rnn.sh). Each model is run.sh's training stage
# (conf.yaml: a full-context 3-layer BiGRU, character CTC with a phone head after layer 2) with
# only model.rnn_type and model.hidden_size changed: 341, 192 and 165 units per direction give
# 1.91M parameters each. All three train the same number of epochs (--epochs, default 12: what
# conf.yaml's 24 epochs on two processes cost one process; the three side by side take about an
# hour on the 2-core machine), one process of one thread each, --jobs of them at a time.
#
# Stages (start anywhere with --stage, stop with --stop-stage):
#   0  prepare   manifests (as run.sh stage 0)
#   1  train     the three models into PREFIX_rnn, PREFIX_gru, PREFIX_lstm (resumes if interrupted)
#   2  gradflow  ||dLoss/dh_t|| through time for each final model on dev utterances (into --figs)
#   3  table     the results table (markdown) from the experiment folders
#
# Usage: recipes/speechocean762/compare_rnn.sh [--stage N] [--stop-stage N] [--exp PREFIX]
#                                              [--data DIR] [--corpus-dir DIR] [--figs DIR]
#                                              [--epochs N] [--jobs N] [key=value ...]
# Trailing key=value arguments override conf.yaml for all three.
set -euo pipefail
cd "$(dirname "$0")/../.."
source recipes/lib.sh

stage=0 stop_stage=3 exp=exp/so_cmp data=data/speechocean762 corpus_dir="" figs=docs/looking_inside epochs=12 jobs=3
options+=(figs epochs jobs)
parse_args "$@"
MODELS=("rnn 341" "gru 192" "lstm 165")  # rnn_type, hidden size per direction: 1.91M parameters each

if run_stage 0; then
  bash recipes/speechocean762/run.sh --stop-stage 0 --data "$data" ${corpus_dir:+--corpus-dir "$corpus_dir"}
fi

if run_stage 1; then
  running=0
  for spec in "${MODELS[@]}"; do
    set -- $spec
    mkdir -p "${exp}_$1"
    echo "== stage 1: $1 ($2 units, $epochs epochs) into ${exp}_$1 (log: ${exp}_$1/stdout.log)"
    bash recipes/speechocean762/run.sh --stage 2 --stop-stage 2 --nproc 1 --data "$data" --exp "${exp}_$1" \
      model.rnn_type="$1" model.hidden_size="$2" train.epochs="$epochs" ${overrides[@]+"${overrides[@]}"} \
      > "${exp}_$1/stdout.log" 2>&1 &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
  done
  wait
  for spec in "${MODELS[@]}"; do
    set -- $spec
    [ -f "${exp}_$1/last.pt" ] || { echo "training ${exp}_$1 failed: see ${exp}_$1/stdout.log" >&2; exit 1; }
    tail -n 2 "${exp}_$1/train.log"
  done
fi

if run_stage 2; then
  echo "== stage 2: gradient flow through time on dev (into $figs/so_gradflow)"
  mkdir -p "$figs"
  "${ASR[@]}" plot gradflow --checkpoint "${exp}_rnn/last.pt" "${exp}_gru/last.pt" "${exp}_lstm/last.pt" \
    --names "tanh RNN,GRU,LSTM" --manifest "$data/dev.jsonl" --utts 8 --concat 3 --out "$figs/so_gradflow" \
    --image-format png --dpi 80
fi

if run_stage 3; then
  python - "$exp" "$figs/so_gradflow.json" <<'PY'
import csv, json, os, re, sys
prefix, gradflow = sys.argv[1], sys.argv[2]
flow = json.load(open(gradflow))["reach_relative"] if os.path.isfile(gradflow) else {}
names = {"rnn": "tanh RNN", "gru": "GRU", "lstm": "LSTM"}
hidden = {"rnn": 341, "gru": 192, "lstm": 165}  # as MODELS above
print("| model | units per direction | parameters | dev WER / CER, last epoch | best dev CER (epoch) "
      "| gradient norm after epoch 1: median / largest | steps clipped: epoch 1 / later "
      "| gradient reach 1 s / 2 s back: layer 1 fwd; top layer fwd | epoch time |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for kind in ("rnn", "gru", "lstm"):
    d = f"{prefix}_{kind}"
    log = list(csv.DictReader(open(f"{d}/log.csv")))
    steps = list({int(r["step"]): r for r in csv.DictReader(open(f"{d}/steps.csv"))}.values())
    m = re.search(r"model: \w+, ([\d.]+)M parameters", open(f"{d}/train.log").read())
    cers = [float(r["dev_cer"]) for r in log]
    best = min(range(len(cers)), key=lambda i: cers[i])
    first = [r for r in steps if int(r["epoch"]) == 1]
    later = [r for r in steps if int(r["epoch"]) > 1]
    norms = sorted(float(r["grad_norm"]) for r in later)
    clip = lambda rows: f"{100 * sum(int(r['clipped']) for r in rows) / max(1, len(rows)):.0f}%"
    reach = flow.get(names[kind], {})
    layers = sorted({k.split(".")[0] for k in reach})
    def r(layer, s):
        v = reach.get(f"{layer}.fwd", {}).get(s)
        return "n/a" if v is None else f"{v:.0e}" if v < 0.01 else f"{v:.2f}"
    rch = "; ".join(f"{r(l, '1')} / {r(l, '2')}" for l in (layers[:1] + layers[-1:])) if layers else "n/a"
    minutes = sum(float(r["epoch_seconds"]) for r in log) / len(log) / 60
    print(f"| {names[kind]} | {hidden[kind]} | {m.group(1) if m else '?'}M "
          f"| {float(log[-1]['dev_wer']):.1f} / {float(log[-1]['dev_cer']):.1f} | {cers[best]:.1f} ({best + 1}) "
          f"| {norms[len(norms) // 2]:.2f} / {norms[-1]:.1f} | {clip(first)} / {clip(later)} | {rch} | {minutes:.1f} min |")
PY
fi
