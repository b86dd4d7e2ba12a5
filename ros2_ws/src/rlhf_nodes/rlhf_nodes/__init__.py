"""Thin rclpy nodes over the ROS-free `rlhf` core: convert messages, call the core, convert back."""
