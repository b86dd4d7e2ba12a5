"""Request bodies of the annotation API, validated by pydantic (unknown fields are rejected)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rlhf.constants import PREFERENCE_AXES

AxisName = Literal["success", "speed", "smoothness", "safety", "naturalness"]
assert set(AxisName.__args__) == set(PREFERENCE_AXES)  # type: ignore[attr-defined]
Choice = Literal["left", "right", "equal", "cant_tell"]
Overall = Literal["left", "right", "tie", "cant_tell"]
IdStr = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:\-]+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MarkIn(_Strict):
    t: float = Field(ge=0, le=1e5, description="seconds from the segments' start (shared clock)")
    note: str = Field(default="", max_length=500)


class LabelIn(_Strict):
    item_id: str = Field(min_length=1, max_length=64)
    axes: dict[AxisName, Choice] = Field(default_factory=dict, description="per axis, in display order")
    overall: Overall | None = Field(default=None, description="overrides the weighted aggregate of the axes")
    prob_left: float | None = Field(default=None, ge=0, le=1, description="soft P(left preferred) with overall")
    marks: list[MarkIn] = Field(default_factory=list, max_length=100)
    client_ms: float | None = Field(default=None, ge=0, le=86_400_000, description="time to answer seen by the page")


class AnnotatorIn(_Strict):
    annotator_id: str = IdStr
    role: Literal["annotator", "teacher", "admin"] = "annotator"
    rotate: bool = False


class CampaignIn(_Strict):
    campaign_id: str = IdStr
    name: str = Field(default="", max_length=200)
    axis_weights: dict[AxisName, float] | None = None
    calibration_size: int = Field(default=50, ge=0, le=1000)
    qualification_threshold: float = Field(default=0.7, ge=0, le=1)
    gold_rate: float = Field(default=0.1, ge=0, lt=1)
    repeat_rate: float = Field(default=0.05, ge=0, lt=1)
    labels_per_pair: int = Field(default=1, ge=1, le=100)
    lock_seconds: float = Field(default=600.0, gt=0, le=7 * 86400)


class EpisodeIn(_Strict):
    episode_id: str = IdStr
    task: str = Field(max_length=200)
    instruction: str = Field(max_length=1000)
    video_url: str | None = Field(default=None, max_length=2000)
    video_path: str | None = Field(default=None, max_length=4000)
    num_steps: int = Field(ge=1, le=10_000_000)
    fps: float = Field(gt=0, le=1000)
    gold_axes: dict[AxisName, float] | None = None
    wrist_video_url: str | None = Field(default=None, max_length=2000, description="wrist camera, same clock")
    wrist_video_path: str | None = Field(default=None, max_length=4000)


class EpisodesIn(_Strict):
    episodes: list[EpisodeIn] = Field(min_length=1, max_length=100_000)
    replace: bool = False


class PairIn(_Strict):
    episode_a: str = IdStr
    episode_b: str = IdStr
    segment_a: tuple[int, int] | None = None
    segment_b: tuple[int, int] | None = None
    kind: Literal["calibration", "gold", "work"] = "work"
    known_label: int | None = Field(default=None, ge=1, le=3)
    known_axes: dict[AxisName, int] | None = None


class PairsIn(_Strict):
    """Either explicit `pairs`, or `n` pairs sampled uniformly (known answers from gold for calibration/gold)."""

    pairs: list[PairIn] | None = Field(default=None, max_length=100_000)
    n: int | None = Field(default=None, ge=1, le=100_000)
    kind: Literal["calibration", "gold", "work"] = "work"
    task: str | None = None
    segment_steps: int | None = Field(default=None, ge=1)
    same_start: bool = False
    seed: int | None = None
