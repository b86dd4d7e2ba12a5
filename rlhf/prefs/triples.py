"""Preference triples: the unit the reward model and DPO learn from, and what `rlhf prefs export` writes."""

from __future__ import annotations

from dataclasses import dataclass, field

# Per-axis and aggregate labels; the same numbers as rlhf_msgs/PreferenceLabel.
LABEL_A = 1
LABEL_B = 2
LABEL_EQUAL = 3
LABEL_CANT_TELL = 4


@dataclass(frozen=True)
class PreferenceTriple:
    """One labelled comparison of two episode segments.

    `segment_a`/`segment_b` are control-step ranges [start, stop) into the episodes' trajectories.
    `prob_a` is the target probability that A is preferred: 1.0 (A), 0.0 (B), 0.5 (tie).
    """

    pair_id: str
    instruction: str
    episode_a: str
    episode_b: str
    segment_a: tuple[int, int]
    segment_b: tuple[int, int]
    prob_a: float
    annotator_id: str = ""
    campaign_id: str = ""
    axes: dict[str, int] = field(default_factory=dict)  # axis name -> LABEL_*

    def __post_init__(self) -> None:
        if not 0.0 <= self.prob_a <= 1.0:
            raise ValueError(f"pair {self.pair_id!r}: prob_a must be in [0, 1], got {self.prob_a}")
        for name, seg in (("segment_a", self.segment_a), ("segment_b", self.segment_b)):
            if len(seg) != 2 or seg[0] < 0 or seg[1] <= seg[0]:
                raise ValueError(f"pair {self.pair_id!r}: {name} must be [start, stop) with 0 <= start < stop, got {seg}")

    @property
    def preferred(self) -> str | None:
        """Episode id of the preferred side, or None for a tie."""
        if self.prob_a > 0.5:
            return self.episode_a
        if self.prob_a < 0.5:
            return self.episode_b
        return None
