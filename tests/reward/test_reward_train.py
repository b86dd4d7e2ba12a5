"""Training: a tiny run learns an easy synthetic preference; triples are validated; annotator weights."""

import numpy as np
import pytest
import torch

from rlhf.device import DeviceUnavailableError
from rlhf.prefs.teacher_model import TeacherConfig
from rlhf.prefs.triples import LABEL_A, LABEL_B, PreferenceTriple
from rlhf.reward.dataset import PairDataset, label_pairs, sample_segment_pairs
from rlhf.reward.ensemble import RewardEnsemble
from rlhf.reward.features import FeatureStats, extract_features, segment_steps
from rlhf.reward.metrics import gold_ordering, gold_segment_returns, preference_accuracy
from rlhf.reward.model import RewardNet
from rlhf.reward.synthetic import synthetic_episodes, synthetic_gold_rewards, tiny_config
from rlhf.reward.train import annotator_weights_from_accuracy, train_reward_model


def _heldout_accuracy(ens: RewardEnsemble, episodes, gold, pairs) -> float:
    ra = ens.score_batch([(episodes[e], s) for (e, s), _ in pairs])
    rb = ens.score_batch([(episodes[e], s) for _, (e, s) in pairs])
    ga = gold_segment_returns(gold, [a for a, _ in pairs])
    gb = gold_segment_returns(gold, [b for _, b in pairs])
    return preference_accuracy(
        np.array([r.mean for r in ra]), np.array([r.mean for r in rb]), gold_ordering(ga, gb)
    )


def _split_pairs(n_episodes: int, seed: int, n_train_episodes: int, n_train: int, n_test: int):
    """Synthetic episodes, their gold, and 1.5 s segment pairs; held-out pairs come from episodes the
    model never trains on. Returns (episodes, gold, ids, rng, train_pairs, test_pairs)."""
    episodes = synthetic_episodes(n_episodes, seed=seed, steps=30)
    gold = {k: synthetic_gold_rewards(v) for k, v in episodes.items()}
    ids = sorted(episodes)
    rng = np.random.default_rng(0)
    train_pairs = sample_segment_pairs(episodes, n_train, 1.5, rng, ids[:n_train_episodes])
    test_pairs = sample_segment_pairs(episodes, n_test, 1.5, rng, ids[n_train_episodes:])
    return episodes, gold, ids, rng, train_pairs, test_pairs


@pytest.mark.slow
def test_tiny_training_improves_heldout_accuracy():
    episodes, gold, ids, rng, train_pairs, test_pairs = _split_pairs(40, 3, 28, 200, 150)
    triples = label_pairs(train_pairs, gold, TeacherConfig(beta=2.0), rng)
    cfg = tiny_config(epochs=6, ensemble_size=2, segment_seconds=1.5)
    after = train_reward_model(episodes, triples, cfg, progress=False)
    # Before training: the same members at their initial weights (train_member seeds each one).
    feats = {k: extract_features(v, 16, True) for k, v in episodes.items()}
    untrained = []
    for m in range(cfg.ensemble_size):
        torch.manual_seed(cfg.seed * 1000 + m)
        untrained.append(RewardNet(cfg).eval())
    before = RewardEnsemble(cfg, untrained, FeatureStats.fit(feats[i] for i in ids[:28]))
    acc_before = _heldout_accuracy(before, episodes, gold, test_pairs)
    acc_after = _heldout_accuracy(after.ensemble, episodes, gold, test_pairs)
    print("held-out accuracy before/after", acc_before, acc_after)
    assert acc_after >= 0.85, (acc_before, acc_after)
    assert acc_after > acc_before + 0.1, (acc_before, acc_after)
    assert len(after.history) == 2 and len(after.history[0]) == 6
    assert after.history[0][-1]["losses/bt_loss"] < after.history[0][0]["losses/bt_loss"]


def test_segment_length_comes_from_seconds_and_rate():
    ep = synthetic_episodes(1, rate_hz=20.0, steps=80)["syn-0"]
    assert segment_steps(ep, 2.0) == 40
    pairs = sample_segment_pairs(
        {**synthetic_episodes(3, rate_hz=20.0, steps=80)}, 5, 1.5, np.random.default_rng(0)
    )
    assert all(s[1] - s[0] == 30 for a, b in pairs for _, s in (a, b))


def _triple(pid, ea="syn-0", eb="syn-1", sa=(0, 10), sb=(0, 10), p=1.0, annotator="", axes=None):
    return PreferenceTriple(pid, "", ea, eb, sa, sb, p, annotator_id=annotator, axes=axes or {})


def test_bad_triples_are_named():
    episodes = synthetic_episodes(2)
    with pytest.raises(ValueError, match="unknown episodes"):
        train_reward_model(episodes, [_triple("p1", eb="ghost")], tiny_config(), progress=False)
    feats = {k: extract_features(v, 16, True) for k, v in episodes.items()}
    with pytest.raises(ValueError, match="'p2'.*runs past"):
        PairDataset(feats, [_triple("p2", sb=(35, 45))], FeatureStats.identity(21))
    with pytest.raises(ValueError, match="'p3'.*max_steps"):
        PairDataset(feats, [_triple("p3", sa=(0, 40))], FeatureStats.identity(21), max_steps=32)
    with pytest.raises(ValueError, match="no preference triples"):
        train_reward_model(episodes, [], tiny_config(), progress=False)


def test_annotator_weights_and_axis_targets():
    episodes = synthetic_episodes(2)
    feats = {k: extract_features(v, 16, True) for k, v in episodes.items()}
    triples = [
        _triple("p1", annotator="good", axes={"speed": LABEL_A}),
        _triple("p2", annotator="coin", axes={"speed": LABEL_B, "safety": 4}),
        _triple("p3", annotator="new"),
    ]
    weights = annotator_weights_from_accuracy({"good": 0.9, "coin": 0.4})
    assert weights == pytest.approx({"good": 0.8, "coin": 0.0})
    data = PairDataset(
        feats, triples, FeatureStats.identity(21), axes=("speed", "safety"), annotator_weights=weights
    )
    b = data.batch([0, 1, 2])
    assert b["weight"].tolist() == pytest.approx([0.8, 0.0, 1.0])
    assert b["axis_target"][:, 0].tolist() == [1.0, 0.0, 0.0]
    assert b["axis_mask"].tolist() == [[1.0, 0.0], [1.0, 0.0], [0.0, 0.0]]
    assert b["segments"].images.shape == (6, 10, 3, 16, 16)
    with pytest.raises(ValueError, match="accuracy must be in"):
        annotator_weights_from_accuracy({"x": 1.5})


def test_axis_heads_train_and_score():
    episodes = synthetic_episodes(6, seed=2, steps=20)
    gold = {k: synthetic_gold_rewards(v) for k, v in episodes.items()}
    rng = np.random.default_rng(1)
    triples = label_pairs(sample_segment_pairs(episodes, 24, 1.0, rng), gold, TeacherConfig(), rng)
    triples = [
        PreferenceTriple(
            t.pair_id,
            "",
            t.episode_a,
            t.episode_b,
            t.segment_a,
            t.segment_b,
            t.prob_a,
            axes={"smoothness": LABEL_A if t.prob_a > 0.5 else LABEL_B},
        )
        for t in triples
    ]
    cfg = tiny_config(axes=("smoothness",), epochs=1, ensemble_size=1, segment_seconds=1.0)
    result = train_reward_model(episodes, triples, cfg, progress=False)
    assert "losses/bt_loss" in result.history[0][0]
    assert set(result.ensemble.score(episodes["syn-0"]).axes) == {"smoothness"}


def test_member_init_is_seeded():
    cfg = tiny_config()
    torch.manual_seed(0)
    a = RewardNet(cfg)
    torch.manual_seed(0)
    b = RewardNet(cfg)
    assert all(
        torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def test_ee_features_and_missing_ee_is_named():
    ep = synthetic_episodes(1)["syn-0"]
    f = extract_features(ep, 16, use_ee=True)
    assert f.state.shape == (len(ep), 21) and f.images.shape == (len(ep), 3, 16, 16)
    np.testing.assert_allclose(f.state[1:, 18:], np.diff(ep.ee_positions, axis=0) * 10.0, rtol=1e-5)
    assert np.all(f.state[0, 18:] == 0)
    ep.ee_positions = None
    with pytest.raises(ValueError, match="no ee_positions"):
        extract_features(ep, 16, use_ee=True)
    assert extract_features(ep, 16, use_ee=False).state.shape == (len(ep), 15)


def test_gold_regression_capacity_check_learns_the_gold_ordering():
    from rlhf.reward.experiment import regress_gold

    episodes, gold, _, _, train_pairs, test_pairs = _split_pairs(30, 5, 22, 100, 150)
    cfg = tiny_config(ensemble_size=1, segment_seconds=1.5)
    feats = {k: extract_features(v, 16, True) for k, v in episodes.items()}
    segments = [a for a, _ in train_pairs] + [b for _, b in train_pairs]
    untrained = regress_gold(feats, gold, segments, cfg, steps=0, seed=0)
    dense = regress_gold(feats, gold, segments, cfg, steps=300, seed=0)
    acc_before = _heldout_accuracy(untrained, episodes, gold, test_pairs)
    acc_after = _heldout_accuracy(dense, episodes, gold, test_pairs)
    print("held-out accuracy before/after", acc_before, acc_after)
    assert acc_after >= 0.9 and acc_after > acc_before + 0.1, (acc_before, acc_after)


# ---------------------------------------------------------------- device
needs_no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error a machine without a GPU gives")


def _device_data():
    episodes = synthetic_episodes(6, seed=5, steps=24)
    gold = {k: synthetic_gold_rewards(v) for k, v in episodes.items()}
    rng = np.random.default_rng(0)
    triples = label_pairs(sample_segment_pairs(episodes, 24, 1.0, rng), gold, TeacherConfig(), rng)
    return episodes, triples


def test_device_field_rejects_unknown_name():
    with pytest.raises(ValueError, match="RewardConfig.device"):
        tiny_config(device="gpu")


@needs_no_gpu
def test_cuda_without_gpu_is_a_clear_error():
    episodes, triples = _device_data()
    with pytest.raises(DeviceUnavailableError, match=r"RewardConfig.device is 'cuda'.*no CUDA device"):
        train_reward_model(episodes, triples, tiny_config(epochs=1, device="cuda"), progress=False)


@needs_no_gpu
def test_cpu_and_auto_train_the_same_weights_on_a_cpu_machine():
    episodes, triples = _device_data()
    runs = [
        train_reward_model(episodes, triples, tiny_config(epochs=1, segment_seconds=1.0, device=d), progress=False)
        for d in ("cpu", "auto")
    ]
    a, b = (r.ensemble.members.state_dict() for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert runs[0].history == runs[1].history


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_returns_cpu_members_close_to_cpu_training():
    episodes, triples = _device_data()
    cfg = dict(epochs=2, segment_seconds=1.0, dropout=0.0)
    cpu = train_reward_model(episodes, triples, tiny_config(**cfg, device="cpu"), progress=False)
    gpu = train_reward_model(episodes, triples, tiny_config(**cfg, device="cuda"), progress=False)
    assert all(p.device.type == "cpu" for p in gpu.ensemble.members.parameters())
    for h_cpu, h_gpu in zip(cpu.history, gpu.history, strict=True):
        assert h_gpu[-1]["losses/bt_loss"] == pytest.approx(h_cpu[-1]["losses/bt_loss"], rel=1e-2, abs=1e-3)
