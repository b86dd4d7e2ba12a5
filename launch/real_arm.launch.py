"""Policy + safety filter + recorder against a ros2_control arm (the vendor's driver replaces sim_node).

    ros2 launch rlhf_nodes real_arm.launch.py policy_path:=/path/to/bc \
        command_interface:=trajectory controller_topic:=/fr3_arm_controller/joint_trajectory \
        camera_topic:=/wrist_camera/color/image_raw velocity_limits:=0.5,0.5,0.5,0.5,0.6,0.6,0.6

policy_node publishes raw commands to safety_node; only safety_node talks to the controller. Joint
names, topics and limits are launch arguments: comma-separated lists, empty for the defaults
(the URDF's limits, shrunk by config/real_arm.yaml's margins and speed scale).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription

PANDA_JOINTS = ",".join(f"panda_joint{i}" for i in range(1, 8))
DEFAULT_CONTROLLER = {
    "forward": "/forward_position_controller/commands",
    "trajectory": "/arm_controller/joint_trajectory",
}


def _config(name):
    return os.path.join(get_package_share_directory("rlhf_nodes"), "config", name)


def _floats(text):
    return [float(v) for v in text.split(",") if v.strip()]


def _names(text):
    return [v.strip() for v in text.split(",") if v.strip()]


def _nodes(context):
    def arg(name):
        return LaunchConfiguration(name).perform(context)

    interface = arg("command_interface")
    if interface not in DEFAULT_CONTROLLER:
        raise ValueError(f"command_interface must be 'forward' or 'trajectory', got {interface!r}")
    controller = arg("controller_topic") or DEFAULT_CONTROLLER[interface]
    joints = _names(arg("joint_names"))
    params_file = arg("params_file")

    safety = {
        "safety.joint_names": joints,
        "joint_states_topic": arg("joint_states_topic"),
        "image_topic": arg("camera_topic"),
    }
    if interface == "forward":
        safety["forward_output_topic"] = controller
    else:
        safety["trajectory_output_topic"] = controller
    for key, launch_arg in (
        ("safety.position_lower", "position_lower"),
        ("safety.position_upper", "position_upper"),
        ("safety.velocity_limits", "velocity_limits"),
        ("safety.acceleration_limits", "acceleration_limits"),
        ("safety.workspace_min", "workspace_min"),
        ("safety.workspace_max", "workspace_max"),
    ):
        values = _floats(arg(launch_arg))
        if values:
            safety[key] = values
    if arg("urdf_path"):
        safety["safety.urdf_path"] = arg("urdf_path")
    if arg("ee_link"):
        safety["safety.ee_link"] = arg("ee_link")

    policy = {
        "policy_path": arg("policy_path"),
        "command_interface": interface,
        "joint_names": joints,
        "joint_states_topic": arg("joint_states_topic"),
        "image_topic": arg("camera_topic"),
        "wrist_image_topic": arg("wrist_camera_topic"),
    }
    recorder = {
        "store_root": arg("store_root"),
        "joint_names": joints,
        "joint_states_topic": arg("joint_states_topic"),
        "image_topic": arg("camera_topic"),
        "wrist_image_topic": arg("wrist_camera_topic"),
        "forward_command_topic": controller if interface == "forward" else "/unused/forward_commands",
        "trajectory_command_topic": controller if interface == "trajectory" else "/unused/joint_trajectory",
    }
    if arg("urdf_path"):
        recorder["urdf_path"] = arg("urdf_path")
    if arg("ee_link"):
        recorder["ee_link"] = arg("ee_link")
    return [
        Node(package="rlhf_nodes", executable="safety_node", name="safety_node", output="screen",
             parameters=[params_file, safety]),
        Node(package="rlhf_nodes", executable="policy_node", name="policy_node", output="screen",
             parameters=[params_file, policy]),
        Node(package="rlhf_nodes", executable="recorder_node", name="recorder_node", output="screen",
             parameters=[params_file, recorder]),
    ]


def generate_launch_description():
    args = [
        DeclareLaunchArgument("params_file", default_value=_config("real_arm.yaml"), description="node parameters (YAML)"),
        DeclareLaunchArgument("policy_path", default_value="", description="policy checkpoint folder"),
        DeclareLaunchArgument("command_interface", default_value="forward", description="forward or trajectory"),
        DeclareLaunchArgument("controller_topic", default_value="",
                              description="the controller's command topic (empty: the usual one for the interface)"),
        DeclareLaunchArgument("joint_names", default_value=PANDA_JOINTS, description="arm joints, comma-separated"),
        DeclareLaunchArgument("joint_states_topic", default_value="/joint_states", description="joint states topic"),
        DeclareLaunchArgument("camera_topic", default_value="/camera/color/image_raw", description="camera topic"),
        DeclareLaunchArgument("wrist_camera_topic", default_value="/wrist_camera/color/image_raw",
                              description="hand camera topic (read by a wrist-camera policy; recorded when it publishes)"),
        DeclareLaunchArgument("urdf_path", default_value="", description="URDF (limits, kinematics); empty: Panda"),
        DeclareLaunchArgument("ee_link", default_value="", description="end-effector link of the URDF"),
        DeclareLaunchArgument("position_lower", default_value="", description="rad, comma-separated; empty: URDF"),
        DeclareLaunchArgument("position_upper", default_value="", description="rad, comma-separated; empty: URDF"),
        DeclareLaunchArgument("velocity_limits", default_value="", description="rad/s, comma-separated; empty: URDF"),
        DeclareLaunchArgument("acceleration_limits", default_value="", description="rad/s^2, comma-separated"),
        DeclareLaunchArgument("workspace_min", default_value="", description="x,y,z of the box's lower corner, m"),
        DeclareLaunchArgument("workspace_max", default_value="", description="x,y,z of the box's upper corner, m"),
        DeclareLaunchArgument("store_root", default_value="episodes", description="episode store folder"),
    ]
    return LaunchDescription([*args, OpaqueFunction(function=_nodes)])
