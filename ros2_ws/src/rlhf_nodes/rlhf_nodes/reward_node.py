"""reward_node: scores recorded episodes with the reward-model ensemble.

Every EpisodeInfo on /episodes/recorded is scored automatically (`auto_score`) in a worker thread,
and `~/score_episode` (rlhf_msgs/ScoreEpisode) scores an episode of the store by id, or a bag
given by URI, for its caller. Automatic scores go out as rlhf_msgs/RewardScore on /episodes/reward
(once per recorded episode, so the learner never trains twice on one episode's score).
"""

from __future__ import annotations

import hashlib
import queue
import threading
from pathlib import Path

import numpy as np
from rclpy.node import Node
from rlhf_msgs.msg import EpisodeInfo, RewardScore
from rlhf_msgs.srv import ScoreEpisode

from rlhf_nodes import qos
from rlhf_nodes.convert import uri_to_path
from rlhf_nodes.params import declare_node_configs
from rlhf_nodes.runner import run


class RewardNode(Node):
    def __init__(self) -> None:
        super().__init__("reward_node")
        (self.cfg,) = declare_node_configs(self, "reward_node")
        if not self.cfg.reward_checkpoint:
            raise ValueError("reward_node: parameter reward_checkpoint (a reward-ensemble checkpoint folder) is required")
        import torch

        from rlhf.episodes.store import EpisodeStore
        from rlhf.reward.checkpoint import MODEL_FILE, load_checkpoint

        torch.set_num_threads(1)
        ckpt = uri_to_path(self.cfg.reward_checkpoint)
        self.ensemble = load_checkpoint(ckpt)
        self.model_version = "rm:" + hashlib.sha256((Path(ckpt) / MODEL_FILE).read_bytes()).hexdigest()[:8]
        self.store = EpisodeStore(self.cfg.store_root)
        self._score_lock = threading.Lock()
        self._queue: queue.Queue[EpisodeInfo | None] = queue.Queue()
        self.pub = self.create_publisher(RewardScore, self.cfg.reward_topic, qos.RELIABLE)
        if self.cfg.auto_score:
            self.create_subscription(EpisodeInfo, self.cfg.episode_topic, self.episode_callback, qos.RELIABLE)
        self.create_service(ScoreEpisode, "~/score_episode", self.score_callback)
        self._worker = threading.Thread(target=self._work, name="reward-scoring", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"reward_node: {self.model_version} ({len(self.ensemble)} members), store {self.store.root.resolve()}, "
            f"auto_score={self.cfg.auto_score}"
        )

    # ------------------------------------------------------------------ scoring
    def _load(self, episode_id: str, bag_uri: str):
        if bag_uri:
            from rlhf.episodes.bag_reader import read_episodes

            episodes = read_episodes(uri_to_path(bag_uri))
            match = [t for t in episodes if not episode_id or t.episode_id == episode_id]
            if not match:
                raise KeyError(f"{bag_uri} holds no episode {episode_id!r}")
            return match[0]
        return self.store.load(episode_id)

    def score(self, episode_id: str, bag_uri: str = "") -> RewardScore:
        traj = self._load(episode_id, bag_uri)
        with self._score_lock:
            result = self.ensemble.score(traj)
        msg = RewardScore()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.episode_id = traj.episode_id
        msg.model_version = self.model_version
        msg.ensemble_size = len(self.ensemble)
        msg.mean = float(result.mean)
        msg.std = float(result.std)
        msg.conservative_k = float(self.cfg.conservative_k)
        msg.conservative = float(result.conservative(self.cfg.conservative_k))
        msg.per_step_mean = np.asarray(result.per_step_mean, np.float32).tolist()
        msg.per_step_std = np.asarray(result.per_step_std, np.float32).tolist()
        return msg

    def episode_callback(self, msg: EpisodeInfo) -> None:
        self._queue.put(msg)  # scoring takes a while: never inside the subscription callback

    def _work(self) -> None:
        while True:
            info = self._queue.get()
            if info is None:
                return
            try:
                # A bag that is not in this node's store (another recorder) is read from its URI.
                in_store = info.episode_id in self.store.index
                score = self.score(info.episode_id, "" if in_store else info.bag_uri)
            except Exception as e:  # noqa: BLE001 - one bad episode must not stop scoring
                self.get_logger().error(f"episode {info.episode_id}: not scored: {type(e).__name__}: {e}")
                continue
            self.pub.publish(score)
            self.get_logger().info(
                f"scored {score.episode_id}: {score.mean:.3f} ± {score.std:.3f} over {len(score.per_step_mean)} steps"
            )

    def score_callback(self, request: ScoreEpisode.Request, response: ScoreEpisode.Response) -> ScoreEpisode.Response:
        if not request.episode_id and not request.bag_uri:
            response.success = False
            response.message = "give an episode_id or a bag_uri"
            return response
        try:
            response.score = self.score(request.episode_id, request.bag_uri)
        except Exception as e:  # noqa: BLE001 - reported to the caller
            response.success = False
            response.message = f"{type(e).__name__}: {e}"
            return response
        response.success = True
        response.message = f"{response.score.mean:.4f} ± {response.score.std:.4f}"
        return response  # answered to the caller only: re-scoring must not feed the learner twice

    def close(self) -> None:
        self._queue.put(None)
        self._worker.join(timeout=5.0)
        self.store.close()


def main(args=None) -> None:
    run(RewardNode, args)


if __name__ == "__main__":
    main()
