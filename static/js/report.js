// The lecture report. The server computes everything (smoothing, band, minutes, runs,
// top moments: GET /api/lectures/<id>/report/?smooth=N); this page only draws it. While
// the analysis runs, segments also arrive over the WebSocket and are drawn at once.
// Data reaches the DOM through textContent only.
import { api, liveSocket } from "./live.js";

const SILENCE = -1;
const NO_SPEECH = -2;
const NON_SPEECH_NAMES = { [SILENCE]: "silence", [NO_SPEECH]: "no speech" };
const HATCH = "#767676";
// Each curve also has its own dash pattern, so the curves differ without colour.
const DASHES = [[], [9, 4], [2, 3], [10, 3, 2, 3], [5, 5], [1, 4]];
const PAGE_SIZE = 20;
const ZOOM_STEPS = [10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400];

export function clock(t) {
  const whole = Math.max(0, Math.floor(t + 1e-6));
  const h = Math.floor(whole / 3600), m = Math.floor((whole % 3600) / 60), s = whole % 60;
  return `${h}:${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}`;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

// The first index whose value is > t (arrays are sorted).
function upperBound(arr, t) {
  let lo = 0, hi = arr.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (arr[mid] <= t) lo = mid + 1; else hi = mid; }
  return lo;
}

function emptyData(labels = [], colours = {}) {
  return { labels, colours, window: 1, start: [], end: [], raw: [], band: [], confidence: [],
    probabilities: [], smoothed: [], per_minute: [], runs: [], top_moments: {}, shares: {},
    duration_s: 0, speech_s: 0, silence_s: 0, no_speech_s: 0, dominant: null, live: true };
}

class Report {
  constructor(root) {
    this.root = root;
    this.lectureId = Number(root.dataset.lecture);
    this.url = root.dataset.reportUrl;
    this.data = emptyData();
    this.view = { t0: 0, t1: 0, follow: true };
    this.hover = null;
    this.page = 0;
    this.focusRow = 0;
    this.overview = document.getElementById("overview");
    this.detail = document.getElementById("timeline");
    this.player = document.getElementById("player");
    this.smooth = document.getElementById("smooth");
    this.filter = document.getElementById("filter");
    this.sort = document.getElementById("sort");
    this.readout = document.getElementById("readout");
    this.patterns = {};
    this.drawMs = null;
    this.bind();
  }

  // ---------------------------------------------------------------- data

  async load() {
    const smoothing = this.smooth.value;
    const started = performance.now();
    const data = await api(`${this.url}?smooth=${encodeURIComponent(smoothing)}`).catch(() => null);
    if (!data || smoothing !== this.smooth.value) return; // a newer choice is on its way
    this.lastFetchMs = performance.now() - started;
    data.live = false;
    const first = !this.data.start.length;
    this.data = data;
    if (first || this.view.t1 === 0) this.resetView();
    this.root.dataset.segments = String(data.start.length);
    this.root.dataset.window = String(data.window);
    this.renderLegend();
    this.renderFilter();
    this.renderAll();
  }

  // Segments from the WebSocket: drawn raw until the next report from the server.
  addLive(segments) {
    const d = this.data;
    if (!d.labels.length) { this.scheduleReload(); return; } // labels and colours come first
    for (const s of segments) {
      const i = s.index;
      const code = s.is_silence || !d.labels.includes(s.label)
        ? (/^no[ _]?speech$/i.test(s.label || "") ? NO_SPEECH : SILENCE)
        : d.labels.indexOf(s.label);
      const probs = d.labels.map((l) => (code >= 0 ? s.probabilities[l] || 0 : 0));
      d.start[i] = s.start_s; d.end[i] = s.end_s; d.raw[i] = code; d.band[i] = code;
      d.confidence[i] = code >= 0 ? s.confidence : null;
      d.probabilities[i] = probs; d.smoothed[i] = probs;
    }
    d.duration_s = Math.max(d.duration_s, d.end[d.end.length - 1] || 0);
    this.root.dataset.segments = String(d.start.length);
    if (this.view.follow) this.resetView();
    this.scheduleDraw();
    this.scheduleReload();
  }

  // While segments stream in, fetch the server's report now and then (never more often
  // than ten times the last fetch took, so a 3 h lecture does not flood the server).
  scheduleReload() {
    if (this.reloadTimer) return;
    const wait = Math.max(3000, 10 * (this.lastFetchMs || 0));
    this.reloadTimer = setTimeout(() => { this.reloadTimer = null; this.load(); }, wait);
  }

  // ---------------------------------------------------------------- view

  duration() { return Math.max(this.data.duration_s || 0, this.data.end[this.data.end.length - 1] || 0); }

  resetView() {
    const d = this.duration();
    this.view = { t0: 0, t1: Math.max(1, Math.min(d, 600)), follow: d <= 600 };
  }

  setSpan(span, centre) {
    const d = Math.max(1, this.duration());
    span = Math.min(Math.max(span, Math.min(10, d)), d);
    let t0 = Math.max(0, Math.min(centre - span / 2, d - span));
    this.view = { t0, t1: t0 + span, follow: span >= d };
    this.scheduleDraw();
  }

  zoom(direction) {
    const span = this.view.t1 - this.view.t0;
    const steps = direction < 0 ? [...ZOOM_STEPS].reverse() : ZOOM_STEPS;
    const next = steps.find((s) => (direction < 0 ? s < span - 1e-6 : s > span + 1e-6)) ?? (direction < 0 ? 10 : this.duration());
    const centre = this.cursorTime() ?? (this.view.t0 + this.view.t1) / 2;
    this.setSpan(next, centre >= this.view.t0 && centre <= this.view.t1 ? centre : (this.view.t0 + this.view.t1) / 2);
  }

  // Keep the current position inside the detail view (page on when playback leaves it).
  reveal(t) {
    if (t >= this.view.t0 && t <= this.view.t1) return;
    const span = this.view.t1 - this.view.t0;
    this.setSpan(span, t + span / 2 - Math.min(span / 10, 5));
  }

  cursorTime() { return this.player.currentTime || 0; }

  indexAt(t) { return Math.max(0, upperBound(this.data.start, t) - 1); }

  seek(t, { play = true } = {}) {
    const d = this.data;
    if (!d.start.length) return;
    t = Math.max(0, Math.min(t, d.start[d.start.length - 1]));
    this.player.currentTime = t;
    this.reveal(t);
    if (play) this.player.play().catch(() => {});
    this.updateCursor();
  }

  // ---------------------------------------------------------------- drawing

  scheduleDraw() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.draw(); });
  }

  colour(code) { return code >= 0 ? this.data.colours[this.data.labels[code]] || "#4D4D4D" : this.pattern(code); }

  // Non-speech is a pattern, not a colour: hatched for silence, dotted for "no speech".
  pattern(code) {
    if (this.patterns[code]) return this.patterns[code];
    const c = document.createElement("canvas");
    c.width = c.height = 8;
    const g = c.getContext("2d");
    g.fillStyle = "#fff"; g.fillRect(0, 0, 8, 8);
    g.strokeStyle = HATCH; g.fillStyle = HATCH; g.lineWidth = 1.2;
    if (code === NO_SPEECH) { g.fillRect(1, 1, 2, 2); g.fillRect(5, 5, 2, 2); }
    else { g.beginPath(); g.moveTo(0, 8); g.lineTo(8, 0); g.stroke(); }
    this.patterns[code] = this.detail.getContext("2d").createPattern(c, "repeat");
    return this.patterns[code];
  }

  fit(canvas) {
    const ratio = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(canvas.clientWidth * ratio));
    const h = Math.max(1, Math.round(canvas.clientHeight * ratio));
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    return [ctx, canvas.clientWidth, canvas.clientHeight];
  }

  draw() {
    const started = performance.now();
    this.drawOverview();
    this.drawDetail();
    this.drawMs = performance.now() - started;
    this.root.dataset.drawMs = this.drawMs.toFixed(1);
    this.updateSlider();
  }

  // One rectangle per change of band value (and at most one per pixel column): 10,800
  // segments cost a few hundred fills, not ten thousand.
  drawBand(ctx, x, y, h, i0, i1, band) {
    const d = this.data;
    let runStart = i0;
    for (let i = i0 + 1; i <= i1; i++) {
      if (i < i1 && band[i] === band[runStart] && d.start[i] - d.end[i - 1] < 0.01) continue;
      const x0 = x(d.start[runStart]), x1 = x(d.end[i - 1]);
      ctx.fillStyle = this.colour(band[runStart]);
      ctx.fillRect(x0, y, Math.max(1, x1 - x0), h);
      runStart = i;
    }
  }

  drawAxis(ctx, x, t0, t1, y, width) {
    const span = t1 - t0;
    const step = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200]
      .find((s) => (span / s) * 70 <= width) || 7200;
    ctx.fillStyle = "#1d2430"; ctx.strokeStyle = "#5b6472";
    ctx.font = "11px system-ui, sans-serif"; ctx.textBaseline = "top"; ctx.lineWidth = 1;
    for (let t = Math.ceil(t0 / step) * step; t <= t1 + 1e-6; t += step) {
      const px = Math.round(x(t)) + 0.5;
      ctx.beginPath(); ctx.moveTo(px, y); ctx.lineTo(px, y + 4); ctx.stroke();
      const label = clock(t);
      const w = ctx.measureText(label).width;
      ctx.fillText(label, Math.min(Math.max(0, px - w / 2), width - w), y + 5);
    }
  }

  drawOverview() {
    const [ctx, w, h] = this.fit(this.overview);
    const d = this.data;
    ctx.clearRect(0, 0, w, h);
    const total = this.duration();
    if (!d.start.length || !total) return;
    const x = (t) => (t / total) * w;
    for (const m of d.per_minute) {
      ctx.fillStyle = m.label ? d.colours[m.label] : this.pattern(m.kind === "no speech" ? NO_SPEECH : SILENCE);
      ctx.fillRect(x(m.minute * 60), 0, Math.max(1, x(Math.min(total, m.minute * 60 + 60)) - x(m.minute * 60) - 1), 16);
    }
    this.drawBand(ctx, x, 20, 24, 0, d.start.length, d.band);
    this.drawAxis(ctx, x, 0, total, 46, w);
    // The part shown in detail, and where playback is.
    ctx.lineWidth = 2; ctx.strokeStyle = "#14213d";
    ctx.strokeRect(x(this.view.t0) + 1, 1, Math.max(3, x(this.view.t1) - x(this.view.t0) - 2), 44);
    const c = this.cursorTime();
    ctx.fillStyle = "#14213d"; ctx.fillRect(x(c) - 1, 0, 2, 46);
  }

  drawDetail() {
    const [ctx, w, h] = this.fit(this.detail);
    const d = this.data;
    ctx.clearRect(0, 0, w, h);
    if (!d.start.length) return;
    const { t0, t1 } = this.view;
    const x = (t) => ((t - t0) / (t1 - t0)) * w;
    const i0 = upperBound(d.end, t0); // the first segment that ends inside the view
    const i1 = Math.min(d.start.length, upperBound(d.start, t1));
    const band = 30, top = band + 8, bottom = h - 22;
    this.drawBand(ctx, x, 0, band, i0, i1, d.band);
    // Probability grid and curves (smoothed as chosen; gaps where there is no speech).
    ctx.strokeStyle = "#d9dde3"; ctx.lineWidth = 1;
    for (const p of [0, 0.5, 1]) {
      const y = Math.round(bottom - p * (bottom - top)) + 0.5;
      ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(w, y); ctx.stroke();
    }
    d.labels.forEach((label, j) => {
      ctx.strokeStyle = d.colours[label]; ctx.lineWidth = 1.6;
      ctx.setLineDash(DASHES[j % DASHES.length]);
      ctx.beginPath();
      let open = false;
      for (let i = i0; i < i1; i++) {
        if (d.raw[i] < 0 || !d.smoothed[i]) { open = false; continue; }
        const px = x((d.start[i] + d.end[i]) / 2), py = bottom - d.smoothed[i][j] * (bottom - top);
        if (open) ctx.lineTo(px, py); else { ctx.moveTo(px, py); open = true; }
      }
      ctx.stroke();
    });
    ctx.setLineDash([]);
    this.drawAxis(ctx, x, t0, t1, bottom + 2, w);
    // Playback position: a dark line in a white one, visible on every colour.
    const c = this.cursorTime();
    if (c >= t0 && c <= t1) {
      const px = x(c);
      ctx.fillStyle = "#fff"; ctx.fillRect(px - 2.5, 0, 5, bottom);
      ctx.fillStyle = "#14213d"; ctx.fillRect(px - 1, 0, 2, bottom);
    }
    if (this.hover !== null && this.hover >= t0 && this.hover <= t1) {
      ctx.strokeStyle = "#14213d"; ctx.setLineDash([3, 3]); ctx.lineWidth = 1;
      const px = Math.round(x(this.hover)) + 0.5;
      ctx.beginPath(); ctx.moveTo(px, 0); ctx.lineTo(px, bottom); ctx.stroke();
      ctx.setLineDash([]);
    }
  }

  // ---------------------------------------------------------------- readout and slider

  describe(t) {
    const d = this.data;
    if (!d.start.length) return "";
    const i = this.indexAt(t);
    const code = d.raw[i];
    if (code < 0) return `${clock(d.start[i])}: ${NON_SPEECH_NAMES[code]}`;
    const probs = d.labels.map((l, j) => `${l} ${Math.round(100 * (d.probabilities[i][j] || 0))} %`).join(", ");
    let text = `${clock(d.start[i])}: ${d.labels[code]}, ${Math.round(100 * (d.confidence[i] || 0))} % (${probs})`;
    if (d.window > 1 && d.band[i] >= 0 && d.band[i] !== code) text += `; over ${d.window} s: ${d.labels[d.band[i]]}`;
    return text;
  }

  updateSlider() {
    const t = this.cursorTime();
    this.detail.setAttribute("aria-valuemax", String(Math.round(this.duration())));
    this.detail.setAttribute("aria-valuenow", String(Math.floor(t)));
    this.detail.setAttribute("aria-valuetext", this.describe(t) || clock(t));
  }

  updateCursor() {
    this.scheduleDraw();
    if (this.hover === null) this.readout.textContent = this.describe(this.cursorTime());
  }

  // ---------------------------------------------------------------- lists

  renderLegend() {
    const legend = document.getElementById("legend");
    legend.replaceChildren();
    this.data.labels.forEach((label, j) => {
      // The curve's own dash pattern beside its colour (SVG nodes, no markup strings).
      const svg = "http://www.w3.org/2000/svg";
      const sample = document.createElementNS(svg, "svg");
      for (const [k, v] of Object.entries({ width: 30, height: 12, class: "line-sample", "aria-hidden": "true" })) sample.setAttribute(k, v);
      const line = document.createElementNS(svg, "line");
      for (const [k, v] of Object.entries({ x1: 0, y1: 6, x2: 30, y2: 6, stroke: this.data.colours[label],
        "stroke-width": 2.5, "stroke-dasharray": DASHES[j % DASHES.length].join(" ") })) line.setAttribute(k, v);
      sample.append(line);
      legend.append(el("li", {}, this.swatch(j), sample, label));
    });
    legend.append(el("li", {}, el("span", { class: "swatch silence", "aria-hidden": "true" }), "silence"));
    legend.append(el("li", {}, el("span", { class: "swatch no-speech", "aria-hidden": "true" }), "no speech"));
  }

  swatch(code) {
    const s = el("span", { class: "swatch", "aria-hidden": "true" });
    if (code >= 0) s.style.backgroundColor = this.data.colours[this.data.labels[code]];
    else s.classList.add(code === NO_SPEECH ? "no-speech" : "silence");
    return s;
  }

  renderFilter() {
    const keep = this.filter.value;
    const options = [["", "everything"], ...this.data.labels.map((l) => [l, l]),
      ["silence", "silence"], ["no speech", "no speech"], ["low", "low confidence"]];
    this.filter.replaceChildren(...options.map(([v, t]) => el("option", { value: v, text: t })));
    this.filter.value = options.some(([v]) => v === keep) ? keep : "";
  }

  renderAll() {
    this.scheduleDraw();
    this.renderMoments();
    this.renderSummary();
    this.renderTable();
    this.updateCursor();
  }

  renderMoments() {
    const box = document.getElementById("moments");
    const d = this.data;
    const groups = d.labels.filter((l) => (d.top_moments[l] || []).length);
    if (!groups.length) {
      box.replaceChildren(el("p", { class: "empty", text: d.start.length ? "No emotion stretches found." : "Results appear here while the analysis runs." }));
      return;
    }
    const list = el("ul", { class: "moments" });
    for (const label of groups) {
      const buttons = el("div", { class: "moment-buttons" });
      for (const run of d.top_moments[label]) {
        const b = el("button", { type: "button", class: "moment secondary", "data-start": String(run.start_s),
          "aria-label": `${label} from ${clock(run.start_s)} to ${clock(run.end_s)}, ${Math.round(run.end_s - run.start_s)} s, ${Math.round(100 * run.confidence)} %: play` });
        b.textContent = `${clock(run.start_s)}–${clock(run.end_s)} · ${Math.round(100 * run.confidence)} %`;
        buttons.append(b);
      }
      list.append(el("li", {}, el("span", { class: "moment-label" }, this.swatch(d.labels.indexOf(label)), label), buttons));
    }
    box.replaceChildren(list);
  }

  renderSummary() {
    const box = document.getElementById("summary");
    const d = this.data;
    if (!d.start.length) return;
    const parts = [];
    if (d.speech_s > 0) {
      const shares = el("ul", { class: "shares" });
      for (const [j, label] of d.labels.entries()) {
        shares.append(el("li", {}, this.swatch(j), `${label}: ${(100 * (d.shares[label] || 0)).toFixed(1)} %`));
      }
      parts.push(shares);
    } else {
      parts.push(el("p", { text: "No speech found, so there are no emotions to show." }));
    }
    parts.push(el("p", { class: "muted", text: `Speech ${clock(d.speech_s)} · silence ${clock(d.silence_s)} · no speech ${clock(d.no_speech_s)} · length ${clock(this.duration())}${this.running() ? " (so far)" : ""}` }));
    box.replaceChildren(...parts);
  }

  running() {
    const state = this.data.lecture ? this.data.lecture.state : "running";
    return !["succeeded", "failed", "cancelled"].includes(state);
  }

  rows() {
    const d = this.data;
    const f = this.filter.value;
    const threshold = d.low_confidence_threshold ?? 0;
    let rows = d.runs.filter((r) => !f || r.label === f || (f === "low" && r.confidence !== null && r.confidence < threshold));
    const key = this.sort.value;
    if (key === "confidence") rows = [...rows].sort((a, b) => (b.confidence ?? -1) - (a.confidence ?? -1) || a.start_s - b.start_s);
    if (key === "length") rows = [...rows].sort((a, b) => (b.end_s - b.start_s) - (a.end_s - a.start_s) || a.start_s - b.start_s);
    return { rows, threshold };
  }

  renderTable() {
    const body = document.querySelector("#segments tbody");
    const { rows, threshold } = this.rows();
    const pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
    this.page = Math.min(this.page, pages - 1);
    const shown = rows.slice(this.page * PAGE_SIZE, (this.page + 1) * PAGE_SIZE);
    this.focusRow = Math.min(this.focusRow, Math.max(0, shown.length - 1));
    const d = this.data;
    body.replaceChildren(...shown.map((run, i) => {
      const code = d.labels.indexOf(run.label);
      const button = el("button", { type: "button", class: "play", "data-start": String(run.start_s),
        tabindex: i === this.focusRow ? "0" : "-1", "aria-label": `Play from ${clock(run.start_s)}` });
      button.textContent = `${clock(run.start_s)}–${clock(run.end_s)}`;
      const name = el("td", {}, this.swatch(code >= 0 ? code : (run.label === "no speech" ? NO_SPEECH : SILENCE)), run.label);
      if (code < 0) name.classList.add("muted");
      if (run.confidence !== null && run.confidence < threshold) name.append(el("span", { class: "muted", text: " (low confidence)" }));
      return el("tr", {}, el("td", {}, button), name,
        el("td", { text: run.confidence === null ? "" : `${Math.round(100 * run.confidence)} %` }),
        el("td", { text: `${Math.round(run.end_s - run.start_s)} s` }));
    }));
    const info = document.getElementById("page-info");
    info.textContent = rows.length
      ? `${this.page * PAGE_SIZE + 1}–${this.page * PAGE_SIZE + shown.length} of ${rows.length} stretches`
      : (d.start.length ? "No stretch matches." : "");
    document.getElementById("page-prev").disabled = this.page === 0;
    document.getElementById("page-next").disabled = this.page >= pages - 1;
  }

  // ---------------------------------------------------------------- events

  bind() {
    const p = this.player;
    p.addEventListener("timeupdate", () => {
      if (!p.paused) this.reveal(p.currentTime);
      this.updateCursor();
    });
    p.addEventListener("seeked", () => this.updateCursor());
    const timeAt = (canvas, e, t0, t1) => {
      const rect = canvas.getBoundingClientRect();
      return t0 + ((e.clientX - rect.left) / rect.width) * (t1 - t0);
    };
    this.detail.addEventListener("click", (e) => this.seek(timeAt(this.detail, e, this.view.t0, this.view.t1)));
    this.detail.addEventListener("mousemove", (e) => {
      this.hover = timeAt(this.detail, e, this.view.t0, this.view.t1);
      this.readout.textContent = this.describe(this.hover);
      this.scheduleDraw();
    });
    this.detail.addEventListener("mouseleave", () => { this.hover = null; this.updateCursor(); });
    this.detail.addEventListener("wheel", (e) => {
      if (!e.ctrlKey && !e.metaKey && Math.abs(e.deltaY) < Math.abs(e.deltaX)) return;
      e.preventDefault();
      const span = this.view.t1 - this.view.t0;
      this.setSpan(span * (e.deltaY > 0 ? 1.25 : 0.8), timeAt(this.detail, e, this.view.t0, this.view.t1));
    }, { passive: false });
    this.overview.addEventListener("click", (e) => {
      const t = timeAt(this.overview, e, 0, this.duration());
      this.setSpan(this.view.t1 - this.view.t0, t);
      this.seek(t, { play: !p.paused });
    });
    this.detail.addEventListener("keydown", (e) => {
      const d = this.data;
      if (!d.start.length) return;
      const t = this.cursorTime();
      const moves = { ArrowRight: t + 1, ArrowLeft: t - 1, ArrowUp: t + 1, ArrowDown: t - 1,
        PageUp: t + 60, PageDown: t - 60, Home: 0, End: d.start[d.start.length - 1] };
      if (e.key in moves) this.seek(moves[e.key], { play: !p.paused });
      else if (e.key === "Enter" || e.key === " ") { if (p.paused) p.play().catch(() => {}); else p.pause(); }
      else if (e.key === "+" || e.key === "=") this.zoom(-1);
      else if (e.key === "-" || e.key === "_") this.zoom(1);
      else return;
      e.preventDefault();
      this.readout.textContent = this.describe(this.cursorTime());
    });
    this.detail.addEventListener("focus", () => { this.readout.textContent = this.describe(this.cursorTime()); });
    document.getElementById("zoom-in").addEventListener("click", () => this.zoom(-1));
    document.getElementById("zoom-out").addEventListener("click", () => this.zoom(1));
    document.getElementById("zoom-all").addEventListener("click", () => this.setSpan(this.duration(), this.duration() / 2));
    this.smooth.addEventListener("change", () => this.load());
    this.filter.addEventListener("change", () => { this.page = 0; this.focusRow = 0; this.renderTable(); });
    this.sort.addEventListener("change", () => { this.page = 0; this.focusRow = 0; this.renderTable(); });
    const turn = (delta) => { this.page += delta; this.focusRow = 0; this.renderTable(); };
    document.getElementById("page-prev").addEventListener("click", () => turn(-1));
    document.getElementById("page-next").addEventListener("click", () => turn(1));
    document.getElementById("moments").addEventListener("click", (e) => {
      const b = e.target.closest("button.moment");
      if (!b) return;
      const t = Number(b.dataset.start);
      this.setSpan(Math.min(this.view.t1 - this.view.t0, 300), t + 60);
      this.seek(t);
    });
    const table = document.getElementById("segments");
    table.addEventListener("click", (e) => {
      const b = e.target.closest("button.play");
      if (!b) return;
      this.focusRow = [...table.querySelectorAll("button.play")].indexOf(b);
      this.seek(Number(b.dataset.start));
    });
    // One Tab stop for the whole table: Up/Down (and Home/End) move between its rows.
    table.addEventListener("keydown", (e) => {
      const buttons = [...table.querySelectorAll("button.play")];
      const i = buttons.indexOf(document.activeElement);
      if (i < 0) return;
      const next = { ArrowDown: i + 1, ArrowUp: i - 1, Home: 0, End: buttons.length - 1 }[e.key];
      if (next === undefined) return;
      e.preventDefault();
      const j = Math.max(0, Math.min(buttons.length - 1, next));
      buttons[i].tabIndex = -1; buttons[j].tabIndex = 0; buttons[j].focus();
      this.focusRow = j;
    });
    window.addEventListener("resize", () => this.scheduleDraw());
  }
}

const root = document.getElementById("report");
if (root) {
  const report = new Report(root);
  window.sersiteReport = report; // for the browser tests and diagnostics
  const socket = liveSocket();
  socket.on((msg) => {
    if (msg.type === "segments" && msg.data && msg.data.lecture === report.lectureId) report.addLive(msg.data.segments);
    if (msg.job && String(msg.job.id) === root.dataset.job && ["succeeded", "failed", "cancelled"].includes(msg.job.state)) {
      report.load();
      const again = document.getElementById("reanalyse");
      if (again) again.hidden = false;
    }
  });
  socket.onReconnect.add(() => report.load());
  report.load();
}
