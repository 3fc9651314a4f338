// Dataset import: the archive (or, for staff, a server folder) goes to the API with an
// upload progress bar; then the import job's progress arrives over the live socket.
import { csrfToken, liveSocket, renderJob } from "./live.js";

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
      const detail = body && (body.detail || Object.entries(body).map(([k, v]) => `${k}: ${[v].flat().join(" ")}`).join("; "));
      resolve({ ok, status: xhr.status, body, detail: ok ? "" : (detail || `the server answered ${xhr.status}`) });
    });
    xhr.addEventListener("error", () => resolve({ ok: false, status: 0, body: null, detail: "the connection failed; please try again" }));
    xhr.send(data);
  });
}

const form = document.getElementById("import-form");
if (form) {
  const input = document.getElementById("id_file");
  const zone = document.getElementById("archive-drop");
  const layout = document.getElementById("id_layout");
  const directory = document.getElementById("id_directory");
  const button = document.getElementById("import-button");
  const status = document.getElementById("import-status");
  let archive = null;

  const showOptions = () => form.querySelectorAll("[data-layouts]").forEach((el) => {
    el.hidden = !el.dataset.layouts.split(" ").includes(layout.value);
  });
  layout.addEventListener("change", showOptions);
  showOptions();

  setupDropzone(zone, input, (files) => {
    archive = files[0] || null;
    zone.querySelector("p").textContent = archive
      ? `Chosen: ${archive.name} (${(archive.size / 1e6).toFixed(1)} MB)`
      : "Drop the corpus as one archive here, or press Enter to choose it.";
  });

  const showJob = (dataset) => {
    const job = dataset.import_job;
    status.innerHTML = `
      <div class="card" data-live-job="${job.id}">
        <p>Import: <span data-field="state"></span> <span data-field="message"></span></p>
        <progress data-field="progress" max="1" value="0" aria-label="Import progress"></progress>
        <p data-field="error" class="error" role="alert" hidden></p>
        <p><a href="/datasets/${dataset.id}/">Open the dataset</a></p>
      </div>`;
    renderJob(status.firstElementChild, job);
    liveSocket().subscribe(job.id);
  };

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const fromFolder = directory && directory.value.trim();
    if (!archive && !fromFolder) { status.textContent = "Choose an archive first."; return; }
    const data = new FormData(form);
    data.delete("file");
    if (archive && !fromFolder) data.set("file", archive);
    if (!fromFolder) data.delete("directory");
    button.disabled = true; // one click, one import
    status.innerHTML = '<label for="archive-upload">Uploading</label> <progress id="archive-upload" max="1" value="0"></progress>';
    const bar = status.querySelector("progress");
    const answer = await postForm(form.dataset.url, data, (f) => { bar.value = f; });
    button.disabled = false;
    if (answer.ok) {
      showJob(answer.body);
    } else {
      status.innerHTML = '<p class="error" role="alert"></p>';
      status.firstElementChild.textContent = `Not accepted: ${answer.detail}`;
    }
  });
}
