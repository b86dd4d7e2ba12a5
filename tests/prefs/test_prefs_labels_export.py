"""Display/episode-order label mapping, the weighted aggregate, and triple export round trips."""

from __future__ import annotations

import json

import pytest

from rlhf.prefs.export import read_triples, write_triples
from rlhf.prefs.labels import aggregate_axes, display_to_label, label_to_display, prob_to_label
from rlhf.prefs.triples import LABEL_A, LABEL_B, LABEL_CANT_TELL, LABEL_EQUAL, PreferenceTriple


def test_display_mapping_follows_sides():
    assert display_to_label("left", a_on_left=True) == LABEL_A
    assert display_to_label("left", a_on_left=False) == LABEL_B
    assert display_to_label("right", a_on_left=False) == LABEL_A
    assert display_to_label("tie", True) == LABEL_EQUAL and display_to_label("cant_tell", False) == LABEL_CANT_TELL
    for label in (LABEL_A, LABEL_B, LABEL_EQUAL, LABEL_CANT_TELL):
        for side in (True, False):
            assert display_to_label(label_to_display(label, side), side) == label
    with pytest.raises(ValueError, match="unknown choice"):
        display_to_label("up", True)


def test_aggregate_axes():
    w = {"success": 2.0, "speed": 1.0, "safety": 1.0}
    assert aggregate_axes({"success": LABEL_A, "speed": LABEL_B, "safety": LABEL_EQUAL}, w) == (LABEL_A, 0.625)
    assert aggregate_axes({"success": LABEL_B, "speed": LABEL_A, "safety": LABEL_A}, w) == (LABEL_EQUAL, 0.5)
    assert aggregate_axes({"success": LABEL_CANT_TELL}, w) == (LABEL_CANT_TELL, None)
    assert aggregate_axes({"naturalness": LABEL_A}, w) == (LABEL_CANT_TELL, None)  # weight 0
    assert prob_to_label(None) == LABEL_CANT_TELL and prob_to_label(0.0) == LABEL_B


TRIPLES = [
    PreferenceTriple("p1", "reach the red cube", "e1", "e2", (0, 10), (5, 15), 1.0, "ann", "c",
                     {"success": LABEL_A, "speed": LABEL_EQUAL}),
    PreferenceTriple("p2", "reach the red cube", "e3", "e4", (0, 20), (0, 20), 0.5, "bob", "c", {}),
    PreferenceTriple("p3", "push it", "e5", "e6", (2, 4), (1, 3), 0.25, "teacher:b1", "c", {"safety": LABEL_B}),
]


@pytest.mark.parametrize("suffix", ["jsonl", "parquet"])
def test_export_round_trip(tmp_path, suffix):
    path = write_triples(TRIPLES, tmp_path / f"out.{suffix}")
    back = read_triples(path)
    assert [t.pair_id for t in back] == ["p1", "p2", "p3"]
    assert back[0].segment_b == (5, 15) and back[0].axes["speed"] == LABEL_EQUAL
    assert back[1].axes["success"] == LABEL_CANT_TELL  # missing axes export as can't tell
    assert back[2].prob_a == 0.25 and back[2].preferred == "e6"
    assert [t.preferred for t in back] == [t.preferred for t in TRIPLES]


def test_jsonl_rows_name_preferred_and_rejected(tmp_path):
    path = write_triples(TRIPLES, tmp_path / "out.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert (rows[0]["preferred"], rows[0]["rejected"]) == ("e1", "e2")
    assert rows[1]["preferred"] is None and rows[1]["rejected"] is None  # tie
    assert (rows[2]["preferred"], rows[2]["rejected"]) == ("e6", "e5")
    assert rows[2]["annotator_id"] == "teacher:b1" and rows[2]["campaign_id"] == "c"


def test_export_errors(tmp_path):
    with pytest.raises(ValueError, match="export format"):
        write_triples(TRIPLES, tmp_path / "out.csv")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"pair_id": "x"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        read_triples(bad)
