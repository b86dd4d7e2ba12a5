"""rlhf: the ROS-free core of the robot-arm RLHF stack (policy, reward model, RL, preferences, episodes)."""

__version__ = "0.1.0"
