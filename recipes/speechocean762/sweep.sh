#!/usr/bin/env bash
# The settings sweep behind the "did not help" table of README.md: variants of conf.yaml,
# trained side by side (on one GPU: all at once; on a CPU run them a few at a time), each
# stopped after --limit seconds. Reads log.csv of each run for dev CER by epoch.
#
# Usage: recipes/speechocean762/sweep.sh [--data data/speechocean762] [--limit SECONDS]
#                                        [--device cuda|cpu] [--set 1|2|3|4] [key=value ...]
# Set 1: the 12-epoch schedule with SpecAugment variants; set 2: the 8-epoch schedule without
# (both on the old recipe: no utterance normalization, no phone head). Sets 3 and 4 start from
# today's conf.yaml: 3 = 24-epoch schedules with a global batch of 64 (what two data-parallel
# CPU processes afford in the time of one), with and without SpecAugment; 4 = architecture
# variants on the 8-epoch schedule. Trailing key=value arguments change the base settings of
# every run of the set (each run's own settings still apply on top).
set -euo pipefail
cd "$(dirname "$0")/../.."
source recipes/lib.sh

data=data/speechocean762 limit=440 device=cuda set=1
options=(data limit device set)  # no stages: these replace the recipes' common options
parse_args "$@"
export OMP_NUM_THREADS=1
# (12 epochs on one process unless a run says otherwise, as conf.yaml was then; sets 1-2 ran
# before conf.yaml gained utterance normalization and the phone CTC head: off there)
BASE="data.train=$data/train.jsonl data.dev=$data/dev.jsonl train.epochs=12 train.max_frames=30000 train.max_batch=32
      train.device=$device train.save_every_steps=0 train.keep_epochs=0"
[ "$set" -le 2 ] && BASE="$BASE model.utterance_cmn=false model.inter_ctc_layer=0 data.aux_lexicon=null"
[ "$set" -ge 3 ] && BASE="$BASE data.aux_lexicon=$data/lexicon.txt"
E8=train.epochs=8
SA='train.specaugment={freq_masks: 2, freq_width: 15, time_masks: 2, time_width: 20, time_width_ratio: 0.1}'
SAL='train.specaugment={freq_masks: 2, freq_width: 10, time_masks: 2, time_width: 10, time_width_ratio: 0.05}'
SAS='train.specaugment={freq_masks: 2, freq_width: 27, time_masks: 2, time_width: 40, time_width_ratio: 0.2}'
run() {
  name=$1; shift
  mkdir -p "exp/sweep/$name"
  timeout "$limit" "$PY" -m asr train --config recipes/speechocean762/conf.yaml --exp "exp/sweep/$name" --no-progress \
    $BASE ${overrides[@]+"${overrides[@]}"} "$@" > "exp/sweep/$name/out.txt" 2>&1 || true
}
if [ "$set" = 1 ]; then
  run sp &
  run sa "$SA" &
  run sa_big "$SA" model.hidden_size=256 model.conv_dim=256 &
  run sa_l4 "$SA" model.num_layers=4 &
  run sa_strong "$SAS" &
  run sa_bpe "$SA" data.tokenizer=bpe data.bpe_vocab_size=200 &
  run sa_ep20 "$SA" train.epochs=20 &
  run sa_lr4 "$SA" train.lr=4e-3 &
elif [ "$set" = 3 ]; then
  L="train.epochs=24 train.accum_steps=2"
  run ref12 &
  run a24 $L &
  run sa24 $L "$SA" &
  run sal24 $L "$SAL" &
  run sa24lr3 $L train.lr=3e-3 "$SA" &
elif [ "$set" = 4 ]; then
  run ref8 $E8 &
  run lstm $E8 model.rnn_type=lstm &
  run big $E8 model.hidden_size=320 model.conv_dim=256 model.dropout=0.4 &
  run l5 $E8 model.num_layers=5 model.inter_ctc_layer=3 &
  run b16 $E8 train.max_frames=15000 train.max_batch=16 &
else
  run base $E8 &
  run do5 $E8 model.dropout=0.5 &
  run big_do5 $E8 model.dropout=0.5 model.hidden_size=256 model.conv_dim=256 &
  run small $E8 model.hidden_size=128 model.conv_dim=128 &
  run wd1 $E8 train.weight_decay=0.1 &
  run l2_256 $E8 model.num_layers=2 model.hidden_size=256 model.conv_dim=256 &
  run lr1 $E8 train.lr=1e-3 &
fi
wait
for f in exp/sweep/*/log.csv; do echo "== $f"; cut -d, -f1,3,6,8 "$f"; done
