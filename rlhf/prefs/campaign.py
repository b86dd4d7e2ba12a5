"""A campaign's configuration: axis weights, the calibration phase and the quality-control mix."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from rlhf.constants import PREFERENCE_AXES

PAIR_KINDS: tuple[str, ...] = ("calibration", "gold", "repeat", "work")
"""calibration: known answer, feedback shown, qualifies an annotator; gold: known answer, hidden among
work; repeat: a work pair shown again to the same annotator (self-consistency); work: the pairs we want."""


def _default_weights() -> dict[str, float]:
    return {axis: 1.0 for axis in PREFERENCE_AXES}


@dataclass
class CampaignConfig:
    """How one annotation campaign runs. Stored as JSON in the `campaigns` table."""

    campaign_id: str
    """Unique id, e.g. 'pick-v1'. Letters, digits, '-', '_', '.' and ':' only."""
    name: str = ""
    """Human-readable title shown on the page and the dashboard."""
    axis_weights: dict[str, float] = field(default_factory=_default_weights)
    """Weight of each axis (success, speed, smoothness, safety, naturalness) in the aggregate label."""
    calibration_size: int = 50
    """Calibration pairs every annotator labels first (the issue asks for 50-100; 0 disables calibration)."""
    qualification_threshold: float = 0.7
    """Calibration accuracy in [0, 1] an annotator needs before they see work pairs."""
    gold_rate: float = 0.1
    """Probability in [0, 1) that a qualified annotator's next item is a hidden gold pair."""
    repeat_rate: float = 0.05
    """Probability in [0, 1) that the next item repeats a work pair the annotator already labelled."""
    labels_per_pair: int = 1
    """Distinct annotators who label each work pair (>= 2 gives agreement statistics on work pairs)."""
    lock_seconds: float = 600.0
    """How long an item handed to an annotator stays reserved for them before it may go to another."""

    def __post_init__(self) -> None:
        if not self.campaign_id or not all(c.isalnum() or c in "-_.:" for c in self.campaign_id):
            raise ValueError(f"CampaignConfig.campaign_id must be non-empty [A-Za-z0-9-_.:], got {self.campaign_id!r}")
        unknown = set(self.axis_weights) - set(PREFERENCE_AXES)
        if unknown:
            raise ValueError(f"CampaignConfig.axis_weights has unknown axes {sorted(unknown)}; axes are {PREFERENCE_AXES}")
        self.axis_weights = {axis: float(self.axis_weights.get(axis, 0.0)) for axis in PREFERENCE_AXES}
        bad = {a: w for a, w in self.axis_weights.items() if not (math.isfinite(w) and w >= 0)}
        if bad:
            raise ValueError(f"CampaignConfig.axis_weights must be finite and >= 0, got {bad}")
        if sum(self.axis_weights.values()) <= 0:
            raise ValueError("CampaignConfig.axis_weights must have at least one positive weight")
        if not (0 <= self.calibration_size <= 1000):
            raise ValueError(f"CampaignConfig.calibration_size must be in [0, 1000], got {self.calibration_size}")
        if not (0.0 <= self.qualification_threshold <= 1.0):
            raise ValueError(
                f"CampaignConfig.qualification_threshold must be in [0, 1], got {self.qualification_threshold}"
            )
        for name in ("gold_rate", "repeat_rate"):
            v = getattr(self, name)
            if not (0.0 <= v < 1.0):
                raise ValueError(f"CampaignConfig.{name} must be in [0, 1), got {v}")
        if self.gold_rate + self.repeat_rate >= 1.0:
            raise ValueError(
                f"CampaignConfig.gold_rate + repeat_rate must be < 1, got {self.gold_rate} + {self.repeat_rate}"
            )
        if self.labels_per_pair < 1:
            raise ValueError(f"CampaignConfig.labels_per_pair must be >= 1, got {self.labels_per_pair}")
        if not (self.lock_seconds > 0):
            raise ValueError(f"CampaignConfig.lock_seconds must be > 0, got {self.lock_seconds}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CampaignConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"campaign config has unknown fields {sorted(unknown)}")
        return cls(**data)
