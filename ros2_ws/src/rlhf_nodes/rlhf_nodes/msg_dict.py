"""Convert any ROS 2 message to plain Python data (dicts, lists, numbers, strings).

rosidl_runtime_py (which has message_to_ordereddict) is not available as a wheel, and nodes need
this for logging and JSON, so we walk `get_fields_and_field_types()` ourselves.
"""

from __future__ import annotations

import array
from typing import Any


def message_to_dict(msg: Any) -> dict[str, Any]:
    """Every field of `msg`, recursively, as JSON-friendly Python values."""
    return {name: _value_to_plain(getattr(msg, name)) for name in msg.get_fields_and_field_types()}


def _value_to_plain(value: Any) -> Any:
    if hasattr(value, "get_fields_and_field_types"):
        return message_to_dict(value)
    if isinstance(value, (list, tuple)):
        return [_value_to_plain(v) for v in value]
    if isinstance(value, array.array):
        return value.tolist()
    if hasattr(value, "tolist"):  # numpy arrays for fixed-size numeric fields
        return value.tolist()
    if isinstance(value, bytes):
        return list(value)
    return value
