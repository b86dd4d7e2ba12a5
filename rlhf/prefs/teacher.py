"""The scripted teacher: labels pairs from gold numbers with B-Pref noise, through the annotators' HTTP API.

It asks the server for its next item and posts its answer exactly as the page does, so its labels go
through the same locking, calibration and storage as a human's. Each noise configuration is its own
annotator (`TeacherConfig.name`).

Gold inputs are plain arrays or callables, so the teacher needs no simulator:
  step_rewards(episode_id) -> (T,) gold per-step rewards (higher is better) -> the aggregate label;
  axis_scores(episode_id) -> {axis: score} gold per-axis scores (higher is better) -> the axis labels.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from rlhf.constants import PREFERENCE_AXES
from rlhf.prefs.teacher_model import TeacherConfig, label_pair

StepRewards = Mapping[str, np.ndarray] | Callable[[str], np.ndarray]
AxisScores = Mapping[str, Mapping[str, float]] | Callable[[str], Mapping[str, float]]

_OVERALL = {1.0: "left", 0.0: "right", 0.5: "tie", None: "cant_tell"}
_AXIS = {1.0: "left", 0.0: "right", 0.5: "equal", None: "cant_tell"}


@dataclass(frozen=True)
class TeacherRunConfig:
    """How long a teacher keeps asking for items."""

    campaign_id: str
    """Campaign to label."""
    max_items: int | None = None
    """Stop after this many labels (None: until the server says done)."""
    wait_seconds: float = 0.5
    """Pause before asking again when every remaining item is locked by someone else."""
    max_wait_seconds: float = 30.0
    """Give up after waiting this long in total without getting an item."""
    seed: int = 0
    """Seed of the noise draws (mistakes, Bradley-Terry sampling)."""

    def __post_init__(self) -> None:
        if self.max_items is not None and self.max_items < 0:
            raise ValueError(f"TeacherRunConfig.max_items must be >= 0 or None, got {self.max_items}")
        if self.wait_seconds < 0 or self.max_wait_seconds < 0:
            raise ValueError("TeacherRunConfig.wait_seconds and max_wait_seconds must be >= 0")


@dataclass
class TeacherReport:
    annotator_id: str
    labels: int = 0
    cant_tell: int = 0
    calibration_correct: int = 0
    calibration_seen: int = 0
    final_status: str = ""
    statuses: dict[str, int] = field(default_factory=dict)


def _lookup(source: Any, episode_id: str) -> Any:
    if callable(source):
        return source(episode_id)
    if episode_id not in source:
        raise KeyError(f"no gold values for episode {episode_id!r}")
    return source[episode_id]


class ScriptedTeacher:
    """Labels items of one campaign from gold numbers, posting through `client` (an httpx.Client whose
    base_url is the server and whose headers carry this teacher's Bearer token)."""

    def __init__(
        self,
        config: TeacherConfig,
        client: httpx.Client,
        step_rewards: StepRewards,
        axis_scores: AxisScores | None = None,
    ) -> None:
        self.config = config
        self.client = client
        self.step_rewards = step_rewards
        self.axis_scores = axis_scores

    @property
    def annotator_id(self) -> str:
        return self.config.name

    @staticmethod
    def register(admin_client: httpx.Client, config: TeacherConfig) -> str:
        """Create (or re-key) the teacher's annotator through the admin API; returns its token."""
        r = admin_client.post("/api/admin/annotators", json={"annotator_id": config.name, "role": "teacher", "rotate": True})
        _raise_for(r)
        return r.json()["token"]

    def answer(self, item: Mapping[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        """The label body for one item (display order: left / right), from gold numbers and the noise model."""
        segs = {}
        for side in ("left", "right"):
            s = item[side]
            rewards = np.asarray(_lookup(self.step_rewards, s["episode_id"]), dtype=np.float64)
            if rewards.ndim != 1 or len(rewards) < s["stop_step"]:
                raise ValueError(
                    f"gold step rewards of {s['episode_id']!r} have shape {rewards.shape}; the segment needs "
                    f"{s['stop_step']} steps"
                )
            segs[side] = rewards[s["start_step"] : s["stop_step"]]
        overall = label_pair(segs["left"], segs["right"], self.config, rng)
        axes: dict[str, str] = {}
        if self.axis_scores is not None:
            left = _lookup(self.axis_scores, item["left"]["episode_id"])
            right = _lookup(self.axis_scores, item["right"]["episode_id"])
            for axis in PREFERENCE_AXES:
                if axis in left and axis in right:
                    p = label_pair(np.array([left[axis]]), np.array([right[axis]]), self.config, rng)
                    axes[axis] = _AXIS[p]
        return {"item_id": item["item_id"], "axes": axes, "overall": _OVERALL[overall]}

    def run(self, run: TeacherRunConfig, *, progress: bool = True) -> TeacherReport:
        """Ask for items and answer them until the server has nothing more (or max_items)."""
        from tqdm import tqdm

        rng = np.random.default_rng(run.seed)
        report = TeacherReport(self.annotator_id)
        waited = 0.0
        bar = tqdm(total=run.max_items, desc=self.annotator_id, unit="label", disable=not progress, leave=False)
        try:
            while run.max_items is None or report.labels < run.max_items:
                r = self.client.get(f"/api/campaigns/{run.campaign_id}/next")
                _raise_for(r)
                nxt = r.json()
                status = nxt["status"]
                report.statuses[status] = report.statuses.get(status, 0) + 1
                report.final_status = status
                if status == "wait":
                    if waited >= run.max_wait_seconds:
                        break
                    time.sleep(run.wait_seconds)
                    waited += run.wait_seconds
                    continue
                if status != "item":
                    break
                waited = 0.0
                body = self.answer(nxt["item"], rng)
                t0 = time.perf_counter()
                r = self.client.post(f"/api/campaigns/{run.campaign_id}/labels", json=body | {"client_ms": 0.0})
                _raise_for(r)
                out = r.json()
                report.labels += 1
                report.cant_tell += body["overall"] == "cant_tell"
                if "feedback" in out:
                    report.calibration_seen += 1
                    report.calibration_correct += bool(out["feedback"]["correct"])
                bar.update(1)
                bar.set_postfix(post_ms=f"{1000 * (time.perf_counter() - t0):.1f}")
        finally:
            bar.close()
        return report


def _raise_for(r: httpx.Response) -> None:
    if r.status_code >= 400:
        try:
            detail = r.json().get("detail")
        except ValueError:
            detail = r.text
        raise RuntimeError(f"{r.request.method} {r.request.url.path} -> {r.status_code}: {detail}")
