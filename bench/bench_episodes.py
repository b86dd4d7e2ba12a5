"""Recording throughput of the episode store: does a 30 Hz stream of 128x128 rgb8 images plus joint
states reach the bag without drops?

Setup (what a recorder node does): a producer thread offers one image + one joint state + one command
per tick at `--rate` Hz into a bounded queue (`--queue` deep, like a subscription's keep-last
depth; a full queue drops the message and counts it); the writer thread drains it into an
EpisodeBagWriter (rosbags, MCAP). After `--seconds` the bag is closed and read back with rosbags'
reader to count what was really recorded.

Printed, side by side for uncompressed and zstd-compressed chunks:
  offered vs recorded frames (and joint states), drops, the deepest the queue got, the bag size,
  write throughput (MB/s of message payload over the writer's busy time) and the unthrottled
  ceiling (frames/s when writing as fast as possible), plus the H.264 encode rate of the episode video.

    python bench/bench_episodes.py [--seconds 10] [--rate 30] [--size 128]
"""

from __future__ import annotations

import argparse
import queue
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import Reader

from rlhf.constants import ARM_JOINT_NAMES, GRIPPER_JOINT_NAMES
from rlhf.episodes.bag_writer import BagWriteConfig, EpisodeBagWriter
from rlhf.episodes.video import VideoConfig, write_video

NAMES = list(ARM_JOINT_NAMES) + list(GRIPPER_JOINT_NAMES)


def _frames(n: int, size: int) -> np.ndarray:
    """A few distinct camera-like frames (smooth gradient + noise) to cycle through."""
    rng = np.random.default_rng(0)
    base = np.linspace(0, 255, size, dtype=np.float32)
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        img = np.stack([np.add.outer(base, base) / 2, np.tile(base, (size, 1)), np.full((size, size), 40.0 * i)], -1)
        out[i] = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
    return out


def record_realtime(path: Path, seconds: float, rate: float, size: int, depth: int, compress: bool) -> dict:
    frames = _frames(8, size)
    q: queue.Queue = queue.Queue(maxsize=depth)
    offered = dropped = 0
    max_depth = 0
    done = threading.Event()
    busy = 0.0
    writer = EpisodeBagWriter(path, config=BagWriteConfig(compress=compress)).open()

    def consume() -> None:
        nonlocal busy
        while not (done.is_set() and q.empty()):
            try:
                stamp, k = q.get(timeout=0.05)
            except queue.Empty:
                continue
            t0 = time.perf_counter()
            q_pos = 0.01 * k + np.arange(9) * 0.1
            writer.write_joint_state(stamp, NAMES, q_pos, np.zeros(9))
            writer.write_image(stamp, frames[k % len(frames)])
            writer.write_command(stamp, np.r_[q_pos[:7] + 0.01, 0.0])
            busy += time.perf_counter() - t0

    th = threading.Thread(target=consume)
    th.start()
    n = int(seconds * rate)
    start = time.perf_counter()
    t_ns0 = time.time_ns()
    for k in range(n):
        # Tick k is due at start + k / rate; sleeping to it keeps the offered rate honest.
        due = start + k / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        offered += 1
        try:
            q.put_nowait((t_ns0 + int(k * 1e9 / rate), k))
        except queue.Full:
            dropped += 1
        max_depth = max(max_depth, q.qsize())
    offer_wall = time.perf_counter() - start
    done.set()
    th.join()
    t_close = time.perf_counter()
    writer.close()
    close_s = time.perf_counter() - t_close
    with Reader(path) as r:
        counts = {t: i.msgcount for t, i in r.topics.items()}
    size_mb = sum(p.stat().st_size for p in path.iterdir()) / 1e6
    return {
        "offered": offered,
        "dropped": dropped,
        "recorded_images": counts.get("/camera/color/image_raw", 0),
        "recorded_joint_states": counts.get("/joint_states", 0),
        "max_queue": max_depth,
        "offer_rate_hz": offered / offer_wall,
        "payload_mb": writer.bytes_written / 1e6,
        "bag_mb": size_mb,
        "write_mb_s": writer.bytes_written / 1e6 / max(busy, 1e-9),
        "busy_frac": busy / offer_wall,
        "close_s": close_s,
    }


def unthrottled(path: Path, n: int, size: int, compress: bool) -> dict:
    frames = _frames(8, size)
    t0 = time.perf_counter()
    with EpisodeBagWriter(path, config=BagWriteConfig(compress=compress)) as w:
        for k in range(n):
            stamp = 10**18 + k * 33_333_333
            q_pos = 0.01 * k + np.arange(9) * 0.1
            w.write_joint_state(stamp, NAMES, q_pos, np.zeros(9))
            w.write_image(stamp, frames[k % len(frames)])
            w.write_command(stamp, np.r_[q_pos[:7] + 0.01, 0.0])
    dt = time.perf_counter() - t0
    return {"fps": n / dt, "mb_s": w.bytes_written / 1e6 / dt}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="recording length")
    ap.add_argument("--rate", type=float, default=30.0, help="offered frames per second")
    ap.add_argument("--size", type=int, default=128, help="image side, px")
    ap.add_argument("--queue", type=int, default=10, help="queue depth before drops (keep-last depth)")
    ap.add_argument("--burst", type=int, default=900, help="frames for the unthrottled ceiling")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench_episodes_"))
    try:
        print(f"offering {args.rate:g} Hz of {args.size}x{args.size} rgb8 images + joint states + commands "
              f"for {args.seconds:g} s (queue depth {args.queue})")
        print(f"{'chunks':<6} {'offered':>8} {'recorded img':>13} {'recorded js':>12} {'dropped':>8} {'max q':>6} "
              f"{'payload MB':>11} {'bag MB':>8} {'write MB/s':>11} {'busy':>6} {'ceiling fps':>12} {'ceiling MB/s':>13} {'x30Hz':>6}")
        for compress in (False, True):
            name = "zstd" if compress else "plain"
            r = record_realtime(tmp / f"rt_{name}", args.seconds, args.rate, args.size, args.queue, compress)
            c = unthrottled(tmp / f"burst_{name}", args.burst, args.size, compress)
            print(f"{name:<6} {r['offered']:>8} {r['recorded_images']:>13} {r['recorded_joint_states']:>12} {r['dropped']:>8} "
                  f"{r['max_queue']:>6} {r['payload_mb']:>11.2f} {r['bag_mb']:>8.2f} {r['write_mb_s']:>11.1f} "
                  f"{r['busy_frac']:>6.1%} {c['fps']:>12.0f} {c['mb_s']:>13.1f} {c['fps'] / args.rate:>6.1f}")
        frames = _frames(8, args.size)
        n = int(args.seconds * args.rate)
        imgs = frames[np.arange(n) % len(frames)]
        t0 = time.perf_counter()
        write_video(imgs, np.arange(n) / args.rate, tmp / "ep.mp4", VideoConfig())
        dt = time.perf_counter() - t0
        print(f"video: H.264 encode of the {n}-frame episode in {dt:.2f} s = {n / dt:.0f} frames/s "
              f"({n / dt / args.rate:.1f}x real time), {(tmp / 'ep.mp4').stat().st_size / 1e3:.0f} kB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
