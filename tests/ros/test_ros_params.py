"""ROS parameters come from the config dataclasses: names, types, docstrings, None sentinels, round trips,
and a real rclpy node declaring them (with overrides, as a YAML file would give)."""

from __future__ import annotations

import math
from dataclasses import asdict

import pytest

from rlhf.ros_params import (
    NODE_PARAMETERS,
    PolicyNodeConfig,
    config_from_params,
    field_docs,
    node_param_specs,
    param_specs,
)
from rlhf.safety_config import SafetyConfig
from sim.config import SimConfig


def test_every_field_becomes_a_described_typed_parameter():
    specs = {s.name: s for s in param_specs(SimConfig, "sim.")}
    default = SimConfig()
    assert specs["sim.image_size"].type == "int" and specs["sim.image_size"].default == default.image_size
    assert specs["sim.camera_eye"].type == "double_array" and specs["sim.camera_eye"].default == list(default.camera_eye)
    assert specs["sim.randomization.enabled"].type == "bool"  # nested dataclass -> dotted names
    assert specs["sim.image_size"].description == field_docs(SimConfig)["image_size"]
    # Optional float defaulting to None: NaN stands for None.
    assert math.isnan(specs["sim.time_limit_s"].default) and "NaN means none" in specs["sim.time_limit_s"].description
    for node in NODE_PARAMETERS:
        node_specs = node_param_specs(node)
        names = [s.name for s in node_specs]
        assert len(names) == len(set(names)), f"{node}: duplicate parameter names"
        assert all(s.description for s in node_specs), f"{node}: a parameter has no description"


def test_config_round_trips_through_parameter_values():
    for cls, prefix in ((SimConfig, "sim."), (SafetyConfig, "safety."), (PolicyNodeConfig, "")):
        values = {s.name: s.default for s in param_specs(cls, prefix)}
        assert asdict(config_from_params(cls, values, prefix)) == asdict(cls())
    cfg = config_from_params(SimConfig, {"sim.time_limit_s": 3.5, "sim.camera_eye": [1.0, 0.0, 1.0]}, "sim.")
    assert cfg.time_limit_s == 3.5 and cfg.camera_eye == (1.0, 0.0, 1.0)


def test_bad_parameter_value_is_rejected_by_name():
    with pytest.raises(ValueError, match="image_size"):
        config_from_params(SimConfig, {"sim.image_size": 4}, "sim.")
    with pytest.raises(ValueError, match="command_interface"):
        config_from_params(PolicyNodeConfig, {"command_interface": "velocity"})


def test_a_real_node_declares_them_with_overrides():
    import rclpy
    from rclpy.context import Context
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from rlhf_nodes.params import declare_node_configs

    ctx = Context()
    rclpy.init(context=ctx)
    try:
        overrides = [
            Parameter("status_period_s", value=0.25),
            Parameter("safety.velocity_limits", value=[1.0] * 7),
            Parameter("safety.workspace_max", value=[0.7, 0.5, 0.8]),
        ]
        node = Node("safety_node", context=ctx, parameter_overrides=overrides)
        try:
            cfg, safety = declare_node_configs(node, "safety_node")
            assert cfg.status_period_s == 0.25
            assert safety.velocity_limits == (1.0,) * 7 and safety.workspace_max == (0.7, 0.5, 0.8)
            assert safety.position_lower == ()  # an empty-array default stays empty
            desc = node.describe_parameter("safety.position_margin")
            assert "inside the position limits" in desc.description
            assert node.get_parameter("safety.position_margin").value == SafetyConfig().position_margin
        finally:
            node.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)
