"""The main() of every node: init, spin, clean shutdown on Ctrl-C *and* SIGTERM (so writers flush)."""

from __future__ import annotations

import signal
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node


def _sigterm(_signum, _frame) -> None:
    # A node started with `&` or by a launcher is often stopped with SIGTERM: treat it as Ctrl-C.
    raise KeyboardInterrupt


def run(node_factory: Callable[[], Node], args=None, threads: int = 1) -> None:
    """Build the node, spin it (`threads` > 1: a multi-threaded executor), close it, shut down.

    Uses the rclpy.init / spin / shutdown form that works on Humble, Jazzy and Kilted.
    """
    rclpy.init(args=args)
    signal.signal(signal.SIGTERM, _sigterm)
    node = None
    executor = MultiThreadedExecutor(num_threads=threads) if threads > 1 else SingleThreadedExecutor()
    try:
        node = node_factory()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            if close is not None:
                close()
            executor.remove_node(node)
            node.destroy_node()
        executor.shutdown()
        if rclpy.ok():
            rclpy.shutdown()
