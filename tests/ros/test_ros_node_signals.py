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
        _wait_for(log_file, "safety_node: ", 60)  # its startup line: spinning
        node.send_signal(signal.SIGUSR1)
        log = _wait_for(log_file, "(most recent call first)", 10)
        assert "Current thread" in log and "executors.py" in log, log[-3000:]  # the main thread, in spin
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
