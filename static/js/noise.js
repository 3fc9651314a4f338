// Noise upload by drag and drop: each file is sent with its own progress bar, then its
// spectrogram and a player appear, so the researcher can see and hear what arrived.
import { postForm, setupDropzone } from "./datasets.js";

const form = document.getElementById("noise-form");
if (form) {
  const input = document.getElementById("id_noise_files");
  const zone = document.getElementById("noise-drop");
  const list = document.getElementById("noise-uploads");
  const button = document.getElementById("noise-button");
  let files = [];

  setupDropzone(zone, input, (chosen) => {
    files = chosen;
    zone.querySelector("p").textContent = files.length
      ? `${files.length} file(s) chosen: ${files.map((f) => f.name).join(", ")}`
      : "Drop noise recordings here, or press Enter to choose files.";
  });

  const showProfile = (item, p) => {
    const status = item.querySelector(".status");
    status.textContent = `added: ${p.duration_s.toFixed(1)} s, recorded at ${p.original_sample_rate} Hz, `
      + `level ${p.rms_dbfs.toFixed(1)} dBFS RMS / ${p.peak_dbfs.toFixed(1)} dBFS peak`;
    const img = document.createElement("img");
    img.src = p.spectrogram_url;
    img.alt = `Spectrogram of ${p.name}`;
    img.className = "spectrogram";
    const audio = document.createElement("audio");
    audio.controls = true;
    audio.preload = "metadata";
    audio.src = p.audio_url;
    audio.setAttribute("aria-label", `Listen to ${p.name}`);
    const link = document.createElement("a");
    link.href = `/noise/${p.id}/`;
    link.textContent = `Details of ${p.name}`;
    item.append(img, audio, link);
  };

  const uploadOne = async (file) => {
    const item = document.createElement("li");
    item.innerHTML = '<span></span> <progress max="1" value="0"></progress> <span class="status"></span>';
    item.firstElementChild.textContent = file.name;
    item.querySelector("progress").setAttribute("aria-label", `Upload of ${file.name}`);
    list.append(item);
    const data = new FormData(form);
    data.set("file", file);
    if (files.length > 1 || !data.get("name")) data.delete("name");
    const answer = await postForm(form.dataset.url, data, (f) => { item.querySelector("progress").value = f; });
    if (answer.ok) {
      showProfile(item, answer.body);
    } else {
      const status = item.querySelector(".status");
      status.textContent = `not accepted: ${answer.detail}`;
      status.classList.add("error");
    }
  };

  // The list of available noise, drawn by the server, again with the new recordings in it.
  const refreshList = async () => {
    const section = document.getElementById("available-noise");
    const res = await fetch(location.href, { credentials: "same-origin" }).catch(() => null);
    if (!section || !res || !res.ok) return;
    const fresh = new DOMParser().parseFromString(await res.text(), "text/html")
      .getElementById("available-noise");
    if (fresh) section.innerHTML = fresh.innerHTML;
  };

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!files.length) { alert("Choose one or more noise recordings first."); return; }
    button.disabled = true;
    for (const file of files) await uploadOne(file);
    // Ready for the next recordings: a second click must not upload these again.
    files = [];
    input.value = "";
    form.elements.namedItem("name").value = "";
    zone.querySelector("p").textContent = "Drop noise recordings here, or press Enter to choose files.";
    button.disabled = false;
    await refreshList();
  });
}
