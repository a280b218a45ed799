// 6. Live training: POST /api/train/start, then server-sent events (GET /api/train/events) draw the run.

import { getJSON, postJSON } from "./api.js";
import { renderKernels } from "./layers.js";

const $ = (id) => document.getElementById(id);

function lineChart(canvas, title, series, yOptions) {
  return new window.Chart(canvas, {
    type: "line",
    data: {
      datasets: series.map(([label, colour]) => ({ label, data: [], borderColor: colour, backgroundColor: colour, pointRadius: 2, borderWidth: 2 })),
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      parsing: false,
      scales: { x: { type: "linear", min: 0, title: { display: true, text: "epoch" } }, y: yOptions },
      plugins: { title: { display: true, text: title } },
    },
  });
}

export function setupTraining({ onModelChanged, onProgress }) {
  const loss = lineChart($("loss-chart"), "loss", [["training (running)", "#2c6bd6"], ["test", "#d6862c"]], { min: 0 });
  const accuracy = lineChart($("acc-chart"), "accuracy", [["training (running)", "#2c6bd6"], ["test", "#d6862c"]], {
    min: 0,
    max: 1,
    ticks: { format: { style: "percent" } },
  });
  let source = null;
  let stepsPerEpoch = 1;

  function reset() {
    for (const chart of [loss, accuracy]) {
      chart.data.datasets.forEach((d) => (d.data = []));
      chart.update();
    }
    $("loss-chart").dataset.points = "0";
    $("acc-chart").dataset.points = "0";
    $("train-progress").value = 0;
  }

  function count(chart, canvas) {
    canvas.dataset.points = String(chart.data.datasets.reduce((n, d) => n + d.data.length, 0));
  }

  function running(yes) {
    $("train-start").disabled = yes;
    $("train-stop").disabled = !yes;
  }

  function listen() {
    if (source) source.close();
    source = new EventSource("/api/train/events?after=-1");
    source.addEventListener("start", (event) => {
      const e = JSON.parse(event.data);
      stepsPerEpoch = e.steps_per_epoch;
      reset();
      $("train-status").textContent = `Training ${e.config.model} on ${e.config.dataset}: ${e.train_images.toLocaleString("en")} images, ${e.config.epochs} epochs, writing ${e.out}`;
      if (e.kernels) renderKernels($("train-kernels"), [e.kernels], true);
      onModelChanged();
    });
    source.addEventListener("progress", (event) => {
      const e = JSON.parse(event.data);
      const x = e.global_step / stepsPerEpoch;
      loss.data.datasets[0].data.push({ x, y: e.loss });
      accuracy.data.datasets[0].data.push({ x, y: e.accuracy });
      loss.update();
      accuracy.update();
      count(loss, $("loss-chart"));
      count(accuracy, $("acc-chart"));
      $("train-progress").value = e.global_step / e.total_steps;
      $("train-status").textContent = `epoch ${e.epoch + 1}, step ${e.step}: loss ${e.loss.toFixed(3)}, accuracy ${(100 * e.accuracy).toFixed(1)}% (${e.global_step}/${e.total_steps} steps)`;
      if (e.kernels) renderKernels($("train-kernels"), [e.kernels], true);
      onProgress();
    });
    source.addEventListener("epoch", (event) => {
      const e = JSON.parse(event.data);
      if (e.val_loss !== null) loss.data.datasets[1].data.push({ x: e.epoch + 1, y: e.val_loss });
      if (e.val_acc !== null) accuracy.data.datasets[1].data.push({ x: e.epoch + 1, y: e.val_acc });
      loss.update();
      accuracy.update();
      count(loss, $("loss-chart"));
      count(accuracy, $("acc-chart"));
    });
    source.addEventListener("done", (event) => {
      const e = JSON.parse(event.data);
      source.close();
      source = null;
      running(false);
      $("train-status").textContent = `Run ${e.state}: ${e.message}. Draw above: the page now uses this model.`;
      onModelChanged();
    });
    source.addEventListener("idle", () => {
      source.close();
      source = null;
    });
  }

  $("train-start").addEventListener("click", async () => {
    running(true);
    $("train-status").textContent = "Starting…";
    try {
      await postJSON("/api/train/start", {
        model: $("train-model").value,
        dataset: $("train-dataset").value,
        epochs: Number($("train-epochs").value),
      });
      listen();
    } catch (error) {
      $("train-status").textContent = error.message;
      running(error.status === 409);
    }
  });
  $("train-stop").addEventListener("click", async () => {
    $("train-stop").disabled = true;
    $("train-status").textContent = "Stopping after this step…";
    try {
      await postJSON("/api/train/stop", {});
    } catch (error) {
      $("train-status").textContent = error.message;
    }
  });

  getJSON("/api/train/status").then((status) => {
    const select = $("train-dataset");
    for (const name of status.datasets) if (![...select.options].some((o) => o.value === name)) select.add(new Option(name, name));
    if (["starting", "running", "stopping"].includes(status.state)) {
      running(true);
      listen();
    }
  });
}
