// 3. The convolution playground, and 5. pooling and parameter counting.

import { debounce, getJSON, latestOnly, postJSON } from "./api.js";
import { format } from "./colors.js";

const $ = (id) => document.getElementById(id);

function grid(container, rows, classify = () => "", showNumbers = true) {
  const side = rows[0] ? rows[0].length : 0;
  container.style.gridTemplateColumns = `repeat(${side}, var(--cell))`;
  const cells = [];
  const html = [];
  rows.forEach((row, i) =>
    row.forEach((v, j) => {
      html.push(`<div class="${classify(i, j)}" data-i="${i}" data-j="${j}">${showNumbers && v !== null ? format(v, 2) : ""}</div>`);
    }),
  );
  container.innerHTML = html.join("");
  container.querySelectorAll("div").forEach((cell) => cells.push(cell));
  return cells;
}

function fitCells(container, side) {
  // cells shrink for large grids so the whole input stays visible
  const room = Math.max(120, Math.min(container.parentElement.parentElement.clientWidth - 24, 420));
  const size = Math.max(9, Math.min(26, Math.floor(room / Math.max(side, 1)) - 1));
  container.style.setProperty("--cell", `${size}px`);
  return size >= 16;
}

// ---------------------------------------------------------------- convolution
export function setupConvolution() {
  let preset = null;
  let data = null;
  let step = 0;
  let timer = null;
  const fields = ["conv-n", "conv-k", "conv-p", "conv-s", "conv-d"].map($);

  const request = latestOnly((body) => postJSON("/api/convolve", body));

  function body() {
    const [n, k, p, s, d] = fields.map((f) => Number(f.value));
    const mode = $("conv-mode").value;
    const common = { padding: p, stride: s, dilation: d, mode };
    if (preset && preset.input.length === n && preset.kernel.length === k) {
      return { ...common, input: preset.input, kernel: preset.kernel };
    }
    preset = null;
    return { ...common, size: n, kernel_size: k };
  }

  async function update() {
    stop();
    let result;
    try {
      result = await request(body());
    } catch (error) {
      $("conv-output-size").textContent = "?";
      $("conv-formula").textContent = error.message;
      return;
    }
    if (!result) return;
    data = result;
    step = 0;
    const size = result.output_size;
    $("conv-output-size").textContent = size.valid ? String(size.value) : "none";
    $("conv-formula").textContent = size.explanation;
    $("conv-title").textContent = preset ? preset.title : "";
    draw();
    compare();
  }

  async function compare() {
    if (!data || !data.output || data.output.length > 5) {
      $("conv-compare").textContent = "";
      return;
    }
    const other = data.mode === "convolution" ? "cross-correlation" : "convolution";
    try {
      const twin = await postJSON("/api/convolve", { ...body(), mode: other, input: data.input, kernel: data.kernel });
      const text = (rows) => rows.map((r) => r.map((v) => format(v, 2)).join(" ")).join(" / ");
      $("conv-compare").textContent =
        `${data.mode}: ${text(data.output)}   ·   ${other}${other === "convolution" ? " (kernel flipped)" : ""}: ${text(twin.output)}`;
    } catch {
      $("conv-compare").textContent = "";
    }
  }

  function draw() {
    const padded = data.padded;
    const p = data.padding;
    const n = data.input.length;
    const numbers = fitCells($("conv-input"), padded.length);
    fitCells($("conv-output"), padded.length);
    fitCells($("conv-kernel"), padded.length);
    const current = data.steps[step - 1];
    const inWindow = new Set(current ? current.rows.flatMap((r) => current.cols.map((c) => `${r},${c}`)) : []);
    grid(
      $("conv-input"),
      padded,
      (i, j) => {
        const classes = [];
        if (i < p || j < p || i >= p + n || j >= p + n) classes.push("padding");
        if (inWindow.has(`${i},${j}`)) classes.push("window");
        return classes.join(" ");
      },
      numbers,
    );
    grid($("conv-kernel"), data.applied_kernel, () => "", true);
    $("conv-kernel-caption").textContent = data.mode === "convolution" ? "kernel, flipped (true convolution)" : "kernel";
    if (data.output) {
      const side = data.output.length;
      grid(
        $("conv-output"),
        data.output,
        (i, j) => {
          const index = i * side + j;
          if (step === 0) return "";
          if (index === step - 1) return "current";
          return index >= step ? "pending" : "";
        },
        numbers,
      );
    } else {
      $("conv-output").innerHTML = "";
    }
    if (current) {
      const [y, x] = current.out;
      const terms = [];
      current.rows.forEach((r, i) =>
        current.cols.forEach((c, j) => terms.push(`${format(data.padded[r][c], 2)}·${format(data.applied_kernel[i][j], 2)}`)),
      );
      $("conv-step-text").textContent = `out[${y}][${x}] = ${terms.join(" + ")} = ${format(current.sum, 2)}`;
    } else {
      $("conv-step-text").textContent = data.output ? "Press Play or Step to slide the kernel over the input." : "";
    }
  }

  function advance() {
    if (!data || !data.steps.length) return stop();
    step = step >= data.steps.length ? 1 : step + 1;
    draw();
  }

  function stop() {
    clearInterval(timer);
    timer = null;
    $("conv-play").textContent = "▶ Play";
  }

  $("conv-play").addEventListener("click", () => {
    if (timer) return stop();
    timer = setInterval(advance, 700);
    $("conv-play").textContent = "⏸ Pause";
    advance();
  });
  $("conv-step").addEventListener("click", () => {
    stop();
    advance();
  });
  $("conv-reset").addEventListener("click", () => {
    stop();
    step = 0;
    if (data) draw();
  });
  const later = debounce(update, 150);
  for (const f of [...fields, $("conv-mode")]) f.addEventListener("input", later);

  getJSON("/api/presets").then((presets) => {
    document.querySelectorAll("[data-preset]").forEach((button) =>
      button.addEventListener("click", () => {
        const chosen = presets[button.dataset.preset];
        const values = [chosen.input.length, chosen.kernel.length, chosen.padding, chosen.stride, chosen.dilation];
        fields.forEach((f, i) => (f.value = values[i]));
        $("conv-mode").value = "cross-correlation";
        preset = chosen;
        update();
      }),
    );
  });
  update();
}

// ---------------------------------------------------------------- pooling
export function setupPooling() {
  let seed = 0;
  const request = latestOnly((body) => postJSON("/api/pool", body));
  const colours = ["#cfe3ff", "#ffe0b8", "#d6f5d6", "#f5d6ef", "#fff3b0", "#d9d2ff"];

  async function update() {
    const body = {
      size: Number($("pool-n").value),
      kernel_size: Number($("pool-k").value),
      stride: Number($("pool-s").value),
      mode: $("pool-mode").value,
      seed,
    };
    let result;
    try {
      result = await request(body);
    } catch (error) {
      $("pool-size").textContent = "?";
      $("pool-formula").textContent = error.message;
      return;
    }
    if (!result) return;
    $("pool-size").textContent = result.output_size.valid ? String(result.output_size.value) : "none";
    $("pool-formula").textContent = result.output_size.explanation;
    const owner = new Map();
    const winners = new Set();
    result.windows.forEach((w, index) => {
      for (let i = w.top; i < w.top + result.kernel_size; i++) {
        for (let j = w.left; j < w.left + result.kernel_size; j++) if (!owner.has(`${i},${j}`)) owner.set(`${i},${j}`, index);
      }
      if (result.mode === "max") winners.add(`${w.winner[0]},${w.winner[1]}`);
    });
    const cells = grid($("pool-input"), result.input, (i, j) => (winners.has(`${i},${j}`) ? "winner" : ""));
    cells.forEach((cell) => {
      const index = owner.get(`${cell.dataset.i},${cell.dataset.j}`);
      if (index !== undefined) cell.style.background = colours[index % colours.length];
    });
    if (result.output) {
      const side = result.output[0].length;
      const out = grid($("pool-output"), result.output);
      out.forEach((cell) => (cell.style.background = colours[(Number(cell.dataset.i) * side + Number(cell.dataset.j)) % colours.length]));
    } else {
      $("pool-output").innerHTML = "";
    }
  }
  const later = debounce(update, 120);
  for (const id of ["pool-n", "pool-k", "pool-s", "pool-mode"]) $(id).addEventListener("input", later);
  $("pool-new").addEventListener("click", () => {
    seed += 1;
    update();
  });
  update();
}

// ---------------------------------------------------------------- parameter counting
export function setupParameters() {
  const chart = new window.Chart($("par-chart"), {
    type: "bar",
    data: { labels: ["CNN", "MLP"], datasets: [{ label: "parameters", data: [0, 0], backgroundColor: ["#2c6bd6", "#d6862c"] }] },
    options: { animation: false, maintainAspectRatio: false, plugins: { legend: { display: false } } },
  });
  const request = latestOnly((body) => postJSON("/api/params", body));
  const list = (text) =>
    text
      .split(/[ ,;]+/)
      .filter(Boolean)
      .map(Number);

  function table(element, summary) {
    const rows = summary.rows
      .map((r) => `<tr><td>${r.name} (${r.kind})</td><td>${r.output_shape.join("x")}</td><td>${r.params.toLocaleString("en")}</td></tr>`)
      .join("");
    element.innerHTML = `<tr><th>layer</th><th>output</th><th>parameters</th></tr>${rows}`;
  }

  async function update() {
    let result;
    try {
      result = await request({
        input_size: Number($("par-input").value),
        classes: Number($("par-classes").value),
        kernel_size: Number($("par-kernel").value),
        channels: list($("par-channels").value),
        hidden: list($("par-hidden").value),
      });
    } catch (error) {
      $("par-error").textContent = error.message;
      return;
    }
    if (!result) return;
    $("par-error").textContent = "";
    table($("par-cnn"), result.cnn);
    table($("par-mlp"), result.mlp);
    $("par-cnn-total").textContent = result.cnn.total_params.toLocaleString("en");
    $("par-mlp-total").textContent = result.mlp.total_params.toLocaleString("en");
    chart.data.datasets[0].data = [result.cnn.total_params, result.mlp.total_params];
    chart.update();
  }
  const later = debounce(update, 250);
  for (const id of ["par-input", "par-classes", "par-kernel", "par-channels", "par-hidden"]) $(id).addEventListener("input", later);
  update();
}
