#!/usr/bin/env bash
# Automatic mutation testing of the pure modules with mutmut (PyPI), module by module.
#
# mutmut writes every single-point mutant it can think of (operators, constants, comparisons,
# arguments, return values) of each function, and runs the tests that cover that function
# against it: a mutant the tests still pass "survived". Unlike tests/mutation_check.py (a
# hand-written list of plausible bugs, each with the tests that guard it), nobody here chooses
# the mutants, so the score says how much of the code the tests really pin down.
#
# Each module runs in its own scratch copy of the repository (nothing in the working tree is
# touched), with only the fast test files that mirror it as the test command, under nice and a
# wall-time limit, smallest module first, so an interrupted run still leaves whole results for
# the modules it finished. Results stay in $WORK/<module>/mutants: rerunning the same module
# resumes where it stopped; `cd $WORK/<module> && python -m mutmut results` lists the
# survivors, `python -m mutmut show NAME` shows one as a diff.
#
# Usage (from anywhere; the project environment must have `pip install '.[dev]'`):
#   tests/mutation_tool.sh                    # every module below; about 30-40 min on 2 cores
#   tests/mutation_tool.sh metrics vad        # only these (names from the list below)
#   tests/mutation_tool.sh --list             # the modules and their test commands
#   tests/mutation_tool.sh --survivors vad    # after a run: each surviving mutant's changed lines
# Environment: PYTHON (default .venv/bin/python), MUTATION_WORK (default /tmp/asr-mutation),
#   MUTATION_TIMEOUT (seconds per module, default 2400), MUTATION_JOBS (mutmut children, default 2),
#   MUTATION_FRESH=1 (start over instead of resuming).
# Prints one line per module: killed / total (score %), survived, timeouts, no tests.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
WORK=${MUTATION_WORK:-/tmp/asr-mutation}
LIMIT=${MUTATION_TIMEOUT:-2400}
JOBS=${MUTATION_JOBS:-2}

# name | module (relative to the repository) | test files (the mirror tests, fast ones only)
MODULES=(
  "endpoint|asr/runtime/endpoint.py|tests/runtime/test_endpoint.py"
  "metrics|asr/metrics.py|tests/test_metrics.py"
  "manifest|asr/manifest.py|tests/test_manifest.py"
  "writers|asr/writers.py|tests/test_writers.py"
  "audio|asr/audio.py|tests/test_audio.py"
  "vad|asr/vad.py|tests/test_vad.py"
  # ConfidenceCalibration (confidence.py) is tested in test_calibrate.py: its model-free tests join here
  "decoding-small|asr/decoding/greedy.py asr/decoding/align.py asr/decoding/confidence.py asr/decoding/options.py asr/decoding/result.py|tests/decoding/test_greedy.py tests/decoding/test_align.py tests/decoding/test_confidence.py tests/decoding/test_options.py tests/decoding/test_result.py tests/test_calibrate.py::test_fit_recovers_the_map_that_made_the_labels tests/test_calibrate.py::test_fit_converges_where_plain_newton_steps_run_away tests/test_calibrate.py::test_fit_refuses_what_cannot_be_calibrated tests/test_calibrate.py::test_dict_round_trip_and_validation tests/test_calibrate.py::test_words_and_streams_carry_the_calibrated_value tests/test_calibrate.py::test_calibration_refusals_word_for_word"
  "lm|asr/decoding/lm.py|tests/decoding/test_lm.py"
  "beam_search|asr/decoding/beam_search.py|tests/decoding/test_beam_search.py tests/decoding/test_options.py::test_read_hotwords"
)

if [[ "${1:-}" == "--list" ]]; then
  for m in "${MODULES[@]}"; do IFS='|' read -r name files tests <<<"$m"; printf '%-15s %s\n%15s tests: %s\n' "$name" "$files" "" "$tests"; done
  exit 0
fi
if [[ "${1:-}" == "--survivors" ]]; then
  shift
  for name in "$@"; do
    [[ -d "$WORK/$name/mutants" ]] || { echo "no results for $name in $WORK/$name" >&2; continue; }
    (cd "$WORK/$name" && "$PYTHON" -m mutmut results 2>/dev/null | awk -F': ' '/: survived/ {print $1}' |
      while read -r m; do echo "## $m"; "$PYTHON" -m mutmut show "$m" 2>/dev/null | grep -E '^[-+][^-+]'; done)
  done
  exit 0
fi
if ! "$PYTHON" -c "import mutmut" 2>/dev/null; then
  echo "mutmut is not installed in $PYTHON: pip install -c constraints.txt '.[dev]'" >&2
  exit 2
fi

wanted=("$@")
summary=()
mkdir -p "$WORK"
for m in "${MODULES[@]}"; do
  IFS='|' read -r name files tests <<<"$m"
  if ((${#wanted[@]})) && [[ ! " ${wanted[*]} " == *" $name "* ]]; then continue; fi
  dir=$WORK/$name
  if [[ "${MUTATION_FRESH:-0}" == 1 ]]; then rm -rf "$dir"; fi
  mkdir -p "$dir"
  # A fresh copy of the tracked files (keeps $dir/mutants, mutmut's results, for resuming).
  (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | xargs -0 tar -cf - 2>/dev/null) | tar -xf - -C "$dir"
  rm -f "$dir/setup.cfg"
  {
    echo "[mutmut]"
    echo "source_paths = asr"
    echo "only_mutate ="
    for f in $files; do echo "    $f"; done
    echo "also_copy ="
    echo "    export"
    echo "pytest_add_cli_args = -p no:cacheprovider -q"
    echo "pytest_add_cli_args_test_selection ="
    for t in $tests; do echo "    $t"; done
  } >"$dir/setup.cfg"
  echo "== $name: $files  (tests: $tests; limit ${LIMIT}s)"
  start=$(date +%s)
  (cd "$dir" && nice -n 15 timeout "$LIMIT" "$PYTHON" -m mutmut run --max-children "$JOBS" >"$dir/run.log" 2>&1)
  rc=$?
  secs=$(($(date +%s) - start))
  (cd "$dir" && "$PYTHON" -m mutmut export-cicd-stats >/dev/null 2>&1)
  line=$(cd "$dir" && "$PYTHON" - "$name" "$rc" "$secs" <<'EOF'
import json, sys
name, rc, secs = sys.argv[1], int(sys.argv[2]), sys.argv[3]
try:
    s = json.load(open("mutants/mutmut-cicd-stats.json"))
except OSError:
    print(f"{name:15s} no results (mutmut exit {rc}; see run.log)"); sys.exit()
tested = s["killed"] + s["survived"] + s["timeout"] + s["suspicious"] + s["segfault"]
caught = s["killed"] + s["timeout"] + s["segfault"]
score = 100.0 * caught / tested if tested else 0.0
note = "" if rc == 0 else (" (stopped by the time limit: partial)" if rc == 124 else f" (mutmut exit {rc})")
print(f"{name:15s} killed {caught:4d} / {tested:4d} tested ({score:5.1f}%)  survived {s['survived']:3d}"
      f"  timeout {s['timeout']:2d}  no tests {s['no_tests']:3d}  not run {s['total'] - tested - s['no_tests'] - s['skipped']:3d}"
      f"  {secs}s{note}")
EOF
)
  echo "$line"
  summary+=("$line")
done
echo
echo "== mutation score per module (killed counts timeouts; results in $WORK/<module>/mutants)"
printf '%s\n' "${summary[@]}"
