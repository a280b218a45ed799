// Colour scales and small canvas pictures of arrays (feature maps, kernels, vectors).

// Signed values: blue below 0, white at 0, red above; non-negative values: white to dark red.
export function colour(value, low, high) {
  if (!Number.isFinite(value)) return [128, 128, 128];
  if (low < 0) {
    const bound = Math.max(Math.abs(low), Math.abs(high)) || 1;
    const t = Math.max(-1, Math.min(1, value / bound));
    return t < 0 ? mix([255, 255, 255], [40, 90, 200], -t) : mix([255, 255, 255], [200, 40, 30], t);
  }
  const span = high - low || 1;
  const t = Math.max(0, Math.min(1, (value - low) / span));
  return t < 0.5 ? mix([255, 255, 255], [240, 140, 60], t * 2) : mix([240, 140, 60], [140, 20, 20], (t - 0.5) * 2);
}

function mix(a, b, t) {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
}

export function rangeOf(rows) {
  let low = Infinity;
  let high = -Infinity;
  for (const row of rows) {
    for (const v of row) {
      if (v < low) low = v;
      if (v > high) high = v;
    }
  }
  return [low, high];
}

// Paint a 2-D array into `canvas` (one canvas pixel per cell), coloured on [low, high].
export function paintMatrix(canvas, rows, low, high, gray = false) {
  const h = rows.length;
  const w = rows[0].length;
  canvas.width = w;
  canvas.height = h;
  const context = canvas.getContext("2d");
  const image = context.createImageData(w, h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = rows[y][x];
      const c = gray ? grayLevel(v, low, high) : colour(v, low, high);
      const i = 4 * (y * w + x);
      image.data[i] = c[0];
      image.data[i + 1] = c[1];
      image.data[i + 2] = c[2];
      image.data[i + 3] = 255;
    }
  }
  context.putImageData(image, 0, 0);
}

function grayLevel(v, low, high) {
  const t = Math.max(0, Math.min(1, (v - low) / (high - low || 1)));
  const g = Math.round(255 * t);
  return [g, g, g];
}

export function format(value, digits = 4) {
  if (value === null || value === undefined) return "";
  if (Number.isInteger(value)) return String(value);
  const text = value.toFixed(digits);
  return text === `-${(0).toFixed(digits)}` ? (0).toFixed(digits) : text;
}
