"""Label values, their names on the wire, and the weighted aggregate of per-axis labels.

Labels are stored in *episode order* (A = the pair's episode_a), whatever side it was shown on.
The page and the teacher speak in *display order* (left / right); `to_episode_order` maps back using
the pair's recorded `a_on_left`.
"""

from __future__ import annotations

from collections.abc import Mapping

from rlhf.prefs.triples import LABEL_A, LABEL_B, LABEL_CANT_TELL, LABEL_EQUAL

LABEL_NAMES: dict[int, str] = {LABEL_A: "A", LABEL_B: "B", LABEL_EQUAL: "equal", LABEL_CANT_TELL: "cant_tell"}
DISPLAY_CHOICES: tuple[str, ...] = ("left", "right", "equal", "cant_tell")
"""What a client posts per axis: the left video better, the right one, equal, or can't tell."""
OVERALL_CHOICES: tuple[str, ...] = ("left", "right", "tie", "cant_tell")
"""An explicit overall answer, which overrides the weighted aggregate of the axes."""


def display_to_label(choice: str, a_on_left: bool) -> int:
    """Map a display-order choice ('left', 'right', 'equal'/'tie', 'cant_tell') to a LABEL_* in episode order."""
    if choice in ("equal", "tie"):
        return LABEL_EQUAL
    if choice == "cant_tell":
        return LABEL_CANT_TELL
    if choice == "left":
        return LABEL_A if a_on_left else LABEL_B
    if choice == "right":
        return LABEL_B if a_on_left else LABEL_A
    raise ValueError(f"unknown choice {choice!r}; expected one of {DISPLAY_CHOICES + ('tie',)}")


def label_to_display(label: int, a_on_left: bool) -> str:
    """Inverse of `display_to_label` (ties come back as 'equal')."""
    if label == LABEL_EQUAL:
        return "equal"
    if label == LABEL_CANT_TELL:
        return "cant_tell"
    if label == LABEL_A:
        return "left" if a_on_left else "right"
    if label == LABEL_B:
        return "right" if a_on_left else "left"
    raise ValueError(f"unknown label {label!r}")


def aggregate_axes(axes: Mapping[str, int], weights: Mapping[str, float]) -> tuple[int, float | None]:
    """Weighted aggregate of per-axis labels -> (LABEL_*, prob_a).

    Each answered axis votes +w (A), -w (B) or 0 (equal); can't-tell axes and axes with weight 0 do
    not vote. prob_a = (sum(votes) / sum(weights of voting axes) + 1) / 2, so unanimous A gives 1.0,
    unanimous B 0.0, a balance 0.5. With no voting axis the answer is can't-tell (prob_a None).
    """
    total_w = 0.0
    score = 0.0
    for axis, label in axes.items():
        w = float(weights.get(axis, 0.0))
        if w <= 0 or label == LABEL_CANT_TELL:
            continue
        if label not in (LABEL_A, LABEL_B, LABEL_EQUAL):
            raise ValueError(f"axis {axis!r}: unknown label {label!r}")
        total_w += w
        score += w if label == LABEL_A else -w if label == LABEL_B else 0.0
    if total_w == 0:
        return LABEL_CANT_TELL, None
    prob_a = (score / total_w + 1.0) / 2.0
    if abs(prob_a - 0.5) < 1e-12:
        return LABEL_EQUAL, 0.5
    return (LABEL_A if prob_a > 0.5 else LABEL_B), prob_a


def label_to_prob(label: int) -> float | None:
    """The target P(A preferred) of a hard label: 1 (A), 0 (B), 0.5 (equal), None (can't tell)."""
    return {LABEL_A: 1.0, LABEL_B: 0.0, LABEL_EQUAL: 0.5}.get(label)


def prob_to_label(prob_a: float | None) -> int:
    """A teacher's B-Pref answer (1.0 / 0.0 / 0.5 / None) as a LABEL_*."""
    if prob_a is None:
        return LABEL_CANT_TELL
    if prob_a > 0.5:
        return LABEL_A
    if prob_a < 0.5:
        return LABEL_B
    return LABEL_EQUAL
