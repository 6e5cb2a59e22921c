"""The billing bench (`make bench-billing`, issue 15's yardstick) runs end to end on a small run: it
starts the platform's services itself on the local Kafka and PostgreSQL, issues a billing run with
1 and then 2 invoicing workers, and prints its figures. Its figures are not checked here (they
depend on the machine); that it runs, issues every invoice and sends every e-mail is.

It was broken once without any test noticing: the stack began to wait for a portal the bench never
starts."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.integration


def test_the_billing_bench_issues_a_small_run_with_one_and_two_workers():
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "billing_run.py"), "--invoices", "12",
                           "--workers", "1,2"], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    assert "billing run of 12 invoices" in out, out[-4000:]
    # one result row per worker count: workers, invoices/s, issued s, mail s (a number: every e-mail arrived)
    rows = re.findall(r"^\s+([12])\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+[+-][\d.]+\s", out, re.M)
    assert [r[0] for r in rows] == ["1", "2"], out[-4000:]
    assert all(float(rate) > 0 for _, rate, _, _ in rows), rows
    assert out.count("issued 12, held 0") == 2, out[-4000:]  # the run's own counts, for each worker count
    assert re.search(r"ratio 2 workers / 1 worker: [\d.]+×", out), out[-4000:]
