// The lecture report: segments arrive live over the WebSocket and from the API
// (catch-up after reconnect), and are drawn as a colour band with probability curves.
import { api, liveSocket } from "./live.js";

// Okabe–Ito palette: distinguishable with the common colour-vision deficiencies.
const PALETTE = { anger: "#D55E00", angry: "#D55E00", happy: "#E69F00", happiness: "#E69F00",
  sad: "#0072B2", sadness: "#0072B2", neutral: "#999999", excited: "#CC79A7", fear: "#009E73",
  disgust: "#56B4E9", surprise: "#F0E442", calm: "#000000", boredom: "#8C6D31" };
const EXTRA = ["#009E73", "#CC79A7", "#56B4E9", "#F0E442", "#000000"];
// Each emotion's probability curve also has its own dash pattern, so the curves can be told
// apart without colour (the legend shows the pattern next to the colour).
const DASHES = [[], [9, 4], [2, 3], [10, 3, 2, 3], [5, 5], [1, 4]];

const root = document.getElementById("report");
if (root) {
  const lectureId = Number(root.dataset.lecture);
  const labels = JSON.parse(root.dataset.labels || "[]");
  const colour = (label, i = labels.indexOf(label)) => PALETTE[label] || EXTRA[i % EXTRA.length];
  const dash = (label) => DASHES[Math.max(labels.indexOf(label), 0) % DASHES.length];
  const lineSample = (l) => `<svg class="line-sample" width="30" height="10" aria-hidden="true"><line x1="0" y1="5" x2="30" y2="5" stroke="${colour(l)}" stroke-width="2.5" stroke-dasharray="${dash(l).join(" ")}"/></svg>`;
  const segments = new Map();
  const canvas = document.getElementById("timeline");
  const ctx = canvas.getContext("2d");
  const player = document.getElementById("player");
  const smooth = document.getElementById("smooth");
  const filter = document.getElementById("filter");
  let cursor = 0;
  let stopAt = null;

  document.getElementById("legend").innerHTML = labels
    .map((l) => `<li><span class="swatch" style="background:${colour(l)}"></span>${lineSample(l)}${l}</li>`).join("")
    + '<li><span class="swatch silence"></span>silence</li>';

  const sorted = () => [...segments.values()].sort((a, b) => a.index - b.index);

  function smoothed(list, window) {
    if (window <= 1) return list.map((s) => s.probabilities);
    const half = Math.floor(window / 2);
    return list.map((_, i) => {
      const out = Object.fromEntries(labels.map((l) => [l, 0]));
      let n = 0;
      for (let j = Math.max(0, i - half); j <= Math.min(list.length - 1, i + half); j++) {
        if (list[j].is_silence) continue;
        n++;
        for (const l of labels) out[l] += list[j].probabilities[l] || 0;
      }
      if (n) for (const l of labels) out[l] /= n;
      return out;
    });
  }

  function draw() {
    const list = sorted();
    const w = canvas.width, h = canvas.height, band = 30;
    ctx.clearRect(0, 0, w, h);
    if (!list.length) return;
    const end = list[list.length - 1].end_s;
    const x = (t) => (t / end) * w;
    for (const s of list) {
      ctx.fillStyle = s.is_silence ? "#e5e5e5" : colour(s.label);
      ctx.fillRect(x(s.start_s), 0, Math.max(1, x(s.end_s) - x(s.start_s)), band);
    }
    const probs = smoothed(list, Number(smooth.value));
    labels.forEach((l) => {
      ctx.strokeStyle = colour(l);
      ctx.lineWidth = 1.5;
      ctx.setLineDash(dash(l));
      ctx.beginPath();
      list.forEach((s, i) => {
        const y = h - 4 - (probs[i][l] || 0) * (h - band - 12);
        const px = x((s.start_s + s.end_s) / 2);
        if (i === 0) ctx.moveTo(px, y); else ctx.lineTo(px, y);
      });
      ctx.stroke();
    });
    ctx.setLineDash([]);
    // The current second: a dark frame inside a white one, visible on every band colour.
    const c = list[Math.min(cursor, list.length - 1)];
    const [cx, cw] = [x(c.start_s), Math.max(2, x(c.end_s) - x(c.start_s))];
    ctx.lineWidth = 4;
    ctx.strokeStyle = "#fff";
    ctx.strokeRect(cx, 1, cw, h - 2);
    ctx.lineWidth = 2;
    ctx.strokeStyle = "#14213d";
    ctx.strokeRect(cx, 1, cw, h - 2);
  }

  function fmt(t) { const m = Math.floor(t / 60); return `${m}:${String(Math.floor(t % 60)).padStart(2, "0")}`; }

  function renderTable() {
    const body = document.querySelector("#segments tbody");
    const f = filter.value;
    const threshold = 1.5 / Math.max(labels.length, 1);
    const rows = sorted().filter((s) => !f || (f === "speech" && !s.is_silence) || (f === "silence" && s.is_silence)
      || (f === "low" && !s.is_silence && s.confidence < threshold));
    body.innerHTML = rows.slice(0, 2000).map((s) => `<tr data-index="${s.index}"><td>${fmt(s.start_s)}–${fmt(s.end_s)}</td>
      <td>${s.is_silence ? '<span class="muted">silence</span>' : s.label}${!s.is_silence && s.confidence < threshold ? ' <span class="muted">(low confidence)</span>' : ""}</td>
      <td>${s.confidence == null ? "" : (s.confidence * 100).toFixed(0) + " %"}</td>
      <td><button type="button" class="play" data-index="${s.index}" aria-label="Play ${fmt(s.start_s)}">Play</button></td></tr>`).join("");
  }

  function renderSummary() {
    const list = sorted().filter((s) => !s.is_silence);
    if (!list.length) return;
    const secs = Object.fromEntries(labels.map((l) => [l, 0]));
    for (const s of list) secs[s.label] += s.end_s - s.start_s;
    const total = Object.values(secs).reduce((a, b) => a + b, 0) || 1;
    document.getElementById("summary").innerHTML = "<ul class='shares'>" + labels.map((l) =>
      `<li><span class="swatch" style="background:${colour(l)}"></span>${l}: ${(100 * secs[l] / total).toFixed(1)} %</li>`).join("") + "</ul>";
  }

  let pending = false;
  function refresh() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; draw(); renderTable(); renderSummary(); });
  }

  function add(list) { for (const s of list) segments.set(s.index, s); refresh(); }

  async function catchUp() {
    let url = `/api/lectures/${lectureId}/segments/?limit=1000`;
    while (url) {
      const page = await api(url).catch(() => null);
      if (!page) return;
      add(page.results);
      url = page.next;
    }
  }

  function play(index) {
    const s = segments.get(index);
    if (!s) return;
    cursor = sorted().findIndex((x) => x.index === index);
    player.currentTime = s.start_s;
    stopAt = s.end_s;
    player.play().catch(() => {});
    refresh();
  }

  player.addEventListener("timeupdate", () => {
    const list = sorted();
    const i = list.findIndex((s) => player.currentTime >= s.start_s && player.currentTime < s.end_s);
    if (i >= 0 && i !== cursor) { cursor = i; draw(); }
    if (stopAt !== null && player.currentTime >= stopAt) { player.pause(); stopAt = null; }
  });
  canvas.addEventListener("click", (e) => {
    const list = sorted();
    if (!list.length) return;
    const rect = canvas.getBoundingClientRect();
    const t = ((e.clientX - rect.left) / rect.width) * list[list.length - 1].end_s;
    const s = list.find((x) => t >= x.start_s && t < x.end_s) || list[list.length - 1];
    play(s.index);
  });
  canvas.addEventListener("keydown", (e) => {
    const list = sorted();
    if (!list.length) return;
    if (e.key === "ArrowRight") cursor = Math.min(cursor + 1, list.length - 1);
    else if (e.key === "ArrowLeft") cursor = Math.max(cursor - 1, 0);
    else if (e.key === "Enter" || e.key === " ") { play(list[cursor].index); e.preventDefault(); return; }
    else return;
    e.preventDefault();
    draw();
  });
  document.getElementById("segments").addEventListener("click", (e) => {
    const b = e.target.closest("button.play");
    if (b) play(Number(b.dataset.index));
  });
  smooth.addEventListener("change", draw);
  filter.addEventListener("change", renderTable);

  const socket = liveSocket();
  socket.on((msg) => {
    if (msg.type === "segments" && msg.data && msg.data.lecture === lectureId) add(msg.data.segments);
    if (msg.job && String(msg.job.id) === root.dataset.job && msg.job.state === "succeeded") catchUp();
  });
  socket.onReconnect.add(catchUp);
  catchUp();
}
