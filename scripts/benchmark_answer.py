"""Warm ``Retriever.answer()`` of this checkout against an earlier revision, on the same machine.

    .venv/bin/python scripts/benchmark_answer.py --rev eca0084             # ~2 minutes
    .venv/bin/python scripts/benchmark_answer.py --rev eca0084 --rounds 3

The earlier revision is checked out into a temporary git worktree (removed at the end); both
run the committed index and the same questions (eval/questions.jsonl) in their own process,
alternately, ``--rounds`` times each, so a noisy shared machine moves both alike. Prints the
median of each and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBE = r"""
import json, sys, time
from ampere_qa.search import Retriever
r = Retriever.load(sys.argv[1])
qs = [json.loads(line)["question"] for line in open(sys.argv[2], encoding="utf-8") if line.strip()]
for q in qs[:10]:
    r.answer(q)
times = []
for _ in range(int(sys.argv[3])):
    for q in qs:
        t = time.perf_counter(); r.answer(q); times.append(time.perf_counter() - t)
print(json.dumps(times))
"""


def run(src: Path, reps: int) -> list[float]:
    env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", PROBE, str(ROOT / "index"),
                          str(ROOT / "eval" / "questions.jsonl"), str(reps)],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rev", required=True, help="the earlier revision (a commit)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating runs of each side")
    ap.add_argument("--reps", type=int, default=3, help="passes over the questions per run")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(old), args.rev],
                       check=True)
        try:
            mine: list[float] = []
            theirs: list[float] = []
            for _ in range(args.rounds):
                theirs += run(old / "src", args.reps)
                mine += run(ROOT / "src", args.reps)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], check=True)
    a, b = statistics.median(mine), statistics.median(theirs)
    print(f"warm answer(): this checkout {a * 1000:.1f} ms, {args.rev} {b * 1000:.1f} ms "
          f"(medians of {len(mine)} each): ratio {a / b:.2f}")


if __name__ == "__main__":
    main()
