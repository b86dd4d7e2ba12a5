"""Shared helpers for the ROS tests: every rlhf_msgs interface, filled with non-default values."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
MSG_DIR = REPO / "ros2_ws" / "src" / "rlhf_msgs" / "msg"
SRV_DIR = REPO / "ros2_ws" / "src" / "rlhf_msgs" / "srv"

_INT_RANGES = {
    "int8": (-128, 127),
    "uint8": (0, 255),
    "int16": (-32768, 32767),
    "uint16": (0, 65535),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
    "byte": (0, 255),
    "char": (0, 255),
    "octet": (0, 255),
}


def message_names() -> list[str]:
    return sorted(p.stem for p in MSG_DIR.glob("*.msg"))


def service_names() -> list[str]:
    return sorted(p.stem for p in SRV_DIR.glob("*.srv"))


def msg_class(name: str):
    return getattr(importlib.import_module("rlhf_msgs.msg"), name)


def srv_class(name: str):
    return getattr(importlib.import_module("rlhf_msgs.srv"), name)


def _resolve(type_str: str):
    pkg, name = type_str.split("/")
    return getattr(importlib.import_module(f"{pkg}.msg"), name)


def fill(msg: Any, salt: str) -> Any:
    """Set every field of `msg` to a value that differs from its default and depends on `salt`.

    Values are chosen to be exact in their wire type (float32 values are dyadic fractions, float64
    values are not float32-representable) so an exact round trip can be asserted.
    """
    k = int(hashlib.sha256(salt.encode()).hexdigest()[:6], 16)
    for i, (name, type_str) in enumerate(msg.get_fields_and_field_types().items()):
        setattr(msg, name, _value(type_str, f"{salt}.{name}", k + 7 * i))
    return msg


def _value(type_str: str, salt: str, k: int) -> Any:
    if type_str.startswith("sequence<"):
        inner = type_str[len("sequence<") : -1].split(",")[0]
        return [_value(inner, f"{salt}[{j}]", k + 13 * j) for j in range(3)]
    if "[" in type_str:  # fixed-size array, e.g. float64[9]
        inner, n = type_str[:-1].split("[")
        return [_value(inner, f"{salt}[{j}]", k + 13 * j) for j in range(int(n))]
    if type_str == "boolean":
        return True
    if type_str in _INT_RANGES:
        lo, hi = _INT_RANGES[type_str]
        span = min(hi - lo, 10**6)
        return lo + 1 + (k % span)
    if type_str == "float":
        return (k % 1000) + 0.375
    if type_str == "double":
        return (k % 1000) + 1.0 / 3.0
    if type_str.startswith("string") or type_str.startswith("wstring"):
        return f"{salt}-✓-{k}"
    cls = _resolve(type_str)
    return fill(cls(), salt)


def canonical(d: Any) -> str:
    return json.dumps(d, sort_keys=True, ensure_ascii=False)


def ros_env(domain_id: int, log_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(domain_id)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["ROS_LOG_DIR"] = str(log_dir)
    env["RMW_IMPLEMENTATION"] = "rmw_fastrtps_cpp"
    return env
