"""``python -m ampere_qa`` with one test-only change, made from outside the package.

When ``STALL_ENV`` names a substring, the process sleeps right after it renames a file whose
name contains it into place. A kill test polls for its point and sends SIGKILL; on a busy
machine the poll can come late, after a fast writer has already committed its manifest. The
stall bounds that race: the kill lands at the polled point, or at the stall, never later.
"""

from __future__ import annotations

import os
import runpy
import sys
import time

STALL_ENV = "AMPERE_QA_TEST_STALL_AFTER"


def _stall_after(needle: str) -> None:
    replace = os.replace

    def replace_then_stall(src, dst, *args, **kwargs):  # type: ignore[no-untyped-def]
        replace(src, dst, *args, **kwargs)
        if needle in os.path.basename(os.fspath(dst)):
            time.sleep(3600)  # the test kills the build here

    os.replace = replace_then_stall  # type: ignore[assignment]


if __name__ == "__main__":
    if os.environ.get(STALL_ENV):
        _stall_after(os.environ[STALL_ENV])
    sys.argv[0] = "ampere-qa"
    runpy.run_module("ampere_qa", run_name="__main__", alter_sys=True)
