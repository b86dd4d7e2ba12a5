"""The annotation page in real headless Chromium (Debian's, driven by Playwright).

Needs /usr/bin/chromium (installed by the project's set-up: `bash scripts/install_browser.sh`).
"""

from __future__ import annotations

import dataclasses
import os
import time

import pytest
from annotate_helpers import episodes_for

from rlhf.annotate.background import BackgroundServer
from rlhf.annotate.episode_source import served_wrist_video_url
from rlhf.annotate.server import create_app
from rlhf.constants import PREFERENCE_AXES
from rlhf.prefs.campaign import CampaignConfig
from rlhf.prefs.store import PreferenceStore
from rlhf.prefs.triples import LABEL_A, LABEL_B, LABEL_CANT_TELL, LABEL_EQUAL

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
FPS = 10.0
FRAME = 1.0 / FPS


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/install_browser.sh` (the project's set-up does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory, video_dir):
    store = PreferenceStore(tmp_path_factory.mktemp("db") / "prefs.sqlite", seed=0)
    store.add_episodes(episodes_for(video_dir))
    store.create_campaign(CampaignConfig("sync", name="Sync check", calibration_size=0, gold_rate=0, repeat_rate=0))
    # Different segment offsets on the two sides: the page must align segment time, not file time.
    store.add_pair("sync", "ep0", "ep1", (0, 30), (10, 40))
    store.create_campaign(CampaignConfig("keys", name="Keyboard", calibration_size=0, gold_rate=0, repeat_rate=0))
    store.add_pair("keys", "ep0", "ep1", (0, 20), (0, 20))
    store.add_pair("keys", "ep2", "ep3", (0, 20), (0, 20))
    store.create_campaign(CampaignConfig("calib", name="Calibration", calibration_size=1, qualification_threshold=0.0))
    store.add_pair("calib", "ep0", "ep1", kind="calibration", known_label=LABEL_A,
                   known_axes={a: LABEL_A for a in PREFERENCE_AXES}, a_on_left=True)
    # An episode with a wrist camera (its wrist video: another clip of the same length and rate).
    wrist_ep = dataclasses.replace(episodes_for(video_dir)[2], episode_id="epw", wrist_video_url=served_wrist_video_url("epw"),
                                   wrist_video_path=str(video_dir / "ep3.mp4"))
    store.add_episodes([wrist_ep])
    store.create_campaign(CampaignConfig("wrist", name="Wrist camera", calibration_size=0, gold_rate=0, repeat_rate=0))
    store.add_pair("wrist", "epw", "ep1", (5, 35), (0, 30), a_on_left=True)
    tokens = {name: store.add_annotator(name) for name in ("sync", "keys", "calib", "wrist")}
    with BackgroundServer(create_app(store, admin_token="adm")) as srv:
        yield srv, store, tokens
    store.close()


def _open(browser, site, campaign):
    srv, _, tokens = site
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{srv.url}/annotate?token={tokens[campaign]}&campaign={campaign}")
    page.wait_for_function("window.annotator && window.annotator.state().item && !window.annotator.state().busy",
                           timeout=20_000)
    page.wait_for_function("document.getElementById('video-left').readyState >= 2 && "
                           "document.getElementById('video-right').readyState >= 2", timeout=20_000)
    return page, errors


def _state(page):
    return page.evaluate("window.annotator.state()")


def _settle(page, cond: str, timeout: float = 10_000):
    page.wait_for_function(f"(() => {{ const s = window.annotator.state(); return {cond}; }})()", timeout=timeout)


def test_videos_start_together_and_stay_within_a_frame(browser, site, tmp_path):
    page, errors = _open(browser, site, "sync")
    s = _state(page)
    assert s["left"] == pytest.approx(0, abs=1e-3) and s["right"] == pytest.approx(0, abs=1e-3)
    page.click("#btn-play")
    # Start together: both running from the first samples on, never more than a frame apart.
    samples = []
    for _ in range(12):
        samples.append(_state(page))
        time.sleep(0.05)
    assert all(not x["leftPaused"] and not x["rightPaused"] for x in samples[2:])
    assert max(abs(x["left"] - x["right"]) for x in samples) < FRAME
    assert samples[-1]["left"] > 0.2  # actually playing

    # Seek while playing (Shift+Right jumps one second) and with the seek bar.
    page.keyboard.press("Shift+ArrowRight")
    time.sleep(0.3)
    for _ in range(5):
        x = _state(page)
        assert abs(x["left"] - x["right"]) < FRAME, x
        time.sleep(0.05)
    page.evaluate("(() => { const s = document.getElementById('seek'); s.value = '2.0';"
                  " s.dispatchEvent(new Event('input')); })()")
    time.sleep(0.3)
    x = _state(page)
    assert abs(x["left"] - x["right"]) < FRAME and x["left"] >= 2.0 - FRAME, x

    # Speed change to 2x, then to 0.5x: still together, and the clock runs at the new rate.
    page.select_option("#speed", "2")
    page.evaluate("(() => { const s = document.getElementById('seek'); s.value = '0.2';"
                  " s.dispatchEvent(new Event('input')); })()")
    time.sleep(0.3)
    a = _state(page)
    time.sleep(0.5)
    b = _state(page)
    assert b["rate"] == 2 and b["running"]
    assert 0.6 < b["clock"] - a["clock"] < 1.4  # ~2 x 0.5 s of segment time
    for x in (a, b):
        assert abs(x["left"] - x["right"]) < FRAME, x
    page.keyboard.press("[")  # 2 -> 1.5
    page.keyboard.press("[")  # 1.5 -> 1
    page.keyboard.press("[")  # 1 -> 0.75
    time.sleep(0.3)
    x = _state(page)
    assert x["rate"] == 0.75 and abs(x["left"] - x["right"]) < FRAME, x

    # Pause and step frames: both show exactly the same moment.
    page.keyboard.press(" ")
    _settle(page, "!s.running && s.leftPaused && s.rightPaused")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    time.sleep(0.3)
    x = _state(page)
    assert abs(x["left"] - x["right"]) < 1e-3 and abs(x["clock"] * FPS - round(x["clock"] * FPS)) < 1e-6, x
    page.screenshot(path=str(tmp_path / "annotate.png"))
    assert not errors, errors
    page.close()


def test_wrist_view_follows_its_scene_video(browser, site):
    page, errors = _open(browser, site, "wrist")
    page.wait_for_function("document.getElementById('wrist-left').readyState >= 2", timeout=20_000)
    assert page.is_visible("#wrist-left") and not page.is_visible("#wrist-right")
    s = _state(page)
    assert s["wristRight"] is None and s["wristLeft"] == pytest.approx(0, abs=1e-3)
    page.click("#btn-play")
    samples = []
    for _ in range(12):
        samples.append(_state(page))
        time.sleep(0.05)
    assert all(not x["wristLeftPaused"] for x in samples[2:])
    assert max(abs(x["wristLeft"] - x["left"]) for x in samples) < FRAME
    assert samples[-1]["wristLeft"] > 0.2  # actually playing
    page.evaluate("(() => { const s = document.getElementById('seek'); s.value = '2.0';"
                  " s.dispatchEvent(new Event('input')); })()")
    time.sleep(0.3)
    x = _state(page)
    assert abs(x["wristLeft"] - x["left"]) < FRAME and x["wristLeft"] >= 2.0 - FRAME, x
    page.keyboard.press(" ")
    _settle(page, "!s.running && s.leftPaused && s.wristLeftPaused")
    x = _state(page)
    assert abs(x["wristLeft"] - x["left"]) < 1e-3 and abs(x["left"] - x["right"]) < 1e-3, x
    assert not errors, errors
    page.close()


def test_keyboard_shortcuts_label_and_label_is_stored(browser, site):
    _, store, _ = site
    page, errors = _open(browser, site, "keys")
    first = _state(page)["item"]
    # success: A, speed: B, smoothness: equal, safety: A, naturalness: can't tell.
    for key in ("1", "a", "b", "e", "a", "x"):
        page.keyboard.press(key)
    page.keyboard.press("m")  # mark the current moment
    s = _state(page)
    assert s["answers"] == {"success": "left", "speed": "right", "smoothness": "equal", "safety": "left",
                            "naturalness": "cant_tell"}
    assert len(s["marks"]) == 1
    assert page.is_enabled("#btn-submit")
    page.keyboard.press("Enter")
    _settle(page, f"s.item && s.item !== '{first}' && !s.busy")
    lab = [x for x in store.labels("keys") if x.assignment_id == first][0]
    pair = store.pair(lab.pair_id)
    left, right = (LABEL_A, LABEL_B) if pair.a_on_left else (LABEL_B, LABEL_A)
    assert lab.axes == {"success": left, "speed": right, "smoothness": LABEL_EQUAL, "safety": left,
                        "naturalness": LABEL_CANT_TELL}
    assert lab.label == left  # 2 votes for left, 1 for right, 1 equal -> left preferred
    assert lab.client_ms is not None and lab.client_ms > 0 and len(lab.marks) == 1

    # Second item: overall tie by keyboard, no axes needed.
    second = _state(page)["item"]
    page.keyboard.press("t")
    page.keyboard.press("Enter")
    _settle(page, "!s.item || s.item !== '" + second + "'")
    lab = [x for x in store.labels("keys") if x.assignment_id == second][0]
    assert lab.label == LABEL_EQUAL and lab.overall_explicit and lab.prob_a == 0.5
    page.wait_for_selector("#message:not([hidden])")
    assert "Nothing left" in page.inner_text("#message")
    assert not errors, errors
    page.close()


def test_calibration_feedback_is_shown(browser, site, tmp_path):
    page, errors = _open(browser, site, "calib")
    assert "Calibration 1 / 1" in page.inner_text("#phase")
    page.keyboard.press("Shift+B")  # B better on every axis: wrong, the known answer is A (left)
    page.click("#btn-submit")
    page.wait_for_selector("#feedback:not([hidden])")
    text = page.inner_text("#feedback")
    assert "expected answer was: A better" in text and "Calibration finished" in text
    assert page.locator("button.expected.choice-left").count() == len(PREFERENCE_AXES)
    page.screenshot(path=str(tmp_path / "calibration.png"))
    page.keyboard.press("Enter")
    page.wait_for_selector("#message:not([hidden])")
    assert not errors, errors
    page.close()


def test_dashboard_renders_stats(browser, site, tmp_path):
    srv, store, _ = site
    store.create_campaign(CampaignConfig("dash", name="Dashboard", calibration_size=0, gold_rate=0, repeat_rate=0))
    store.add_pair("dash", "ep0", "ep1")
    store.add_annotator("dana")
    item = store.next_item("dash", "dana").assignment
    store.submit_label(item.assignment_id, "dana", {a: LABEL_A for a in PREFERENCE_AXES})
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{srv.url}/dashboard?token=adm&campaign=dash")
    page.wait_for_selector("#annotators tr >> nth=1", timeout=10_000)
    assert "dana" in page.inner_text("#annotators")
    assert "Krippendorff" in page.inner_text("#axes") and "overall" in page.inner_text("#axes")
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
    bad = browser.new_page()
    bad.goto(f"{srv.url}/dashboard?token=wrong")
    bad.wait_for_selector("#message:not([hidden])")
    assert "Error" in bad.inner_text("#message")
    assert not errors, errors
    page.close()
    bad.close()
