// The page: wires the sections together around the shown model.

import { getJSON } from "./api.js";
import { setupDrawing, setupPrediction } from "./draw.js";
import { clearLayers, renderKernels, renderLayers, repaint } from "./layers.js";
import { setupPhotos } from "./photos.js";
import { setupConvolution, setupParameters, setupPooling } from "./playground.js";
import { setupTraining } from "./train.js";

const $ = (id) => document.getElementById(id);
const page = { model: null, result: null };
window.convlensPage = page; // for scripts and tests that drive the page

async function loadModel() {
  const status = $("model-status");
  try {
    page.model = await getJSON("/api/model");
  } catch (error) {
    status.textContent = error.message;
    status.classList.add("problem");
    return;
  }
  const m = page.model;
  status.classList.toggle("problem", !m.loaded || Boolean(m.problem));
  if (!m.loaded) {
    status.textContent = `${m.message}`;
    return;
  }
  const total = m.summary ? `, ${m.summary.total_params.toLocaleString("en")} parameters` : "";
  status.textContent = m.problem
    ? `${m.title} (${m.source}): ${m.problem}`
    : `Model: ${m.title}${total}. Input ${m.input_shape.join("x")}. From ${m.source}.${m.notice ? ` ${m.notice}` : ""}`;
  renderKernels($("kernel-list"), m.kernels || []);
}

const prediction = setupPrediction();
const drawing = setupDrawing({
  onResult(result) {
    page.result = result;
    prediction.show(result, page.model);
    renderLayers(result);
  },
  onError(error) {
    $("predict-error").textContent = error.message;
  },
  onClear() {
    page.result = null;
    prediction.clear();
    clearLayers();
  },
});
document.querySelectorAll('input[name="scale"]').forEach((radio) => radio.addEventListener("change", repaint));

let lastRefresh = 0;
setupTraining({
  async onModelChanged() {
    await loadModel();
    drawing.repredict();
  },
  onProgress() {
    const now = performance.now();
    if (now - lastRefresh < 1000) return; // the drawing follows the model as it learns, once a second
    lastRefresh = now;
    drawing.repredict();
  },
});
setupConvolution();
setupPooling();
setupParameters();
setupPhotos();
loadModel();
