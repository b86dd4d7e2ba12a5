"""Names chosen once: batch keys, the Panda's joint names and the ROS topics a ros2_control arm uses.

Everything that is a string key shared between modules lives here so no module invents its own.
"""

from __future__ import annotations

# Batch / observation keys (policy, reward model, datasets).
OBS_IMAGE = "observation.image"  # (B, 3, H, W) float in [0, 1], or (H, W, 3) uint8 for one raw obs
OBS_WRIST_IMAGE = "observation.images.wrist"  # like OBS_IMAGE, from the camera on the hand (optional)
OBS_STATE = "observation.state"  # (B, D) proprioception: joint positions, velocities, gripper
OBS_INSTRUCTION = "observation.instruction"  # list[str] of length B, or one str
OBS_INSTRUCTION_EMB = "observation.instruction_embedding"  # (B, E) cached sentence embedding
ACTION = "action"  # (B, A) joint-position deltas (7) + gripper command (1)
ACTION_IS_PAD = "action_is_pad"  # (B, chunk) bool: chunk steps past the episode's end (masked in losses)

# The arm.
ARM_JOINT_NAMES: tuple[str, ...] = tuple(f"panda_joint{i}" for i in range(1, 8))
GRIPPER_JOINT_NAMES: tuple[str, ...] = ("panda_finger_joint1", "panda_finger_joint2")
NUM_ARM_JOINTS = len(ARM_JOINT_NAMES)
ACTION_DIM = NUM_ARM_JOINTS + 1  # 7 joint deltas + 1 gripper command

# ROS topics of a ros2_control arm (the same in sim and on hardware).
TOPIC_JOINT_STATES = "/joint_states"
TOPIC_IMAGE = "/camera/color/image_raw"
TOPIC_CAMERA_INFO = "/camera/color/camera_info"
TOPIC_WRIST_IMAGE = "/wrist_camera/color/image_raw"
TOPIC_WRIST_CAMERA_INFO = "/wrist_camera/color/camera_info"
TOPIC_FORWARD_COMMANDS = "/forward_position_controller/commands"
TOPIC_TRAJECTORY_COMMANDS = "/arm_controller/joint_trajectory"
TOPIC_INSTRUCTION = "/task/instruction"
TOPIC_EPISODE_INFO = "/episodes/recorded"
TOPIC_EPISODE_REWARD = "/episodes/reward"
TOPIC_POLICY_UPDATE = "/policy/update"
TOPIC_POLICY_STATUS = "/policy/status"

# Preference axes, in display order.
PREFERENCE_AXES: tuple[str, ...] = ("success", "speed", "smoothness", "safety", "naturalness")
