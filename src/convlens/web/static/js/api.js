// Talking to the server: every call is to this page's own origin.

export class ApiError extends Error {
  constructor(status, message, field) {
    super(message);
    this.status = status;
    this.field = field;
  }
}

async function answer(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = { error: `The server answered ${response.status} without JSON.` };
  }
  if (!response.ok) throw new ApiError(response.status, body.error || `Error ${response.status}`, body.field);
  return body;
}

export async function getJSON(path) {
  return answer(await fetch(path, { headers: { accept: "application/json" } }));
}

export async function postJSON(path, data) {
  return answer(
    await fetch(path, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify(data ?? {}),
    }),
  );
}

export async function postFile(path, file, fields = {}) {
  const form = new FormData();
  form.append("image", file, file.name || "picture.png");
  for (const [name, value] of Object.entries(fields)) {
    form.append(name, typeof value === "string" ? value : JSON.stringify(value));
  }
  return answer(await fetch(path, { method: "POST", body: form }));
}

// One request at a time per channel; a newer call replaces a waiting one (drawing sends many).
export function latestOnly(task) {
  let running = false;
  let waiting = null;
  async function pump() {
    running = true;
    while (waiting) {
      const { args, resolve, reject } = waiting;
      waiting = null;
      try {
        resolve(await task(...args));
      } catch (error) {
        reject(error);
      }
    }
    running = false;
  }
  return (...args) =>
    new Promise((resolve, reject) => {
      if (waiting) waiting.resolve(null); // superseded
      waiting = { args, resolve, reject };
      if (!running) pump();
    });
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
