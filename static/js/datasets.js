// Dataset import: the archive (or, for staff, a server folder) goes to the API with an
// upload progress bar; then the import job's progress arrives over the live socket.
// The archive's size and type are checked before sending; refusals appear inline.
import { h, setChildren, showAlert } from "./dom.js";
import { liveSocket, renderJob } from "./live.js";
import { maxBytes, postForm, screenFiles, setupDropzone } from "./uploads.js";

const form = document.getElementById("import-form");
if (form) {
  const input = document.getElementById("id_file");
  const zone = document.getElementById("archive-drop");
  const refusals = document.getElementById("archive-refusals");
  const layout = document.getElementById("id_layout");
  const directory = document.getElementById("id_directory");
  const button = document.getElementById("import-button");
  const status = document.getElementById("import-status");
  const hint = zone.querySelector("p").textContent;
  // Read when files are chosen, so the limit on the page is the one that applies.
  const checks = () => ({ limit: maxBytes(zone), accept: input.accept, kind: "a zip or tar archive" });
  let archive = null;

  const showOptions = () => form.querySelectorAll("[data-layouts]").forEach((el) => {
    el.hidden = !el.dataset.layouts.split(" ").includes(layout.value);
  });
  layout.addEventListener("change", showOptions);
  showOptions();

  setupDropzone(zone, input, (files) => {
    archive = screenFiles(files.slice(0, 1), refusals, checks())[0] || null;
    zone.querySelector("p").textContent = archive
      ? `Chosen: ${archive.name} (${(archive.size / 1e6).toFixed(1)} MB)`
      : hint;
  });

  const showJob = (dataset) => {
    const job = dataset.import_job;
    const card = h("div", { class: "card", dataset: { liveJob: Number(job.id) } },
      h("p", {}, "Import: ", h("span", { dataset: { field: "state" } }), " ", h("span", { dataset: { field: "message" } })),
      h("progress", { dataset: { field: "progress" }, max: 1, value: 0, "aria-label": "Import progress" }),
      h("p", { dataset: { field: "error" }, class: "error", role: "alert", hidden: true }),
      h("p", {}, h("a", { href: `/datasets/${Number(dataset.id)}/` }, "Open the dataset")));
    setChildren(status, card);
    renderJob(card, job);
    liveSocket().subscribe(job.id);
  };

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const fromFolder = directory && directory.value.trim();
    if (!archive && !fromFolder) {
      if (!refusals.childElementCount) showAlert(refusals, "Choose an archive first.");
      return;
    }
    const data = new FormData(form);
    data.delete("file");
    if (archive && !fromFolder) data.set("file", archive);
    if (!fromFolder) data.delete("directory");
    button.disabled = true; // one click, one import
    refusals.replaceChildren();
    const bar = h("progress", { id: "archive-upload", max: 1, value: 0 });
    setChildren(status, h("label", { for: "archive-upload" }, "Uploading"), " ", bar);
    const answer = await postForm(form.dataset.url, data, (f) => { bar.value = f; });
    button.disabled = false;
    if (answer.ok) showJob(answer.body);
    else showAlert(status, `Not accepted: ${answer.detail}`);
  });
}
