// Dashboard: renders /api/admin/campaigns/<id>/stats. Needs the admin token in the link.
"use strict";

(function () {
  const params = new URLSearchParams(location.search);
  const token = params.get("token") || "";
  const $ = (id) => document.getElementById(id);
  const fmt = (x, digits = 3) => (x === null || x === undefined ? "\u2013" : typeof x === "number" ? x.toFixed(digits) : String(x));
  const pct = (x) => (x === null || x === undefined ? "\u2013" : (100 * x).toFixed(1) + " %");

  function api(path) {
    return fetch(path, { headers: { Authorization: "Bearer " + token } }).then(async (r) => {
      const data = await r.json().catch(() => ({}));
      if (!r.ok) throw new Error(data.detail || r.status);
      return data;
    });
  }

  function table(el, header, rows) {
    el.innerHTML = "";
    const thead = document.createElement("tr");
    for (const h of header) { const th = document.createElement("th"); th.textContent = h; thead.append(th); }
    el.append(thead);
    for (const row of rows) {
      const tr = document.createElement("tr");
      for (const cell of row) {
        const td = document.createElement("td");
        if (cell && typeof cell === "object") { td.textContent = cell.text; if (cell.warn) td.className = "warn"; }
        else td.textContent = cell;
        tr.append(td);
      }
      el.append(tr);
    }
  }

  async function load() {
    const id = $("campaign").value;
    if (!id) return;
    let s;
    try { s = await api(`/api/admin/campaigns/${encodeURIComponent(id)}/stats`); }
    catch (e) { $("message").textContent = "Error: " + e.message; $("message").hidden = false; return; }
    $("message").hidden = true;
    table($("counts"), Object.keys(s.counts), [Object.values(s.counts).map(String)]);
    const thr = s.campaign.qualification_threshold;
    table(
      $("annotators"),
      ["annotator", "labels", "calibration acc.", "qualified", "gold labels", "gold accuracy", "gold \u03ba",
        "self-consistency", "repeats", "mean \u03ba", "can't tell", "median s"],
      Object.entries(s.annotators).map(([name, a]) => [
        name, String(a.labels), { text: pct(a.calibration_accuracy), warn: a.calibration_accuracy !== null && a.calibration_accuracy < thr },
        a.qualified === null ? "pending" : a.qualified ? "yes" : { text: "no", warn: true }, String(a.gold_labels),
        pct(a.gold_accuracy), fmt(a.gold_kappa), pct(a.self_consistency), String(a.repeats), fmt(a.mean_pairwise_kappa),
        pct(a.cant_tell_rate), fmt(a.median_seconds, 1),
      ]),
    );
    table($("axes"), ["axis", "Fleiss' \u03ba", "Krippendorff's \u03b1", "items with \u2265 2 labels"],
      Object.entries(s.axes).map(([axis, v]) => [axis, fmt(v.fleiss_kappa), fmt(v.krippendorff_alpha), String(v.items)]));
    table($("pairwise"), ["annotator", "annotator", "Cohen's \u03ba", "shared items"],
      s.pairwise_kappa.map((r) => [r.a, r.b, fmt(r.kappa), String(r.items)]));
  }

  async function start() {
    if (!token) { $("message").textContent = "This page needs the admin token: /dashboard?token=..."; $("message").hidden = false; return; }
    let campaigns;
    try { campaigns = await api("/api/admin/campaigns"); }
    catch (e) { $("message").textContent = "Error: " + e.message; $("message").hidden = false; return; }
    for (const c of campaigns) {
      const opt = document.createElement("option");
      opt.value = c.campaign_id; opt.textContent = c.name ? `${c.name} (${c.campaign_id})` : c.campaign_id;
      $("campaign").append(opt);
    }
    if (params.get("campaign")) $("campaign").value = params.get("campaign");
    $("campaign").addEventListener("change", load);
    $("refresh").addEventListener("click", load);
    await load();
  }
  start();
})();
