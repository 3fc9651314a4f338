// Upload one or many recordings with a progress bar each; then open the report.
// Size and type are checked before anything is sent: a file over the limit or of the
// wrong kind is refused here, inline, instead of after minutes of uploading.
import { h, setChildren, showAlert } from "./dom.js";
import { maxBytes, postForm, screenFiles, setupDropzone } from "./uploads.js";

const form = document.getElementById("upload-form");
if (form) {
  const input = document.getElementById("id_files");
  const zone = document.getElementById("dropzone");
  const refusals = document.getElementById("upload-refusals");
  const list = document.getElementById("upload-progress");
  const button = document.getElementById("upload-button");
  const hint = zone.querySelector("p").textContent;
  // Read when files are chosen, so the limit on the page is the one that applies.
  const checks = () => ({ limit: maxBytes(zone), accept: input.accept, kind: "an audio or video recording" });
  let files = [];

  setupDropzone(zone, input, (chosen) => {
    files = screenFiles(chosen, refusals, checks());
    zone.querySelector("p").textContent = files.length
      ? `${files.length} file(s) chosen: ${files.map((f) => f.name).join(", ")}`
      : hint;
  });

  const uploadOne = async (file) => {
    const bar = h("progress", { max: 1, value: 0, "aria-label": `Upload of ${file.name}` });
    const status = h("span", { class: "status" });
    list.append(h("li", {}, h("span", {}, file.name), " ", bar, " ", status));
    const data = new FormData(form);
    data.delete("file");
    data.set("file", file);
    if (!data.get("title")) data.delete("title");
    if (!data.get("recorded_on")) data.delete("recorded_on");
    const answer = await postForm(form.dataset.uploadUrl, data, (f) => { bar.value = f; });
    if (answer.ok) {
      bar.value = 1;
      setChildren(status, "uploaded — ", h("a", { href: `/lectures/${Number(answer.body.id)}/` }, "open the report"));
      return answer.body;
    }
    status.textContent = `not accepted: ${answer.detail}`;
    status.classList.add("error");
    status.setAttribute("role", "alert");
    return null;
  };

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!files.length) {
      // Refusals already on screen say why nothing is chosen; otherwise ask for a file.
      if (!refusals.childElementCount) showAlert(refusals, "Choose one or more recordings first.");
      return;
    }
    button.disabled = true;
    const done = [];
    for (const file of files) done.push(await uploadOne(file));
    button.disabled = false;
    const ok = done.filter(Boolean);
    if (files.length === 1 && ok.length === 1) location.href = `/lectures/${Number(ok[0].id)}/`;
  });
}
