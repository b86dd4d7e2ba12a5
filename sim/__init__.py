"""sim: the PyBullet backend (ROS-free): Panda arm, tasks, scripted demonstrators, gold metrics.

`import sim` registers the gymnasium id "rlhf_sim/Panda-v0" (cheap: PyBullet is imported only when
an env is made):

    env = gymnasium.make("rlhf_sim/Panda-v0", task="pick_place", config=SimConfig(image_size=96))
"""

from __future__ import annotations

import gymnasium

from sim.config import RandomizationConfig, SimConfig
from sim.tasks import TASKS

ENV_ID = "rlhf_sim/Panda-v0"

if ENV_ID not in gymnasium.registry:
    # No max_episode_steps here: the env truncates at its own (per-task) time limit.
    gymnasium.register(id=ENV_ID, entry_point="sim.env:PandaEnv")

__all__ = ["ENV_ID", "TASKS", "RandomizationConfig", "SimConfig"]
