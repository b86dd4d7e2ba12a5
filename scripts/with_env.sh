#!/usr/bin/env bash
# Run a command inside the project's environment: the venv, ROS 2 (system or wheels) and the built
# ros2_ws overlay. Usage: scripts/with_env.sh <command> [args...]
set -eo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091
. "$ROOT/.venv/bin/activate"
if [ -n "${ROS_DISTRO:-}" ] && [ -f "/opt/ros/${ROS_DISTRO}/setup.bash" ]; then
  # shellcheck disable=SC1090
  . "/opt/ros/${ROS_DISTRO}/setup.bash"
else
  export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
fi
# local_setup.bash reads unset variables, so it must be sourced without `set -u`.
# shellcheck disable=SC1091
. "$ROOT/ros2_ws/install/local_setup.bash"
# Keep ROS logs inside the repository, and DDS traffic on this machine.
export ROS_LOG_DIR="${ROS_LOG_DIR:-$ROOT/.ros_log}"
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec "$@"
