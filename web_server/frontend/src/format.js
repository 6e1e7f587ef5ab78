// Formatting of sizes, times, statuses and stage metrics for people.

/** @returns {string} e.g. "3.4 MB". */
export function formatBytes(n) {
  if (!Number.isFinite(n)) return "";
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i += 1;
  }
  return `${v.toFixed(v < 10 && i > 0 ? 1 : 0)} ${units[i]}`;
}

/** @returns {string} e.g. "1 min 05 s" for 65. */
export function formatSeconds(s) {
  if (!Number.isFinite(s)) return "";
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  const rest = Math.round(s - m * 60);
  if (m < 60) return `${m} min ${String(rest).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

/**
 * An estimate of time left in words, as `vid2scene wait` prints it (shared/eta.py `describe_eta`).
 * @returns {string} e.g. "about 3 min left", "less than a minute left", "" when unknown.
 */
export function formatEta(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return "";
  if (s <= 0) return "done";
  if (s < 45) return "less than a minute left";
  const m = Math.round(s / 60);
  if (m < 60) return `about ${m} min left`;
  const rest = m % 60;
  return rest ? `about ${Math.floor(m / 60)} h ${String(rest).padStart(2, "0")} min left` : `about ${Math.floor(m / 60)} h left`;
}

/**
 * The server's estimate counted down since it was received (a running estimate falls between snapshots).
 * @param {number} eta seconds left when the snapshot was taken.
 * @param {number} receivedAt `Date.now()` when it arrived.
 * @returns {number} seconds left now, never below 1 while the job still runs.
 */
export function etaNow(eta, receivedAt) {
  if (!Number.isFinite(eta) || eta <= 0) return 0;
  return Math.max(1, eta - (Date.now() - receivedAt) / 1000);
}

/** @returns {string} a local date and time for an ISO time stamp. */
export function formatTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

/** Seconds between two ISO time stamps (the second defaults to now). */
export function elapsed(fromIso, toIso) {
  if (!fromIso) return NaN;
  const to = toIso ? new Date(toIso) : new Date();
  return (to.getTime() - new Date(fromIso).getTime()) / 1000;
}

export const STAGE_LABELS = { sfm: "Camera poses (SfM)", gs: "Gaussian splats", nerf: "TensoRF radiance field" };

export const ACTIVE = new Set(["queued", "running"]);

/** Known metric names, in display order, with a label and a formatter. */
const METRICS = [
  ["frames_registered", "Frames registered", (v, m) => (m.frames_selected ? `${v} of ${m.frames_selected}` : `${v}`)],
  ["mean_reprojection_error", "Reprojection error", (v) => `${Number(v).toFixed(2)} px`],
  ["num_points", "Sparse points", (v) => Number(v).toLocaleString()],
  ["heldout_psnr", "Held-out PSNR", (v) => `${Number(v).toFixed(2)} dB`],
  ["heldout_ssim", "Held-out SSIM", (v) => Number(v).toFixed(3)],
  ["gaussian_count", "Gaussians", (v) => Number(v).toLocaleString()],
  ["iterations", "Iterations", (v) => Number(v).toLocaleString()],
  ["device", "Device", (v) => String(v)],
];

/** Metrics shown only when asked for (the "all metrics" list): noisy or internal ones. */
const SECONDARY =
  /^(seconds|initial_|train_|heldout_|fallback_used|frames_decoded|frames_selected|retried_|worker_|backend|width|height|sh_degree|strategy|flythrough_)/;

/**
 * A stage's metrics as [label, text] rows: known ones first, then any other scalar ones.
 * @param {Record<string, any>} metrics
 * @param {boolean} [all] include the secondary ones (per-step times, initial scores).
 * @returns {[string, string][]}
 */
export function metricRows(metrics, all = false) {
  const rows = [];
  const seen = new Set();
  for (const [key, label, fmt] of METRICS) {
    if (metrics[key] === undefined || metrics[key] === null) continue;
    rows.push([label, fmt(metrics[key], metrics)]);
    seen.add(key);
  }
  for (const [key, value] of Object.entries(metrics)) {
    if (seen.has(key) || value === null || typeof value === "object") continue;
    if (!all && SECONDARY.test(key)) continue;
    const text = typeof value === "number" && !Number.isInteger(value) ? value.toFixed(3) : String(value);
    rows.push([key.replace(/_/g, " "), text]);
  }
  return rows;
}
