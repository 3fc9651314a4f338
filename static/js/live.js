// Live updates over the WebSocket: job states and progress, with reconnect and
// back-off; after each (re)connect the page catches up from the API, so nothing
// is missed while the socket was down. No framework, no build step.

const STATE_LABELS = {
  queued: "Queued", running: "Running", succeeded: "Succeeded",
  failed: "Failed", cancelled: "Cancelled",
};
const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

export function csrfToken() {
  const m = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

export async function api(path, options = {}) {
  const headers = { Accept: "application/json", "X-CSRFToken": csrfToken(), ...(options.headers || {}) };
  const res = await fetch(path, { credentials: "same-origin", ...options, headers });
  const body = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) throw new Error((body && body.detail) || `The server answered ${res.status}.`);
  return body;
}

// One socket per page; listeners get every message {type, job, data}.
export class LiveSocket {
  constructor(path = "/ws/jobs/") {
    this.path = path;
    this.listeners = new Set();
    this.subscriptions = new Set();
    this.onReconnect = new Set();
    this.delay = 500;
    this.connect();
  }
  url() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    return `${proto}//${location.host}${this.path}`;
  }
  connect() {
    this.ws = new WebSocket(this.url());
    this.ws.addEventListener("open", () => {
      this.delay = 500;
      for (const id of this.subscriptions) this.send({ action: "subscribe", job: id });
      for (const fn of this.onReconnect) fn();
    });
    this.ws.addEventListener("message", (ev) => {
      const msg = JSON.parse(ev.data);
      for (const fn of this.listeners) fn(msg);
    });
    this.ws.addEventListener("close", (ev) => {
      if (ev.code === 4401 || ev.code === 4403) return; // not signed in / not allowed
      setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 15000);
    });
  }
  send(obj) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(obj));
  }
  subscribe(jobId) {
    this.subscriptions.add(jobId);
    this.send({ action: "subscribe", job: jobId });
  }
  on(fn) { this.listeners.add(fn); }
}

export function renderJob(root, job) {
  const state = root.querySelector('[data-field="state"]');
  if (state) {
    state.textContent = STATE_LABELS[job.state] || job.state;
    state.className = `state state-${job.state}`;
  }
  const bar = root.querySelector('[data-field="progress"]');
  if (bar) bar.value = job.progress;
  const message = root.querySelector('[data-field="message"]');
  if (message) message.textContent = job.message;
  const error = root.querySelector('[data-field="error"]');
  if (error) { error.textContent = job.error; error.hidden = !job.error; }
  if (TERMINAL.has(job.state)) {
    root.querySelectorAll("[data-cancel-job]").forEach((b) => b.remove());
  }
}

let live = null;
export function liveSocket() {
  if (!live) {
    live = new LiveSocket();
    window.sersiteLive = live; // for diagnostics and the browser tests
  }
  return live;
}

function setupIndicator(socket) {
  const badge = document.getElementById("jobs-indicator");
  if (!badge) return;
  const running = new Map();
  const show = () => { badge.textContent = running.size ? `${running.size} running` : ""; };
  const refresh = async () => {
    const page = await api("/api/jobs/?limit=100").catch(() => null);
    if (!page) return;
    running.clear();
    for (const job of page.results) if (!TERMINAL.has(job.state)) running.set(job.id, job);
    show();
  };
  socket.onReconnect.add(refresh);
  socket.on((msg) => {
    if (!msg.job) return;
    if (TERMINAL.has(msg.job.state)) running.delete(msg.job.id); else running.set(msg.job.id, msg.job);
    show();
  });
}

function setupJobViews(socket) {
  const rows = () => document.querySelectorAll("[data-live-jobs] [data-job]");
  socket.on((msg) => {
    if (!msg.job) return;
    document.querySelectorAll(`[data-job="${msg.job.id}"], [data-live-job="${msg.job.id}"]`)
      .forEach((el) => renderJob(el, msg.job));
  });
  document.querySelectorAll("[data-live-job]").forEach((el) => {
    const id = Number(el.dataset.liveJob);
    socket.subscribe(id);
    // A shared object's page may show a job of its owner's that this user cannot read.
    socket.onReconnect.add(async () => {
      const job = await api(`/api/jobs/${id}/`).catch(() => null);
      if (job) renderJob(el, job);
    });
  });
  socket.onReconnect.add(async () => {
    for (const row of rows()) {
      const job = await api(`/api/jobs/${row.dataset.job}/`).catch(() => null);
      if (job) renderJob(row, job);
    }
  });
  document.addEventListener("click", async (ev) => {
    const button = ev.target.closest("[data-cancel-job]");
    if (!button) return;
    if (!confirm("Stop this job? Work done so far is discarded.")) return;
    button.disabled = true;
    try {
      const job = await api(`/api/jobs/${button.dataset.cancelJob}/cancel/`, { method: "POST" });
      document.querySelectorAll(`[data-live-job="${job.id}"]`).forEach((el) => renderJob(el, job));
    } catch (err) {
      button.disabled = false;
      // The refusal next to the job, read out (role=alert on the error field), not a dialog.
      const card = button.closest("[data-live-job], [data-job]");
      const where = card && card.querySelector('[data-field="error"]');
      if (where) { where.textContent = err.message; where.hidden = false; } else alert(err.message);
    }
  });
}

if (document.body && document.querySelector("[data-live-user]")) {
  const socket = liveSocket();
  setupIndicator(socket);
  setupJobViews(socket);
}
