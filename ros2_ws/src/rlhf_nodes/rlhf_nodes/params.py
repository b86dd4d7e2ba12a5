"""Declare a node's ROS parameters from the core's config dataclasses (rlhf.ros_params) and read them back."""

from __future__ import annotations

from typing import Any

from rcl_interfaces.msg import ParameterDescriptor, ParameterType
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter

from rlhf.ros_params import NODE_PARAMETERS, ParamSpec, config_from_params, node_param_specs

_TYPES = {
    "bool": (ParameterType.PARAMETER_BOOL, Parameter.Type.BOOL),
    "int": (ParameterType.PARAMETER_INTEGER, Parameter.Type.INTEGER),
    "double": (ParameterType.PARAMETER_DOUBLE, Parameter.Type.DOUBLE),
    "string": (ParameterType.PARAMETER_STRING, Parameter.Type.STRING),
    "bool_array": (ParameterType.PARAMETER_BOOL_ARRAY, Parameter.Type.BOOL_ARRAY),
    "int_array": (ParameterType.PARAMETER_INTEGER_ARRAY, Parameter.Type.INTEGER_ARRAY),
    "double_array": (ParameterType.PARAMETER_DOUBLE_ARRAY, Parameter.Type.DOUBLE_ARRAY),
    "string_array": (ParameterType.PARAMETER_STRING_ARRAY, Parameter.Type.STRING_ARRAY),
}


def declare(node: Node, specs: list[ParamSpec]) -> dict[str, Any]:
    """Declare every spec (typed, described) and return the values in effect, keyed by name."""
    values: dict[str, Any] = {}
    for s in specs:
        ros_type, py_type = _TYPES[s.type]
        desc = ParameterDescriptor(description=s.description, type=ros_type)
        # An empty array has no type of its own: declare the type and read "unset" as empty.
        default = py_type if isinstance(s.default, list) and not s.default else s.default
        node.declare_parameter(s.name, default, desc)
        try:
            value = node.get_parameter(s.name).value
        except ParameterUninitializedException:
            value = []
        values[s.name] = list(value) if not isinstance(value, (str, bool, int, float)) else value
    return values


def declare_node_configs(node: Node, node_name: str) -> list[Any]:
    """Declare node `node_name`'s parameters; return its configs (dataclasses) in NODE_PARAMETERS order.

    A bad value raises the dataclass's ValueError, which names the field.
    """
    values = declare(node, node_param_specs(node_name))
    return [config_from_params(factory(), values, prefix) for factory, prefix in NODE_PARAMETERS[node_name]]
