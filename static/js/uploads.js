// What every upload form shares (recordings, noise, corpus archives): a drop zone that
// the keyboard can open too, checks of size and type before a byte is sent, and a POST
// with upload progress.
import { csrfToken } from "./live.js";

// 800 kB, 12.5 MB, 2.1 GB: the server's own wording (emotions.services.files.human_size).
export function humanSize(n) {
  for (const [unit, scale] of [["GB", 1e9], ["MB", 1e6], ["kB", 1e3]]) {
    if (n >= scale) return `${Number((n / scale).toPrecision(4))} ${unit}`;
  }
  return `${n} bytes`;
}

// The drop zone's limit (data-max-bytes, from settings.MAX_UPLOAD_BYTES); 0: none known.
export function maxBytes(zone) {
  return Number(zone.dataset.maxBytes) || 0;
}

// Does the file match the input's accept list (".wav", "audio/*", "application/zip")?
// A dropped file never went through the chooser's filter, so the same list is checked here.
export function accepted(file, accept) {
  const tokens = (accept || "").split(",").map((t) => t.trim().toLowerCase()).filter(Boolean);
  if (!tokens.length) return true;
  const name = file.name.toLowerCase();
  const type = (file.type || "").toLowerCase();
  return tokens.some((t) => (t.startsWith(".") ? name.endsWith(t)
    : t.endsWith("/*") ? type.startsWith(t.slice(0, -1)) : type === t));
}

// Why this file is not sent (a sentence for the user), or "" when it may go.
export function refusal(file, { limit = 0, accept = "", kind = "a file this form takes" } = {}) {
  if (!accepted(file, accept)) return `“${file.name}” is not ${kind}.`;
  if (file.size === 0) return `“${file.name}” is empty.`;
  if (limit && file.size > limit) {
    return `“${file.name}” is ${humanSize(file.size)}; the limit is ${humanSize(limit)}.`;
  }
  return "";
}

// Split chosen files into those that may go and the refusals; the refusals are shown in
// `where` as one inline alert (role=alert, read out), never as a dialog.
export function screenFiles(files, where, options) {
  const keep = [];
  const refused = [];
  for (const file of files) {
    const why = refusal(file, options);
    if (why) refused.push(why); else keep.push(file);
  }
  where.replaceChildren();
  if (refused.length) {
    const alert = document.createElement("div");
    alert.className = "error";
    alert.setAttribute("role", "alert");
    for (const why of refused) {
      const line = document.createElement("p");
      line.textContent = `Not sent: ${why}`;
      alert.append(line);
    }
    where.append(alert);
  }
  return keep;
}

// A drop zone that also opens the file chooser from the keyboard.
export function setupDropzone(zone, input, onFiles) {
  input.addEventListener("change", () => onFiles(Array.from(input.files)));
  zone.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); }
  });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    onFiles(Array.from(e.dataTransfer.files));
  });
}

// The server's refusal as one readable sentence.
function detailOf(body, status) {
  if (body && typeof body === "object") {
    if (body.detail) return String(body.detail);
    const fields = Object.entries(body).map(([k, v]) => `${k}: ${[v].flat().join(" ")}`).join("; ");
    if (fields) return fields;
  }
  if (status === 413) return "the file is larger than the server accepts";
  return `the server answered ${status}`;
}

// POST a FormData with upload progress; resolves {ok, status, body, detail}.
export function postForm(url, data, onProgress) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); });
    xhr.addEventListener("load", () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      const ok = xhr.status >= 200 && xhr.status < 300;
      resolve({ ok, status: xhr.status, body, detail: ok ? "" : detailOf(body, xhr.status) });
    });
    xhr.addEventListener("error", () => resolve({ ok: false, status: 0, body: null, detail: "the connection failed; please try again" }));
    xhr.send(data);
  });
}
