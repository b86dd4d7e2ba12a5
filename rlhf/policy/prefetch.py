"""Build training batches ahead in a background thread, so a GPU does not wait on the CPU.

BC builds each batch on the CPU (gather the frames, uint8 -> float, optional random shift). On a GPU
that was most of a step: 22 ms a step on an H200, 1.5 times the CPU's speed (bench/RESULTS.md, GPU
check). One producer thread builds the next `depth` batches while the GPU trains on the current one.

The producer is the only caller of `make_batch`, and batches are consumed in the order it made
them, so the sequence of batches, and with it the training run, is the same as building them in the
loop. numpy and torch release the GIL in the copies and conversions that dominate, so the two
threads overlap.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

import torch

Batch = dict[str, Any]


class BatchPrefetcher:
    """`next()` returns the batches `make_batch()` builds, in order, `depth` of them made ahead.

    With `pin_memory` the tensors are pinned, so a `.to("cuda", non_blocking=True)` copy overlaps
    with compute. An exception in the producer is raised by the `next()` that would have returned
    its batch. `close()` (or leaving a `with` block) stops the thread.
    """

    def __init__(self, make_batch: Callable[[], Batch], depth: int = 2, pin_memory: bool = False) -> None:
        if depth < 1:
            raise ValueError(f"BatchPrefetcher depth must be >= 1, got {depth}")
        self._make_batch = make_batch
        self._pin = pin_memory
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="batch-prefetch", daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        while not self._stop.is_set():
            try:
                batch = self._make_batch()
                if self._pin:
                    batch = {k: v.pin_memory() if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
                item: tuple[bool, Any] = (True, batch)
            except BaseException as e:  # noqa: BLE001 - handed to the consumer, which raises it
                item = (False, e)
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if not item[0]:
                return

    def next(self) -> Batch:
        while True:
            try:
                ok, value = self._queue.get(timeout=0.5)
                break
            except queue.Empty:
                if not self._thread.is_alive():
                    raise RuntimeError("batch prefetch thread stopped without a batch") from None
        if not ok:
            raise value
        return value

    def close(self) -> None:
        self._stop.set()
        while True:  # unblock a producer waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=10)

    def __enter__(self) -> BatchPrefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
