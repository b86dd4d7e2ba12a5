"""RewardNet shapes, masking, causality; one optimiser step; config validation."""

import pytest
import torch

from rlhf.reward.config import RewardConfig
from rlhf.reward.losses import bradley_terry_loss
from rlhf.reward.model import RewardNet
from rlhf.reward.synthetic import tiny_config


def _inputs(n=3, length=10, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, length, 3, size, size), generator=g, dtype=torch.uint8)
    state = torch.randn(n, length, 21, generator=g)
    actions = torch.randn(n, length, 8, generator=g)
    mask = torch.ones(n, length, dtype=torch.bool)
    return images, state, actions, mask


def test_shapes_and_padding_is_zero():
    cfg = tiny_config(axes=("speed", "safety"))
    net = RewardNet(cfg).eval()
    images, state, actions, mask = _inputs()
    mask[1, 6:] = False
    r, axes = net(images, state, actions, mask)
    assert r.shape == (3, 10)
    assert axes.shape == (3, 10, 2)
    assert torch.all(r[1, 6:] == 0) and torch.all(axes[1, 6:] == 0)
    assert torch.all(r[1, :6] != 0)


def test_causal_reward_ignores_future_steps():
    net = RewardNet(tiny_config(causal=True)).eval()
    images, state, actions, mask = _inputs(n=1)
    r1, _ = net(images, state, actions, mask)
    state2 = state.clone()
    state2[0, 7:] += 5.0
    r2, _ = net(images, state2, actions, mask)
    torch.testing.assert_close(r1[0, :7], r2[0, :7])
    assert not torch.allclose(r1[0, 7:], r2[0, 7:])


def test_non_causal_reward_sees_future():
    net = RewardNet(tiny_config(causal=False)).eval()
    images, state, actions, mask = _inputs(n=1)
    r1, _ = net(images, state, actions, mask)
    state2 = state.clone()
    state2[0, 7:] += 5.0
    r2, _ = net(images, state2, actions, mask)
    assert not torch.allclose(r1[0, :7], r2[0, :7])


def test_proprio_only_model_runs():
    net = RewardNet(tiny_config(use_images=False, use_ee=False)).eval()
    assert net.frame_encoder is None
    images, state, actions, mask = _inputs()
    r, _ = net(images, state[..., :15], actions, mask)
    assert r.shape == (3, 10)


def test_one_optimiser_step_changes_every_parameter_tensor():
    torch.manual_seed(0)
    net = RewardNet(tiny_config())
    before = {k: v.detach().clone() for k, v in net.named_parameters()}
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    images, state, actions, mask = _inputs(n=4)
    r, _ = net(images, state, actions, mask)
    s = r.sum(1)
    loss = bradley_terry_loss(s[:2], s[2:], torch.tensor([1.0, 0.0]))
    opt.zero_grad()
    loss.backward()
    opt.step()
    unchanged = [k for k, v in net.named_parameters() if torch.equal(v, before[k])]
    assert unchanged == []


def test_too_long_segment_is_rejected():
    net = RewardNet(tiny_config(max_steps=8))
    with pytest.raises(ValueError, match="max_steps"):
        net(*_inputs(length=9))


@pytest.mark.parametrize(
    "field,value",
    [
        ("segment_seconds", 0.0),
        ("n_heads", 3),
        ("axes", ("grace",)),
        ("label_noise", 1.0),
        ("normalize", "x"),
        ("ensemble_size", 0),
        ("image_size", 4),
    ],
)
def test_config_rejects_bad_values_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        RewardConfig(**{field: value})


def test_config_dict_round_trip_and_unknown_keys():
    cfg = tiny_config(axes=("speed",))
    assert RewardConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown field"):
        RewardConfig.from_dict({"segment_secs": 2.0})


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("window", [0, 3])
def test_padding_does_not_change_real_steps(causal, window):
    net = RewardNet(tiny_config(causal=causal, attention_window=window)).eval()
    images, state, actions, mask = _inputs(n=2, length=10)
    r_short, _ = net(images[:1, :6], state[:1, :6], actions[:1, :6], mask[:1, :6])
    mask[0, 6:] = False
    r_padded, _ = net(images, state, actions, mask)
    assert torch.isfinite(r_padded).all()
    torch.testing.assert_close(r_padded[0, :6], r_short[0], atol=1e-5, rtol=1e-4)
    assert torch.all(r_padded[0, 6:] == 0)


def test_attention_window_limits_context():
    net = RewardNet(tiny_config(causal=True, attention_window=3)).eval()
    images, state, actions, mask = _inputs(n=1)
    r1, _ = net(images, state, actions, mask)
    state2 = state.clone()
    state2[0, 2] += 5.0  # step 2 is outside the 3-step window of steps >= 5
    r2, _ = net(images, state2, actions, mask)
    # Two layers of a 3-step window reach back 4 steps: step 7 cannot see step 2, step 4 can.
    torch.testing.assert_close(r1[0, 7:], r2[0, 7:])
    assert not torch.allclose(r1[0, 2:5], r2[0, 2:5])


def test_keypoint_encoder_finds_a_bright_blob():
    from rlhf.reward.model import FrameEncoder

    enc = FrameEncoder((8,), d_model=16, keypoints=4)
    with torch.no_grad():
        enc.conv[0].weight.fill_(0.0)
        enc.conv[0].bias.fill_(0.0)
        enc.conv[0].weight[:, 0, 2, 2] = 1.0  # channel sums the red centre pixel
        enc.kp.weight.fill_(1.0)
        enc.kp.bias.fill_(0.0)
        img = torch.zeros(1, 3, 16, 16)
        img[0, 0, 12:14, 2:4] = 50.0  # a bright blob at the lower left
        h = enc.conv(img)
        attn = torch.softmax(enc.kp(h).flatten(2), dim=-1)
    peak = int(attn[0, 0].argmax())
    row, col = divmod(peak, h.shape[-1])
    assert row >= 5 and col <= 2  # lower left of the 8x8 map
    assert enc(img).shape == (1, 16)
    net = RewardNet(tiny_config(keypoints=4)).eval()
    r, _ = net(*_inputs(n=2, length=5))
    assert r.shape == (2, 5) and torch.isfinite(r).all()
