"""The main() of every node: init, spin, clean shutdown on Ctrl-C *and* SIGTERM (so writers flush)."""

from __future__ import annotations

from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions


def run(node_factory: Callable[[], Node], args=None, threads: int = 1) -> None:
    """Build the node, spin it (`threads` > 1: a multi-threaded executor), close it, shut down.

    Uses the rclpy.init / spin / shutdown form that works on Humble, Jazzy and Kilted.
    """
    # rclpy's own handlers (SIGINT and SIGTERM) shut the context down, which wakes any executor,
    # however many threads it has; a Python-level handler would only run once the main thread
    # returns from a blocking wait. A node started by a launcher is usually stopped with SIGTERM.
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.ALL)
    node = None
    executor = MultiThreadedExecutor(num_threads=threads) if threads > 1 else SingleThreadedExecutor()
    try:
        node = node_factory()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        # A callback that was publishing when the signal invalidated the context fails with an
        # RCLError: that is the shutdown, not a fault. Anything raised while running is re-raised.
        if rclpy.ok():
            raise
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            if close is not None:
                close()  # flush what the node writes before anything is torn down
        # Bounded: a callback still running (e.g. a policy tick) must not keep the process alive.
        executor.shutdown(timeout_sec=2.0)
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
