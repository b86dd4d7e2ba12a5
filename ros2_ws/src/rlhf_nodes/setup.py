"""ament_python package of the ROS 2 nodes. `launch/` is a link to the repository's launch folder."""

from glob import glob

from setuptools import find_packages, setup

package_name = "rlhf_nodes"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/launch", sorted(glob("launch/*.launch.py"))),
        ("share/" + package_name + "/config", sorted(glob("config/*.yaml"))),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="rlhf-arm maintainers",
    maintainer_email="maintainers@rlhf-arm.invalid",
    description="Thin rclpy nodes over the rlhf core.",
    license="Apache-2.0",
    # Console scripts: one per node; `ros2 run rlhf_nodes <name>` and launch files use these names.
    entry_points={
        "console_scripts": [
            "sim_node = rlhf_nodes.sim_node:main",
            "policy_node = rlhf_nodes.policy_node:main",
            "safety_node = rlhf_nodes.safety_node:main",
            "recorder_node = rlhf_nodes.recorder_node:main",
            "reward_node = rlhf_nodes.reward_node:main",
            "ppo_learner_node = rlhf_nodes.ppo_learner_node:main",
            "record_rollouts = rlhf_nodes.record_rollouts:main",
        ],
    },
)
