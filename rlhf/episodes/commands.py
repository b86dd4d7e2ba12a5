"""`rlhf episodes import|list|show|export`: the episode store from the command line.

Registration only builds argparse parsers; the store's modules (rosbags, PyAV, pyarrow) are
imported inside the handlers so `rlhf --help` stays instant.
"""

from __future__ import annotations

import argparse
import json
import sys

DEFAULT_STORE = "data/episodes"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("episodes", help="episode store: import bags, list, show, export (LeRobot)")
    sub = p.add_subparsers(dest="episodes_command", metavar="ACTION")
    sub.required = True

    def store_arg(q: argparse.ArgumentParser) -> None:
        q.add_argument("--store", default=DEFAULT_STORE, help=f"store root folder (default: {DEFAULT_STORE})")

    q = sub.add_parser("import", help="import rosbag2 bags (MCAP or SQLite3), e.g. from `ros2 bag record`")
    q.add_argument("bags", nargs="+", help="bag folders (holding metadata.yaml) or .mcap/.db3 files")
    store_arg(q)
    q.add_argument("--rate", type=float, default=None, help="control rate, Hz (default: our bags one step per joint state, others one per camera frame)")
    q.add_argument("--segment-by", choices=("auto", "markers", "gaps", "none"), default="auto", help="how to cut episodes")
    q.add_argument("--gap", type=float, default=1.0, help="silence (s) in the joint states that ends an episode")
    q.add_argument("--task", default="robot", help="task name of episodes without an EpisodeInfo marker")
    q.add_argument("--instruction", default="", help="instruction of episodes whose bag has none")
    q.add_argument("--source", choices=("sim", "robot"), default="robot", help="source of unmarked episodes")
    q.add_argument("--salvage", action="store_true", help="keep the intact part of MCAP files whose tail was cut off")
    q.add_argument("--joint-states-topic", default=None)
    q.add_argument("--image-topic", default=None)
    q.add_argument("--command-topic", default=None)
    q.add_argument("--no-progress", action="store_true", help="no progress bar")
    q.set_defaults(func=_cmd_import)

    q = sub.add_parser("list", help="list stored episodes")
    store_arg(q)
    q.add_argument("--task", default=None)
    q.add_argument("--source", choices=("sim", "robot"), default=None)
    q.add_argument("--policy", default=None, help="policy version")
    q.add_argument("--success", choices=("yes", "no"), default=None)
    q.add_argument("--limit", type=int, default=None)
    q.add_argument("--json", action="store_true", help="one JSON object per line")
    q.set_defaults(func=_cmd_list)

    q = sub.add_parser("show", help="show one stored episode, or summarise a bag with --bag")
    q.add_argument("episode_id", nargs="?", help="episode id in the store")
    store_arg(q)
    q.add_argument("--bag", default=None, help="summarise this bag instead (topics, counts, metadata)")
    q.set_defaults(func=_cmd_show)

    q = sub.add_parser("export", help="export stored episodes as a LeRobot v3.0 dataset")
    store_arg(q)
    q.add_argument("--out", required=True, help="dataset folder to create")
    q.add_argument("--ids", nargs="*", default=None, help="episode ids (default: all, or those matching filters)")
    q.add_argument("--task", default=None, help="only episodes of this task")
    q.add_argument("--fps", type=float, default=None, help="dataset fps (default: the episodes' control rate)")
    q.add_argument("--overwrite", action="store_true", help="replace an existing dataset folder")
    q.add_argument("--no-progress", action="store_true", help="no progress bar")
    q.set_defaults(func=_cmd_export)


def _cmd_import(args: argparse.Namespace) -> int:
    from rlhf.episodes.bag_reader import BagReadConfig
    from rlhf.episodes.store import EpisodeStore

    kw = {
        k: v
        for k, v in (
            ("joint_states_topic", args.joint_states_topic),
            ("image_topic", args.image_topic),
            ("command_topic", args.command_topic),
        )
        if v
    }
    cfg = BagReadConfig(
        control_rate_hz=args.rate,
        segment_by=args.segment_by,
        gap_s=args.gap,
        task=args.task,
        instruction=args.instruction,
        source=args.source,
        salvage_truncated=args.salvage,
        progress=not args.no_progress,
        **kw,
    )
    with EpisodeStore(args.store) as store:
        report = store.import_bags(args.bags, cfg, progress=not args.no_progress)
    for rec in report.added:
        print(f"added   {rec.episode_id}  {rec.task}  {rec.num_steps} steps  {rec.duration_s:.2f} s")
    for eid, why in report.skipped:
        print(f"skipped {eid}  {why}")
    for where, err in report.failed:
        print(f"FAILED  {where}: {err}", file=sys.stderr)
    print(f"{len(report.added)} added, {len(report.skipped)} skipped, {len(report.failed)} failed")
    return 0 if report.ok else 1


def _cmd_list(args: argparse.Namespace) -> int:
    from rlhf.episodes.store import EpisodeStore

    success = None if args.success is None else args.success == "yes"
    with EpisodeStore(args.store) as store:
        rows = store.list(task=args.task, source=args.source, policy_version=args.policy, success=success, limit=args.limit)
    for r in rows:
        if args.json:
            print(json.dumps(r.to_json(), sort_keys=True))
        else:
            ok = {None: "?", True: "ok", False: "fail"}[r.success]
            print(f"{r.episode_id}  {r.task:<12} {r.source:<5} {ok:<4} {r.num_steps:>5} steps {r.duration_s:7.2f} s  "
                  f"{r.policy_version or '-'}  {r.instruction!r}")
    if not args.json:
        print(f"{len(rows)} episode(s)")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    if args.bag:
        from rlhf.episodes.bag_reader import BagError, bag_summary

        try:
            print(json.dumps(bag_summary(args.bag), indent=2, sort_keys=True))
        except BagError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        return 0
    if not args.episode_id:
        print("error: give an episode id or --bag PATH", file=sys.stderr)
        return 2
    from rlhf.episodes.store import EpisodeStore

    with EpisodeStore(args.store) as store:
        try:
            rec = store.get(args.episode_id)
        except KeyError as e:
            print(f"error: {e.args[0]}", file=sys.stderr)
            return 1
        info = rec.to_json()
        info["bag_abspath"] = str(store.root / rec.bag_path)
        info["video_abspath"] = str(store.root / rec.video_path) if rec.video_path else ""
        info["wrist_video_abspath"] = str(store.root / rec.wrist_video_path) if rec.wrist_video_path else ""
    print(json.dumps(info, indent=2, sort_keys=True))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from rlhf.episodes.store import EpisodeStore

    with EpisodeStore(args.store) as store:
        ids = args.ids or [r.episode_id for r in store.list(task=args.task)]
        if not ids:
            print("error: no episodes to export", file=sys.stderr)
            return 1
        try:
            out = store.export_lerobot(args.out, ids, fps=args.fps, overwrite=args.overwrite, progress=not args.no_progress)
        except (FileExistsError, ValueError, KeyError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    print(f"exported {len(ids)} episode(s) to {out}")
    return 0
