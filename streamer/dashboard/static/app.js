// EnECG central station page: one EventSource, one tile per bed, no build step.
// The server sends a full `snapshot` first (and after every reconnect), then `bed`, `strip` and `status`
// events; a `ping` event every few seconds lets the page tell "quiet" from "disconnected".
"use strict";

const PRIORITY_RANK = { high: 0, medium: 1, low: 2, technical: 3 };
const STRIP_SECONDS = 6;
const LIVENESS_MS = 12000; // no byte from the server for this long = disconnected
const params = new URLSearchParams(location.search);
const unitFilter = params.get("unit");

const state = {
  beds: new Map(),         // bed_id -> latest bed view from the server
  tiles: new Map(),        // bed_id -> {el, strip}
  staleAfterMs: 10000,
  clockOffsetMs: 0,        // server clock - browser clock
  needsUserName: false,
  lastByteMs: 0,
  connected: false,
  kafka: "reconnecting",
  ready: false,
  pauseS: 120,
  sound: false,
};

const $ = (sel, root = document) => root.querySelector(sel);
const serverNow = () => Date.now() + state.clockOffsetMs;
const label = (text) => (text || "").replaceAll("_", " ");

// ------------------------------------------------------------------------------------------ event stream

function connect() {
  const url = "/api/events" + (unitFilter ? `?unit=${encodeURIComponent(unitFilter)}` : "");
  const source = new EventSource(url);
  const alive = () => { state.lastByteMs = Date.now(); };
  source.addEventListener("open", () => { alive(); });
  source.addEventListener("snapshot", (e) => { alive(); onSnapshot(JSON.parse(e.data)); });
  source.addEventListener("bed", (e) => { alive(); onBed(JSON.parse(e.data)); renderSummary(); });
  source.addEventListener("strip", (e) => { alive(); onStrip(JSON.parse(e.data)); });
  source.addEventListener("status", (e) => { alive(); Object.assign(state, JSON.parse(e.data)); renderConn(); });
  source.addEventListener("ping", alive);
  source.addEventListener("error", () => {
    state.connected = false;
    renderConn();
    if (source.readyState === EventSource.CLOSED) {
      // e.g. a 401 after the session expired: the browser gives up; go back to the page (sign-in)
      setTimeout(() => location.reload(), 5000);
    }
  });
}

function onSnapshot(snap) {
  state.connected = true;
  state.clockOffsetMs = snap.server_ms - Date.now();
  state.staleAfterMs = snap.stale_after_s * 1000;
  state.pauseS = snap.pause_audio_s;
  state.kafka = snap.kafka;
  state.ready = snap.ready;
  state.needsUserName = snap.needs_user_name;
  $("#who").hidden = !state.needsUserName;
  $("#unit").textContent = snap.unit ? `Unit ${snap.unit}` : "All units";
  const seen = new Set();
  for (const bed of snap.beds) { onBed(bed); seen.add(bed.bed_id); }
  for (const [bedId, tile] of state.tiles) {
    if (!seen.has(bedId) && state.beds.has(bedId)) { tile.el.remove(); state.tiles.delete(bedId); state.beds.delete(bedId); }
  }
  renderConn();
  renderSummary();
}

function onBed(bed) {
  state.beds.set(bed.bed_id, bed);
  renderTile(tileFor(bed.bed_id), bed);
  renderAlarmBar();
}

// ------------------------------------------------------------------------------------------------ tiles

function naturalCompare(a, b) { return a.localeCompare(b, undefined, { numeric: true }); }

function tileFor(bedId) {
  let tile = state.tiles.get(bedId);
  if (tile) return tile;
  const el = $("#tile-template").content.firstElementChild.cloneNode(true);
  el.dataset.bed = bedId;
  $(".bed", el).textContent = bedId;
  $(".pause", el).addEventListener("click", () => act(bedId, null, "pause_audio"));
  $(".details", el).addEventListener("click", () => window.openBedView(bedId));
  tile = { el, strip: new Strip($(".strip", el)) };
  state.tiles.set(bedId, tile);
  const grid = $("#grid");
  const after = [...grid.children].find((other) => naturalCompare(other.dataset.bed, bedId) > 0);
  grid.insertBefore(el, after || null);
  $("#empty").hidden = true;
  return tile;
}

function sortedAlarms(bed) {
  return [...bed.alarms].sort((a, b) => PRIORITY_RANK[a.priority] - PRIORITY_RANK[b.priority] || b.event_ms - a.event_ms);
}

function ackState(alarm) { return alarm.acknowledged ? "done" : alarm.ack_pending ? "pending" : "none"; }

function renderTile(tile, bed) {
  const el = tile.el;
  $(".bed-unit", el).textContent = bed.unit || "";
  const v = bed.vitals;
  $(".hr", el).textContent = v && v.heart_rate_bpm != null ? String(v.heart_rate_bpm) : "---";
  $(".rhythm", el).textContent = v && v.rhythm ? label(v.rhythm) : "\u00a0";
  const q = $(".quality", el);
  q.dataset.q = v ? v.quality : "";
  q.textContent = v ? `signal ${v.quality}` : "";
  const s = v && v.settings;
  const limits = $(".limits", el);
  limits.dataset.source = s ? s.source : "";
  limits.textContent = s ? `limits ${Math.round(s.hr_low_bpm)}\u2013${Math.round(s.hr_high_bpm)}` +
    (s.disabled && s.disabled.length ? ` \u00b7 off: ${s.disabled.map(label).join(", ")}` : "") : "";
  if (window.onBedUpdate) window.onBedUpdate(bed);

  const alarms = sortedAlarms(bed);
  const top = alarms[0];
  el.dataset.alarm = top ? top.priority : "none";
  el.dataset.flashing = String(alarms.some((a) => (a.priority === "high" || a.priority === "medium") && ackState(a) === "none"));
  $(".alarm-label", el).textContent = top ? label(top.condition).toUpperCase() : "";

  const list = $(".alarms", el);
  list.replaceChildren(...alarms.map((a) => alarmRow(bed.bed_id, a)));

  const history = $(".history ol", el);
  $(".history summary", el).textContent = `History (${bed.history.length})`;
  history.replaceChildren(...bed.history.map(historyRow));
  renderPause(el, bed);
  renderStale(el, bed);
}

function alarmRow(bedId, a) {
  const li = document.createElement("li");
  li.className = "alarm";
  li.dataset.alertId = a.alert_id;
  li.dataset.priority = a.priority;
  li.dataset.state = a.state;
  li.dataset.ack = ackState(a);
  const cond = document.createElement("span");
  cond.className = "cond";
  cond.textContent = label(a.condition);
  const meta = document.createElement("span");
  meta.className = "meta";
  meta.dataset.onset = a.onset_ms;
  meta.textContent = onsetText(a.onset_ms);
  li.append(cond, meta);
  if (a.acknowledged) {
    li.append(badge("ACKNOWLEDGED"));
  } else if (a.ack_pending) {
    li.append(badge(`ACK SENT${a.ack_requested_by ? " by " + a.ack_requested_by : ""} \u2013 awaiting monitor`));
  } else {
    const button = document.createElement("button");
    button.className = "ack";
    button.type = "button";
    button.textContent = "Acknowledge";
    button.addEventListener("click", () => act(bedId, a.alert_id, "acknowledge", button));
    li.append(button);
  }
  return li;
}

function badge(text) {
  const span = document.createElement("span");
  span.className = "ackstate";
  span.textContent = text;
  return span;
}

function historyRow(h) {
  const li = document.createElement("li");
  if (h.priority) li.dataset.priority = h.priority;
  const what = h.condition ? `${label(h.condition)} ${h.state}` : `${label(h.state)} by ${h.user}`;
  li.textContent = `${clockText(h.time_ms)}  ${what}`;
  return li;
}

function renderPause(el, bed) {
  const left = Math.round((bed.audio_paused_until_ms - serverNow()) / 1000);
  $(".paused", el).textContent = left > 0 ? `\u{1F507} audio paused ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}` : "";
}

function renderStale(el, bed) {
  const age = bed.vitals_received_ms == null ? Infinity : serverNow() - bed.vitals_received_ms;
  const stale = age > state.staleAfterMs;
  el.dataset.stale = String(stale);
  $(".stale-overlay", el).textContent = bed.vitals_received_ms == null ? "NO VITALS YET" : `NO DATA \u2013 last vitals ${Math.round(age / 1000)} s ago`;
}

function onsetText(onsetMs) {
  const s = Math.max(0, Math.round((serverNow() - onsetMs) / 1000));
  const ago = s < 60 ? `${s} s` : s < 3600 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `since ${clockText(onsetMs)} (${ago})`;
}

function clockText(ms) { return new Date(ms).toLocaleTimeString([], { hour12: false }); }

function renderAlarmBar() {
  const all = [];
  for (const bed of state.beds.values()) for (const a of bed.alarms) all.push([bed.bed_id, a]);
  all.sort(([, a], [, b]) => PRIORITY_RANK[a.priority] - PRIORITY_RANK[b.priority] || b.event_ms - a.event_ms);
  $("#alarmbar").replaceChildren(...all.slice(0, 8).map(([bedId, a]) => {
    const chip = document.createElement("span");
    chip.className = "chip" + (a.priority === "high" && ackState(a) === "none" ? " flash-high" : "");
    chip.dataset.priority = a.priority;
    chip.textContent = `${bedId}  ${label(a.condition).toUpperCase()}`;
    return chip;
  }));
}

function renderSummary() {
  let alarms = 0, high = 0;
  for (const bed of state.beds.values()) { alarms += bed.alarms.length; high += bed.alarms.filter((a) => a.priority === "high").length; }
  $("#summary").innerHTML = `<b>${state.tiles.size}</b> beds &middot; <b>${alarms}</b> active alarms` + (high ? ` &middot; <b style="color:var(--high)">${high} high</b>` : "");
}

function renderConn() {
  const conn = $("#conn");
  const banner = $("#banner");
  let kind, text, warn = "";
  if (!state.connected) {
    kind = "disconnected"; text = "DISCONNECTED";
    warn = "DISCONNECTED from the central-station server \u2013 this display is NOT live. Check the bedside monitors.";
  } else if (state.kafka !== "connected") {
    kind = "kafka"; text = "NO FEED";
    warn = "The server has lost the alarm feed and is reconnecting \u2013 this display is NOT live.";
  } else if (!state.ready) {
    kind = "connecting"; text = "SYNCING";
  } else {
    kind = "live"; text = "LIVE";
  }
  conn.dataset.state = kind;
  conn.textContent = text;
  banner.hidden = !warn;
  banner.textContent = warn;
  document.body.classList.toggle("disconnected", Boolean(warn));
}

// ---------------------------------------------------------------------------------------------- actions

function actingUser() {
  // The acting nurse's name (required with the shared station token); null after prompting for it.
  const userInput = $("#user");
  const user = userInput.value.trim();
  if (state.needsUserName && !user) {
    $("#who").classList.add("missing");
    userInput.focus();
    return null;
  }
  $("#who").classList.remove("missing");
  localStorage.setItem("enecg.user", user);
  return user;
}

async function act(bedId, alertId, action, button) {
  const user = actingUser();
  if (user === null) return;
  if (button) button.disabled = true;
  try {
    const response = await fetch("/api/actions", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ bed_id: bedId, alert_id: alertId, action, user: user || null }),
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      alert(`${action} was not recorded: ${body.error || response.status}`);
      if (response.status === 401) location.reload();
    }
  } catch (error) {
    alert(`${action} was not recorded: the server cannot be reached`);
  } finally {
    if (button) button.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------- strips

class Strip {
  // A sweep display like a bedside monitor: new samples overwrite old ones left to right, with a gap.
  constructor(canvas) {
    this.canvas = canvas;
    this.rate = 50;
    this.n = STRIP_SECONDS * this.rate;
    this.lo = new Float32Array(this.n).fill(NaN);
    this.hi = new Float32Array(this.n).fill(NaN);
    this.pos = 0;
    this.queue = [];    // [lo, hi] pairs waiting to be swept in
    this.carry = 0;
    this.lead = "";
  }

  push(event) {
    if (event.rate_hz !== this.rate) {
      this.rate = event.rate_hz;
      this.n = Math.round(STRIP_SECONDS * this.rate);
      this.lo = new Float32Array(this.n).fill(NaN);
      this.hi = new Float32Array(this.n).fill(NaN);
      this.pos = 0;
    }
    for (let i = 0; i < event.min.length; i++) this.queue.push([event.min[i], event.max[i]]);
    const backlog = Math.round(this.rate * 1.5);
    if (this.queue.length > backlog) this.queue.splice(0, this.queue.length - backlog); // stay near real time
    this.lead = event.lead;
  }

  advance(dtMs) {
    this.carry += (dtMs / 1000) * this.rate;
    let steps = Math.floor(this.carry);
    this.carry -= steps;
    if (this.queue.length > this.rate) steps += 1; // catch up gently after a burst
    while (steps-- > 0 && this.queue.length) {
      const [lo, hi] = this.queue.shift();
      this.lo[this.pos] = lo;
      this.hi[this.pos] = hi;
      this.pos = (this.pos + 1) % this.n;
    }
    if (!this.queue.length) this.carry = 0;
  }

  draw() {
    const c = this.canvas, ctx = c.getContext("2d");
    const ratio = window.devicePixelRatio || 1;
    const w = Math.round(c.clientWidth * ratio), h = Math.round(c.clientHeight * ratio);
    if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
    ctx.clearRect(0, 0, w, h);
    ctx.strokeStyle = "rgba(53,240,122,0.07)";
    ctx.lineWidth = 1;
    for (let x = 0; x < w; x += w / (STRIP_SECONDS * 5)) { ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, h); ctx.stroke(); }
    let lo = Infinity, hi = -Infinity, sum = 0, count = 0;
    for (let i = 0; i < this.n; i++) {
      if (Number.isNaN(this.lo[i])) continue;
      lo = Math.min(lo, this.lo[i]); hi = Math.max(hi, this.hi[i]);
      sum += (this.lo[i] + this.hi[i]) / 2; count++;
    }
    if (!count) return;
    const span = Math.min(5, Math.max(1.5, hi - lo));   // mV shown top to bottom; flat lines stay flat
    const mid = count ? (lo + hi) / 2 : 0;
    const y = (mv) => h / 2 - ((mv - mid) / span) * h * 0.85;
    const gap = Math.max(2, Math.round(this.n * 0.03));
    ctx.strokeStyle = "#35f07a";
    ctx.lineWidth = 2 * ratio;
    ctx.lineJoin = "round";
    ctx.beginPath();
    let drawing = false;
    for (let i = 0; i < this.n; i++) {
      const ahead = (i - this.pos + this.n) % this.n;
      if (Number.isNaN(this.lo[i]) || ahead < gap) { drawing = false; continue; }
      const x = (i / this.n) * w;
      if (!drawing) { ctx.moveTo(x, y(this.lo[i])); drawing = true; } else ctx.lineTo(x, y(this.lo[i]));
      if (this.hi[i] !== this.lo[i]) ctx.lineTo(x, y(this.hi[i]));
    }
    ctx.stroke();
  }
}

function onStrip(event) {
  const tile = tileFor(event.bed_id);
  tile.strip.push(event);
  $(".lead", tile.el).textContent = event.lead;
  if (!state.beds.has(event.bed_id)) renderStale(tile.el, { vitals_received_ms: null, audio_paused_until_ms: 0 });
}

let lastFrame = performance.now();
function frame(now) {
  const dt = Math.min(500, now - lastFrame);
  lastFrame = now;
  for (const tile of state.tiles.values()) { tile.strip.advance(dt); tile.strip.draw(); }
  requestAnimationFrame(frame);
}

// ---------------------------------------------------------------------------------------- sound, clock

let audio = null;
function beep(times) {
  if (!audio) return;
  for (let i = 0; i < times; i++) {
    const osc = audio.createOscillator(), gain = audio.createGain();
    const t = audio.currentTime + i * 0.25;
    osc.frequency.value = 880; gain.gain.setValueAtTime(0.15, t); gain.gain.setValueAtTime(0, t + 0.15);
    osc.connect(gain).connect(audio.destination); osc.start(t); osc.stop(t + 0.16);
  }
}

function soundTick() {
  if (!state.sound) return;
  const now = serverNow();
  let need = 0;
  for (const bed of state.beds.values()) {
    if (bed.audio_paused_until_ms > now) continue;
    for (const a of bed.alarms) {
      if (ackState(a) !== "none") continue;
      need = Math.max(need, a.priority === "high" ? 3 : a.priority === "medium" ? 2 : 0);
    }
  }
  if (need) beep(need);
}

function everySecond() {
  $("#clock").textContent = clockText(serverNow());
  if (state.connected && Date.now() - state.lastByteMs > LIVENESS_MS) { state.connected = false; renderConn(); }
  for (const [bedId, bed] of state.beds) {
    const el = state.tiles.get(bedId).el;
    renderStale(el, bed);
    renderPause(el, bed);
    for (const meta of el.querySelectorAll(".alarm .meta")) meta.textContent = onsetText(Number(meta.dataset.onset));
  }
}

// for bedview.js (a separate script: the page has no build step)
window.actingUser = actingUser;
window.bedUnit = (bedId) => (state.beds.get(bedId) || {}).unit;
window.bedSettings = (bedId) => { const b = state.beds.get(bedId); return b && b.vitals ? b.vitals.settings : null; };

function init() {
  $("#user").value = localStorage.getItem("enecg.user") || "";
  $("#sound").addEventListener("click", (e) => {
    state.sound = !state.sound;
    if (state.sound && !audio) audio = new AudioContext();
    e.target.setAttribute("aria-pressed", String(state.sound));
    e.target.textContent = state.sound ? "Sound on" : "Sound off";
  });
  connect();
  renderConn();
  setInterval(everySecond, 1000);
  setInterval(soundTick, 5000);
  everySecond();
  requestAnimationFrame(frame);
}

init();
