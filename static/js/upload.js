// Upload one or many recordings with a progress bar each; then open the report.
import { csrfToken } from "./live.js";

const form = document.getElementById("upload-form");
if (form) {
  const input = document.getElementById("id_files");
  const zone = document.getElementById("dropzone");
  const list = document.getElementById("upload-progress");
  const button = document.getElementById("upload-button");
  let files = [];
  const setFiles = (chosen) => {
    files = Array.from(chosen);
    zone.querySelector("p").textContent = files.length
      ? `${files.length} file(s) chosen: ${files.map((f) => f.name).join(", ")}`
      : "Drop recordings here, or press Enter to choose files.";
  };
  input.addEventListener("change", () => setFiles(input.files));
  zone.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); } });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); setFiles(e.dataTransfer.files); });

  const uploadOne = (file) => new Promise((resolve) => {
    const item = document.createElement("li");
    item.innerHTML = `<span></span> <progress max="1" value="0" aria-label="Upload of ${file.name}"></progress> <span class="status"></span>`;
    item.firstElementChild.textContent = file.name;
    list.append(item);
    const bar = item.querySelector("progress");
    const status = item.querySelector(".status");
    const data = new FormData(form);
    data.delete("file");
    data.set("file", file);
    if (!data.get("title")) data.delete("title");
    if (!data.get("recorded_on")) data.delete("recorded_on");
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.dataset.uploadUrl);
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (e) => { if (e.lengthComputable) bar.value = e.loaded / e.total; });
    xhr.addEventListener("load", () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status === 201) {
        bar.value = 1;
        status.innerHTML = `uploaded — <a href="/lectures/${body.id}/">open the report</a>`;
        resolve(body);
      } else {
        const detail = body && (body.detail || Object.values(body).flat().join(" "));
        status.textContent = `not accepted: ${detail || `the server answered ${xhr.status}`}`;
        status.classList.add("error");
        resolve(null);
      }
    });
    xhr.addEventListener("error", () => { status.textContent = "the connection failed; please try again"; resolve(null); });
    xhr.send(data);
  });

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!files.length) { alert("Choose one or more recordings first."); return; }
    button.disabled = true;
    const done = [];
    for (const file of files) done.push(await uploadOne(file));
    button.disabled = false;
    const ok = done.filter(Boolean);
    if (files.length === 1 && ok.length === 1) location.href = `/lectures/${ok[0].id}/`;
  });
}
