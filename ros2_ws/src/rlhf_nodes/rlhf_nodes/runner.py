"""The main() of every node: init, spin, clean shutdown on Ctrl-C *and* SIGTERM (so writers flush)."""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

TEARDOWN_TIMEOUT_S = 3.0
"""How long each teardown call may take before the process ends without it."""


def _bounded(fn: Callable[[], object], what: str) -> None:
    t = threading.Thread(target=fn, name=what, daemon=True)
    t.start()
    t.join(TEARDOWN_TIMEOUT_S)
    if t.is_alive():
        print(f"{what} did not return within {TEARDOWN_TIMEOUT_S} s; exiting without it", file=sys.stderr)


def run(node_factory: Callable[[], Node], args=None) -> None:
    """Build the node, spin it, close it, shut down, and end the process (exit status 0, or 1 when
    the node failed). Only for a node's `main`.

    Uses the rclpy.init / spin / shutdown form that works on Humble, Jazzy and Kilted.

    Every node spins a single-threaded executor; work that must not hold up callbacks (the policy's
    control loop, a PPO update) runs on a thread of its own. rclpy's MultiThreadedExecutor (with
    callback groups) was measured to stall callbacks for seconds: recorder_node went 1.5-3.3 s at a
    time without a joint state while the sim kept publishing and kept 3-77 (median 37) of ~76 steps
    per episode, and policy_node's loop fell to 2.9-13 Hz of 20. Single-threaded: 76-77 of 76-77
    steps and 20.00 Hz (bench/results/ros.md).
    """
    # rclpy's own handlers (SIGINT and SIGTERM) shut the context down, which wakes any executor,
    # however many threads it has; a Python-level handler would only run once the main thread
    # returns from a blocking wait. A node started by a launcher is usually stopped with SIGTERM.
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.ALL)
    # SIGUSR1 prints every thread's stack to stderr and the node runs on: how to see where a node
    # that will not stop is stuck (the test fixtures send it before they kill a straggler).
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    node = None
    code = 0
    executor = SingleThreadedExecutor()
    try:
        node = node_factory()
        executor.add_node(node)
        # spin_once with a timeout rather than spin(): the context is re-checked at least twice a
        # second, so a shutdown whose wake-up the wait missed cannot leave the main thread waiting
        # for ever. Seen rarely in CI: a node alive 20 s after SIGTERM, close() never called, its
        # control thread still ticking into the invalidated context.
        while rclpy.ok():
            executor.spin_once(timeout_sec=0.5)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        # A callback that was publishing when the signal invalidated the context fails with an
        # RCLError: that is the shutdown, not a fault. Anything raised while running is printed and
        # makes the exit status 1.
        if rclpy.ok():
            traceback.print_exc()
            code = 1
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            if close is not None:
                close()  # flush what the node writes before anything is torn down
        # Bounded: a callback still running (e.g. a policy tick) must not keep the process alive.
        executor.shutdown(timeout_sec=2.0)
        # Bounded as well: rclpy's destroy_node waits in destroy_when_not_in_use, and a CI run caught
        # recorder_node there 20 s after SIGTERM (its stack, from SIGUSR1). Writers were flushed by
        # close() and the process ends just below, so a teardown that does not finish is given up.
        if node is not None:
            _bounded(node.destroy_node, "destroy_node")
        if rclpy.ok():
            _bounded(rclpy.shutdown, "rclpy.shutdown")
    # The process ends here, without the interpreter's exit-time joins: concurrent.futures joins the
    # executor's worker threads at exit, so one still inside a callback kept a node alive past
    # SIGTERM until its launcher killed it (seen as exit -9 in the graph integration test). Every
    # writer was flushed by close() above.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
