"""Bounded work for hostile text: every case of tests/adversarial.py, at the largest size a
corpus file or a question may have, through the real reading, splitting, dedup and answer code.

Each tier runs in a child process that is killed past its deadline, so a pattern that
backtracks without end is named instead of hanging the run. The bounds are minutes where a
linear pass takes a second or two (2 MB) or milliseconds (a question): what they catch is
super-linear work, which at these sizes takes hours, not a slow machine.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import ROOT

# Seconds one case may take, and the whole tier: far above a linear pass on a busy machine.
CASE_S = {"corpus": 60.0, "questions": 5.0}
TIER_S = {"corpus": 1200, "questions": 300}


@pytest.mark.slow
@pytest.mark.parametrize("tier", ["corpus", "questions"])
def test_hostile_text_of_the_largest_size_takes_bounded_time(tier: str) -> None:
    try:
        run = subprocess.run([sys.executable, "-m", "tests.adversarial", tier], cwd=ROOT,
                             capture_output=True, text=True, timeout=TIER_S[tier])
        out = run.stdout
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        last = [json.loads(line) for line in out.splitlines() if line.startswith("{")][-1:]
        pytest.fail(f"{tier}: still running after {TIER_S[tier]} s, in case {last}")
    assert run.returncode == 0, run.stderr[-2000:]
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    timed = {r["case"]: r["seconds"] for r in rows if "seconds" in r}
    assert len(timed) >= 100  # every case ran (their count is fixed in tests/adversarial.py)
    slow = {case: s for case, s in timed.items() if s > CASE_S[tier]}
    assert not slow, f"super-linear work on hostile {tier} text: {slow}"
