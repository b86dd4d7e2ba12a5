"""The Franka Panda as the sim uses it: joint limits, link indices, home pose and a low-poly model.

The pybullet_data Panda draws its visual meshes with ~300k lines of OBJ (tens of thousands of
triangles); PyBullet's tiny renderer rasterises every one of them for every frame, which caps the
camera at ~40 frames/s at 128x128. The collision meshes of the same robot are convex hulls with a
few hundred triangles each and the same silhouette to within a few millimetres, so `lowpoly_urdf`
writes a copy of the URDF whose <visual> elements point at the collision meshes. Physics is
unchanged (the collision geometry is the same file), only what the camera draws is coarser.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

# Joint limits from the pybullet_data panda.urdf (rad), arm joints 1..7.
JOINT_LOWER = np.array([-2.9671, -1.8326, -2.9671, -3.1416, -2.9671, -0.0873, -2.9671])
JOINT_UPPER = np.array([2.9671, 1.8326, 2.9671, 0.0, 2.9671, 3.8223, 2.9671])
JOINT_VELOCITY_LIMIT = np.array([2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61])  # rad/s
JOINT_EFFORT = np.array([87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0])  # N·m

# A comfortable "ready" pose: gripper pointing down ~0.3 m in front of the base, well inside limits.
HOME_POSE = np.array([0.0, -0.6, 0.0, -2.4, 0.0, 1.8, 0.785])

# PyBullet joint indices in the pybullet_data URDF.
ARM_JOINTS = tuple(range(7))
FINGER_JOINTS = (9, 10)
HAND_LINK = 8
FINGER_LINKS = (9, 10)
EE_LINK = 11  # panda_grasptarget: the point between the fingertips
FINGER_MAX = 0.04  # m per finger; the gripper opens to 0.08 m
FINGER_FORCE = 40.0  # N per finger


def pybullet_data_panda() -> Path:
    """The folder of the pybullet_data Franka Panda (URDF and meshes)."""
    import pybullet_data

    return Path(pybullet_data.getDataPath()) / "franka_panda"


def lowpoly_urdf() -> Path:
    """Path of a Panda URDF whose visual meshes are the low-poly collision meshes.

    Written once per source URDF into the temp folder (named by the source's hash, written
    atomically), so every env in every process reuses the same file.
    """
    src_dir = pybullet_data_panda()
    src = (src_dir / "panda.urdf").read_text()
    mesh_dir = (src_dir / "meshes").as_posix()
    text = src.replace("package://meshes/visual/", f"{mesh_dir}/collision/").replace(
        "package://meshes/", f"{mesh_dir}/"
    )
    digest = hashlib.sha1(text.encode()).hexdigest()[:12]
    out = Path(tempfile.gettempdir()) / f"rlhf_sim_panda_lowpoly_{digest}.urdf"
    if not out.exists():
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".panda_lowpoly.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, out)
    return out


def full_urdf() -> Path:
    """The unmodified pybullet_data Panda URDF (full visual meshes), for comparison benchmarks."""
    return pybullet_data_panda() / "panda.urdf"


def joint_limit_margin(q: np.ndarray) -> np.ndarray:
    """Distance (rad) of each joint to its nearer limit; q of shape (..., 7) -> (..., 7)."""
    q = np.asarray(q, dtype=np.float64)
    return np.minimum(q - JOINT_LOWER, JOINT_UPPER - q)
