"""ppo_learner_node: PPO on the action head (rlhf.rl.ppo.PPOTrainer); each new head goes out as a PolicyUpdate.

Two ways to get experience (`mode`):
- 'graph': scored episodes arriving over ROS. Every rlhf_msgs/RewardScore on /episodes/reward
  names an episode of the store; once `episodes_per_update` are in, they are loaded, the frozen
  backbone's features are computed once, and PPO runs `iterations_per_update` iterations on that
  batch with the scores' per-step means as the proxy reward. The recorded actions are treated as
  samples of the current head (exact when the episodes were recorded with it).
- 'sim': the learner's own vectorised sims (rlhf.rl.rollouts) and the reward-model ensemble, for
  throughput; `~/train` (rlhf_msgs/Train) runs that many iterations.
In both modes `~/train` runs an update now. Training runs in a worker thread, so the node keeps
receiving scores. After each update the head is written to `out_dir/heads/<version>` and announced
on /policy/update with its SHA-256 (latched, so a policy node that starts later still gets it).
"""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import numpy as np
from rclpy.node import Node
from rlhf_msgs.msg import PolicyUpdate, RewardScore
from rlhf_msgs.srv import Train

from rlhf_nodes import qos
from rlhf_nodes.convert import uri_to_path
from rlhf_nodes.params import declare_node_configs
from rlhf_nodes.runner import run


class StoredBatch:
    """A PPO 'collector' that hands the trainer a fixed batch of recorded episodes."""

    needs_head_state = False

    def __init__(self) -> None:
        self.records: list = []

    def collect(self, seeds, deterministic: bool = False, head_state=None) -> list:
        return list(self.records)

    def close(self) -> None:
        pass


class ScoreLookup:
    """The PPO reward function of graph mode: per-step means of the RewardScores received."""

    def __init__(self) -> None:
        self.scores: dict[str, np.ndarray] = {}

    def __call__(self, traj) -> np.ndarray:
        r = self.scores[traj.episode_id]
        if r.shape != (len(traj),):
            raise ValueError(f"episode {traj.episode_id}: score has {r.shape[0]} steps, episode {len(traj)}")
        return r


def episode_record(adapter, traj):
    """A recorded Trajectory as PPO's EpisodeRecord: backbone features (T, F), samples = recorded actions."""
    import torch

    from rlhf.rl.rollouts import EpisodeRecord

    with torch.no_grad():
        feats = adapter.features(adapter.batch_from_trajectory(traj, 0, len(traj))).cpu().numpy().astype(np.float32)
    return EpisodeRecord(
        trajectory=traj, features=feats, samples=traj.actions.astype(np.float32), last_features=feats[-1],
        terminated=bool(traj.success), seed=int(traj.seed or 0),
    )


class LearnerNode(Node):
    def __init__(self) -> None:
        super().__init__("ppo_learner_node")
        self.cfg, self.ppo_cfg = declare_node_configs(self, "ppo_learner_node")
        if not self.cfg.policy_path:
            raise ValueError("ppo_learner_node: parameter policy_path (the BC policy checkpoint) is required")
        import torch

        from rlhf.policy.vla import VLAPolicy
        from rlhf.rl.policy_adapter import VLAAdapter
        from rlhf.rl.ppo import PPOTrainer

        torch.set_num_threads(self.cfg.torch_threads)
        self.out_dir = Path(self.cfg.out_dir)
        policy = VLAPolicy.load(uri_to_path(self.cfg.policy_path))
        self.base_version = f"bc:{policy.version_tag()}"
        self.adapter = VLAAdapter(policy)
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._busy = threading.Lock()
        if self.cfg.mode == "graph":
            from rlhf.episodes.store import EpisodeStore

            self.store = EpisodeStore(self.cfg.store_root)
            self.reward_fn = ScoreLookup()
            self.collector = StoredBatch()
            no_gold = (lambda t: np.zeros(len(t)), lambda t: {})
            self.trainer = PPOTrainer(self.adapter, self.collector, self.reward_fn, self.ppo_cfg,
                                      gold_fn=no_gold[0], gold_metrics_fn=no_gold[1], progress=False)
            self.create_subscription(RewardScore, self.cfg.reward_topic, self.score_callback, qos.BACKLOG)
        else:
            self.store = None
            self.trainer, self.collector = self._sim_trainer(PPOTrainer)
        self.pub = self.create_publisher(PolicyUpdate, self.cfg.update_topic, qos.LATCHED)
        self.create_service(Train, "~/train", self.train_callback)
        self.get_logger().info(
            f"ppo_learner_node: mode {self.cfg.mode}, base {self.base_version}, heads to {self.out_dir.resolve()}"
        )

    def _sim_trainer(self, trainer_cls):
        import functools
        import os

        import gymnasium as gym

        import sim
        from rlhf.reward.checkpoint import load_checkpoint
        from rlhf.rl.reward_shaping import EnsembleStepReward
        from rlhf.rl.rollouts import VectorRolloutCollector

        if not self.cfg.reward_checkpoint:
            raise ValueError("ppo_learner_node: mode 'sim' needs parameter reward_checkpoint")
        reward = EnsembleStepReward(load_checkpoint(uri_to_path(self.cfg.reward_checkpoint)), self.ppo_cfg.reward_std_coef)
        sim_cfg = sim.SimConfig(image_size=self.cfg.image_size, task=self.cfg.task,
                                wrist_camera=bool(self.adapter.policy.config.wrist_camera))  # fmt: skip
        env_fn = functools.partial(gym.make, sim.ENV_ID, task=self.cfg.task, config=sim_cfg)
        n = self.ppo_cfg.num_envs or os.cpu_count() or 1
        collector = VectorRolloutCollector(
            [env_fn] * n, self.adapter, mode=self.ppo_cfg.vector_mode, max_episode_steps=self.ppo_cfg.max_episode_steps,
            policy_version="ppo", task=self.cfg.task, sample_seed=self.ppo_cfg.seed,
        )
        return trainer_cls(self.adapter, collector, reward, self.ppo_cfg, progress=False), collector

    # ------------------------------------------------------------------ experience
    def score_callback(self, msg: RewardScore) -> None:
        with self._lock:
            self.reward_fn.scores[msg.episode_id] = np.asarray(msg.per_step_mean, np.float64)
            if msg.episode_id not in self._pending:
                self._pending.append(msg.episode_id)
            ready = len(self._pending) >= self.cfg.episodes_per_update
        self.get_logger().info(f"score for {msg.episode_id} ({len(self._pending)}/{self.cfg.episodes_per_update} pending)")
        if ready:
            threading.Thread(target=self.update, name="ppo-update", daemon=True).start()

    def train_callback(self, request: Train.Request, response: Train.Response) -> Train.Response:
        iterations = int(request.iterations) or self.cfg.iterations_per_update
        ok, message = self.update(iterations)
        response.success, response.message = ok, message
        response.version = f"ppo:iter{self.trainer.iteration}"
        return response

    # ------------------------------------------------------------------ training
    def update(self, iterations: int | None = None) -> tuple[bool, str]:
        """Run PPO iterations (graph: on the pending episodes) and publish the new head."""
        iterations = iterations or self.cfg.iterations_per_update
        if not self._busy.acquire(blocking=False):
            return False, "an update is already running"
        try:
            if self.cfg.mode == "graph":
                with self._lock:
                    ids, self._pending = self._pending, []
                if not ids:
                    return False, "no scored episodes pending"
                records = []
                for eid in ids:
                    try:
                        records.append(episode_record(self.adapter, self.store.load(eid)))
                    except Exception as e:  # noqa: BLE001 - a missing episode costs only itself
                        self.get_logger().error(f"episode {eid} skipped: {type(e).__name__}: {e}")
                if not records:
                    return False, "none of the scored episodes could be loaded"
                self.collector.records = records
            history = self.trainer.train(iterations)
            last = history[-1]
            version = f"ppo:iter{self.trainer.iteration}"
            head_dir = self.out_dir / "heads" / version.replace(":", "_")
            self.adapter.save_head(head_dir)
            header = json.loads((head_dir / "head_config.json").read_text())
            msg = PolicyUpdate()
            msg.header.stamp = self.get_clock().now().to_msg()
            msg.version = version
            msg.base_version = self.base_version
            msg.head_checkpoint_uri = head_dir.resolve().as_uri()
            msg.head_sha256 = header["weights_sha256"]
            msg.iteration = self.trainer.iteration
            steps = max(last.get("charts/episode_length", 1.0), 1.0)
            msg.kl = float(last.get("objective/kl", math.nan)) / steps
            msg.mean_proxy_reward = float(last.get("objective/scores", math.nan))
            msg.mean_gold_return = float(last["gold/return"]) if self.cfg.mode == "sim" else math.nan
            self.pub.publish(msg)
            text = (f"{version}: proxy {msg.mean_proxy_reward:.3f}, KL/step {msg.kl:.4f}, "
                    f"head {msg.head_sha256[:12]}… at {head_dir}")
            self.get_logger().info(text)
            return True, text
        except Exception as e:  # noqa: BLE001 - reported; the node keeps running
            self.get_logger().error(f"PPO update failed: {type(e).__name__}: {e}")
            return False, f"{type(e).__name__}: {e}"
        finally:
            self._busy.release()

    def close(self) -> None:
        self.collector.close()
        if self.store is not None:
            self.store.close()


def main(args=None) -> None:
    run(LearnerNode, args)


if __name__ == "__main__":
    main()
