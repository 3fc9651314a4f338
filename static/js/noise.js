// Noise upload by drag and drop: each file is sent with its own progress bar, then its
// spectrogram and a player appear, so the researcher can see and hear what arrived.
// Size and type are checked before sending; refusals appear inline.
import { h, setChildren, showAlert } from "./dom.js";
import { maxBytes, postForm, screenFiles, setupDropzone } from "./uploads.js";

const form = document.getElementById("noise-form");
if (form) {
  const input = document.getElementById("id_noise_files");
  const zone = document.getElementById("noise-drop");
  const refusals = document.getElementById("noise-refusals");
  const list = document.getElementById("noise-uploads");
  const button = document.getElementById("noise-button");
  const hint = zone.querySelector("p").textContent;
  // Read when files are chosen, so the limit on the page is the one that applies.
  const checks = () => ({ limit: maxBytes(zone), accept: input.accept, kind: "an audio recording" });
  let files = [];

  setupDropzone(zone, input, (chosen) => {
    files = screenFiles(chosen, refusals, checks());
    zone.querySelector("p").textContent = files.length
      ? `${files.length} file(s) chosen: ${files.map((f) => f.name).join(", ")}`
      : hint;
  });

  const showProfile = (item, p) => {
    const status = item.querySelector(".status");
    status.textContent = `added: ${p.duration_s.toFixed(1)} s, recorded at ${p.original_sample_rate} Hz, `
      + `level ${p.rms_dbfs.toFixed(1)} dBFS RMS / ${p.peak_dbfs.toFixed(1)} dBFS peak`;
    item.append(
      h("img", { src: p.spectrogram_url, alt: `Spectrogram of ${p.name}`, class: "spectrogram" }),
      h("audio", { controls: true, preload: "metadata", src: p.audio_url, "aria-label": `Listen to ${p.name}` }),
      h("a", { href: `/noise/${Number(p.id)}/` }, `Details of ${p.name}`),
    );
  };

  const uploadOne = async (file) => {
    const bar = h("progress", { max: 1, value: 0, "aria-label": `Upload of ${file.name}` });
    const status = h("span", { class: "status" });
    const item = h("li", {}, h("span", {}, file.name), " ", bar, " ", status);
    list.append(item);
    const data = new FormData(form);
    data.set("file", file);
    if (files.length > 1 || !data.get("name")) data.delete("name");
    const answer = await postForm(form.dataset.url, data, (f) => { bar.value = f; });
    if (answer.ok) {
      showProfile(item, answer.body);
    } else {
      status.textContent = `not accepted: ${answer.detail}`;
      status.classList.add("error");
      status.setAttribute("role", "alert");
    }
  };

  // The list of available noise, drawn by the server, again with the new recordings in it.
  // The server escaped every name; its nodes are moved over, never re-parsed from a string.
  const refreshList = async () => {
    const section = document.getElementById("available-noise");
    const res = await fetch(location.href, { credentials: "same-origin" }).catch(() => null);
    if (!section || !res || !res.ok) return;
    const fresh = new DOMParser().parseFromString(await res.text(), "text/html")
      .getElementById("available-noise");
    if (fresh) setChildren(section, ...document.adoptNode(fresh).childNodes);
  };

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!files.length) {
      if (!refusals.childElementCount) showAlert(refusals, "Choose one or more noise recordings first.");
      return;
    }
    button.disabled = true;
    refusals.replaceChildren();
    for (const file of files) await uploadOne(file);
    // Ready for the next recordings: a second click must not upload these again.
    files = [];
    input.value = "";
    form.elements.namedItem("name").value = "";
    zone.querySelector("p").textContent = hint;
    button.disabled = false;
    await refreshList();
  });
}
