"""`rlhf demo`: the whole RLHF loop at a small scale (what `make demo` runs)."""

from __future__ import annotations

import argparse
from dataclasses import fields


def register(subparsers: argparse._SubParsersAction) -> None:
    from rlhf.pipeline import DemoConfig

    p = subparsers.add_parser("demo", help="run the whole RLHF loop at a small scale and write an HTML report")
    p.add_argument("--out", default="demo_out", help="output folder (must be empty or absent)")
    p.add_argument("--no-graph", action="store_true", help="record the first rollouts straight from the sim, not via ROS")
    for f in fields(DemoConfig):
        if f.name == "graph":
            continue
        kind = {"int": int, "float": float, "str": str, "bool": lambda s: s.lower() in ("1", "true", "yes")}[
            f.type if isinstance(f.type, str) else f.type.__name__]
        p.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=None, help=f"default {f.default}")
    p.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    import sys

    from rlhf.demo_report import print_summary
    from rlhf.pipeline import DemoConfig, run_demo

    overrides = {f.name: getattr(args, f.name) for f in fields(DemoConfig) if getattr(args, f.name, None) is not None}
    try:
        cfg = DemoConfig(**overrides, graph=not args.no_graph)
    except ValueError as e:
        print(f"rlhf demo: {e}", file=sys.stderr)
        return 2
    try:
        result = run_demo(args.out, cfg)
    except (FileExistsError, RuntimeError) as e:
        print(f"rlhf demo: {e}", file=sys.stderr)
        return 1
    print_summary(result.summary, result.report)
    return 0
