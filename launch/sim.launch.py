"""The whole RLHF loop in sim: PyBullet arm, policy, safety filter, recorder, reward model, PPO learner.

    ros2 launch rlhf_nodes sim.launch.py policy_path:=/path/to/bc reward_checkpoint:=/path/to/rm

The policy's commands go through safety_node to the sim's ros2_control-style topics, exactly as on
a real arm. reward_node starts when `reward_checkpoint` is given; ppo_learner_node when both
`policy_path` and `reward_checkpoint` are. Parameters come from config/sim.yaml (`params_file`),
launch arguments override the few knobs people change.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from launch import LaunchDescription


def _config(name):
    return os.path.join(get_package_share_directory("rlhf_nodes"), "config", name)


def _arg(name):
    return LaunchConfiguration(name)


def _str(name):
    return ParameterValue(LaunchConfiguration(name), value_type=str)


def _given(*names):
    """A condition: every named launch argument is non-empty."""
    parts = []
    for n in names:
        parts += ["'", LaunchConfiguration(n), "' != '' and "]
    return IfCondition(PythonExpression([*parts, "True"]))


def generate_launch_description():
    args = [
        DeclareLaunchArgument("params_file", default_value=_config("sim.yaml"), description="node parameters (YAML)"),
        DeclareLaunchArgument("task", default_value="reach", description="sim task: reach, push or pick_place"),
        DeclareLaunchArgument("seed", default_value="0", description="seed of the first episode"),
        DeclareLaunchArgument("real_time_factor", default_value="1.0", description="sim seconds per wall second"),
        DeclareLaunchArgument("wrist_camera", default_value="false",
                              description="also publish the hand camera on /wrist_camera/color/image_raw "
                                          "(for a policy trained with PolicyConfig.wrist_camera)"),
        DeclareLaunchArgument("policy_path", default_value="", description="BC policy checkpoint folder"),
        DeclareLaunchArgument("command_interface", default_value="forward", description="forward or trajectory"),
        DeclareLaunchArgument("reward_checkpoint", default_value="", description="reward-ensemble checkpoint folder"),
        DeclareLaunchArgument("store_root", default_value="episodes", description="episode store folder"),
        DeclareLaunchArgument("learner_out", default_value="learner_out", description="learner's head checkpoints"),
    ]
    params = _arg("params_file")
    store = _str("store_root")
    nodes = [
        Node(
            package="rlhf_nodes", executable="sim_node", name="sim_node", output="screen",
            parameters=[params, {
                "sim.task": _str("task"),
                "seed": ParameterValue(_arg("seed"), value_type=int),
                "real_time_factor": ParameterValue(_arg("real_time_factor"), value_type=float),
                "sim.wrist_camera": ParameterValue(_arg("wrist_camera"), value_type=bool),
            }],
        ),
        Node(package="rlhf_nodes", executable="safety_node", name="safety_node", output="screen", parameters=[params]),
        Node(
            package="rlhf_nodes", executable="policy_node", name="policy_node", output="screen",
            parameters=[params, {"policy_path": _str("policy_path"), "command_interface": _str("command_interface")}],
        ),
        Node(
            package="rlhf_nodes", executable="recorder_node", name="recorder_node", output="screen",
            parameters=[params, {"store_root": store}],
        ),
        Node(
            package="rlhf_nodes", executable="reward_node", name="reward_node", output="screen",
            condition=_given("reward_checkpoint"),
            parameters=[params, {"reward_checkpoint": _str("reward_checkpoint"), "store_root": store}],
        ),
        Node(
            package="rlhf_nodes", executable="ppo_learner_node", name="ppo_learner_node", output="screen",
            condition=_given("policy_path", "reward_checkpoint"),
            parameters=[params, {
                "policy_path": _str("policy_path"), "reward_checkpoint": _str("reward_checkpoint"),
                "store_root": store, "out_dir": _str("learner_out"),
            }],
        ),
    ]
    return LaunchDescription(args + nodes)
