// covidxray page: send the chosen X-ray to /api/v1/predict?heatmap=true and show the answer.
// No network access beyond this server; every asset is served by covidxray itself.
"use strict";

const $ = (id) => document.getElementById(id);
const LABEL_NAMES = { p_covid: "COVID-19", p_pneumonia: "Other pneumonia", p_normal: "Normal", p_not_covid: "Not COVID-19" };
const present = (value) => value !== null && value !== undefined;

// One number format per kind of value, everywhere on the page.
function formatProbability(value) {
  return present(value) ? Number(value).toFixed(3) : "\u2013";
}

function formatScore(value) {
  return present(value) ? Number(value).toFixed(1) : "\u2013";
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

function clearResult() {
  // A new upload, or a refused one, leaves nothing of the previous result on screen.
  $("result").hidden = true;
  $("radiograph").removeAttribute("src");
  $("heatmap").removeAttribute("src");
  $("probabilities").replaceChildren();
}

function probabilityRows(answer) {
  // The API gives p_covid always, p_pneumonia and p_normal for three-class models.
  const rows = [["p_covid", answer.p_covid]];
  if ("p_pneumonia" in answer) {
    rows.push(["p_pneumonia", answer.p_pneumonia], ["p_normal", answer.p_normal]);
  } else if (present(answer.p_covid)) {
    rows.push(["p_not_covid", 1 - answer.p_covid]);
  }
  return rows;
}

function renderBars(answer) {
  const list = $("probabilities");
  list.replaceChildren();
  for (const [key, value] of probabilityRows(answer)) {
    const item = document.createElement("li");
    item.dataset.key = key;
    const name = document.createElement("span");
    name.textContent = LABEL_NAMES[key] || key;
    const bar = document.createElement("div");
    bar.className = "bar";
    const fill = document.createElement("span");
    fill.style.width = present(value) ? `${(100 * value).toFixed(1)}%` : "0%";
    bar.append(fill);
    const shown = document.createElement("span");
    shown.className = "value";
    shown.id = key.replace("_", "-");
    shown.dataset.value = present(value) ? String(value) : "";
    shown.textContent = formatProbability(value);
    item.append(name, bar, shown);
    list.append(item);
  }
}

function renderSeverity(answer) {
  const extent = answer.severity_extent, opacity = answer.severity_opacity;
  $("severity").hidden = !(present(extent) || present(opacity));
  $("severity-extent").textContent = formatScore(extent);
  $("severity-opacity").textContent = formatScore(opacity);
}

function ruleText(answer) {
  if ("p_pneumonia" in answer) {
    return "The decision is the most probable of the three classes.";
  }
  return `The decision is covid when p(covid) reaches the threshold of ${formatProbability(answer.threshold)}, `
    + "chosen on the model's validation images.";
}

function renderPictures(answer, screened) {
  const radiograph = $("radiograph"), heat = $("heatmap");
  if (answer.image_png) {
    radiograph.src = `data:image/png;base64,${answer.image_png}`;
  } else {
    radiograph.removeAttribute("src");
  }
  const withMap = screened && Boolean(answer.heatmap_png);
  $("heatmap-controls").hidden = !withMap;
  heat.hidden = !withMap;
  if (withMap) {
    heat.src = `data:image/png;base64,${answer.heatmap_png}`;
    $("heatmap-note").textContent = `Grad-CAM: the brighter a region, the more it drove the model's score for `
      + `"${answer.heatmap_class}". The map explains the score; it does not show where disease is. `
      + "The cyan line is the lungs as the segmenter found them.";
  } else {
    heat.removeAttribute("src");
    $("heatmap-note").textContent = screened
      ? "No heat map was made for this image."
      : "The image as it was read. No heat map: the model did not read it.";
  }
  applyOpacity();
}

function render(answer) {
  $("filename").textContent = answer.filename;
  // The answer's one status: "screened", "warned" (a probability, with what to check) or "refused" (none).
  const status = answer.status;
  const screened = status === "screened" || status === "warned";
  $("result").dataset.status = status;
  $("not-screened").hidden = screened;
  $("screened").hidden = !screened;
  if (!screened) {
    const reason = (answer.input_note || "").replace(/^not screened:\s*/i, "");  // the heading says it already
    $("refusal-reason").textContent = reason || "it does not look like a frontal chest radiograph.";
  } else {
    $("gate-warning").hidden = status !== "warned";
    $("gate-note").textContent = status === "warned" ? answer.input_note : "";
    $("decision").textContent = answer.prediction;
    $("rule").textContent = ruleText(answer);
    renderBars(answer);
    renderSeverity(answer);
  }
  renderPictures(answer, screened);
  const model = answer.model || {};
  $("model").textContent = model.name
    ? `Model ${model.name} (version ${model.version}), covidxray ${model.covidxray_version}.` : "";
  $("result").hidden = false;
}

function applyOpacity() {
  const percent = Number($("opacity").value);
  $("heatmap").style.opacity = String(percent / 100);
  $("opacity-value").textContent = `${percent}%`;
}

function showSize() {
  const picture = $("radiograph");
  $("image-size").textContent = picture.naturalWidth
    ? `Shown at its own size or smaller: ${picture.naturalWidth} \u00d7 ${picture.naturalHeight} pixels as read.` : "";
}

async function screen(file) {
  $("error").hidden = true;
  clearResult();
  $("status").textContent = `Screening ${file.name}\u2026`;
  const form = new FormData();
  form.append("file", file, file.name);
  let response;
  try {
    response = await fetch("/api/v1/predict?heatmap=true", { method: "POST", body: form });
  } catch (failure) {
    $("status").textContent = "";
    showError(`Could not reach the covidxray server (${failure.message}).`);
    return;
  }
  if (response.status === 401) {  // the token's session ended (or the token changed): sign in again
    window.location.assign("/sign-in");
    return;
  }
  const answer = await response.json().catch(() => ({ detail: `HTTP ${response.status}` }));
  if (!response.ok) {
    $("status").textContent = `${file.name} was not screened.`;
    showError(`${response.status}: ${answer.detail || "the server refused the file"}`);
    return;
  }
  $("status").textContent = answer.status === "refused" ? `${file.name} was read but not screened.` : `Screened ${file.name}.`;
  render(answer);
}

function setUp() {
  const zone = $("dropzone");
  $("file-input").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) screen(file);
    event.target.value = "";  // the same file chosen again is screened again
  });
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => { event.preventDefault(); zone.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) {
    zone.addEventListener(name, () => zone.classList.remove("over"));
  }
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    const file = event.dataTransfer.files[0];
    if (file) screen(file);
  });
  $("opacity").addEventListener("input", applyOpacity);
  $("radiograph").addEventListener("load", showSize);
}

setUp();
