"""Campaign statistics for the dashboard: per-annotator quality and per-axis agreement.

Reads labels from the store and calls the pure functions in `rlhf.prefs.agreement`. NaN values (a
statistic without enough data) are returned as None so the result is plain JSON.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from typing import Any

from rlhf.constants import PREFERENCE_AXES
from rlhf.prefs import agreement
from rlhf.prefs.store import LabelRecord, PreferenceStore
from rlhf.prefs.triples import LABEL_CANT_TELL

OVERALL = "overall"
AGREEMENT_KINDS: tuple[str, ...] = ("calibration", "gold", "work")
"""Pair kinds whose labels enter inter-annotator agreement (repeats would count one person twice)."""


def _clean(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _usable(label: int | None) -> int | None:
    return None if label is None or label == LABEL_CANT_TELL else int(label)


def _value(lab: LabelRecord, axis: str) -> int | None:
    return _usable(lab.label if axis == OVERALL else lab.axes.get(axis))


def campaign_stats(store: PreferenceStore, campaign_id: str) -> dict[str, Any]:
    """Everything the dashboard shows, as JSON-ready data.

    Returns {'campaign', 'counts', 'annotators': {id: {...}}, 'axes': {axis: {'fleiss_kappa',
    'krippendorff_alpha', 'items'}}, 'pairwise_kappa': [{'a', 'b', 'kappa', 'items'}]}. 'axes' has one
    entry per preference axis plus 'overall' (the aggregate label).
    """
    cfg = store.campaign(campaign_id)
    labels = store.labels(campaign_id)
    by_annotator: dict[str, list[LabelRecord]] = defaultdict(list)
    for lab in labels:
        by_annotator[lab.annotator_id].append(lab)
    pairs = {p.pair_id: p for p in store.pairs(campaign_id)}

    # Ratings per axis: rater -> pair -> value, over pairs that can be compared across annotators.
    ratings: dict[str, dict[str, dict[str, int | None]]] = {a: defaultdict(dict) for a in (*PREFERENCE_AXES, OVERALL)}
    for lab in labels:
        if lab.kind in AGREEMENT_KINDS:
            for axis in ratings:
                ratings[axis][lab.annotator_id][lab.pair_id] = _value(lab, axis)

    pairwise = agreement.pairwise_cohen(ratings[OVERALL])
    pairwise_rows = []
    mean_kappa: dict[str, list[float]] = defaultdict(list)
    for (a, b), k in pairwise.items():
        common = len(set(ratings[OVERALL][a]) & set(ratings[OVERALL][b]))
        pairwise_rows.append({"a": a, "b": b, "kappa": _clean(k), "items": common})
        if not math.isnan(k):
            mean_kappa[a].append(k)
            mean_kappa[b].append(k)

    annotators: dict[str, dict[str, Any]] = {}
    for ann, labs in sorted(by_annotator.items()):
        gold = [lab for lab in labs if lab.kind == "gold"]
        gold_known = [pairs[lab.pair_id].known_label for lab in gold]
        gold_answers = [_usable(lab.label) for lab in gold]
        calib = [lab for lab in labs if lab.kind == "calibration"]
        first: dict[str, int | None] = {lab.pair_id: _usable(lab.label) for lab in labs if lab.kind == "work"}
        repeats = [lab for lab in labs if lab.kind == "repeat" and lab.repeat_of in first]
        times = [lab.answered_at - lab.shown_at for lab in labs]
        enrol = store.enrolment(campaign_id, ann)
        per_axis_gold = {}
        for axis in PREFERENCE_AXES:
            answers, truth = [], []
            for lab in gold:
                known_axes = pairs[lab.pair_id].known_axes or {}
                if axis in known_axes:
                    answers.append(_usable(lab.axes.get(axis)))
                    truth.append(known_axes[axis])
            per_axis_gold[axis] = _clean(agreement.accuracy(answers, truth)) if truth else None
        annotators[ann] = {
            "labels": len(labs),
            "work_labels": sum(lab.kind == "work" for lab in labs),
            "gold_labels": len(gold),
            "gold_accuracy": _clean(agreement.accuracy(gold_answers, gold_known)) if gold else None,
            "gold_kappa": _clean(agreement.cohen_kappa(gold_answers, gold_known)) if gold else None,
            "gold_axis_accuracy": per_axis_gold,
            "calibration_labels": len(calib),
            "calibration_accuracy": enrol["calibration_accuracy"],
            "qualified": enrol["qualified"],
            "repeats": len(repeats),
            "self_consistency": _clean(
                agreement.self_consistency([first[lab.repeat_of] for lab in repeats], [_usable(lab.label) for lab in repeats])
            )
            if repeats
            else None,
            "mean_pairwise_kappa": statistics.fmean(mean_kappa[ann]) if mean_kappa.get(ann) else None,
            "cant_tell_rate": sum(lab.label == LABEL_CANT_TELL for lab in labs) / len(labs),
            "median_seconds": statistics.median(times) if times else None,
            "median_client_seconds": statistics.median([lab.client_ms / 1000 for lab in labs if lab.client_ms is not None])
            if any(lab.client_ms is not None for lab in labs)
            else None,
        }

    axes_out = {}
    for axis, per_rater in ratings.items():
        units = agreement.units_from_ratings(per_rater)
        _, counts = agreement.category_counts(units)
        axes_out[axis] = {
            "fleiss_kappa": _clean(agreement.fleiss_kappa(counts)) if counts and counts[0] else None,
            "krippendorff_alpha": _clean(agreement.krippendorff_alpha_nominal(units)),
            "items": sum(1 for u in units if sum(v is not None for v in u) >= 2),
        }
    return {
        "campaign": cfg.to_dict(),
        "counts": store.counts(campaign_id),
        "annotators": annotators,
        "axes": axes_out,
        "pairwise_kappa": pairwise_rows,
    }
