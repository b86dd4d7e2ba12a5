"""Benchmark of preference collection: store throughput, 1 vs 20 annotators on uvicorn over loopback,
dashboard statistics cost, and how the dashboard separates scripted teachers by noise.

    python bench/bench_prefs.py [--load-seconds 10]
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from fastapi.testclient import TestClient

from rlhf.annotate.server import create_app
from rlhf.constants import PREFERENCE_AXES
from rlhf.prefs.campaign import CampaignConfig
from rlhf.prefs.stats import campaign_stats
from rlhf.prefs.store import EpisodeRecord, PreferenceStore
from rlhf.prefs.teacher import ScriptedTeacher, TeacherRunConfig
from rlhf.prefs.teacher_model import TeacherConfig
from rlhf.prefs.triples import LABEL_A

ADMIN = "bench-admin"


def _episodes(n: int, q: dict[str, float] | None = None) -> list[EpisodeRecord]:
    return [
        EpisodeRecord(f"e{i:04d}", "reach", "reach the red cube", f"/videos/e{i:04d}", 20, 10.0,
                      gold_axes=None if q is None else {a: q[f"e{i:04d}"] for a in PREFERENCE_AXES})
        for i in range(n)
    ]


def _store_with_pairs(root: Path, n_pairs: int, lpp: int = 1) -> PreferenceStore:
    root.mkdir(parents=True, exist_ok=True)
    store = PreferenceStore(root / f"s{n_pairs}.sqlite", seed=0)
    n_eps = int(np.ceil((1 + np.sqrt(1 + 8 * n_pairs)) / 2))
    eps = _episodes(n_eps)
    store.add_episodes(eps)
    store.create_campaign(CampaignConfig("b", calibration_size=0, gold_rate=0, repeat_rate=0, labels_per_pair=lpp))
    specs = [{"episode_a": eps[i].episode_id, "episode_b": eps[j].episode_id}
             for i in range(n_eps) for j in range(i + 1, n_eps)][:n_pairs]
    store.add_pairs("b", specs)
    return store


def bench_store(root: Path, n_labels: int = 1500) -> None:
    print("## store: next_item + submit_label, one thread, in-process")
    print("| work pairs | labels | labels/s |")
    print("|---:|---:|---:|")
    axes = {a: LABEL_A for a in PREFERENCE_AXES}
    for n_pairs in (2_000, 20_000):
        store = _store_with_pairs(root, n_pairs)
        store.add_annotator("ann")
        t0 = time.perf_counter()
        for _ in range(n_labels):
            item = store.next_item("b", "ann").assignment
            store.submit_label(item.assignment_id, "ann", axes)
        dt = time.perf_counter() - t0
        print(f"| {n_pairs} | {n_labels} | {n_labels / dt:.0f} |")
        store.close()


def bench_load(root: Path, seconds: float, n_annotators: int = 20) -> None:
    print(f"\n## {n_annotators} concurrent annotator(s) on uvicorn (127.0.0.1), {seconds:.0f} s")
    import uvicorn

    store = _store_with_pairs(root / f"load{n_annotators}", 30_000)
    tokens = [store.add_annotator(f"a{i}") for i in range(n_annotators)]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(store), host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    while not server.started:
        time.sleep(0.02)
    acked = [0] * n_annotators
    lat: list[float] = []
    stop = time.monotonic() + seconds

    def worker(k: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {tokens[k]}"}) as c:
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                item = c.get("/api/campaigns/b/next").json()["item"]
                r = c.post("/api/campaigns/b/labels", json={"item_id": item["item_id"], "axes": {"success": "left"}})
                r.raise_for_status()
                lat.append(time.perf_counter() - t0)
                acked[k] += 1

    workers = [threading.Thread(target=worker, args=(k,)) for k in range(n_annotators)]
    t0 = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    dt = time.monotonic() - t0
    server.should_exit = True
    th.join()
    stored = len(store.labels("b"))
    print(f"labels acknowledged {sum(acked)}, stored {stored}, {sum(acked) / dt:.0f} labels/s; "
          f"next+label round trip p50 {1000 * np.percentile(lat, 50):.0f} ms, p95 {1000 * np.percentile(lat, 95):.0f} ms")
    store.close()


def bench_teachers(root: Path) -> None:
    print("\n## scripted teachers through the API: dashboard metrics by noise (one campaign, 4 labels per pair)")
    rng = np.random.default_rng(0)
    n_eps = 60
    q = {f"e{i:04d}": float(rng.normal()) for i in range(n_eps)}
    store = PreferenceStore(root / "teach.sqlite", seed=0)
    store.add_episodes(_episodes(n_eps, q))
    app = create_app(store, admin_token=ADMIN)
    admin = TestClient(app, headers={"Authorization": f"Bearer {ADMIN}"})
    admin.post("/api/admin/campaigns", json={"campaign_id": "t", "calibration_size": 20, "qualification_threshold": 0.0,
                                             "gold_rate": 0.25, "repeat_rate": 0.1, "labels_per_pair": 4})
    for kind, n, seed in (("calibration", 20, 1), ("gold", 100, 2), ("work", 150, 3)):
        admin.post("/api/admin/campaigns/t/pairs", json={"n": n, "kind": kind, "seed": seed})
    steps = {e: np.full(20, v / 20) for e, v in q.items()}
    axes = {e: dict.fromkeys(PREFERENCE_AXES, v) for e, v in q.items()}
    configs = [TeacherConfig(), TeacherConfig(beta=5.0), TeacherConfig(beta=1.0, mistake_rate=0.1),
               TeacherConfig(beta=1.0, mistake_rate=0.3)]
    t0 = time.perf_counter()
    n = 0
    for seed, cfg in enumerate(configs):
        token = ScriptedTeacher.register(admin, cfg)
        client = TestClient(app, headers={"Authorization": f"Bearer {token}"})
        n += ScriptedTeacher(cfg, client, steps, axes).run(TeacherRunConfig("t", seed=seed), progress=False).labels
    dt = time.perf_counter() - t0
    t1 = time.perf_counter()
    s = campaign_stats(store, "t")
    stats_ms = 1000 * (time.perf_counter() - t1)
    print("| teacher | labels | calibration acc | gold acc | gold kappa | self-consistency | mean pairwise kappa |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for cfg in configs:
        a = s["annotators"][cfg.name]
        fmt = lambda x: "-" if x is None else f"{x:.3f}"  # noqa: E731
        print(f"| {cfg.name} | {a['labels']} | {fmt(a['calibration_accuracy'])} | {fmt(a['gold_accuracy'])} | "
              f"{fmt(a['gold_kappa'])} | {fmt(a['self_consistency'])} | {fmt(a['mean_pairwise_kappa'])} |")
    o = s["axes"]["overall"]
    print(f"overall label: Fleiss kappa {o['fleiss_kappa']:.3f}, Krippendorff alpha {o['krippendorff_alpha']:.3f} "
          f"over {o['items']} items")
    print(f"teachers posted {n} labels in {dt:.1f} s ({n / dt:.0f} labels/s); campaign_stats on "
          f"{s['counts']['labels']} labels: {stats_ms:.0f} ms")
    store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--load-seconds", type=float, default=10.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        bench_store(root)
        bench_load(root, args.load_seconds, n_annotators=1)
        bench_load(root, args.load_seconds, n_annotators=20)
        bench_teachers(root)


if __name__ == "__main__":
    main()
