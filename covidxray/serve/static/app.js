// covidxray page: send the chosen X-ray to /api/v1/predict?heatmap=true and show the answer.
// No network access beyond this server; every asset is served by covidxray itself.
"use strict";

const $ = (id) => document.getElementById(id);
const LABEL_NAMES = { p_covid: "COVID-19", p_pneumonia: "Other pneumonia", p_normal: "Normal", p_not_covid: "Not COVID-19" };

function formatProbability(value) {
  return value === null || value === undefined ? "\u2013" : Number(value).toFixed(3);
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

function probabilityRows(answer) {
  // The API gives p_covid always, p_pneumonia and p_normal for three-class models.
  const rows = [["p_covid", answer.p_covid]];
  if ("p_pneumonia" in answer) {
    rows.push(["p_pneumonia", answer.p_pneumonia], ["p_normal", answer.p_normal]);
  } else if (answer.p_covid !== null && answer.p_covid !== undefined) {
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
    fill.style.width = value === null || value === undefined ? "0%" : `${(100 * value).toFixed(1)}%`;
    bar.append(fill);
    const shown = document.createElement("span");
    shown.className = "value";
    shown.id = key.replace("_", "-");
    shown.dataset.value = value === null || value === undefined ? "" : String(value);
    shown.textContent = formatProbability(value);
    item.append(name, bar, shown);
    list.append(item);
  }
}

function renderSeverity(answer) {
  const extent = answer.severity_extent, opacity = answer.severity_opacity;
  const present = (v) => v !== null && v !== undefined;
  $("severity").hidden = !(present(extent) || present(opacity));
  $("severity-extent").textContent = present(extent) ? Number(extent).toFixed(2) : "\u2013";
  $("severity-opacity").textContent = present(opacity) ? Number(opacity).toFixed(2) : "\u2013";
}

function render(answer) {
  $("filename").textContent = answer.filename;
  $("decision").textContent = answer.prediction;
  $("threshold").textContent = formatProbability(answer.threshold);
  $("rule").textContent = "p_pneumonia" in answer
    ? "The decision is the most probable class." : "The decision is covid when p(covid) reaches the threshold.";
  // Two levels: "refused" (no probability) and "warning" (a probability, with what to check).
  const status = answer.input_status || (answer.input_ok === false ? "refused" : "ok");
  $("gate-warning").hidden = status === "ok";
  $("gate-warning").dataset.status = status;
  $("gate-title").textContent = status === "refused"
    ? "Not screened: this does not look like a frontal chest radiograph."
    : "Screened with a warning: check the image before trusting the result.";
  $("gate-note").textContent = status === "ok" ? "" : answer.input_note;
  renderBars(answer);
  renderSeverity(answer);
  $("radiograph").src = answer.image_png ? `data:image/png;base64,${answer.image_png}` : "";
  const heat = $("heatmap");
  if (answer.heatmap_png) {
    heat.src = `data:image/png;base64,${answer.heatmap_png}`;
    heat.hidden = false;
    $("opacity").disabled = false;
    $("heatmap-note").textContent = `Grad-CAM regions that drove the score for "${answer.heatmap_class}".`;
  } else {
    heat.removeAttribute("src");
    heat.hidden = true;
    $("opacity").disabled = true;
    $("heatmap-note").textContent = "No heat map: the image was not assessed.";
  }
  applyOpacity();
  const model = answer.model || {};
  $("model").textContent = `Model ${model.name} (version ${model.version}), covidxray ${model.covidxray_version}.`;
  $("result").hidden = false;
}

function applyOpacity() {
  const percent = Number($("opacity").value);
  $("heatmap").style.opacity = String(percent / 100);
  $("opacity-value").textContent = `${percent}%`;
}

async function screen(file) {
  $("error").hidden = true;
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
  const answer = await response.json().catch(() => ({ detail: `HTTP ${response.status}` }));
  if (!response.ok) {
    $("status").textContent = "";
    showError(`${response.status}: ${answer.detail || "the server refused the file"}`);
    return;
  }
  $("status").textContent = `Screened ${file.name}.`;
  render(answer);
}

function setUp() {
  const zone = $("dropzone");
  $("file-input").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) screen(file);
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
}

setUp();
