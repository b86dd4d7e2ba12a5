// The annotation page: two episodes' videos on one master clock (the scene camera, plus the wrist
// camera small beside it where an episode has one), per-axis answers, marks, keyboard shortcuts.
// Vanilla JS, no network beyond this server. Times on the page are seconds from the segments' start.
"use strict";

(function () {
  const params = new URLSearchParams(location.search);
  const token = params.get("token") || "";
  let campaign = params.get("campaign") || "";
  const AXIS_KEYS = { a: "left", b: "right", e: "equal", x: "cant_tell" };
  const SPEEDS = [0.25, 0.5, 0.75, 1, 1.5, 2];
  const $ = (id) => document.getElementById(id);

  // ------------------------------------------------------------------ master clock
  // One clock for every video on screen: t = base + (now - anchor) * rate while running. Each video is
  // steered to start + t: hard seek when far off, a small playback-rate nudge when slightly off.
  const clock = { running: false, stalled: false, rate: 1, base: 0, anchor: 0, duration: 0 };
  function clockNow() {
    if (!clock.running || clock.stalled) return clock.base;
    return Math.min(clock.duration, clock.base + ((performance.now() - clock.anchor) / 1000) * clock.rate);
  }
  function clockSet(t) {
    clock.base = Math.max(0, Math.min(clock.duration, t));
    clock.anchor = performance.now();
  }

  const sides = {
    left: { el: $("video-left"), start: 0, stop: 0, fps: 10, dur: 0 },
    right: { el: $("video-right"), start: 0, stop: 0, fps: 10, dur: 0 },
  };
  // Each side's wrist camera, where its episode has one. Its file has the scene video's frames and
  // frame times, so it takes the same segment (start, dur) and is steered exactly like a scene video.
  const wrists = {
    left: { el: $("wrist-left"), start: 0, stop: 0, fps: 10, dur: 0 },
    right: { el: $("wrist-right"), start: 0, stop: 0, fps: 10, dur: 0 },
  };
  let vids = [sides.left, sides.right]; // the videos on screen now: all of them follow the clock
  const frame = () => 1 / Math.max(sides.left.fps, sides.right.fps);

  function targetOf(v, t) {
    // The last frame of a shorter segment stays on screen while the longer one plays on.
    return v.start + Math.min(t, Math.max(0, v.dur - 1e-3));
  }

  function waitSeeked(v) {
    return new Promise((resolve) => {
      if (!v.el.seeking) return resolve();
      v.el.addEventListener("seeked", () => resolve(), { once: true });
    });
  }

  async function seekAll(t) {
    clockSet(t);
    for (const v of vids) v.el.currentTime = targetOf(v, clock.base);
    await Promise.all(vids.map(waitSeeked));
  }

  async function play() {
    if (clock.running) return;
    let t = clockNow();
    if (t >= clock.duration - 1e-3) t = 0; // at the end: play means replay
    for (const v of vids) { v.el.pause(); v.el.playbackRate = clock.rate; }
    await seekAll(t);
    // Start them only once all are positioned, then anchor the clock when all have started.
    await Promise.all(vids.map((v) => (clock.base < v.dur ? v.el.play() : Promise.resolve()).catch(() => {})));
    clockSet(t);
    clock.running = true;
    clock.stalled = false;
    updateButtons();
  }

  async function pause() {
    const t = clockNow();
    clock.running = false;
    for (const v of vids) v.el.pause();
    await seekAll(t); // all show exactly the same moment when paused
    updateButtons();
  }

  async function seek(t) {
    const wasRunning = clock.running;
    if (wasRunning) {
      clock.running = false;
      for (const v of vids) v.el.pause();
    }
    await seekAll(t);
    if (wasRunning) await play();
    render();
  }

  async function setRate(r) {
    r = Math.max(0.25, Math.min(2, r));
    const t = clockNow();
    clock.rate = r;
    $("speed").value = String(r);
    for (const v of vids) v.el.playbackRate = r;
    await seek(t); // realign all at the moment of the change
  }

  async function stepFrames(n) {
    if (clock.running) await pause();
    const f = frame();
    const k = Math.round(clockNow() / f) + n;
    await seekAll(Math.max(0, Math.min(clock.duration - f, k * f)));
    render();
  }

  function tick() {
    if (clock.running) {
      const t = clockNow();
      if (t >= clock.duration - 1e-3) {
        clock.running = false;
        clockSet(clock.duration);
        for (const v of vids) v.el.pause();
        updateButtons();
      } else {
        for (const v of vids) {
          const target = targetOf(v, t);
          if (t >= v.dur) { if (!v.el.paused) v.el.pause(); continue; }
          const drift = v.el.currentTime - target;
          if (Math.abs(drift) > 0.25) {
            v.el.currentTime = target;
          } else if (Math.abs(drift) > 0.25 * (1 / v.fps)) {
            // Behind: speed up a little; ahead: slow down, at most 20 %.
            v.el.playbackRate = clock.rate * (1 - Math.max(-0.2, Math.min(0.2, drift * 2)));
          } else if (v.el.playbackRate !== clock.rate) {
            v.el.playbackRate = clock.rate;
          }
        }
      }
    }
    render();
    requestAnimationFrame(tick);
  }

  for (const v of [sides.left, sides.right, wrists.left, wrists.right]) {
    // A stalled video (buffering) holds the clock so the videos never drift apart. A hidden wrist
    // video (its episode has none) does not count.
    v.el.addEventListener("waiting", () => {
      if (vids.includes(v) && clock.running && !clock.stalled) { clock.base = clockNow(); clock.stalled = true; }
    });
    v.el.addEventListener("playing", () => {
      if (vids.includes(v) && clock.stalled) { clock.stalled = false; clock.anchor = performance.now(); }
    });
  }

  // ------------------------------------------------------------------ item state
  let item = null;
  let shownAt = 0;
  let answers = {};
  let overall = null;
  let focusAxis = 0;
  let marks = [];
  let awaitingContinue = false;
  let busy = false;

  function api(path, opts = {}) {
    const headers = Object.assign({ Authorization: "Bearer " + token }, opts.body ? { "Content-Type": "application/json" } : {});
    return fetch(path, Object.assign({}, opts, { headers })).then(async (r) => {
      const data = await r.json().catch(() => ({}));
      if (!r.ok) throw new Error(data.detail ? JSON.stringify(data.detail) : r.status + " " + r.statusText);
      return data;
    });
  }

  function showMessage(text) {
    $("message").textContent = text;
    $("message").hidden = !text;
  }

  function loadVideo(v, side, url = side.video_url) {
    v.start = side.start_s; v.stop = side.stop_s; v.fps = side.fps; v.dur = side.stop_s - side.start_s;
    return new Promise((resolve, reject) => {
      const onReady = () => { v.el.removeEventListener("error", onErr); resolve(); };
      const onErr = () => { v.el.removeEventListener("loadeddata", onReady); reject(new Error("cannot load video " + url)); };
      v.el.addEventListener("loadeddata", onReady, { once: true });
      v.el.addEventListener("error", onErr, { once: true });
      v.el.src = url;
      v.el.load();
    });
  }

  function showWrist(name, shown) {
    const w = wrists[name];
    w.el.hidden = !shown;
    w.el.parentElement.classList.toggle("has-wrist", shown); // without it the panel keeps its old layout
    if (!shown && w.el.getAttribute("src")) { w.el.pause(); w.el.removeAttribute("src"); w.el.load(); }
  }

  // Resolves to whether the side's wrist view is on screen. One that fails to load is dropped with a
  // note rather than failing the item: the scene videos alone still make a comparison.
  async function loadWrist(name, side) {
    if (!side.wrist_video_url) { showWrist(name, false); return false; }
    showWrist(name, true);
    try {
      await loadVideo(wrists[name], side, side.wrist_video_url);
      return true;
    } catch (e) {
      showWrist(name, false);
      showMessage("Note: " + e.message + " (showing the scene camera only)");
      return false;
    }
  }

  async function nextItem() {
    busy = true;
    $("feedback").hidden = true;
    awaitingContinue = false;
    let data;
    try {
      data = await api(`/api/campaigns/${encodeURIComponent(campaign)}/next`);
    } catch (e) { showMessage("Error: " + e.message); busy = false; return; }
    $("campaign-name").textContent = data.campaign.name || data.campaign.id;
    const phase = $("phase");
    phase.className = "badge" + (data.phase === "calibration" ? " calibration" : "");
    phase.textContent = data.phase === "calibration"
      ? `Calibration ${Math.min(data.calibration.done + 1, data.calibration.total)} / ${data.calibration.total}` : "Labelling";
    if (data.status !== "item") {
      $("workspace").hidden = true;
      item = null;
      const texts = {
        wait: "Every remaining pair is being labelled by someone else right now. Retrying in a few seconds\u2026",
        done: "Nothing left to label in this campaign. Thank you!",
        not_qualified: "Your calibration accuracy is below this campaign's threshold, so no work pairs are shown.",
        no_calibration: "This campaign has no calibration pairs yet. Please come back later.",
      };
      showMessage(texts[data.status] || data.status);
      if (data.status === "wait") setTimeout(nextItem, 3000);
      busy = false;
      return;
    }
    showMessage("");
    item = data.item;
    $("instruction").innerHTML = "";
    const b = document.createElement("b"); b.textContent = "Instruction: ";
    $("instruction").append(b, document.createTextNode(item.instruction));
    answers = {}; overall = null; focusAxis = 0; marks = [];
    buildAxes();
    clock.running = false;
    clock.duration = Math.max(item.left.stop_s - item.left.start_s, item.right.stop_s - item.right.start_s);
    $("seek").max = String(clock.duration);
    $("workspace").hidden = false;
    vids = [sides.left, sides.right];
    try {
      const [, , wristLeft, wristRight] = await Promise.all([
        loadVideo(sides.left, item.left), loadVideo(sides.right, item.right),
        loadWrist("left", item.left), loadWrist("right", item.right),
      ]);
      if (wristLeft) vids.push(wrists.left);
      if (wristRight) vids.push(wrists.right);
      await seekAll(0);
    } catch (e) {
      // A scene video failed: a wrist view alone would run off the clock, so none is shown.
      showWrist("left", false); showWrist("right", false);
      showMessage("Error: " + e.message);
    }
    shownAt = performance.now();
    busy = false;
    render();
  }

  // ------------------------------------------------------------------ answers
  function buildAxes() {
    const body = $("axes-body");
    body.innerHTML = "";
    item.axes.forEach((axis, i) => {
      const tr = document.createElement("tr");
      tr.dataset.axis = axis;
      const name = document.createElement("td");
      name.innerHTML = `<span class="key">${i + 1}</span> `;
      name.append(document.createTextNode(axis));
      tr.append(name);
      for (const [choice, label] of [["left", "A"], ["equal", "="], ["right", "B"], ["cant_tell", "?"]]) {
        const td = document.createElement("td");
        const btn = document.createElement("button");
        btn.className = "choice-" + choice;
        btn.dataset.choice = choice;
        btn.textContent = label;
        btn.title = `${axis}: ${choice.replace("_", " ")}`;
        btn.addEventListener("click", () => { focusAxis = i; answer(choice); });
        td.append(btn);
        tr.append(td);
      }
      tr.addEventListener("click", () => { focusAxis = i; render(); });
      body.append(tr);
    });
  }

  function answer(choice, all = false) {
    if (!item || awaitingContinue) return;
    if (all) { for (const a of item.axes) answers[a] = choice; }
    else {
      answers[item.axes[focusAxis]] = choice;
      focusAxis = Math.min(item.axes.length - 1, focusAxis + 1);
    }
    overall = null;
    render();
  }

  function aggregate() {
    // Mirrors the server: weighted vote of the answered axes; the server's result is authoritative.
    let score = 0, total = 0;
    for (const axis of item.axes) {
      const c = answers[axis], w = item.axis_weights[axis] || 0;
      if (!c || c === "cant_tell" || w <= 0) continue;
      total += w;
      score += c === "left" ? w : c === "right" ? -w : 0;
    }
    if (total === 0) return null;
    return (score / total + 1) / 2;
  }

  function complete() {
    return overall !== null || (item && item.axes.every((a) => answers[a]));
  }

  async function submit() {
    if (!item || busy || !complete()) return;
    if (awaitingContinue) return nextItem();
    busy = true;
    if (clock.running) await pause();
    const body = { item_id: item.item_id, axes: answers, overall, marks, client_ms: performance.now() - shownAt };
    let res;
    try {
      res = await api(`/api/campaigns/${encodeURIComponent(campaign)}/labels`, { method: "POST", body: JSON.stringify(body) });
    } catch (e) { showMessage("Could not save: " + e.message); busy = false; return; }
    busy = false;
    if (res.feedback) return showFeedback(res);
    nextItem();
  }

  function showFeedback(res) {
    awaitingContinue = true;
    const fb = res.feedback;
    const el = $("feedback");
    const name = { left: "A better", right: "B better", equal: "equal", cant_tell: "can't tell" };
    el.className = "feedback " + (fb.correct ? "ok" : "bad");
    let text = fb.correct ? "\u2714 Correct. " : `\u2718 The expected answer was: ${name[fb.expected_overall] || fb.expected_overall} overall. `;
    if (res.calibration && res.calibration.qualified !== null) {
      text += res.calibration.qualified
        ? `Calibration finished (${Math.round(100 * res.calibration.accuracy)} % correct): you are qualified.`
        : `Calibration finished (${Math.round(100 * res.calibration.accuracy)} % correct): below the threshold.`;
    }
    el.textContent = text + " Press Enter to continue.";
    for (const tr of $("axes-body").children) {
      const exp = (fb.expected_axes || {})[tr.dataset.axis];
      for (const btn of tr.querySelectorAll("button")) btn.classList.toggle("expected", btn.dataset.choice === exp);
    }
    el.hidden = false;
    render();
  }

  // ------------------------------------------------------------------ marks
  function addMark() {
    if (!item) return;
    const t = Math.round(clockNow() * 1000) / 1000;
    if (marks.some((m) => Math.abs(m.t - t) < 1e-3)) return;
    marks.push({ t, note: "" });
    marks.sort((a, b) => a.t - b.t);
    renderMarks();
  }

  function renderMarks() {
    const list = $("marks"), ticks = $("mark-ticks");
    list.innerHTML = ""; ticks.innerHTML = "";
    marks.forEach((m, i) => {
      const li = document.createElement("li");
      const go = document.createElement("span");
      go.textContent = `\u2691 ${m.t.toFixed(2)} s`;
      go.style.cursor = "pointer";
      go.addEventListener("click", () => seek(m.t));
      const del = document.createElement("button");
      del.textContent = "\u00d7"; del.title = "remove mark";
      del.addEventListener("click", () => { marks.splice(i, 1); renderMarks(); });
      li.append(go, del);
      list.append(li);
      const tick = document.createElement("span");
      tick.style.left = `${(100 * m.t) / Math.max(clock.duration, 1e-6)}%`;
      ticks.append(tick);
    });
  }

  // ------------------------------------------------------------------ rendering
  function updateButtons() {
    $("btn-play").innerHTML = clock.running ? "&#10074;&#10074; Pause" : "&#9654; Play";
  }

  function render() {
    if (!item) return;
    const t = clockNow();
    if (document.activeElement !== $("seek")) $("seek").value = String(t);
    $("time").textContent = `${t.toFixed(2)} / ${clock.duration.toFixed(2)} s`;
    for (const tr of $("axes-body").children) {
      const i = item.axes.indexOf(tr.dataset.axis);
      tr.classList.toggle("focused", i === focusAxis && !awaitingContinue);
      for (const btn of tr.querySelectorAll("button")) {
        btn.classList.toggle("chosen", answers[tr.dataset.axis] === btn.dataset.choice);
        btn.disabled = awaitingContinue;
      }
      if (!awaitingContinue) for (const btn of tr.querySelectorAll("button")) btn.classList.remove("expected");
    }
    $("btn-tie").classList.toggle("chosen", overall === "tie");
    $("btn-canttell").classList.toggle("chosen", overall === "cant_tell");
    let agg;
    if (overall === "tie") agg = "Overall: tie";
    else if (overall === "cant_tell") agg = "Overall: can't tell";
    else {
      const p = aggregate();
      const answered = item.axes.filter((a) => answers[a]).length;
      if (answered < item.axes.length) agg = `Overall: answer the axes (${answered} / ${item.axes.length})`;
      else if (p === null) agg = "Overall: can't tell";
      else agg = `Overall: ${p > 0.5 ? "A preferred" : p < 0.5 ? "B preferred" : "tie"} (P(A) = ${p.toFixed(2)})`;
    }
    $("aggregate").textContent = agg;
    const btn = $("btn-submit");
    btn.disabled = busy || !complete();
    btn.textContent = awaitingContinue ? "Continue" : "Submit";
    if (awaitingContinue) btn.disabled = false;
  }

  // ------------------------------------------------------------------ wiring
  // Transport actions (play, pause, seek, speed, frame step) are async: each pauses, seeks all videos
  // and may restart them. Run them one after another, so a speed change followed at once by a seek
  // cannot interleave and leave the clock stopped or the videos apart.
  let transport = Promise.resolve();
  function queued(fn) {
    transport = transport.then(fn).catch((err) => console.error(err));
    return transport;
  }
  const togglePlay = () => queued(() => (clock.running ? pause() : play()));
  const replay = () => queued(async () => { await seek(0); if (!clock.running) await play(); });

  $("btn-play").addEventListener("click", togglePlay);
  $("btn-replay").addEventListener("click", replay);
  $("btn-back").addEventListener("click", () => queued(() => stepFrames(-1)));
  $("btn-fwd").addEventListener("click", () => queued(() => stepFrames(1)));
  $("speed").addEventListener("change", (e) => { const r = parseFloat(e.target.value); queued(() => setRate(r)); });
  $("seek").addEventListener("input", (e) => { const t = parseFloat(e.target.value); queued(() => seek(t)); });
  $("btn-mark").addEventListener("click", addMark);
  $("btn-tie").addEventListener("click", () => { overall = overall === "tie" ? null : "tie"; render(); });
  $("btn-canttell").addEventListener("click", () => { overall = overall === "cant_tell" ? null : "cant_tell"; render(); });
  $("btn-submit").addEventListener("click", submit);

  document.addEventListener("keydown", (e) => {
    if (!item || e.ctrlKey || e.metaKey || e.altKey) return;
    const tag = (document.activeElement && document.activeElement.tagName) || "";
    if (tag === "INPUT" && document.activeElement.type === "text") return;
    if (tag === "TEXTAREA") return;
    const k = e.key.toLowerCase();
    let handled = true;
    if (e.key === " ") togglePlay();
    else if (e.key === "ArrowLeft") queued(() => (e.shiftKey ? seek(clockNow() - 1) : stepFrames(-1)));
    else if (e.key === "ArrowRight") queued(() => (e.shiftKey ? seek(clockNow() + 1) : stepFrames(1)));
    else if (e.key === "[" || e.key === "]") {
      queued(() => {
        const i = SPEEDS.indexOf(clock.rate);
        const j = Math.max(0, Math.min(SPEEDS.length - 1, (i < 0 ? 3 : i) + (e.key === "]" ? 1 : -1)));
        return setRate(SPEEDS[j]);
      });
    } else if (k === "r") replay();
    else if (k === "m") addMark();
    else if (e.key >= "1" && e.key <= "9" && Number(e.key) <= item.axes.length) { focusAxis = Number(e.key) - 1; render(); }
    else if (k in AXIS_KEYS && !(e.shiftKey && k === "x")) answer(AXIS_KEYS[k], e.shiftKey);
    else if (k === "t") { overall = overall === "tie" ? null : "tie"; render(); }
    else if (k === "c") { overall = overall === "cant_tell" ? null : "cant_tell"; render(); }
    else if (e.key === "Enter") submit();
    else handled = false;
    if (handled) e.preventDefault();
  });

  async function start() {
    if (!token) { showMessage("This page needs a token link: /annotate?token=...&campaign=..."); return; }
    try {
      const me = await api("/api/me");
      $("who").textContent = me.annotator_id;
      if (!campaign) campaign = me.campaigns[0] || "";
    } catch (e) { showMessage("Unknown or missing token."); return; }
    if (!campaign) { showMessage("No campaign yet."); return; }
    requestAnimationFrame(tick);
    await nextItem();
  }

  // Read-only hooks for tests and debugging: segment-relative times of the videos and the clock
  // (wristLeft / wristRight: null when that side shows no wrist camera).
  const shownTime = (v) => (vids.includes(v) ? v.el.currentTime - v.start : null);
  window.annotator = {
    state: () => ({
      clock: clockNow(), running: clock.running, rate: clock.rate, duration: clock.duration,
      left: sides.left.el.currentTime - sides.left.start, right: sides.right.el.currentTime - sides.right.start,
      leftPaused: sides.left.el.paused, rightPaused: sides.right.el.paused,
      wristLeft: shownTime(wrists.left), wristRight: shownTime(wrists.right),
      wristLeftPaused: wrists.left.el.paused, wristRightPaused: wrists.right.el.paused,
      item: item && item.item_id, answers: Object.assign({}, answers), overall, marks: marks.slice(), busy,
      awaitingContinue,
    }),
  };
  start();
})();
