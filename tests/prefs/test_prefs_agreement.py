"""Agreement statistics against values computed by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import pytest

from rlhf.prefs import agreement as ag

A, B, E = 1, 2, 3


def test_accuracy_ignores_unanswered():
    # answered: (A,A) ok, (B,A) wrong, (A,A) ok -> 2/3
    assert ag.accuracy([A, B, None, A], [A, A, B, A]) == pytest.approx(2 / 3)
    assert math.isnan(ag.accuracy([None], [A]))
    with pytest.raises(ValueError, match="differ in length"):
        ag.accuracy([A], [A, B])


def test_self_consistency():
    # usable pairs: (A,A) same, (B,A) differ, (E,E) same -> 2/3
    assert ag.self_consistency([A, B, None, E], [A, A, B, E]) == pytest.approx(2 / 3)


def test_cohen_kappa_hand_computed():
    x = [A, A, B, B, A, E, None, B]
    y = [A, B, B, B, A, A, A, None]
    # 6 usable items, 4 agree: p_o = 4/6. Marginals x: A3 B2 E1, y: A3 B3 E0.
    # p_e = (3*3 + 2*3 + 1*0) / 36 = 15/36; kappa = (24/36 - 15/36) / (21/36) = 9/21 = 3/7.
    assert ag.cohen_kappa(x, y) == pytest.approx(3 / 7)
    assert ag.cohen_kappa([A, B, A], [A, B, A]) == pytest.approx(1.0)
    # Systematic disagreement is below chance.
    assert ag.cohen_kappa([A, B, A, B], [B, A, B, A]) == pytest.approx(-1.0)
    # Both raters always say A: chance agreement is 1, kappa undefined.
    assert math.isnan(ag.cohen_kappa([A, A], [A, A]))


def test_fleiss_kappa_hand_computed():
    # 4 items, 3 raters, categories (A, B, E):
    #   [3,0,0] P=1; [2,1,0] P=(4+1-3)/6=1/3; [0,3,0] P=1; [1,1,1] P=0 -> P_bar = 7/12
    #   p = (6, 5, 1)/12 -> P_e = (36 + 25 + 1)/144 = 31/72; kappa = (7/12 - 31/72)/(41/72) = 11/41
    counts = [[3, 0, 0], [2, 1, 0], [0, 3, 0], [1, 1, 1]]
    assert ag.fleiss_kappa(counts) == pytest.approx(11 / 41)
    # Items with a single rating carry no agreement information and are dropped.
    assert ag.fleiss_kappa(counts + [[1, 0, 0]]) == pytest.approx(11 / 41)
    units = [[A, A, A], [A, A, B], [B, B, B], [A, B, E]]
    cats, c = ag.category_counts(units)
    assert cats == [A, B, E] and c == counts
    assert math.isnan(ag.fleiss_kappa([]))


def test_krippendorff_alpha_nominal_hand_computed():
    units = [[A, A, A], [A, A, B], [B, B, B], [A, B, E], [A, None], [B, B]]
    # Coincidences (ordered pairs / (m_u - 1)): o_AA = 3 + 1 = 4, o_AB = o_BA = 1 + 0.5, o_BB = 3 + 2 = 5,
    # o_AE = o_EA = o_BE = o_EB = 0.5 ([A, None] is unpairable). n_A = 6, n_B = 7, n_E = 1, n = 14.
    # D_o = 5/14; D_e = (196 - 36 - 49 - 1) / (14 * 13) = 110/182; alpha = 1 - (5/14)/(110/182) = 9/22.
    assert ag.krippendorff_alpha_nominal(units) == pytest.approx(9 / 22)
    assert ag.krippendorff_alpha_nominal([[A, A], [B, B, None], [E, E]]) == pytest.approx(1.0)
    assert math.isnan(ag.krippendorff_alpha_nominal([[A], [B, None]]))


def test_krippendorff_matches_known_two_rater_identity():
    # With two raters and no missing values, alpha = 1 - (n - 1) * (disagreements) / (expected disagreements):
    # x = [A, A, B, B], y = [A, B, B, B]: values A3 B5, n = 8, one disagreeing unit -> o_AB + o_BA = 2,
    # D_o = 2/8, D_e = (64 - 9 - 25) / 56 = 30/56 -> alpha = 1 - (1/4)/(30/56) = 1 - 56/120 = 8/15.
    units = [[A, A], [A, B], [B, B], [B, B]]
    assert ag.krippendorff_alpha_nominal(units) == pytest.approx(8 / 15)


def test_pairwise_cohen_and_units():
    ratings = {
        "ann": {"p1": A, "p2": B, "p3": A},
        "bob": {"p1": A, "p2": B, "p3": B, "p4": A},
        "cat": {"p4": A},
    }
    pw = ag.pairwise_cohen(ratings)
    # ann vs bob over p1-p3: p_o = 2/3; marginals ann A2 B1, bob A1 B2 -> p_e = (2 + 2)/9 = 4/9;
    # kappa = (6/9 - 4/9) / (5/9) = 2/5.
    assert pw[("ann", "bob")] == pytest.approx(2 / 5)
    assert math.isnan(pw[("ann", "cat")])  # nothing in common
    units = ag.units_from_ratings(ratings)
    assert sorted(map(len, units)) == [2, 2, 2, 2]
