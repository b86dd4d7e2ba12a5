"""RewardConfig: every knob of the trajectory reward model, its training and its ensemble."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from rlhf.constants import PREFERENCE_AXES
from rlhf.device import DEVICE_CHOICES


@dataclass
class RewardConfig:
    """Architecture, features, Bradley-Terry training and ensemble settings of the reward model."""

    # ---------------------------------------------------------------- segments and features
    segment_seconds: float = 2.0
    """Length of the segments compared by preference pairs, in seconds (converted to control steps
    with the rate read from an episode's timestamps)."""
    max_steps: int = 128
    """Longest window the temporal transformer sees (size of the learned position table). Longer
    trajectories are scored window by window."""
    image_size: int = 32
    """Frames are resized to image_size x image_size before the CNN (keeps CPU training cheap)."""
    use_images: bool = True
    """Feed the camera frames through the per-frame CNN; False uses proprio + actions only."""
    use_ee: bool = True
    """Add the grasp point's position and velocity (trajectory `ee_positions`, i.e. forward kinematics
    of the joints) to the proprio features: speed and height of the gripper are what safety and
    progress depend on, and learning forward kinematics from few labels is wasteful."""
    kinematic: bool = False
    """Add the scene features of `rlhf.reward.kinematics` (grasp point against each task object:
    distances and their changes, speed near an object it is not carrying; jerk; joint-limit margin;
    contact force; the step the task was completed) and a linear reward channel over them. Needs `object_positions` and `contact_forces` in every
    episode: recorded in sim, or from a perception source on a real arm. Bradley-Terry fits the
    linear channel first (convex, L-BFGS), then the transformer learns what it leaves over. Off by
    default because bags recorded on a real arm carry no object positions."""
    num_objects: int = 0
    """Task objects the kinematic features describe; 0 = read from the training episodes."""
    kinematic_l2: tuple[float, ...] = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
    """L2 penalties tried for the linear kinematic channel; each member keeps the one with the lowest
    Bradley-Terry loss on its out-of-bag pairs (the middle one without held-out pairs)."""

    # ---------------------------------------------------------------- architecture
    cnn_channels: tuple[int, ...] = (8, 16, 16)
    """Output channels of the per-frame CNN's stride-2 conv layers."""
    keypoints: int = 0
    """Spatial-softmax keypoints read from the CNN's last map (0: a 2x2 average pool instead)."""
    d_model: int = 64
    """Width of the temporal transformer."""
    n_heads: int = 4
    """Attention heads of the temporal transformer (must divide d_model)."""
    n_layers: int = 2
    """Layers of the temporal transformer."""
    causal: bool = True
    """Causal attention: the reward at step t depends only on steps <= t of its window, so a policy
    can be rewarded online and a long episode scored window by window matches training."""
    attention_window: int = 4
    """Steps each step may attend to (itself included; 0 = the whole window). The gold-like qualities
    a reward judges (speed, jerk, progress) are local in time, and a short window keeps the network
    from memorising whole segments when labels are few."""
    dropout: float = 0.1
    """Dropout inside the transformer and the head (regularises: labels are few)."""
    head_hidden: int = 64
    """Hidden width of the per-step MLP reward head."""
    axes: tuple[str, ...] = ()
    """Optional per-axis heads (subset of PREFERENCE_AXES) trained on triples' per-axis labels."""

    # ---------------------------------------------------------------- Bradley-Terry training
    label_noise: float = 0.1
    """Epsilon of the epsilon-uniform noise term: P(A) = (1 - eps) * sigmoid(R_a - R_b) + eps / 2."""
    axis_loss_weight: float = 0.5
    """Weight of the per-axis Bradley-Terry losses beside the aggregate loss."""
    epochs: int = 30
    """Passes over each member's (bootstrapped) training pairs."""
    batch_size: int = 64
    """Pairs per optimiser step."""
    lr: float = 1e-3
    """AdamW learning rate."""
    weight_decay: float = 0.05
    """AdamW weight decay."""
    grad_clip: float = 1.0
    """Gradient-norm clip (0 disables)."""
    val_fraction: float = 0.1
    """Without bootstrap: fraction of pairs held out per member to pick its best epoch by loss. With
    bootstrap the member's out-of-bag pairs serve instead. 0 disables selection (last epoch kept)."""
    device: str = "cpu"
    """Torch device training runs on: "cpu", "cuda" or "auto" (cuda when there is one). Members are
    returned on the CPU, where the ensemble scores; the kinematic channel's L-BFGS fit stays on the CPU."""

    # ---------------------------------------------------------------- ensemble
    ensemble_size: int = 3
    """Number of ensemble members k."""
    bootstrap: bool = True
    """Train each member on a bootstrap resample (with replacement) of the training pairs."""
    normalize: str = "step"
    """How each member's output is normalised before averaging: 'step' (per-step reward mean/std on
    the training episodes) or 'none'."""
    seed: int = 0
    """Seed of initialisation, bootstrap and batching."""

    def __post_init__(self) -> None:
        # Accept lists (from JSON) for tuple fields.
        self.cnn_channels = tuple(int(c) for c in self.cnn_channels)
        self.axes = tuple(str(a) for a in self.axes)
        self.kinematic_l2 = tuple(float(x) for x in self.kinematic_l2)
        if not (0.1 <= self.segment_seconds <= 30.0):
            raise ValueError(f"RewardConfig.segment_seconds must be in [0.1, 30], got {self.segment_seconds}")
        if self.max_steps < 2:
            raise ValueError(f"RewardConfig.max_steps must be >= 2, got {self.max_steps}")
        if not (8 <= self.image_size <= 256):
            raise ValueError(f"RewardConfig.image_size must be in [8, 256], got {self.image_size}")
        if self.num_objects < 0:
            raise ValueError(f"RewardConfig.num_objects must be >= 0, got {self.num_objects}")
        if not self.kinematic_l2 or any(not (x >= 0 and math.isfinite(x)) for x in self.kinematic_l2):
            raise ValueError(f"RewardConfig.kinematic_l2 must be finite numbers >= 0, got {self.kinematic_l2}")
        if not self.cnn_channels or any(c <= 0 for c in self.cnn_channels):
            raise ValueError(f"RewardConfig.cnn_channels must be positive ints, got {self.cnn_channels}")
        if self.keypoints < 0:
            raise ValueError(f"RewardConfig.keypoints must be >= 0, got {self.keypoints}")
        if self.d_model <= 0 or self.n_heads <= 0 or self.d_model % self.n_heads:
            raise ValueError(
                f"RewardConfig.n_heads ({self.n_heads}) must divide d_model ({self.d_model}), both > 0"
            )
        if self.n_layers < 1:
            raise ValueError(f"RewardConfig.n_layers must be >= 1, got {self.n_layers}")
        if self.attention_window < 0:
            raise ValueError(f"RewardConfig.attention_window must be >= 0, got {self.attention_window}")
        if not (0.0 <= self.dropout < 1.0):
            raise ValueError(f"RewardConfig.dropout must be in [0, 1), got {self.dropout}")
        if self.head_hidden <= 0:
            raise ValueError(f"RewardConfig.head_hidden must be > 0, got {self.head_hidden}")
        bad = [a for a in self.axes if a not in PREFERENCE_AXES]
        if bad or len(set(self.axes)) != len(self.axes):
            raise ValueError(
                f"RewardConfig.axes must be distinct names from {PREFERENCE_AXES}, got {self.axes}"
            )
        if not (0.0 <= self.label_noise < 1.0):
            raise ValueError(f"RewardConfig.label_noise must be in [0, 1), got {self.label_noise}")
        if self.axis_loss_weight < 0:
            raise ValueError(f"RewardConfig.axis_loss_weight must be >= 0, got {self.axis_loss_weight}")
        if self.epochs < 1:
            raise ValueError(f"RewardConfig.epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"RewardConfig.batch_size must be >= 1, got {self.batch_size}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"RewardConfig.lr must be a positive number, got {self.lr}")
        if self.weight_decay < 0:
            raise ValueError(f"RewardConfig.weight_decay must be >= 0, got {self.weight_decay}")
        if self.grad_clip < 0:
            raise ValueError(f"RewardConfig.grad_clip must be >= 0, got {self.grad_clip}")
        if not (0.0 <= self.val_fraction < 0.5):
            raise ValueError(f"RewardConfig.val_fraction must be in [0, 0.5), got {self.val_fraction}")
        if self.device not in DEVICE_CHOICES:
            raise ValueError(f"RewardConfig.device must be one of {DEVICE_CHOICES}, got {self.device!r}")
        if self.ensemble_size < 1:
            raise ValueError(f"RewardConfig.ensemble_size must be >= 1, got {self.ensemble_size}")
        if self.normalize not in ("step", "none"):
            raise ValueError(f"RewardConfig.normalize must be 'step' or 'none', got {self.normalize!r}")

    # ---------------------------------------------------------------- (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["cnn_channels"] = list(self.cnn_channels)
        d["axes"] = list(self.axes)
        d["kinematic_l2"] = list(self.kinematic_l2)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RewardConfig:
        """Build from a dict (e.g. config.json); unknown keys are an error that names them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"RewardConfig: unknown field(s) {unknown}")
        return cls(**d)
