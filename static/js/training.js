// Training pages: the Train form (one submit per click, notices that follow the choices),
// a run's live page (progress details and epoch curves from the WebSocket "epoch" events,
// caught up from the API after every (re)connect), and confirmations on the models page.
import { h } from "./dom.js";
import { api, liveSocket } from "./live.js";

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
// Okabe–Ito colours, as the lecture report and the confusion matrices (blue shades), and
// never colour alone: the held-out line is dashed with round markers, training solid with
// square ones (the legend on the run page shows the same).
const TRAIN_COLOUR = "#0072B2";
const HELD_OUT_COLOUR = "#D55E00";

function setupTrainForm(form) {
  const buttons = form.querySelectorAll("[data-train-submit]");
  const status = document.getElementById("train-status");
  form.addEventListener("submit", (ev) => {
    if (form.dataset.submitted) { ev.preventDefault(); return; }
    form.dataset.submitted = "1";
    // A disabled button is not sent with the form: carry the chosen preset in a hidden field.
    const chosen = ev.submitter && ev.submitter.name === "preset" ? ev.submitter.value : "mixup";
    const hidden = document.createElement("input");
    hidden.type = "hidden"; hidden.name = "preset"; hidden.value = chosen;
    form.appendChild(hidden);
    buttons.forEach((b) => { b.disabled = true; });
    if (status) status.textContent = "Starting the training run…";
  });
  // Coming back with the browser's Back button must not leave the buttons dead.
  window.addEventListener("pageshow", () => {
    delete form.dataset.submitted;
    form.querySelectorAll('input[type="hidden"][name="preset"]').forEach((el) => el.remove());
    buttons.forEach((b) => { b.disabled = false; });
    if (status) status.textContent = "";
  });

  const backbone = document.getElementById("id_backbone");
  const notice = document.getElementById("backbone-notice");
  const showBackbone = () => {
    const option = backbone.selectedOptions[0];
    notice.hidden = !option || option.dataset.pretrained === "1";
  };
  backbone.addEventListener("change", showBackbone);
  showBackbone();

  const protocol = document.getElementById("id_protocol");
  const warning = document.getElementById("protocol-warning");
  const showProtocol = () => { warning.hidden = protocol.value !== "random_blocks"; };
  protocol.addEventListener("change", showProtocol);
  showProtocol();
}

// ---------------------------------------------------------------- curves

function drawCurves(canvas, history, key, { fromZero = false, unit = "", finished = false } = {}) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  const left = 48, right = 10, top = 12, bottom = 28;
  ctx.clearRect(0, 0, w, h);
  ctx.font = "12px system-ui, sans-serif";
  ctx.fillStyle = "#1d2430";
  const title = key === "loss" ? "Loss" : "Accuracy";
  canvas.dataset.points = String(history.length); // what the curve shows, for tests and tools
  if (!history.length) {
    ctx.fillText(finished ? `${title}: no epoch was completed.` : `${title}: waiting for the first epoch…`, left, h / 2);
    return;
  }
  const values = history.flatMap((e) => [e[key], e[`val_${key}`]]).filter((v) => v != null);
  const epochs = Math.max(...history.map((e) => e.epoch), 2);
  let lo = fromZero ? 0 : Math.min(...values);
  let hi = fromZero ? 1 : Math.max(...values);
  if (hi - lo < 1e-9) { hi += 0.5; lo = Math.max(0, lo - 0.5); }
  const x = (epoch) => left + ((epoch - 1) / (epochs - 1)) * (w - left - right);
  const y = (v) => top + (1 - (v - lo) / (hi - lo)) * (h - top - bottom);

  ctx.strokeStyle = "#d9dde3";
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(left, top); ctx.lineTo(left, h - bottom); ctx.lineTo(w - right, h - bottom);
  ctx.stroke();
  ctx.fillStyle = "#5b6472";
  const fmt = (v) => (unit === "%" ? `${Math.round(v * 100)}%` : v.toFixed(2));
  ctx.fillText(fmt(hi), 4, top + 8);
  ctx.fillText(fmt(lo), 4, h - bottom);
  ctx.fillText(`epoch 1`, left, h - 8);
  ctx.fillText(`${epochs}`, w - right - 16, h - 8);
  ctx.fillText(title, left + 8, top + 10);

  const folds = [...new Set(history.map((e) => e.fold || 1))];
  for (const fold of folds) {
    const points = history.filter((e) => (e.fold || 1) === fold).sort((a, b) => a.epoch - b.epoch);
    ctx.globalAlpha = fold === folds[folds.length - 1] ? 1 : 0.35;
    for (const [field, colour, dash, round] of [[key, TRAIN_COLOUR, [], false], [`val_${key}`, HELD_OUT_COLOUR, [6, 4], true]]) {
      const line = points.filter((e) => e[field] != null);
      if (!line.length) continue;
      ctx.strokeStyle = colour;
      ctx.fillStyle = colour;
      ctx.lineWidth = 2;
      ctx.setLineDash(dash);
      ctx.beginPath();
      line.forEach((e, i) => (i ? ctx.lineTo(x(e.epoch), y(e[field])) : ctx.moveTo(x(e.epoch), y(e[field]))));
      ctx.stroke();
      ctx.setLineDash([]);
      for (const e of line) {
        if (round) {
          ctx.beginPath();
          ctx.arc(x(e.epoch), y(e[field]), 3, 0, 2 * Math.PI);
          ctx.fill();
        } else {
          ctx.fillRect(x(e.epoch) - 3, y(e[field]) - 3, 6, 6);
        }
      }
    }
  }
  ctx.globalAlpha = 1;
}

function historyRows(history) {
  const pct = (v) => (v == null ? "" : `${(100 * v).toFixed(1)} %`);
  const num = (v) => (v == null ? "" : Number(v).toFixed(4));
  const secs = (v) => (v == null ? "" : Number(v).toFixed(1));
  return history.map((e) => h("tr", {}, ...[e.fold || 1, e.epoch, num(e.loss), pct(e.accuracy),
    num(e.val_loss), pct(e.val_accuracy), secs(e.seconds)].map((cell) => h("td", {}, cell))));
}

function setupRunPage(root) {
  const runId = Number(root.dataset.run);
  const jobId = Number(root.dataset.job);
  const initialState = root.dataset.state;
  let finished = TERMINAL.has(initialState);
  const epochs = new Map(); // "fold:epoch" -> entry
  const lossCanvas = document.getElementById("loss-curve");
  const accuracyCanvas = document.getElementById("accuracy-curve");
  const table = document.querySelector("#history-table tbody");
  const detail = document.getElementById("train-detail");

  const history = () => [...epochs.values()].sort((a, b) => (a.fold - b.fold) || (a.epoch - b.epoch));
  let pending = false;
  function redraw() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      const list = history();
      drawCurves(lossCanvas, list, "loss", { finished });
      drawCurves(accuracyCanvas, list, "accuracy", { fromZero: true, unit: "%", finished });
      table.replaceChildren(...historyRows(list));
    });
  }
  function add(entries) {
    for (const e of entries) epochs.set(`${e.fold || 1}:${e.epoch}`, { ...e, fold: e.fold || 1 });
    redraw();
  }
  async function catchUp() {
    const run = await api(`/api/training-runs/${runId}/`).catch(() => null);
    if (run) add(run.history || []);
  }

  function describe(data, job) {
    if (!data || data.run !== runId) return;
    const parts = [];
    if (job.stage === "training" && data.epoch) {
      parts.push(`epoch ${data.epoch} of ${data.epochs}`, `batch ${data.batch} of ${data.batches}`);
      if (data.loss != null) parts.push(`loss ${data.loss.toFixed(3)}`, `accuracy ${(100 * data.accuracy).toFixed(1)} %`);
    } else if (job.stage === "features") {
      parts.push(`frozen-layer features: batch ${data.batch} of ${data.batches}`);
    }
    if (data.fold && data.fold > 1) parts.unshift(`fold ${data.fold}`);
    if (data.eta_s != null && data.eta_s > 0) parts.push(`about ${Math.ceil(data.eta_s)} s left in this stage`);
    detail.textContent = parts.join(" · ");
  }

  const socket = liveSocket();
  if (jobId) socket.subscribe(jobId);
  socket.on((msg) => {
    if (msg.type === "epoch" && msg.data && msg.data.run === runId) add([msg.data]);
    if (!msg.job || msg.job.id !== jobId) return;
    if (msg.type === "progress") describe(msg.data, msg.job);
    if (TERMINAL.has(msg.job.state)) {
      detail.textContent = "";
      finished = true;
      redraw();
      const empty = document.getElementById("results-empty");
      if (empty && msg.job.state !== "succeeded") {
        empty.textContent = msg.job.state === "cancelled"
          ? "This run was cancelled before it finished: no model was saved."
          : "This run failed: no model was saved. The error is shown above.";
      }
      // The results table and matrices are drawn by the server: fetch them once, when done.
      if (msg.job.state === "succeeded" && !TERMINAL.has(initialState)) location.reload();
    }
  });
  socket.onReconnect.add(catchUp);
  catchUp();
}

function setupConfirmations() {
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (ev) => {
      if (!confirm(form.dataset.confirm)) ev.preventDefault();
    });
  });
}

const trainForm = document.getElementById("train-form");
if (trainForm) setupTrainForm(trainForm);
const runRoot = document.getElementById("run");
if (runRoot) setupRunPage(runRoot);
setupConfirmations();
