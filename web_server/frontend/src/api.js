// The /v1 API as the page uses it: the API key kept in localStorage, problem+json errors turned
// into ApiError, uploads with progress (XMLHttpRequest), and Server-Sent Events read with fetch
// so that the Authorization header can be sent.

const KEY_STORAGE = "vid2scene.apiKey";

/** An error answered by the API (RFC 9457 problem+json), or a network failure (status 0). */
export class ApiError extends Error {
  /**
   * @param {number} status HTTP status (0 when the server was not reached).
   * @param {string} code the stable error code, e.g. INVALID_VIDEO.
   * @param {string} message the words to show the user.
   */
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** @returns {string} the saved API key, or "" when none is saved. */
export function getApiKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return "";
  }
}

/** Save the API key (an empty string forgets it). */
export function setApiKey(key) {
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
}

function authHeaders() {
  const key = getApiKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

/** Turn a failed response body into an ApiError with the API's own words. */
function problemError(status, text) {
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  const code = (body && body.code) || `HTTP_${status}`;
  let message = (body && (body.detail || body.title)) || `The server answered ${status}.`;
  if (status === 401) message = `${message} Paste your API key under “API key” at the top of the page.`;
  return new ApiError(status, code, message);
}

/**
 * Call the API and parse its JSON answer.
 * @param {string} path e.g. "/v1/jobs".
 * @param {RequestInit} [init]
 * @returns {Promise<any>} the parsed body (null for 204).
 */
export async function api(path, init = {}) {
  let response;
  try {
    response = await fetch(path, { ...init, headers: { Accept: "application/json", ...authHeaders(), ...init.headers } });
  } catch (err) {
    throw new ApiError(0, "NETWORK", `The server could not be reached (${err.message}).`);
  }
  const text = await response.text();
  if (!response.ok) throw problemError(response.status, text);
  return text ? JSON.parse(text) : null;
}

/**
 * Upload a video and create a job.
 * @param {FormData} form the multipart form (video, methods, preset, name, options).
 * @param {(fraction: number) => void} onProgress upload progress, 0..1.
 * @returns {Promise<any>} the created job.
 */
export function uploadJob(form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/jobs");
    xhr.setRequestHeader("Accept", "application/json");
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve(JSON.parse(xhr.responseText));
      } else {
        reject(problemError(xhr.status, xhr.responseText));
      }
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "NETWORK", "The upload failed: the server could not be reached.")));
    xhr.addEventListener("abort", () => reject(new ApiError(0, "ABORTED", "The upload was stopped.")));
    xhr.send(form);
  });
}

/**
 * Follow a Server-Sent Events stream with fetch; reconnects with backoff until stopped.
 * @param {string} path e.g. "/v1/events".
 * @param {(event: string, data: any) => void} onEvent called for each event with its parsed data.
 * @param {{ onError?: (err: ApiError) => void, reconnect?: () => boolean }} [opts] `reconnect`
 *   says whether to reconnect after the server closed the stream (default: always).
 * @returns {() => void} stops the stream.
 */
export function followEvents(path, onEvent, opts = {}) {
  const controller = new AbortController();
  let stopped = false;
  let delay = 1000;

  async function once() {
    const response = await fetch(path, {
      headers: { Accept: "text/event-stream", ...authHeaders() },
      signal: controller.signal,
      cache: "no-store",
    });
    if (!response.ok) throw problemError(response.status, await response.text());
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      delay = 1000;
      buffer += value.replace(/\r\n?/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let event = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (data.length) onEvent(event, JSON.parse(data.join("\n")));
      }
    }
  }

  (async () => {
    while (!stopped) {
      try {
        await once();
        if (opts.reconnect && !opts.reconnect()) return;
      } catch (err) {
        if (stopped) return;
        const apiErr = err instanceof ApiError ? err : new ApiError(0, "NETWORK", `Live updates stopped (${err.message}); retrying.`);
        if (opts.onError) opts.onError(apiErr);
        if (apiErr.status >= 400 && apiErr.status < 500) return;
      }
      if (stopped) return;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 15000);
    }
  })();

  return () => {
    stopped = true;
    controller.abort();
  };
}
