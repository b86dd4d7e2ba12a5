"""Recording only: episodes of whatever drives the arm, into the episode store.

    ros2 launch rlhf_nodes record.launch.py store_root:=/data/episodes

Start and stop episodes with `/recorder_node/start_episode` and `/recorder_node/end_episode`.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from launch import LaunchDescription


def _config(name):
    return os.path.join(get_package_share_directory("rlhf_nodes"), "config", name)


def _str(name):
    return ParameterValue(LaunchConfiguration(name), value_type=str)


def generate_launch_description():
    args = [
        DeclareLaunchArgument("params_file", default_value=_config("record.yaml"), description="node parameters (YAML)"),
        DeclareLaunchArgument("store_root", default_value="episodes", description="episode store folder"),
        DeclareLaunchArgument("source", default_value="robot", description="'robot' or 'sim'"),
        DeclareLaunchArgument("joint_states_topic", default_value="/joint_states", description="joint states"),
        DeclareLaunchArgument("camera_topic", default_value="/camera/color/image_raw", description="camera frames"),
        DeclareLaunchArgument("wrist_camera_topic", default_value="/wrist_camera/color/image_raw",
                              description="hand camera frames (recorded when they arrive)"),
        DeclareLaunchArgument("command_topic", default_value="/forward_position_controller/commands",
                              description="forward position commands the arm receives"),
        DeclareLaunchArgument("trajectory_topic", default_value="/arm_controller/joint_trajectory",
                              description="trajectory commands the arm receives"),
    ]
    recorder = Node(
        package="rlhf_nodes", executable="recorder_node", name="recorder_node", output="screen",
        parameters=[LaunchConfiguration("params_file"), {
            "store_root": _str("store_root"),
            "source": _str("source"),
            "joint_states_topic": _str("joint_states_topic"),
            "image_topic": _str("camera_topic"),
            "wrist_image_topic": _str("wrist_camera_topic"),
            "forward_command_topic": _str("command_topic"),
            "trajectory_command_topic": _str("trajectory_topic"),
        }],
    )
    return LaunchDescription([*args, recorder])
