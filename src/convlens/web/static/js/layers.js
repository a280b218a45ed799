// 2. Every layer's output as coloured maps, the learned kernels, and the arithmetic of one cell.

import { postJSON } from "./api.js";
import { format, paintMatrix, rangeOf } from "./colors.js";

let current = null; // the last prediction: its input pixels and layers
let selected = null;

function scaleMode() {
  return document.querySelector('input[name="scale"]:checked').value;
}

function displaySize(side) {
  return Math.max(40, Math.min(96, side * 3));
}

function globalRange(layers) {
  let low = Infinity;
  let high = -Infinity;
  for (const layer of layers) {
    low = Math.min(low, layer.min);
    high = Math.max(high, layer.max);
  }
  return [low, high];
}

function layerKey(layers) {
  return layers.map((l) => `${l.name}:${l.shape.join("x")}`).join("|");
}

export function renderLayers(result) {
  current = result;
  const list = document.getElementById("layer-list");
  if (list.dataset.key !== layerKey(result.layers)) {
    build(list, result.layers);
    list.dataset.key = layerKey(result.layers);
  }
  repaint();
}

export function clearLayers() {
  current = null;
  selected = null;
  const list = document.getElementById("layer-list");
  list.dataset.key = "";
  list.innerHTML = '<p class="hint">Draw a digit to see what every layer makes of it.</p>';
  document.getElementById("arithmetic").hidden = true;
}

function build(list, layers) {
  list.innerHTML = "";
  for (const layer of layers) {
    const box = document.createElement("div");
    box.className = "layer";
    box.dataset.layer = layer.name;
    const title = document.createElement("h3");
    title.innerHTML = `${layer.name} <span class="shape">${layer.kind} · ${layer.shape.join(" x ")} · <span class="range"></span></span>`;
    box.append(title);
    const maps = document.createElement("div");
    maps.className = "maps";
    if (layer.shape.length === 3) {
      const [channels, height, width] = layer.shape;
      for (let c = 0; c < channels; c++) {
        const canvas = document.createElement("canvas");
        canvas.className = "fmap";
        canvas.dataset.testid = "feature-map";
        canvas.setAttribute("data-testid", "feature-map");
        canvas.dataset.layer = layer.name;
        canvas.dataset.channel = c;
        canvas.title = `${layer.name}, map ${c}`;
        canvas.style.width = `${displaySize(width)}px`;
        canvas.style.height = `${(displaySize(width) * height) / width}px`;
        canvas.addEventListener("click", (event) => {
          const x = Math.min(width - 1, Math.floor((event.offsetX / canvas.clientWidth) * width));
          const y = Math.min(height - 1, Math.floor((event.offsetY / canvas.clientHeight) * height));
          explain(layer.name, c, y, x, canvas);
        });
        maps.append(canvas);
      }
    } else {
      const canvas = document.createElement("canvas");
      canvas.className = "vector";
      canvas.title = `${layer.name}: ${layer.shape[0]} values`;
      maps.append(canvas);
    }
    box.append(maps);
    list.append(box);
  }
}

export function repaint() {
  if (!current) return;
  const mode = scaleMode();
  const [gLow, gHigh] = globalRange(current.layers);
  for (const layer of current.layers) {
    const box = document.querySelector(`.layer[data-layer="${CSS.escape(layer.name)}"]`);
    if (!box) continue;
    const scale = mode === "global" ? [gLow, gHigh] : [layer.min, layer.max];
    box.querySelector(".range").textContent = `range ${format(layer.min, 3)} … ${format(layer.max, 3)}`;
    if (layer.shape.length === 3) {
      box.querySelectorAll("canvas.fmap").forEach((canvas, c) => {
        const map = layer.values[c];
        const [low, high] = mode === "map" ? rangeOf(map) : scale;
        paintMatrix(canvas, map, low, high);
      });
    } else {
      paintMatrix(box.querySelector("canvas.vector"), [layer.values], scale[0], scale[1]);
    }
  }
}

// ---------------------------------------------------------------- the arithmetic panel
async function explain(layer, channel, y, x, canvas) {
  if (!current) return;
  document.querySelectorAll("canvas.fmap.selected").forEach((c) => c.classList.remove("selected"));
  canvas.classList.add("selected");
  selected = { layer, channel, y, x };
  const panel = document.getElementById("arithmetic");
  panel.hidden = false;
  panel.dataset.state = "loading";
  const shown = current.layers.find((l) => l.name === layer).values[channel][y][x];
  try {
    const result = await postJSON("/api/explain", { pixels: current.input, layer, channel, y, x });
    panel.innerHTML = arithmeticHtml(result, shown);
    panel.dataset.state = "ready";
  } catch (error) {
    panel.textContent = error.message;
    panel.dataset.state = "error";
  }
  if (window.matchMedia("(max-width: 760px)").matches) panel.scrollIntoView({ block: "nearest" });
}

function matrix(rows, options = {}) {
  const body = rows
    .map(
      (row, i) =>
        "<tr>" +
        row
          .map((v, j) => {
            const classes = [];
            if (options.padding && options.padding[i][j]) classes.push("padding");
            if (options.unconnected) classes.push("unconnected");
            return `<td class="${classes.join(" ")}">${v === null ? "·" : format(v, options.digits ?? 3)}</td>`;
          })
          .join("") +
        "</tr>",
    )
    .join("");
  return `<table class="mat">${body}</table>`;
}

function arithmeticHtml(r, shown) {
  const [o, y, x] = r.cell;
  const clicked = r.clicked;
  const traced = r.traced.map((t) => `<li>${t.layer}: ${t.note}</li>`).join("");
  const channels = r.channels
    .map((ch) => {
      const off = ch.connected ? "" : " (not connected in this layer: its kernel is 0)";
      return `<div class="channel"><div>input channel ${ch.channel}${off}: window × kernel = products, sum ${format(ch.sum)}</div>
        <div class="mats">${matrix(ch.window, { padding: ch.padding })}<span>×</span>${matrix(ch.kernel, { unconnected: !ch.connected })}<span>=</span>${matrix(ch.products, { padding: ch.padding })}</div></div>`;
    })
    .join("");
  const after = r.after
    .map((step) => {
      if (step.window) {
        const extra = step.coefficient !== undefined ? ` (coefficient ${format(step.coefficient)}, bias ${format(step.bias)})` : "";
        return `<div class="channel"><div>${step.layer}: ${step.op}${extra} → cell (${step.cell[1]}, ${step.cell[2]}) = <strong>${format(step.value)}</strong></div>${matrix(step.window)}</div>`;
      }
      if (step.value === null || step.value === undefined) return `<div class="channel">${step.layer}: ${step.note}</div>`;
      return `<div class="channel">${step.layer}: ${step.op} = ${format(step.input)} → <strong>${format(step.value)}</strong></div>`;
    })
    .join("");
  const where = `padding ${r.padding.join("x")}, stride ${r.stride.join("x")}, dilation ${r.dilation.join("x")}`;
  return `<h3>${r.layer}, map ${o}, cell (${y}, ${x}) <span class="hint">from ${r.input_layer}; ${where}; shaded cells are padding</span></h3>
    ${clicked.layer !== r.layer ? `<p class="hint">You clicked ${clicked.layer} (${clicked.cell.join(", ")}), value ${format(clicked.value)}.</p><ul class="hint">${traced}</ul>` : ""}
    ${channels}
    <p class="sumline">sum of all products = ${format(r.sum)}; + bias ${format(r.bias)} = <strong data-testid="arith-sum">${format(r.value)}</strong>
    (the engine computed <span data-testid="arith-recorded">${format(r.recorded)}</span>; the map shows <span data-testid="arith-shown">${format(shown)}</span>${clicked.layer !== r.layer ? ` at ${clicked.layer}` : ""})</p>
    ${after}`;
}

// ---------------------------------------------------------------- learned kernels
export function renderKernels(container, kernels, compact = false) {
  container.innerHTML = "";
  for (const layer of kernels) {
    const [outs, ins] = layer.shape;
    const block = document.createElement("div");
    block.className = "kernel-layer";
    if (!compact) {
      const title = document.createElement("h4");
      title.textContent = `${layer.name}: ${outs} filters of ${layer.shape.slice(1).join("x")} (one row per filter, one kernel per input channel)`;
      block.append(title);
    }
    const grid = document.createElement("div");
    grid.className = "kernel-grid";
    if (ins > 1) grid.style.gridTemplateColumns = `repeat(${ins}, 34px)`;
    const flat = layer.values.flat(3);
    const bound = Math.max(...flat.map(Math.abs)) || 1;
    for (let o = 0; o < outs; o++) {
      for (let i = 0; i < ins; i++) {
        const canvas = document.createElement("canvas");
        canvas.title = `${layer.name} filter ${o}, input channel ${i}`;
        paintMatrix(canvas, layer.values[o][i], -bound, bound);
        grid.append(canvas);
      }
    }
    block.append(grid);
    container.append(block);
  }
}

export function selectedCell() {
  return selected;
}
