"""Stopping node processes that a script or test started: SIGTERM (nodes flush on it), a bounded
wait, and for a straggler first a stack dump (SIGUSR1, see `runner.run`), then SIGKILL."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Sequence

STACK_DUMP_WAIT_S = 1.0
"""How long a straggler gets to print its threads' stacks before it is killed."""


def stop_processes(procs: Sequence[tuple[str, subprocess.Popen]], timeout: float = 20.0) -> dict[str, int]:
    """SIGTERM every process, wait up to `timeout` s in all, dump and kill the rest; name -> exit code."""
    for _, p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    codes: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    for name, p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            # Where is it stuck? The runner's faulthandler writes every thread's stack to its log.
            p.send_signal(signal.SIGUSR1)
            time.sleep(STACK_DUMP_WAIT_S)
            p.kill()
            p.wait()
        codes[name] = p.returncode
    return codes
