// Bed detail view: HR/rhythm trend (downsampled by the server), the bed's alarm settings, alarm review, audit.
// Opened from a tile's "Trend & settings" button; refreshes every 10 s while open.
"use strict";

(() => {
  const $ = (sel) => document.querySelector(sel);
  const view = { bed: null, timer: null, conditions: [] };
  const clock = (ms) => (ms == null ? "" : new Date(ms).toLocaleTimeString([], { hour12: false }));
  const words = (text) => (text || "").replaceAll("_", " ");
  const RHYTHM_COLOURS = { sinus: "#35f07a", atrial_fibrillation: "#f5c518", atrial_flutter: "#f5c518", "-": "#4b5563" };

  async function getJson(url) {
    const response = await fetch(url);
    if (response.status === 401) { location.reload(); throw new Error("signed out"); }
    return response.json();
  }

  function hours() { return $("#bv-hours").value; }

  window.openBedView = async (bedId) => {
    view.bed = bedId;
    $("#bedview").hidden = false;
    $("#bedview").dataset.bed = bedId;
    $("#bv-title").textContent = `Bed ${bedId}`;
    $("#bv-result").textContent = "";
    $("#bv-result").dataset.ok = "";
    delete $("#bedview").dataset.loaded;
    await loadSettings();
    $("#bedview").dataset.loaded = bedId;
    await refresh();
    clearInterval(view.timer);
    view.timer = setInterval(refresh, 10000);
  };

  window.onBedUpdate = (bed) => {
    if (bed.bed_id !== view.bed) return;
    const s = bed.vitals && bed.vitals.settings;
    $("#bv-inforce").textContent = s ? `in force: HR ${s.hr_low_bpm}\u2013${s.hr_high_bpm}` +
      (s.disabled.length ? `, off: ${s.disabled.map(words).join(", ")}` : "") +
      (s.changed_by ? ` (set by ${s.changed_by})` : " (defaults)") : "";
    $("#bv-inforce").dataset.high = s ? s.hr_high_bpm : "";
  };

  async function loadSettings() {
    const body = await getJson(`/api/settings?bed=${encodeURIComponent(view.bed)}`);
    const current = body.requested || body.defaults;
    $("#bv-low").value = current.hr_low_bpm;
    $("#bv-high").value = current.hr_high_bpm;
    const off = new Set((body.requested && body.requested.disabled) || []);
    $("#bv-conditions").replaceChildren($("#bv-conditions legend"), ...body.conditions.filter((c) => c.priority !== "technical").map((c) => {
      const labelEl = document.createElement("label");
      labelEl.dataset.lethal = String(c.lethal);
      const box = document.createElement("input");
      box.type = "checkbox";
      box.name = c.name;
      box.checked = !off.has(c.name);
      box.disabled = c.lethal; // lethal alarms can only be acknowledged, never switched off
      labelEl.append(box, ` ${words(c.name)}${c.lethal ? " (lethal)" : ""}`);
      return labelEl;
    }));
  }

  async function save(event) {
    event.preventDefault();
    const user = window.actingUser ? window.actingUser() : "";
    if (user === null) return;
    const disabled = [...document.querySelectorAll("#bv-conditions input")].filter((b) => !b.checked).map((b) => b.name);
    const result = $("#bv-result");
    const response = await fetch("/api/settings", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ bed_id: view.bed, hr_low_bpm: Number($("#bv-low").value),
        hr_high_bpm: Number($("#bv-high").value), disabled, user: user || null }),
    });
    const body = await response.json().catch(() => ({}));
    result.dataset.ok = String(response.ok);
    result.textContent = response.ok ? `saved by ${body.user}: the monitoring worker applies it to the next windows`
      : `NOT saved: ${body.error || response.status}`;
    if (response.ok) refresh();
  }

  async function refresh() {
    if (!view.bed) return;
    const bed = encodeURIComponent(view.bed);
    const unitWide = $("#bv-unitwide").checked;
    const scope = unitWide && window.bedUnit ? `unit=${encodeURIComponent(window.bedUnit(view.bed) || "")}` : `bed=${bed}`;
    const priority = $("#bv-priority").value;
    const query = `${scope}&hours=${hours()}${priority ? `&priority=${priority}` : ""}`;
    $("#bv-csv").href = `/api/review?${query}&format=csv`;
    const [trend, review, audit] = await Promise.all([
      getJson(`/api/trend?bed=${bed}&hours=${hours()}&points=240`),
      getJson(`/api/review?${query}`),
      getJson(`/api/audit?bed=${bed}&hours=${hours()}`),
    ]);
    drawTrend(trend);
    $("#bv-alarms tbody").replaceChildren(...review.rows.map((r) => {
      const tr = document.createElement("tr");
      tr.dataset.alertId = r.alert_id;
      tr.dataset.priority = r.priority;
      for (const text of [r.bed_id, words(r.condition), r.priority, clock(r.raised_ms), clock(r.acknowledged_ms),
        r.acknowledged_by || "", clock(r.cleared_ms)]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.append(td);
      }
      return tr;
    }));
    $("#bv-audit").replaceChildren(...audit.records.map((a) => {
      const li = document.createElement("li");
      li.dataset.kind = a.kind;
      const change = a.kind === "settings"
        ? `settings ${a.old ? `HR ${a.old.hr_low_bpm}\u2013${a.old.hr_high_bpm}` : "defaults"} \u2192 HR ${a.new.hr_low_bpm}\u2013${a.new.hr_high_bpm}` +
          (a.new.disabled.length ? `, off: ${a.new.disabled.map(words).join(", ")}` : "")
        : `${words(a.kind)}${a.alert_id ? "" : " (all alarms)"}`;
      li.textContent = `${clock(a.time_ns / 1e6)}  ${a.user}: ${change}`;
      return li;
    }));
  }

  function drawTrend(trend) {
    const svg = $("#bv-chart");
    const ns = "http://www.w3.org/2000/svg";
    const W = 900, H = 200, pts = trend.points.filter((p) => p.hr_mean != null);
    const el = (name, attrs) => { const e = document.createElementNS(ns, name); for (const k in attrs) e.setAttribute(k, attrs[k]); return e; };
    const t0 = trend.since_ms, t1 = Math.max(Date.now(), ...trend.points.map((p) => p.t_ms + trend.bucket_ms));
    const x = (t) => ((t - t0) / (t1 - t0)) * W;
    const lo = Math.min(40, ...pts.map((p) => p.hr_min)), hi = Math.max(140, ...pts.map((p) => p.hr_max));
    const y = (hr) => H - ((hr - lo) / (hi - lo)) * (H - 10);
    const parts = [];
    for (const hr of [60, 100, 140]) {
      parts.push(el("line", { x1: 0, x2: W, y1: y(hr), y2: y(hr), stroke: "#223040" }));
      const text = el("text", { x: 2, y: y(hr) - 2 }); text.textContent = String(hr); parts.push(text);
    }
    const settings = window.bedSettings ? window.bedSettings(view.bed) : null;
    if (settings) for (const hr of [settings.hr_low_bpm, settings.hr_high_bpm]) parts.push(el("line", { class: "limit", x1: 0, x2: W, y1: y(hr), y2: y(hr) }));
    const width = (trend.bucket_ms / (t1 - t0)) * W;
    for (const p of trend.points) {
      parts.push(el("rect", { class: "rhythm", x: x(p.t_ms), y: H + 4, width: Math.max(1, width), height: 14,
        fill: RHYTHM_COLOURS[p.rhythm] || "#a78bfa", "data-rhythm": p.rhythm }));
    }
    if (pts.length) {
      const band = pts.map((p) => `${x(p.t_ms + trend.bucket_ms / 2)},${y(p.hr_max)}`).concat(
        pts.slice().reverse().map((p) => `${x(p.t_ms + trend.bucket_ms / 2)},${y(p.hr_min)}`));
      parts.push(el("polygon", { class: "band", points: band.join(" ") }));
      parts.push(el("polyline", { class: "mean", points: pts.map((p) => `${x(p.t_ms + trend.bucket_ms / 2)},${y(p.hr_mean)}`).join(" ") }));
      for (const p of pts) parts.push(el("circle", { class: "pt", cx: x(p.t_ms + trend.bucket_ms / 2), cy: y(p.hr_mean), r: 2,
        fill: "#35f07a", "data-t": p.t_ms, "data-hr": p.hr_mean, "data-rhythm": p.rhythm }));
    }
    svg.setAttribute("viewBox", `0 0 ${W} ${H + 20}`);
    svg.replaceChildren(...parts);
    $("#bv-bucket").textContent = `(${Math.round(trend.bucket_ms / 1000)} s per point, ${trend.points.length} points)`;
  }

  $("#bv-form").addEventListener("submit", save);
  $("#bv-close").addEventListener("click", () => { $("#bedview").hidden = true; view.bed = null; clearInterval(view.timer); });
  for (const id of ["#bv-hours", "#bv-priority", "#bv-unitwide"]) $(id).addEventListener("change", refresh);
})();
