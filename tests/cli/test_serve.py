"""asr.cli.serve: options that cannot work are refused by argparse (a message, exit 2), before
the model loads or a socket opens."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("args, words", [
    (["--port", "99999"], "argument --port: must be a TCP port in 0..65535"),
    (["--port", "-1"], "argument --port: must be a TCP port in 0..65535"),
    (["--port", "http"], "argument --port: expected a TCP port number"),
    (["--sample-rate", "1"], "argument --sample-rate: must be in 8000..384000 Hz"),
])
def test_bad_options_exit_2_with_a_message(models, args, words):
    """Issue 30 #10: `asr serve --port 99999` ended in a traceback (OverflowError from bind)."""
    model = models.get("lstm-lc")[0]
    out = subprocess.run([sys.executable, "-m", "asr", "serve", "--model", model, *args], capture_output=True, text=True,
                         timeout=120, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    assert out.returncode == 2 and words in out.stderr and "Traceback" not in out.stderr, out.stderr[-2000:]
