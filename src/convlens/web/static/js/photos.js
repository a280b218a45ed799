// 4. Classic kernels on a photo (POST /api/filter) and an RGB volume through 3-channel filters (POST /api/volume).

import { debounce, getJSON, latestOnly, postFile, postJSON } from "./api.js";
import { paintMatrix } from "./colors.js";

const $ = (id) => document.getElementById(id);

export async function setupPhotos() {
  const catalogue = await getJSON("/api/kernels");
  let photo = null; // the user's File, or null for the sample photo
  const select = $("filter-kernel");
  for (const name of Object.keys(catalogue.kernels)) select.add(new Option(name, name));
  select.add(new Option("custom (edit the matrix)", "custom"));
  select.value = "sharpen";

  const asText = (rows) => rows.map((r) => r.map((v) => +v.toFixed(4)).join(" ")).join("\n");
  const parse = (text) =>
    text
      .trim()
      .split("\n")
      .map((line) => line.trim().split(/[ ,;\t]+/).map(Number));

  function showKernel(name) {
    if (name === "custom") return;
    $("filter-custom").value = asText(catalogue.kernels[name]);
  }

  const filter = latestOnly((fields) => (photo ? postFile("/api/filter", photo, fields) : postJSON("/api/filter", fields)));
  async function apply() {
    const name = select.value;
    const kernel = name === "custom" ? parse($("filter-custom").value) : name;
    try {
      const result = await filter({ kernel, padding_mode: $("filter-padding").value });
      if (!result) return;
      $("filter-input").src = result.input;
      $("filter-output").src = result.output;
      $("filter-rule").textContent = `filtered: ${result.rule}`;
      const sum = +result.kernel_sum.toFixed(4);
      const note = Math.abs(sum) < 1e-9 ? "sums to 0: flat regions become 0, only changes show" : sum === 1 ? "sums to 1: keeps the brightness" : `sums to ${sum}: flat regions are scaled by ${sum}`;
      $("filter-kernel-note").textContent = `${result.kernel_name} ${result.kernel.length}x${result.kernel[0].length}, ${note}`;
      $("filter-error").textContent = "";
    } catch (error) {
      $("filter-error").textContent = error.message;
    }
  }

  select.addEventListener("change", () => {
    showKernel(select.value);
    apply();
  });
  $("filter-padding").addEventListener("change", apply);
  $("filter-custom").addEventListener(
    "input",
    debounce(() => {
      select.value = "custom";
      apply();
    }, 300),
  );
  $("photo-file").addEventListener("change", (event) => {
    photo = event.target.files[0] || null;
    apply();
    volume();
  });
  $("photo-sample").addEventListener("click", () => {
    photo = null;
    apply();
    volume();
  });

  // the volume view
  const boxes = $("volume-filters");
  catalogue.volume_filters.forEach((name, i) => {
    const label = document.createElement("label");
    label.innerHTML = `<input type="checkbox" value="${name}" ${i < 4 ? "checked" : ""}> ${name}`;
    boxes.append(label);
  });
  boxes.addEventListener("change", () => volume());
  const request = latestOnly((fields) => (photo ? postFile("/api/volume", photo, fields) : postJSON("/api/volume", fields)));

  async function volume() {
    const chosen = [...boxes.querySelectorAll("input:checked")].map((b) => b.value);
    if (!chosen.length) return;
    let result;
    try {
      result = await request({ filters: chosen });
    } catch (error) {
      $("filter-error").textContent = error.message;
      return;
    }
    if (!result) return;
    $("volume-channels").innerHTML = result.channels.map((src, c) => `<img src="${src}" alt="channel ${c}">`).join("");
    const kernels = $("volume-kernels");
    kernels.innerHTML = "";
    for (const f of result.filters) {
      const row = document.createElement("div");
      row.className = "row";
      const bound = Math.max(...f.kernel.flat(2).map(Math.abs)) || 1;
      for (const plane of f.kernel) {
        const canvas = document.createElement("canvas");
        paintMatrix(canvas, plane, -bound, bound);
        row.append(canvas);
      }
      row.append(document.createTextNode(f.name));
      kernels.append(row);
    }
    $("volume-weight").textContent = `${result.weight_shape.join(" x ")} weights: ${result.filters.length} filters of 3 x 3 x 3 (red, green, blue kernels)`;
    const stack = $("volume-stack");
    stack.innerHTML = "";
    result.filters.forEach((f, i) => {
      const figure = document.createElement("figure");
      // each plane a little behind the previous one: the planes read as one volume
      figure.style.transform = `translate(${i * 18}px, ${(result.filters.length - 1 - i) * 22}px)`;
      figure.style.zIndex = String(i);
      const img = document.createElement("img");
      img.src = f.plane;
      img.alt = f.name;
      figure.append(img);
      stack.append(figure);
    });
    const planeWidth = stack.querySelector("img").getBoundingClientRect().width || 160; // set by the style sheet
    stack.style.height = `${(result.filters.length - 1) * 22 + (planeWidth * result.height) / result.width + 8}px`;
    stack.style.width = `${(result.filters.length - 1) * 18 + planeWidth + 8}px`;
    const order = result.filters.map((f, i) => `${i + 1}. ${f.name}`).join(", ");
    $("volume-shape").textContent = `output volume ${result.output_shape.join(" x ")}, one plane per filter, back to front: ${order}`;
  }

  showKernel("sharpen");
  apply();
  volume();
}
