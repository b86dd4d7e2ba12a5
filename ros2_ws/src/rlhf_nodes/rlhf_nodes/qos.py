"""The QoS profiles of the graph: sensor data (best effort, latest only), reliable commands/results, latched state."""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

SENSOR = qos_profile_sensor_data
"""Camera frames and joint states: best effort, shallow queue (a late frame is worth nothing)."""

RELIABLE = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)
"""Commands and results: every message arrives."""

LATCHED = QoSProfile(
    depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
"""State that late joiners need (the current instruction, the latest policy update)."""

BACKLOG = QoSProfile(depth=1000, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)
"""Results a node must not miss while a long service call (a PPO update) holds its executor."""
