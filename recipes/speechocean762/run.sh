#!/usr/bin/env bash
# speechocean762 recipe: read English by non-native speakers -> BiGRU + CTC (characters),
# decoded with prefix beam search, a word 3-gram LM and a character 6-gram LM of the training
# transcripts.
#
# Stages (start anywhere with --stage, stop with --stop-stage):
#   0  prepare   manifests (--corpus-dir, $ASR_CORPORA, data/corpora, else OpenSLR 101)
#   1  lm        word 3-gram and character 6-gram (Kneser-Ney, ARPA) of the training
#                transcripts; dev perplexities
#   2  train     resumes automatically if $exp/last.pt exists (--nproc N: torchrun, N processes;
#                default: 2 without a GPU, one per core of the 2-core machine the recipe is sized
#                for; 1 with a GPU, which two processes could not share under NCCL)
#   3  average   mean of the last 4 epochs' weights -> $exp/avg.pt, scored greedily on dev
#   4  evaluate  dev, the final epoch's model: greedy, beam search, beam search + word LM,
#                + character LM, + both (LM weights and word bonus tuned on dev by grid search)
#   5  export    ONNX offline graph, its word confidence calibrated on dev (asr calibrate); the
#                runtime decodes dev with both LMs as a check
#   6  train-lc  the latency-controlled (streamable) model into $lc_exp: chunks of 16 model
#                frames (640 ms) + 4 of right context, chunk sizes 8/16/32 during training,
#                no utterance mean normalization (a stream cannot know the mean before it ends)
#   7  eval-lc   dev at C = 16: greedy, beam search with both LMs (weights tuned on dev)
#   8  stream    its streaming graph $lc_exp/stream.onnx (confidence calibrated on dev); the
#                streaming runtime decodes dev
#                greedily and with both LMs (what `asr serve` and `asr stream` serve)
#   9  lexicons  pronunciations (`asr lexicon`: CMUdict, espeak-ng for the words it lacks) of the
#                train words -> $data/phones.txt, and CMUdict with them -> $data/cmudict.txt
#                (the decoding vocabulary; no dev word is looked at)
#  10  train-phone  the same model and budget on phones into $phone_exp (data.tokenizer phone;
#                the intermediate CTC head on its own phones)
#  11  eval-phone  dev: the phone model through the words of its model file, with the word LM,
#                and with the word LM over CMUdict's words; the character model constrained to
#                CMUdict's words (weights tuned on dev)
#
# Usage: recipes/speechocean762/run.sh [--stage N] [--stop-stage N] [--exp DIR] [--data DIR]
#                                      [--corpus-dir DIR] [--nproc N]
#                                      [--checkpoint last.pt|avg.pt|best.pt] [--lc-exp DIR]
#                                      [--phone-exp DIR]
#                                      [key=value ...]
# --checkpoint: the model of $exp that stages 4 and 5 decode and export (stages 7 and 8 use the
# final epoch of $lc_exp, default $exp/lc). Trailing key=value arguments override conf.yaml
# (in both trainings).
set -euo pipefail
cd "$(dirname "$0")/../.."
source recipes/lib.sh

stage=0 stop_stage=8 exp=exp/speechocean762 data=data/speechocean762 corpus_dir="" nproc=auto
checkpoint=last.pt  # averaging the last epochs did not help here (README); avg.pt is scored in stage 3
lc_exp="" phone_exp=""
options+=(nproc checkpoint lc_exp phone_exp)
parse_args "$@"
lc_exp=${lc_exp:-$exp/lc}
phone_exp=${phone_exp:-$exp/phone}
# the latency-controlled model: what conf.yaml trains, cut into chunks (README, "Streaming model")
LC=(model.chunk_size=16 model.right_context=4 "train.chunk_sizes=[8,16,32]" model.utterance_cmn=false)
mkdir -p "$exp"
t_start=$SECONDS
stage_time() { echo "   stage $1 took $(( SECONDS - $2 )) s (total $(( SECONDS - t_start )) s)" | tee -a "$exp/timing.txt"; }

if run_stage 0; then
  t=$SECONDS; echo "== stage 0: prepare speechocean762 manifests in $data"
  "${ASR[@]}" prepare speechocean762 --out "$data" ${corpus_dir:+--corpus-dir "$corpus_dir"}
  stage_time 0 $t
fi

if run_stage 1; then
  t=$SECONDS; echo "== stage 1: word 3-gram and character 6-gram LMs of the training transcripts -> $exp/{lm,chars}.arpa"
  "${ASR[@]}" lm build --manifest "$data/train.jsonl" --order 3 --out "$exp/lm.arpa"
  "${ASR[@]}" lm ppl --lm "$exp/lm.arpa" --manifest "$data/dev.jsonl" | tee "$exp/lm_dev_ppl.txt"
  "${ASR[@]}" lm build --manifest "$data/train.jsonl" --units char --order 6 --out "$exp/chars.arpa"
  "${ASR[@]}" lm ppl --lm "$exp/chars.arpa" --units char --manifest "$data/dev.jsonl" | tee -a "$exp/lm_dev_ppl.txt"
  stage_time 1 $t
fi

[ "$nproc" = auto ] && nproc=$("$PY" -c 'import torch; print(1 if torch.cuda.is_available() else 2)')
if run_stage 2; then
  t=$SECONDS
  echo "== stage 2: train into $exp ($nproc process(es))"
  OMP_NUM_THREADS=1 asr_train "$exp" --config recipes/speechocean762/conf.yaml --no-progress \
    data.train="$data/train.jsonl" data.dev="$data/dev.jsonl"
  stage_time 2 $t
fi

if run_stage 3; then
  t=$SECONDS; echo "== stage 3: average the last 4 epochs"
  "${ASR[@]}" average --exp "$exp" --last 4
  asr_evaluate "$exp/avg.pt" "$data/dev.jsonl" "$exp/dev_greedy_avg.txt"
  stage_time 3 $t
fi

if run_stage 4; then
  t=$SECONDS; echo "== stage 4: evaluate $exp/$checkpoint on $data/dev.jsonl"
  ev=("${ASR[@]}" evaluate --checkpoint "$exp/$checkpoint" --manifest "$data/dev.jsonl" --no-progress --jobs 2)
  "${ev[@]}" --out "$exp/dev_greedy.utterances.txt" | tee "$exp/dev_greedy.txt"
  "${ev[@]}" --beam-size 16 --out "$exp/dev_beam.utterances.txt" | tee "$exp/dev_beam.txt"
  "${ev[@]}" --beam-size 16 --lm "$exp/lm.arpa" --alpha 1.1,1.4,1.7,2.0 --beta 3,4,5,6 --out "$exp/dev_beam_lm.utterances.txt" | tee "$exp/dev_beam_lm.txt"
  "${ev[@]}" --beam-size 16 --char-lm "$exp/chars.arpa" --char-alpha 0.6,0.9,1.2 --beta 0,1,2 --out "$exp/dev_beam_charlm.utterances.txt" | tee "$exp/dev_beam_charlm.txt"
  "${ev[@]}" --beam-size 16 --lm "$exp/lm.arpa" --alpha 0.6,0.9,1.2 --char-lm "$exp/chars.arpa" --char-alpha 0.5,0.8 \
    --beta 1,2.5,4 --out "$exp/dev_beam_lm_charlm.utterances.txt" | tee "$exp/dev_beam_lm_charlm.txt"
  stage_time 4 $t
fi

if run_stage 5; then
  t=$SECONDS; echo "== stage 5: export to ONNX; decode dev with the runtime and both LMs"
  "${ASR[@]}" export --checkpoint "$exp/$checkpoint" --out "$exp/model.onnx"
  asr_calibrate "$exp/model.onnx" "$data/dev.jsonl"
  best=$(tail -n 1 "$exp/dev_beam_lm_charlm.txt")
  get() { "$PY" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$best" "$1"; }
  "${ASR[@]}" evaluate --model "$exp/model.onnx" --manifest "$data/dev.jsonl" --beam-size 16 \
    --lm "$exp/lm.arpa" --alpha "$(get alpha)" --char-lm "$exp/chars.arpa" --char-alpha "$(get char_alpha)" \
    --beta "$(get beta)" --out "$exp/dev_onnx_beam_lm_charlm.utterances.txt" | tee "$exp/dev_onnx_beam_lm_charlm.txt"
  stage_time 5 $t
fi
if run_stage 6; then
  t=$SECONDS; echo "== stage 6: train the latency-controlled model into $lc_exp ($nproc process(es))"
  OMP_NUM_THREADS=1 asr_train "$lc_exp" --config recipes/speechocean762/conf.yaml --no-progress \
    data.train="$data/train.jsonl" data.dev="$data/dev.jsonl" "${LC[@]}"
  stage_time 6 $t
fi

if run_stage 7; then
  t=$SECONDS; echo "== stage 7: evaluate $lc_exp/last.pt on $data/dev.jsonl in its chunks (C = 16, R = 4)"
  ev=("${ASR[@]}" evaluate --checkpoint "$lc_exp/last.pt" --manifest "$data/dev.jsonl" --no-progress --jobs 2)
  "${ev[@]}" --out "$lc_exp/dev_greedy.utterances.txt" | tee "$lc_exp/dev_greedy.txt"
  "${ev[@]}" --beam-size 16 --lm "$exp/lm.arpa" --alpha 0.6,0.9,1.2 --char-lm "$exp/chars.arpa" --char-alpha 0.5,0.8 \
    --beta 1,2.5,4 --out "$lc_exp/dev_beam_lm_charlm.utterances.txt" | tee "$lc_exp/dev_beam_lm_charlm.txt"
  stage_time 7 $t
fi

if run_stage 8; then
  t=$SECONDS; echo "== stage 8: streaming graph $lc_exp/stream.onnx; the streaming runtime decodes dev"
  "${ASR[@]}" export --checkpoint "$lc_exp/last.pt" --out "$lc_exp/stream.onnx" --streaming
  asr_calibrate "$lc_exp/stream.onnx" "$data/dev.jsonl"
  best=$(tail -n 1 "$lc_exp/dev_beam_lm_charlm.txt")
  get() { "$PY" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$best" "$1"; }
  ev=("${ASR[@]}" evaluate --model "$lc_exp/stream.onnx" --manifest "$data/dev.jsonl" --no-progress)
  "${ev[@]}" --out "$lc_exp/dev_stream_greedy.utterances.txt" | tee "$lc_exp/dev_stream_greedy.txt"
  "${ev[@]}" --beam-size 16 --lm "$exp/lm.arpa" --alpha "$(get alpha)" --char-lm "$exp/chars.arpa" \
    --char-alpha "$(get char_alpha)" --beta "$(get beta)" --out "$lc_exp/dev_stream_beam_lm_charlm.utterances.txt" | tee "$lc_exp/dev_stream_beam_lm_charlm.txt"
  stage_time 8 $t
fi
if run_stage 9; then
  t=$SECONDS; echo "== stage 9: pronunciation lexicons of the train words -> $data/phones.txt, $data/cmudict.txt"
  "${ASR[@]}" lexicon --manifest "$data/train.jsonl" --out "$data/phones.txt"
  "${ASR[@]}" lexicon --all --manifest "$data/train.jsonl" --out "$data/cmudict.txt"
  stage_time 9 $t
fi

PHONE=(data.tokenizer=phone data.lexicon="$data/phones.txt" data.aux_lexicon=null)
if run_stage 10; then
  t=$SECONDS; echo "== stage 10: train the phone model into $phone_exp ($nproc process(es))"
  OMP_NUM_THREADS=1 asr_train "$phone_exp" --config recipes/speechocean762/conf.yaml --no-progress \
    data.train="$data/train.jsonl" data.dev="$data/dev.jsonl" "${PHONE[@]}"
  stage_time 10 $t
fi

if run_stage 11; then
  t=$SECONDS; echo "== stage 11: evaluate $phone_exp/$checkpoint (words through lexicons) and $exp/$checkpoint with CMUdict's words"
  ev=("${ASR[@]}" evaluate --checkpoint "$phone_exp/$checkpoint" --manifest "$data/dev.jsonl" --no-progress --jobs 2)
  "${ev[@]}" --beam-size 16 --out "$phone_exp/dev_beam.utterances.txt" | tee "$phone_exp/dev_beam.txt"
  "${ev[@]}" --beam-size 16 --lm "$exp/lm.arpa" --alpha 0.5,1,1.5,2 --beta 0,2,4 --out "$phone_exp/dev_beam_lm.utterances.txt" \
    | tee "$phone_exp/dev_beam_lm.txt"
  "${ev[@]}" --beam-size 16 --lexicon "$data/cmudict.txt" --lm "$exp/lm.arpa" --alpha 0.5,1,1.5,2 --beta 0,2,4 \
    --out "$phone_exp/dev_beam_lm_cmudict.utterances.txt" | tee "$phone_exp/dev_beam_lm_cmudict.txt"
  ev=("${ASR[@]}" evaluate --checkpoint "$exp/$checkpoint" --manifest "$data/dev.jsonl" --no-progress --jobs 2)
  "${ev[@]}" --beam-size 16 --lexicon "$data/cmudict.txt" --lm "$exp/lm.arpa" --alpha 0.6,0.9,1.2 --char-lm "$exp/chars.arpa" \
    --char-alpha 0.5,0.8 --beta 1,2.5,4 --out "$exp/dev_beam_lm_charlm_cmudict.utterances.txt" | tee "$exp/dev_beam_lm_charlm_cmudict.txt"
  stage_time 11 $t
fi
echo "== done in $(( SECONDS - t_start )) s; model: $exp/model.onnx, streaming model: $lc_exp/stream.onnx, LMs: $exp/lm.arpa, $exp/chars.arpa"
