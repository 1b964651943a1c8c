# Shared by the recipes' run.sh scripts: `source recipes/lib.sh` from the repository root.
# Uses the project's virtualenv when there is one (make demo / make test create it).
[ -x .venv/bin/python ] && export PATH="$PWD/.venv/bin:$PATH"
PY=python; command -v python >/dev/null 2>&1 || PY=python3
ASR=("$PY" -m asr)

# asr_train EXP [asr train arguments...]: train into EXP, continuing the run when EXP/last.pt
# exists; with $nproc > 1 (the scripts' --nproc), data parallel over that many processes
# under torchrun (GPUs when present).
asr_train() {
  local exp=$1; shift
  local resume=() launch=("${ASR[@]}")
  [ -f "$exp/last.pt" ] && resume=(--resume) && echo "   (continuing the run in $exp)"
  [ "${nproc:-1}" -gt 1 ] && launch=("$PY" -m torch.distributed.run --standalone --nproc_per_node "$nproc" -m asr)
  "${launch[@]}" train --exp "$exp" "${resume[@]}" "$@"
}

# asr_export CHECKPOINT DIR: DIR/model.onnx (offline graph), and DIR/stream.onnx when the
# model can stream (a full-context bidirectional one cannot).
asr_export() {
  "${ASR[@]}" export --checkpoint "$1" --out "$2/model.onnx"
  "${ASR[@]}" export --checkpoint "$1" --out "$2/stream.onnx" --streaming \
    || echo "   (no streaming graph: a full-context bidirectional model cannot stream)"
}
