"""`rlhf annotate ...`: run the annotation server, add episodes, annotators and campaigns.

Registration is argparse only; the web stack is imported inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from pathlib import Path

DEFAULT_DB = "data/prefs.sqlite"
ADMIN_TOKEN_ENV = "RLHF_ADMIN_TOKEN"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("annotate", help="annotation web server, episodes, annotators and campaigns")
    sub = p.add_subparsers(dest="annotate_command", metavar="ACTION")
    p.set_defaults(func=lambda args: p.print_help() or 2)

    s = sub.add_parser("serve", help="serve the annotation page and API (binds 127.0.0.1 by default)")
    s.add_argument("--db", default=None, help=f"preference store (SQLite file; default {DEFAULT_DB})")
    s.add_argument(
        "--demo-dir",
        type=Path,
        default=None,
        help="a demo output folder: use <dir>/prefs.sqlite, register the episodes of its episode store, and "
        "create a 'demo' campaign and annotator if there are none",
    )
    s.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback only)")
    s.add_argument("--port", type=int, default=8600)
    s.add_argument("--admin-token", default=None, help=f"admin token (default: ${ADMIN_TOKEN_ENV}, else a new one)")
    s.add_argument("--video-root", type=Path, default=None, help="only stream video files under this folder")
    s.set_defaults(func=_serve)

    e = sub.add_parser("add-episodes", help="register episodes (from a JSON/JSONL file or the episode store)")
    e.add_argument("--db", default=DEFAULT_DB)
    src = e.add_mutually_exclusive_group(required=True)
    src.add_argument("--file", type=Path, help="JSON list / JSONL of episode rows (episode_id, task, instruction, ...)")
    src.add_argument("--episode-store", type=Path, help="root folder of an episode store")
    e.add_argument("--replace", action="store_true", help="overwrite episodes that are already registered")
    e.set_defaults(func=_add_episodes)

    a = sub.add_parser("add-annotator", help="create an annotator and print their token link")
    a.add_argument("--db", default=DEFAULT_DB)
    a.add_argument("--id", required=True, dest="annotator_id")
    a.add_argument("--role", choices=("annotator", "teacher", "admin"), default="annotator")
    a.add_argument("--rotate", action="store_true", help="give an existing annotator a new token")
    a.add_argument("--url", default="http://127.0.0.1:8600", help="server base URL for the printed link")
    a.add_argument("--campaign", default=None)
    a.set_defaults(func=_add_annotator)

    c = sub.add_parser("new-campaign", help="create a campaign and sample its calibration, gold and work pairs")
    c.add_argument("--db", default=DEFAULT_DB)
    c.add_argument("--config", type=Path, default=None, help="JSON/YAML with CampaignConfig fields")
    c.add_argument("--id", dest="campaign_id", default=None, help="campaign id (overrides the config's)")
    c.add_argument("--calibration", type=int, default=None, help="calibration pairs (default: calibration_size)")
    c.add_argument("--gold", type=int, default=20, help="hidden gold pairs")
    c.add_argument("--work", type=int, default=100, help="work pairs")
    c.add_argument("--task", default=None, help="only episodes of this task")
    c.add_argument("--segment-steps", type=int, default=None, help="compare segments of this many steps")
    c.add_argument("--seed", type=int, default=0)
    c.set_defaults(func=_new_campaign)


def _store(path: str):
    from rlhf.prefs.store import PreferenceStore

    return PreferenceStore(path)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from rlhf.annotate.server import ServerConfig, create_app

    cfg = ServerConfig(host=args.host, port=args.port)
    token = args.admin_token or os.environ.get(ADMIN_TOKEN_ENV) or secrets.token_urlsafe(24)
    db = args.db or (str(args.demo_dir / "prefs.sqlite") if args.demo_dir else DEFAULT_DB)
    store = _store(db)
    base = f"http://{cfg.host}:{cfg.port}"
    if args.demo_dir is not None:
        _prepare_demo(store, args.demo_dir, base)
    app = create_app(store, admin_token=token, video_root=args.video_root)
    if cfg.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: binding {cfg.host}: the page is reachable from other machines", file=sys.stderr)
    print(f"annotation server on {base}  (store {db})")
    if not (args.admin_token or os.environ.get(ADMIN_TOKEN_ENV)):
        print(f"admin token (new, set ${ADMIN_TOKEN_ENV} to keep one): {token}")
    print(f"dashboard: {base}/dashboard?token=<admin token>")
    sys.stdout.flush()
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="warning")
    return 0


def _episode_store_root(demo_dir: Path) -> Path | None:
    for cand in (demo_dir / "episodes", demo_dir):
        if (cand / "index.sqlite").is_file():
            return cand
    return None


def _prepare_demo(store, demo_dir: Path, base: str) -> None:
    """Make a demo folder annotatable: its episodes, a 'demo' campaign and a 'demo' annotator link."""
    import numpy as np

    from rlhf.annotate.episode_source import records_from_episode_store
    from rlhf.prefs.campaign import CampaignConfig
    from rlhf.prefs.sampling import group_by_instruction, sample_uniform_pairs, with_known_answers

    root = _episode_store_root(demo_dir)
    if root is None:
        print(f"note: no episode store under {demo_dir} (looked for episodes/index.sqlite)", file=sys.stderr)
    else:
        known = {e.episode_id for e in store.episodes()}
        new = [r for r in records_from_episode_store(root) if r.episode_id not in known]
        if new:
            store.add_episodes(new)
            print(f"registered {len(new)} episodes from {root}")
    episodes = store.episodes()
    if not store.campaigns() and len(episodes) >= 2:
        rng = np.random.default_rng(0)
        gold_eps = [e for e in episodes if e.gold_axes is not None]
        by_id = {e.episode_id: e for e in gold_eps}
        # Share the possible same-instruction pairs: a quarter for calibration, an eighth for gold.
        possible = sum(len(g) * (len(g) - 1) // 2 for g in group_by_instruction(gold_eps).values())
        weights = CampaignConfig("x").axis_weights
        cal = with_known_answers(sample_uniform_pairs(gold_eps, min(50, possible // 4), rng), by_id, weights,
                                 "calibration")
        cfg = CampaignConfig("demo", name="Demo campaign", calibration_size=len(cal))
        store.create_campaign(cfg)
        used = {frozenset((s["episode_a"], s["episode_b"])) for s in cal}
        gold = with_known_answers(sample_uniform_pairs(gold_eps, min(20, possible // 8), rng, exclude=used), by_id,
                                  cfg.axis_weights, "gold")
        used |= {frozenset((s["episode_a"], s["episode_b"])) for s in gold}
        work = [dict(s, kind="work") for s in sample_uniform_pairs(episodes, 200, rng, exclude=used)]
        for specs in (cal, gold, work):
            store.add_pairs("demo", specs)
        print(f"created campaign demo: {len(cal)} calibration, {len(gold)} gold, {len(work)} work pairs")
    if store.campaigns():
        token = store.add_annotator("demo", rotate=True)
        for c in store.campaigns():
            print(f"annotator link ({c}): {base}/annotate?token={token}&campaign={c}")


def _add_episodes(args: argparse.Namespace) -> int:
    from rlhf.annotate.episode_source import records_from_episode_store, records_from_file

    records = records_from_file(args.file) if args.file else records_from_episode_store(args.episode_store)
    with _store(args.db) as store:
        n = store.add_episodes(records, replace=args.replace)
    print(f"registered {n} episodes in {args.db}")
    return 0


def _add_annotator(args: argparse.Namespace) -> int:
    with _store(args.db) as store:
        token = store.add_annotator(args.annotator_id, args.role, rotate=args.rotate)
        campaigns = [args.campaign] if args.campaign else store.campaigns()
    print(f"annotator {args.annotator_id} ({args.role}) token: {token}")
    for c in campaigns:
        print(f"  {args.url.rstrip('/')}/annotate?token={token}&campaign={c}")
    return 0


def _load_config(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        import yaml

        return yaml.safe_load(text) or {}
    return json.loads(text)


def _new_campaign(args: argparse.Namespace) -> int:
    import numpy as np

    from rlhf.prefs.campaign import CampaignConfig
    from rlhf.prefs.sampling import SamplingConfig, sample_uniform_pairs, with_known_answers

    data = _load_config(args.config) if args.config else {}
    if args.campaign_id:
        data["campaign_id"] = args.campaign_id
    if "campaign_id" not in data:
        print("new-campaign: give --id or a config with campaign_id", file=sys.stderr)
        return 2
    cfg = CampaignConfig.from_dict(data)
    n_cal = cfg.calibration_size if args.calibration is None else args.calibration
    rng = np.random.default_rng(args.seed)
    scfg = SamplingConfig(segment_steps=args.segment_steps)
    with _store(args.db) as store:
        episodes = store.episodes(args.task)
        gold_eps = [e for e in episodes if e.gold_axes is not None]
        by_id = {e.episode_id: e for e in gold_eps}
        if (n_cal or args.gold) and not gold_eps:
            print("new-campaign: calibration/gold pairs need episodes with gold_axes", file=sys.stderr)
            return 2
        store.create_campaign(cfg)
        used: set[frozenset[str]] = set()
        counts = {}
        for kind, n in (("calibration", n_cal), ("gold", args.gold)):
            cands = sample_uniform_pairs(gold_eps, n, rng, scfg, exclude=used)
            specs = with_known_answers(cands, by_id, cfg.axis_weights, kind)
            used |= {frozenset((s["episode_a"], s["episode_b"])) for s in cands}
            counts[kind] = len(store.add_pairs(cfg.campaign_id, specs))
        work = [dict(s, kind="work") for s in sample_uniform_pairs(episodes, args.work, rng, scfg, exclude=used)]
        counts["work"] = len(store.add_pairs(cfg.campaign_id, work))
    print(f"campaign {cfg.campaign_id}: " + ", ".join(f"{v} {k}" for k, v in counts.items()) + " pairs")
    return 0
