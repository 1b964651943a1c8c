#!/usr/bin/env bash
# CI step: the base install (`pip install .`, no extras) serves exported models with no PyTorch.
# Builds a fresh virtualenv (.venv-base) from the working tree, checks that torch, torchaudio,
# onnx and yaml are absent there, then runs the serving commands (asr transcribe/evaluate --model,
# asr stream and its other name asr-stream, asr prepare, asr lm) on a tiny model and audio that the full install generates
# (tests/make_tiny_model.py) and requires the same output from the full install, byte for byte.
# Prints the base virtualenv's size and install time. Environment: FULL_PY (the full install's
# python, default .venv/bin/python from `make install`), BASE_VENV, PYTHON (makes the venv).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FULL_PY=${FULL_PY:-$ROOT/.venv/bin/python}
BASE=${BASE_VENV:-$ROOT/.venv-base}
PYTHON=${PYTHON:-python3}
[ -x "$FULL_PY" ] || { echo "no full install at $FULL_PY: run 'make install' first, or set FULL_PY"; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/asr-base.XXXXXX")
[ -n "${KEEP_WORK:-}" ] || trap 'rm -rf "$WORK"' EXIT  # KEEP_WORK=1: keep the generated files
T0=$EPOCHREALTIME

seconds_since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$EPOCHREALTIME"; }

# 1. The base install, from a copy of the working tree (tracked and untracked files, not the
# ignored ones), so that the build leaves no build/ or egg-info behind in the checkout.
mkdir "$WORK/src"
git -C "$ROOT" ls-files -z --cached --others --exclude-standard \
    | (cd "$ROOT" && tar --null --ignore-failed-read -T - -cf -) | tar -xf - -C "$WORK/src"
rm -rf "$BASE"
"$PYTHON" -m venv "$BASE"
t=$EPOCHREALTIME
"$BASE/bin/pip" install -q "$WORK/src" >"$WORK/pip.log" 2>&1 || { cat "$WORK/pip.log"; echo "FAILED: pip install ."; exit 1; }
INSTALL_S=$(seconds_since "$t")
cd "$WORK"  # from here on nothing puts the checkout on sys.path: the base env runs what it installed
"$BASE/bin/python" - <<'EOF'
import importlib.util, sys
present = [m for m in ("torch", "torchaudio", "onnx", "yaml") if importlib.util.find_spec(m)]
if present:
    sys.exit(f"the base install pulled in {present}: move them to the 'train' extra")
if importlib.util.find_spec("av"):
    sys.exit("the base install pulled in av (PyAV, with FFmpeg): it belongs to the 'ffmpeg' extra")
try:
    import torch  # noqa: F401
    sys.exit("torch imports in the base install")
except ImportError:
    pass
import asr
print(f"base install: asr from {asr.__file__}, no torch, torchaudio, onnx or yaml")
EOF

# 2. A tiny offline and streaming model, WAVs, a manifest and a fake FSDD, made by the full install.
(cd "$ROOT" && PYTHONPATH=$ROOT "$FULL_PY" tests/make_tiny_model.py "$WORK/data" 2>/dev/null >/dev/null)
D=$WORK/data
mkdir "$WORK/base" "$WORK/full"

# 3. Each command in both installs, from their own folders (outputs by relative path); stdout and
# written files are compared afterwards. `both NAME PROGRAM ARGS...`, PROGRAM asr or asr-stream.
both() {
    local name=$1 prog=$2 t
    shift 2
    for env in base full; do
        t=$EPOCHREALTIME
        if [ "$env" = base ]; then
            (cd "$WORK/base" && env -u PYTHONPATH "$BASE/bin/$prog" "$@") >"$WORK/base/$name.out" 2>"$WORK/$name.base.err" \
                || { echo "FAILED in the base install: $prog $*"; cat "$WORK/$name.base.err"; exit 1; }
        else
            local module=asr
            [ "$prog" = asr-stream ] && module=asr.cli.stream  # the console script's module
            (cd "$WORK/full" && PYTHONPATH=$ROOT "$FULL_PY" -m $module "$@") >"$WORK/full/$name.out" 2>"$WORK/$name.full.err" \
                || { echo "FAILED in the full install: $prog $*"; cat "$WORK/$name.full.err"; exit 1; }
        fi
        eval "time_$env=\$(seconds_since \$t)"
    done
    local shown="$prog $*"
    printf '  %-20s base %4s s  full %4s s   %s\n' "$name" "$time_base" "$time_full" "${shown//$D\//}"
}
echo "commands (wall time each, base install then full install):"
both transcribe_offline asr transcribe --model "$D/offline.onnx" "$D/a.wav" "$D/b.wav"
both transcribe_stream asr transcribe --model "$D/stream.onnx" --format json "$D/a.wav" "$D/b.wav"
both stream asr stream --model "$D/stream.onnx" "$D/a.wav" "$D/b.wav"
both stream_alias asr-stream --model "$D/stream.onnx" "$D/a.wav" "$D/b.wav"
both evaluate_offline asr evaluate --model "$D/offline.onnx" --manifest "$D/corpus/test.jsonl" --no-progress --out decode_offline.txt
both evaluate_stream asr evaluate --model "$D/stream.onnx" --manifest "$D/corpus/test.jsonl" --no-progress --out decode_stream.txt
both prepare_manifest asr prepare manifest "$D/corpus/test.jsonl" --out prep_manifest
both prepare_fsdd asr prepare fsdd --corpus-dir "$D" --no-download --no-progress --out prep_fsdd
both lm_build asr lm build --manifest "$D/corpus/test.jsonl" --order 2 --out lm.arpa
both lm_ppl asr lm ppl --lm lm.arpa --manifest "$D/corpus/test.jsonl"
both transcribe_lm asr transcribe --model "$D/offline.onnx" --lm lm.arpa "$D/a.wav" "$D/b.wav"
both stream_lm asr-stream --model "$D/stream.onnx" --lm lm.arpa --no-partials "$D/a.wav" "$D/b.wav"
# no --model: the built-in digits model, which pip install . must ship
both builtin_transcribe asr transcribe "$ROOT/tests/data/fsdd_four_zero_seven_two_nine.wav"
both builtin_stream asr-stream --no-partials "$ROOT/tests/data/fsdd_four_zero_seven_two_nine.wav"
# and the built-in punctuation tagger (asr/assets/punctuation), then ITN
both builtin_punctuate asr transcribe --punctuate --itn "$ROOT/tests/data/fsdd_four_zero_seven_two_nine.wav"

# 4. Same text, same files.
if ! diff -r "$WORK/full" "$WORK/base"; then
    echo "FAILED: the base install's output differs from the full install's (diff above: < full, > base)"
    exit 1
fi
grep -q "four zero seven two nine" "$WORK/base/builtin_transcribe.out" \
    || { echo "FAILED: the base install's built-in model did not read tests/data's digit string:"; cat "$WORK/base/builtin_transcribe.out"; exit 1; }
grep -q "40729\.$" "$WORK/base/builtin_punctuate.out" \
    || { echo "FAILED: the base install's punctuation tagger and ITN did not write '40729.':"; cat "$WORK/base/builtin_punctuate.out"; exit 1; }
for f in transcribe_offline transcribe_stream stream transcribe_lm; do
    [ -s "$WORK/base/$f.out" ] || { echo "FAILED: $f printed nothing"; exit 1; }
done
cmp -s "$WORK/base/stream.out" "$WORK/base/stream_alias.out" \
    || { echo "FAILED: asr-stream printed other text than asr stream"; exit 1; }
# A checkpoint needs the training install: the base install says so in one line (exit 2).
if (cd "$WORK/base" && env -u PYTHONPATH "$BASE/bin/asr" transcribe --checkpoint "$D/offline.pt" "$D/a.wav") 2>"$WORK/ckpt.err"; then
    echo "FAILED: a checkpoint ran in the base install"; exit 1
fi
grep -q "needs the training install" "$WORK/ckpt.err" || { echo "FAILED: no clear message for a checkpoint in the base install:"; cat "$WORK/ckpt.err"; exit 1; }
echo "base install: every command exited 0 and printed and wrote the same as the full install ($(ls "$WORK/base" | wc -l) files compared)"
echo "base install: $(du -sh "$BASE" | cut -f1) in $BASE, pip install took ${INSTALL_S} s; this step $(seconds_since "$T0") s"
