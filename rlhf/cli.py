"""The `rlhf` command. Each area registers its own subcommands from `<area>/commands.py`.

Registration must stay cheap (argparse only): heavy imports (torch, pybullet) happen inside the
handlers, so `rlhf --help` answers instantly.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules exposing `register(subparsers)`. Each adds its subcommands with `set_defaults(func=...)`.
COMMAND_MODULES: tuple[str, ...] = (
    "rlhf.demos_commands",
    "rlhf.policy.commands",
    "rlhf.episodes.commands",
    "rlhf.prefs.commands",
    "rlhf.annotate.commands",
    "rlhf.reward.commands",
    "rlhf.rl.commands",
    "rlhf.pipeline_commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rlhf", description="Refine robot-arm policies with human feedback (BC -> preferences -> reward -> PPO)."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # that area has no commands yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
