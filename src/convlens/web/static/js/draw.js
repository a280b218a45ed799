// 1. The drawing pad: pointer strokes (or a dropped picture) -> POST /api/predict while drawing.

import { latestOnly, postFile } from "./api.js";
import { paintMatrix } from "./colors.js";

const STROKE = 22; // on the 280-pixel pad: about MNIST's stroke once the digit is scaled to 20 of 28 pixels

export function setupDrawing({ onResult, onError, onClear }) {
  const canvas = document.getElementById("draw-canvas");
  const context = canvas.getContext("2d");
  let drawing = false;
  let last = null;
  let hasInk = false;
  let generation = 0; // bumped by Clear: answers to requests sent before it are dropped

  function blank() {
    context.fillStyle = "#fff";
    context.fillRect(0, 0, canvas.width, canvas.height);
    hasInk = false;
  }
  blank();

  function point(event) {
    const box = canvas.getBoundingClientRect();
    return [((event.clientX - box.left) * canvas.width) / box.width, ((event.clientY - box.top) * canvas.height) / box.height];
  }

  function stroke(from, to) {
    context.strokeStyle = "#000";
    context.fillStyle = "#000";
    context.lineWidth = STROKE;
    context.lineCap = "round";
    context.lineJoin = "round";
    context.beginPath();
    if (from[0] === to[0] && from[1] === to[1]) {
      context.arc(from[0], from[1], STROKE / 2, 0, 2 * Math.PI); // a zero-length line draws nothing
      context.fill();
    } else {
      context.moveTo(from[0], from[1]);
      context.lineTo(to[0], to[1]);
      context.stroke();
    }
    hasInk = true;
  }

  const sendCanvas = latestOnly(async () => {
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
    return postFile("/api/predict", new File([blob], "drawing.png", { type: "image/png" }));
  });
  const sendFile = latestOnly((file) => postFile("/api/predict", file));

  async function deliver(promise) {
    const sent = generation;
    try {
      const result = await promise;
      if (result && sent === generation) onResult(result);
    } catch (error) {
      if (sent === generation) onError(error);
    }
  }

  function predictDrawing() {
    if (hasInk) deliver(sendCanvas());
  }

  canvas.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    drawing = true;
    last = point(event);
    stroke(last, last);
    predictDrawing();
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    event.preventDefault();
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    for (const e of events.length ? events : [event]) {
      const next = point(e);
      stroke(last, next);
      last = next;
    }
    predictDrawing();
  });
  for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) {
    canvas.addEventListener(type, () => {
      if (!drawing) return;
      drawing = false;
      predictDrawing();
    });
  }

  document.getElementById("clear").addEventListener("click", () => {
    generation += 1;
    blank();
    onClear();
  });

  async function usePicture(file) {
    if (!file) return;
    try {
      const bitmap = await createImageBitmap(file);
      blank();
      const scale = Math.min(canvas.width / bitmap.width, canvas.height / bitmap.height);
      const w = bitmap.width * scale;
      const h = bitmap.height * scale;
      context.drawImage(bitmap, (canvas.width - w) / 2, (canvas.height - h) / 2, w, h);
      hasInk = true;
    } catch {
      blank(); // the browser cannot show it; the server still says what it makes of it
    }
    deliver(sendFile(file));
  }
  document.getElementById("digit-file").addEventListener("change", (event) => usePicture(event.target.files[0]));
  canvas.addEventListener("dragover", (event) => {
    event.preventDefault();
    canvas.classList.add("dropping");
  });
  canvas.addEventListener("dragleave", () => canvas.classList.remove("dropping"));
  canvas.addEventListener("drop", (event) => {
    event.preventDefault();
    canvas.classList.remove("dropping");
    usePicture(event.dataTransfer.files[0]);
  });

  return { repredict: predictDrawing };
}

// The prediction area: the class, the softmax bars (Chart.js) and the input the network sees.
export function setupPrediction() {
  const chart = new window.Chart(document.getElementById("prob-chart"), {
    type: "bar",
    data: { labels: [], datasets: [{ label: "probability", data: [], backgroundColor: "#2c6bd6" }] },
    options: {
      indexAxis: "y",
      animation: false,
      maintainAspectRatio: false,
      scales: { x: { min: 0, max: 1, ticks: { format: { style: "percent" } } } },
      plugins: { legend: { display: false } },
    },
  });
  return {
    chart,
    show(result, model) {
      document.getElementById("prediction").textContent = result.label;
      document.getElementById("confidence").textContent = `${(100 * result.probabilities[result.class]).toFixed(1)}%`;
      chart.data.labels = result.classes;
      chart.data.datasets[0].data = result.probabilities;
      chart.data.datasets[0].backgroundColor = result.classes.map((_, i) => (i === result.class ? "#2c6bd6" : "#9db6e3"));
      chart.update();
      const seen = result.network_input;
      paintMatrix(document.getElementById("input-canvas"), seen, 0, 1, true);
      const size = seen.length;
      const padded = model && model.pad ? ` (the 28x28 digit padded by ${model.pad})` : "";
      document.getElementById("input-caption").textContent = `The ${size}x${size} input the network sees${padded}`;
      document.getElementById("predict-error").textContent = "";
    },
    clear() {
      document.getElementById("prediction").textContent = "–";
      document.getElementById("confidence").textContent = "";
      chart.data.datasets[0].data = [];
      chart.update();
      const canvas = document.getElementById("input-canvas");
      canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
    },
  };
}
