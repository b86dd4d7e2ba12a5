"""Annotator agreement statistics as pure functions over plain Python data.

Categories are any hashable values (we use the LABEL_* numbers); `None` means "no usable answer"
(not rated, or can't tell) and is left out. Undefined statistics (no data, or no variation at all so
chance agreement is 1) come back as NaN rather than a made-up number.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from itertools import combinations

NAN = float("nan")


def accuracy(answers: Sequence[Hashable | None], truth: Sequence[Hashable]) -> float:
    """Fraction of answered items (answer not None) equal to the truth; NaN if none was answered."""
    if len(answers) != len(truth):
        raise ValueError(f"answers ({len(answers)}) and truth ({len(truth)}) differ in length")
    scored = [(a, t) for a, t in zip(answers, truth, strict=True) if a is not None]
    if not scored:
        return NAN
    return sum(a == t for a, t in scored) / len(scored)


def self_consistency(first: Sequence[Hashable | None], second: Sequence[Hashable | None]) -> float:
    """Fraction of repeated items answered the same both times (pairs with a None left out)."""
    if len(first) != len(second):
        raise ValueError(f"first ({len(first)}) and second ({len(second)}) differ in length")
    both = [(a, b) for a, b in zip(first, second, strict=True) if a is not None and b is not None]
    if not both:
        return NAN
    return sum(a == b for a, b in both) / len(both)


def cohen_kappa(x: Sequence[Hashable | None], y: Sequence[Hashable | None]) -> float:
    """Cohen's kappa of two raters over the same items: (p_o - p_e) / (1 - p_e).

    p_o is observed agreement over items both rated; p_e = sum_k p_x(k) p_y(k) from each rater's own
    marginals over those items.
    """
    if len(x) != len(y):
        raise ValueError(f"x ({len(x)}) and y ({len(y)}) differ in length")
    both = [(a, b) for a, b in zip(x, y, strict=True) if a is not None and b is not None]
    n = len(both)
    if n == 0:
        return NAN
    p_o = sum(a == b for a, b in both) / n
    cx = Counter(a for a, _ in both)
    cy = Counter(b for _, b in both)
    p_e = sum(cx[k] * cy[k] for k in cx) / (n * n)
    if math.isclose(p_e, 1.0):
        return NAN
    return (p_o - p_e) / (1.0 - p_e)


def category_counts(units: Sequence[Sequence[Hashable | None]]) -> tuple[list[Hashable], list[list[int]]]:
    """Turn per-unit ratings into (categories, counts[unit][category]) for `fleiss_kappa`."""
    cats = sorted({v for unit in units for v in unit if v is not None}, key=repr)
    index = {c: i for i, c in enumerate(cats)}
    counts = []
    for unit in units:
        row = [0] * len(cats)
        for v in unit:
            if v is not None:
                row[index[v]] += 1
        counts.append(row)
    return cats, counts


def fleiss_kappa(counts: Sequence[Sequence[int]]) -> float:
    """Fleiss' kappa from counts[i][k] = raters who put item i in category k.

    Items with fewer than 2 ratings are dropped. Items may have different numbers of raters: each
    item's agreement P_i = (sum_k n_ik^2 - n_i) / (n_i (n_i - 1)), P_bar their mean, and
    p_k = sum_i n_ik / sum_i n_i; kappa = (P_bar - P_e) / (1 - P_e) with P_e = sum_k p_k^2. With the
    same number of raters on every item this is Fleiss' original statistic.
    """
    rows = [list(r) for r in counts if sum(r) >= 2]
    if not rows:
        return NAN
    if any(v < 0 for r in rows for v in r):
        raise ValueError("counts must be >= 0")
    p_items = []
    for r in rows:
        n_i = sum(r)
        p_items.append((sum(v * v for v in r) - n_i) / (n_i * (n_i - 1)))
    p_bar = sum(p_items) / len(p_items)
    total = sum(sum(r) for r in rows)
    k = len(rows[0])
    p_k = [sum(r[j] for r in rows) / total for j in range(k)]
    p_e = sum(p * p for p in p_k)
    if math.isclose(p_e, 1.0):
        return NAN
    return (p_bar - p_e) / (1.0 - p_e)


def krippendorff_alpha_nominal(units: Sequence[Sequence[Hashable | None]]) -> float:
    """Krippendorff's alpha for nominal data: 1 - D_o / D_e.

    `units[u]` holds the values the raters gave unit u (missing ones as None or simply absent). Units
    with fewer than two values are not pairable and are dropped. With m_u values in unit u, the
    coincidence count o_ck = sum_u (ordered pairs of values c, k within u) / (m_u - 1); n_c = sum_k o_ck,
    n = sum_c n_c; D_o = sum_{c != k} o_ck / n and D_e = sum_{c != k} n_c n_k / (n (n - 1)).
    """
    pairable = [[v for v in unit if v is not None] for unit in units]
    pairable = [u for u in pairable if len(u) >= 2]
    if not pairable:
        return NAN
    disagree = 0.0  # sum over c != k of o_ck
    n_c: Counter = Counter()
    for values in pairable:
        m = len(values)
        counts = Counter(values)
        for c, cnt in counts.items():
            n_c[c] += cnt  # each value appears in (m - 1) ordered pairs, weighted by 1 / (m - 1)
        same_pairs = sum(cnt * (cnt - 1) for cnt in counts.values())
        disagree += (m * (m - 1) - same_pairs) / (m - 1)
    n = sum(n_c.values())
    expected = (n * n - sum(v * v for v in n_c.values())) / (n * (n - 1))
    if expected == 0:
        return NAN
    return 1.0 - (disagree / n) / expected


def pairwise_cohen(ratings: Mapping[str, Mapping[Hashable, Hashable | None]]) -> dict[tuple[str, str], float]:
    """Cohen's kappa for every pair of raters over the items both rated.

    `ratings[rater][item]` is that rater's category for the item (None: no usable answer).
    """
    out: dict[tuple[str, str], float] = {}
    for r1, r2 in combinations(sorted(ratings), 2):
        common = sorted(set(ratings[r1]) & set(ratings[r2]), key=repr)
        out[(r1, r2)] = cohen_kappa([ratings[r1][i] for i in common], [ratings[r2][i] for i in common])
    return out


def units_from_ratings(ratings: Mapping[str, Mapping[Hashable, Hashable | None]]) -> list[list[Hashable | None]]:
    """Regroup rater -> item -> value into a list of per-item value lists (for Fleiss and Krippendorff)."""
    items: dict[Hashable, list[Hashable | None]] = {}
    for per_item in ratings.values():
        for item, value in per_item.items():
            items.setdefault(item, []).append(value)
    return [items[i] for i in sorted(items, key=repr)]
