# Shared by the recipes' run.sh scripts: `source recipes/lib.sh` from the repository root.
# Uses the project's virtualenv when there is one (make demo / make test create it).
[ -x .venv/bin/python ] && export PATH="$PWD/.venv/bin:$PATH"
PY=python; command -v python >/dev/null 2>&1 || PY=python3
ASR=("$PY" -m asr)

# asr_train EXP [asr train arguments...]: train into EXP, continuing the run when EXP/last.pt
# exists; with $nproc > 1 (the scripts' --nproc), data parallel over that many processes
# under torchrun (GPUs when present). The command line's key=value overrides ($overrides, from
# parse_args) come last, so they win over the recipe's own.
asr_train() {
  local exp=$1; shift
  local resume=() launch=("${ASR[@]}")
  [ -f "$exp/last.pt" ] && resume=(--resume) && echo "   (continuing the run in $exp)"
  [ "${nproc:-1}" -gt 1 ] && launch=("$PY" -m torch.distributed.run --standalone --nproc_per_node "$nproc" -m asr)
  "${launch[@]}" train --exp "$exp" "${resume[@]}" "$@" ${overrides[@]+"${overrides[@]}"}
}

# asr_evaluate CHECKPOINT MANIFEST RESULT [asr evaluate options...]: WER/CER of CHECKPOINT on
# MANIFEST, shown and kept in RESULT (its last line is the JSON summary, rates in percent:
# wer_percent, cer_percent); each utterance's REF/HYP in RESULT without .txt, + .utterances.txt.
asr_evaluate() {
  local checkpoint=$1 manifest=$2 result=$3; shift 3
  "${ASR[@]}" evaluate --checkpoint "$checkpoint" --manifest "$manifest" --no-progress \
    --out "${result%.txt}.utterances.txt" "$@" | tee "$result"
}

# result_wer FILE: the test WER in percent of an `asr evaluate` output FILE (its last line), old
# files (key "wer", also in percent) included.
result_wer() {
  tail -n 1 "$1" | "$PY" -c 'import json,sys; r = json.load(sys.stdin); print("%.2f" % r.get("wer_percent", r.get("wer")))'
}

# asr_export CHECKPOINT DIR [MANIFEST]: DIR/model.onnx (offline graph), and DIR/stream.onnx when
# the model can stream (a full-context bidirectional one cannot); with MANIFEST (held-out
# speech), each file's word confidence is calibrated on it (asr_calibrate).
asr_export() {
  "${ASR[@]}" export --checkpoint "$1" --out "$2/model.onnx"
  [ -z "${3:-}" ] || asr_calibrate "$2/model.onnx" "$3"
  if "${ASR[@]}" export --checkpoint "$1" --out "$2/stream.onnx" --streaming; then
    [ -z "${3:-}" ] || asr_calibrate "$2/stream.onnx" "$3"
  else
    echo "   (no streaming graph: a full-context bidirectional model cannot stream)"
  fi
}

# asr_calibrate MODEL MANIFEST: fit MODEL's word-confidence map on MANIFEST (held-out speech)
# and store it in MODEL; the report goes to MODEL's folder as calibration_<model>.txt/.json. A
# model too good (or too bad) to give 2 right and 2 wrong words there keeps raw scores.
asr_calibrate() {
  local model=$1 manifest=$2 rc=0 stem
  stem="$(dirname "$model")/calibration_$(basename "$model" .onnx)"
  "${ASR[@]}" calibrate --model "$model" --manifest "$manifest" --no-progress --out "$stem.json" \
    | tee "$stem.txt" || rc=$?
  [ "$rc" = 0 ] || [ "$rc" = 3 ] || return "$rc"
}

# --- Command line ----------------------------------------------------------------------------
# A recipe script, after `cd` to the repository root and `source recipes/lib.sh`, sets each of
# its options' defaults as a variable, names its options beyond the common ones in `options`,
# and calls parse_args:
#     stage=0 stop_stage=3 exp=exp/an4 data=data/an4 corpus_dir="" nproc=1
#     options+=(nproc)
#     parse_args "$@"
# `--corpus-dir DIR` (or --corpus-dir=DIR) then sets corpus_dir. A script without stages names
# all of its options instead (options=(data limit)).
options=(stage stop_stage exp data corpus_dir)
overrides=()

# The calling script's file, for --help: $0 may be relative to the folder it was started from,
# which the script's `cd` leaves in $OLDPWD.
recipe_script=$0
[[ $0 = /* ]] || [ ! -f "${OLDPWD:-.}/$0" ] || recipe_script=$OLDPWD/$0

# parse_args "$@": --NAME VALUE or --NAME=VALUE for each NAME in $options; key=value arguments
# collect in $overrides (config overrides for `asr train`); -h/--help prints the script's header
# comment and its defaults. Any other argument: a message naming it, exit 2. With --stage past
# --stop-stage there is nothing to run: it says so and exits 0.
parse_args() {
  local arg flag value name known
  for name in "${options[@]}"; do
    [ -n "${!name+set}" ] || { echo "$0: option --${name//_/-} has no default: set $name before parse_args" >&2; exit 2; }
  done
  while [ $# -gt 0 ]; do
    arg=$1; shift
    case $arg in
      -h|--help) recipe_help; exit 0 ;;
      --*=*) flag=${arg%%=*}; value=${arg#*=} ;;
      --*) flag=$arg
           { [ $# -gt 0 ] && [[ $1 != --* ]]; } || usage_error "$flag needs a value"
           value=$1; shift ;;
      *=*) overrides+=("$arg"); continue ;;
      *) usage_error "unknown argument '$arg'" ;;
    esac
    known=""
    for name in "${options[@]}"; do [ "$flag" = "--${name//_/-}" ] && known=$name; done
    [ -n "$known" ] || usage_error "unknown option $flag; it takes $(printf -- '--%s ' "${options[@]//_/-}")and key=value"
    printf -v "$known" '%s' "$value"
  done
  for name in stage stop_stage; do
    [[ " ${options[*]} " != *" $name "* ]] || [[ ${!name} =~ ^[0-9]+$ ]] \
      || usage_error "--${name//_/-} must be a stage number, not '${!name}'"
  done
  if [[ " ${options[*]} " = *" stage "* ]] && [ "$stage" -gt "$stop_stage" ]; then
    echo "$0: nothing to run: --stage $stage comes after --stop-stage $stop_stage (see --help)" >&2
    exit 0
  fi
}

# usage_error MESSAGE: the script's name and MESSAGE on stderr, exit 2.
usage_error() { echo "$0: $1 (see --help)" >&2; exit 2; }

# recipe_help: the script's header comment (from after the #! line to the first line that is not
# a comment), then the defaults of its options.
recipe_help() {
  local name
  awk 'NR == 1 && /^#!/ { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$recipe_script"
  printf 'Defaults:'
  for name in "${options[@]}"; do printf ' --%s %s' "${name//_/-}" "${!name:-\"\"}"; done
  echo
}

# run_stage N: true when stage N lies between --stage and --stop-stage (`if run_stage 2; then`).
run_stage() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }

# need_synthesizers: espeak-ng, flite and festival (with its English voices) for `asr synth`;
# installed with apt-get when one is missing and this is root on a Debian-like system, else a
# message naming the packages and exit 1.
need_synthesizers() {
  local pkgs="espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts"
  command -v espeak-ng >/dev/null && command -v flite >/dev/null && command -v text2wave >/dev/null && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "   installing the speech synthesizers: apt-get install $pkgs"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >/dev/null
  else
    echo "speech synthesizers missing: install them with 'sudo apt-get install $pkgs'" >&2
    exit 1
  fi
}
