"""Kinematic scene features and the reward model's linear channel over them."""

import dataclasses

import numpy as np
import pytest

from rlhf.prefs.teacher_model import TeacherConfig
from rlhf.reward.checkpoint import load_checkpoint, save_checkpoint
from rlhf.reward.config import RewardConfig
from rlhf.reward.dataset import label_pairs, sample_segment_pairs
from rlhf.reward.features import features_for, state_dim
from rlhf.reward.kinematics import KINEMATIC_GRID, kinematic_dim, kinematic_features
from rlhf.reward.metrics import gold_ordering, gold_segment_returns, preference_accuracy
from rlhf.reward.synthetic import synthetic_episode, tiny_config
from rlhf.reward.train import train_reward_model

DT = 0.1
G = len(KINEMATIC_GRID)


def _scene(eid: str, ee: np.ndarray, objects: np.ndarray, rng: np.random.Generator):
    """A synthetic episode whose grasp point follows `ee` (T, 3) among `objects` (T, K, 3)."""
    base = synthetic_episode(eid, rng, steps=len(ee), image_size=16)
    return dataclasses.replace(
        base,
        ee_positions=ee.astype(np.float32),
        object_positions=objects.astype(np.float32),
        contact_forces=np.zeros(len(ee), np.float32),
    )


def _columns(num_objects: int) -> dict[str, slice | int]:
    """Where the column groups sit (see the kinematics module's table)."""
    k = num_objects
    grid = 4 + k
    return {
        "dist_change": slice(4, 4 + k),
        "grid": slice(grid, grid + G * G),
        "success": kinematic_dim(k) - 1,
    }


def test_features_follow_the_motion_among_the_objects():
    rng = np.random.default_rng(0)
    steps = 12
    # The grasp point moves at 0.2 m/s along x towards object 0, which sits 1 cm past its last
    # position. Object 1 stands 3.5 cm below the grasp point at the first step; from then on it is
    # carried: it moves with the grasp point, 1 cm below it, lifted 2.5 cm above where it stood.
    ee = np.zeros((steps, 3))
    ee[:, 0] = 0.3 + 0.02 * np.arange(steps)
    ee[:, 2] = 0.2
    objects = np.zeros((steps, 2, 3))
    objects[:, 0] = [ee[-1, 0] + 0.01, 0.0, 0.2]
    objects[:, 1] = ee - [0.0, 0.0, 0.01]
    objects[0, 1] = ee[0] - [0.0, 0.0, 0.035]
    ep = _scene("e", ee, objects, rng)
    ep.success = True
    ep.extra["success_time_s"] = float(ep.timestamps[9]) + DT  # the action at step 9 completed the task
    f = kinematic_features(ep, DT, 2)
    cols = _columns(2)
    assert f.shape == (steps, kinematic_dim(2))
    np.testing.assert_allclose(f[:, 0], 0.2, atol=1e-5)  # speed, m/s
    np.testing.assert_allclose(f[:-1, cols["dist_change"]][:, 0], -0.02, atol=1e-5)
    np.testing.assert_allclose(f[1:, cols["dist_change"]][:, 1], 0.0, atol=1e-6)  # carried: no change
    grid = f[:, cols["grid"]]
    # Step 0: 3.5 cm from object 1, not yet lifted, so not carried: moving at 0.2 m/s that close is
    # in the grid's small radii. Steps 1-3: object 1 is carried and object 0 is 17-23 cm away, so the
    # 3 and 6 cm radii see nothing. The last steps: 1-3 cm from object 0 at 0.2 m/s.
    assert grid[0, : 2 * G].max() > 0.01
    assert grid[1:4, : 2 * G].max() < 1e-6
    assert grid[-2, :G].max() > 0.01
    np.testing.assert_array_equal(f[:, cols["success"]], np.eye(steps)[9])


def test_only_the_nearest_object_counts():
    rng = np.random.default_rng(0)
    ee = np.linspace([0.3, 0.0, 0.1], [0.5, 0.0, 0.1], 10)
    one = np.stack([np.tile([0.52, 0.0, 0.1], (10, 1)), np.tile([0.0, 0.5, 0.0], (10, 1))], axis=1)
    two = np.stack([np.tile([0.52, 0.0, 0.1], (10, 1)), np.tile([0.52, 0.01, 0.1], (10, 1))], axis=1)
    f1 = kinematic_features(_scene("one", ee, one, rng), DT, 2)[:, _columns(2)["grid"]]
    f2 = kinematic_features(_scene("two", ee, two, rng), DT, 2)[:, _columns(2)["grid"]]
    assert f1[-2].max() > 0.01
    np.testing.assert_allclose(f2, f1, rtol=0.2, atol=1e-6)  # a second object beside the first adds little


def test_missing_or_mismatched_scene_data_is_named():
    rng = np.random.default_rng(0)
    plain = synthetic_episode("bare", rng, steps=10)
    with pytest.raises(ValueError, match="'bare' has no object_positions"):
        kinematic_features(plain, DT, 1)
    ee = np.zeros((10, 3))
    ep = _scene("two", ee, np.zeros((10, 2, 3)), rng)
    with pytest.raises(ValueError, match="'two' records 2 objects.*built for 3"):
        kinematic_features(ep, DT, 3)
    cfg = RewardConfig(kinematic=True, num_objects=2)
    assert features_for(ep, cfg).state.shape == (10, state_dim(True, 2))


def _approach_episodes(n: int, seed: int) -> dict:
    """Episodes of a grasp point heading for object 0 at its own speed and jitter; object 1 stays
    far away. Their gold reward pays progress and punishes speed within 8 cm of object 0."""
    rng = np.random.default_rng(seed)
    out = {}
    steps = 30
    for i in range(n):
        target = np.array([0.5, rng.uniform(-0.2, 0.2), 0.1])
        start = target + rng.normal(0, 1, 3) * np.array([0.15, 0.15, 0.05]) + [0.0, 0.0, 0.15]
        speed = rng.uniform(0.03, 0.35)
        ee = [start]
        for _ in range(steps - 1):
            d = target - ee[-1]
            step = d / max(np.linalg.norm(d), 1e-9) * min(speed * DT, np.linalg.norm(d))
            ee.append(ee[-1] + step + rng.normal(0, 0.004, 3))
        ee = np.array(ee)
        objects = np.stack([np.tile(target, (steps, 1)), np.tile([0.2, 0.4, 0.05], (steps, 1))], axis=1)
        out[f"ap-{i}"] = _scene(f"ap-{i}", ee, objects, rng)
    return out


def _approach_gold(traj) -> np.ndarray:
    ee = traj.ee_positions.astype(np.float64)
    dist = np.linalg.norm(ee - traj.object_positions[:, 0], axis=1)
    speed = np.append(np.linalg.norm(np.diff(ee, axis=0), axis=1) / DT, 0.0)
    progress = np.append(-np.diff(dist), 0.0)
    return 10.0 * progress - 20.0 * np.maximum(0.0, speed - 0.1) ** 2 * (dist < 0.08)


def test_linear_channel_learns_a_scene_reward_and_survives_a_checkpoint(tmp_path):
    episodes = _approach_episodes(60, seed=1)
    gold = {k: _approach_gold(v) for k, v in episodes.items()}
    ids = sorted(episodes)
    rng = np.random.default_rng(0)
    train_pairs = sample_segment_pairs(episodes, 300, 1.5, rng, ids[:40])
    test_pairs = sample_segment_pairs(episodes, 300, 1.5, rng, ids[40:])
    ga = gold_segment_returns(gold, [a for a, _ in train_pairs])
    gb = gold_segment_returns(gold, [b for _, b in train_pairs])
    beta = 1.0 / np.std(ga - gb)  # a noisy teacher: about 3 in 4 labels agree with gold
    triples = label_pairs(train_pairs, gold, TeacherConfig(beta=beta), rng)
    agree = np.mean([(t.prob_a > 0.5) == (gold_segment_returns(gold, [(t.episode_a, t.segment_a)])[0]
                     > gold_segment_returns(gold, [(t.episode_b, t.segment_b)])[0]) for t in triples])

    def held_out(ens) -> float:
        ra = ens.score_batch([(episodes[e], s) for (e, s), _ in test_pairs])
        rb = ens.score_batch([(episodes[e], s) for _, (e, s) in test_pairs])
        ta = gold_segment_returns(gold, [a for a, _ in test_pairs])
        tb = gold_segment_returns(gold, [b for _, b in test_pairs])
        return preference_accuracy(np.array([r.mean for r in ra]), np.array([r.mean for r in rb]), gold_ordering(ta, tb))

    cfg = tiny_config(segment_seconds=1.5, use_images=False, kinematic=True, epochs=2, ensemble_size=2)
    result = train_reward_model(episodes, triples, cfg, progress=False)
    ens = result.ensemble
    assert ens.config.num_objects == 2  # read from the episodes
    first = result.history[0][0]
    assert first["epoch"] == -1 and first["kinematic/l2"] in cfg.kinematic_l2
    weights = [net.kinematic.weight.detach().clone() for net in ens.members]
    assert all(w.abs().sum() > 0 and not w.requires_grad for w in weights)
    acc = held_out(ens)
    print("teacher agreement", agree, "held-out agreement", acc)
    assert acc >= 0.85 and acc > agree, (agree, acc)
    # Without the channel, the same tiny model on the same labels does clearly worse here.
    plain = train_reward_model(episodes, triples, dataclasses.replace(cfg, kinematic=False), progress=False)
    plain_acc = held_out(plain.ensemble)
    print("without the channel", plain_acc)
    assert plain_acc < acc

    # A motion no training episode makes (a dash past object 1, which they all stay far from) moves
    # features whose training values were all but constant; it must not score in the thousands.
    usual = np.array([ens.score(episodes[i]).mean for i in ids])
    rng2 = np.random.default_rng(5)
    dash = np.linspace([0.1, 0.4, 0.06], [0.3, 0.4, 0.06], 30)
    odd = _scene("dash", dash, np.stack([np.tile([0.5, 0.0, 0.1], (30, 1)), np.tile([0.2, 0.4, 0.05], (30, 1))], 1), rng2)
    odd_score = ens.score(odd).mean
    print("usual scores", usual.min(), usual.max(), "dash", odd_score)
    assert abs(odd_score) < 10 * np.abs(usual).max()

    back = load_checkpoint(save_checkpoint(ens, tmp_path / "ckpt"))
    assert back.config.num_objects == 2 and back.config.kinematic
    ep = episodes[ids[-1]]
    np.testing.assert_allclose(back.score(ep).per_step_mean, ens.score(ep).per_step_mean, atol=1e-5)


def test_the_residual_must_beat_the_linear_channel_clearly():
    from rlhf.reward.train import _clearly_better

    rng = np.random.default_rng(0)
    base = rng.uniform(0.3, 0.7, 400)
    assert _clearly_better(base, base - 0.05)  # better on every pair
    noise = rng.normal(0, 0.2, 400)
    assert not _clearly_better(base, base + noise - noise.mean() - 0.001)  # a sliver of mean gain, much spread
    assert not _clearly_better(base, base + 0.01)


def test_columns_that_never_vary_in_training_are_flagged():
    from rlhf.reward.features import EpisodeFeatures, FeatureStats

    rng = np.random.default_rng(0)
    state = rng.normal(size=(50, 3)).astype(np.float32)
    state[:, 1] = 0.0  # e.g. a joint-limit hinge no training episode reaches
    state[:, 2] = 1e-5 * rng.normal(size=50)  # varies, but below the floor
    feats = EpisodeFeatures(np.zeros((50, 3, 8, 8), np.uint8), state, np.zeros((50, 8), np.float32))
    assert FeatureStats.fit([feats]).varies().tolist() == [True, False, False]
