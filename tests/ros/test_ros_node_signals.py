"""A node's process signals: SIGUSR1 prints every thread's stack and the node runs on (how to see
where a node that will not stop is stuck); SIGTERM then ends it with exit status 0."""

from __future__ import annotations

import signal
import time

import pytest
from ros_fixtures import ros_env
from ros_node_fixtures import start_node, stop_nodes

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def _wait_for(path, text: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = path.read_text(errors="replace")
        if text in log:
            return log
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not in {path} after {timeout} s:\n{path.read_text(errors='replace')[-3000:]}")


def test_sigusr1_dumps_stacks_and_sigterm_still_exits_cleanly(tmp_path, ros_domain_id):
    logs = tmp_path / "logs"
    logs.mkdir()
    node = start_node("safety_node", ros_env(ros_domain_id, tmp_path / "ros_log"), logs, {"status_period_s": 0.2})
    log_file = logs / "safety_node.log"
    try:
        _wait_for(log_file, "safety_node: ", 60)  # its startup line, logged just before it spins
        # The startup line comes a moment before the spin loop, and faulthandler writes the dump
        # frame by frame: so ask again (each dump appends) until one shows the main thread in spin.
        # Seen in CI: a dump taken during the last set-up call, read before it was complete.
        deadline = time.monotonic() + 30
        while True:
            node.send_signal(signal.SIGUSR1)
            time.sleep(1.0)
            log = log_file.read_text(errors="replace")
            if "Current thread" in log and "executors.py" in log:
                break  # the main thread, in spin
            assert time.monotonic() < deadline, log[-3000:]
        time.sleep(0.5)
        assert node.poll() is None, "SIGUSR1 ended the node"
    finally:
        codes = stop_nodes([node])
    assert codes == {"safety_node": 0}


def test_stop_processes_dumps_a_stragglers_stacks_before_killing_it(tmp_path):
    # A process that ignores SIGTERM, with the runner's faulthandler: stop_processes waits out its
    # timeout, asks for the stacks, then kills it; one beside it ends on the SIGTERM itself.
    import subprocess
    import sys

    from rlhf_nodes.processes import stop_processes

    stubborn = ("import faulthandler, signal, time\n"
                "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                "faulthandler.register(signal.SIGUSR1, all_threads=True)\n"
                "print('ready', flush=True)\n"
                "while True:\n    time.sleep(0.05)\n")
    log = tmp_path / "stubborn.log"
    with open(log, "w") as f:
        p = subprocess.Popen([sys.executable, "-c", stubborn], stdout=f, stderr=subprocess.STDOUT)
        polite = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        _wait_for(log, "ready", 30)
        codes = stop_processes([("stubborn", p), ("polite", polite)], timeout=1.0)
    assert codes["stubborn"] == -signal.SIGKILL
    assert codes["polite"] == -signal.SIGTERM  # no handler: the default action ends it
    text = log.read_text()
    assert "(most recent call first)" in text and "<string>" in text, text
