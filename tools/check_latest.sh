#!/usr/bin/env bash
# What the newest releases change: installs the project with every extra in .venv-latest WITHOUT
# constraints.txt (so pip takes today's releases), lists each package whose version differs from
# the lock, and runs the test suite there. The report goes to build/latest-report.txt; the last
# line says how many tests fail with the newest releases. Always exits 0 unless the install
# itself fails: a failure here is news about upstream, not a broken project.
#   tools/check_latest.sh          report only          (make check-latest)
#   tools/check_latest.sh --lock   and, if every test passes, write the new versions to
#                                  constraints.txt       (make lock)
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=.venv-latest
mkdir -p build
REPORT=build/latest-report.txt
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV" || exit 1
"$VENV/bin/pip" install -q --upgrade pip >/dev/null 2>&1
if ! "$VENV/bin/pip" install -q -e '.[train,dev,views,synth,lexicon]' >build/latest-install.log 2>&1; then
  echo "check-latest: installing the newest releases FAILED (build/latest-install.log):"; tail -20 build/latest-install.log
  exit 1
fi
"$VENV/bin/pip" freeze --exclude-editable 2>/dev/null | grep -v '^-e \|^asr-toolkit\|^pip==\|^setuptools==\|^wheel==' | sort -f >build/latest-freeze.txt
{
  echo "# newest releases against constraints.txt ($(date -u +%F))"
  "$VENV/bin/python" - build/latest-freeze.txt constraints.txt <<'PY'
import sys
def read(p):
    return {l.split("==")[0].lower(): l.strip().split("==")[1] for l in open(p) if "==" in l and not l.startswith("#")}
new, old = read(sys.argv[1]), read(sys.argv[2])
changed = [f"  {k}: {old.get(k, '(not locked)')} -> {new.get(k, '(gone)')}" for k in sorted(set(new) | set(old)) if new.get(k) != old.get(k)]
print("\n".join(changed) if changed else "  no package differs from the lock")
PY
} >"$REPORT"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider tests >build/latest-tests.log 2>&1
rc=$?
summary=$(tail -1 build/latest-tests.log | tr -d '=' | sed 's/^ *//')
{ echo "# the suite with them: $summary (log: build/latest-tests.log)"; grep '^FAILED' build/latest-tests.log; } >>"$REPORT"
cat "$REPORT"
if [ "${1:-}" = --lock ]; then
  if [ $rc -eq 0 ]; then
    { sed -n '1,3p' constraints.txt; cat build/latest-freeze.txt; } >constraints.txt.new && mv constraints.txt.new constraints.txt
    echo "check-latest: every test passed with the newest releases; constraints.txt now locks them"
  else
    echo "check-latest: tests fail with the newest releases; constraints.txt left as it was"
  fi
fi
echo "check-latest: newest releases, tests exit status $rc ($summary); report in $REPORT"
exit 0
