// A job's page: status, the stage timeline with messages and metrics, the flythrough videos,
// the 3D viewer of the smallest splat file Spark reads (scene.spz, scene.splat or scene.ply), and
// download links for every artifact with its size; once it has ended, its runs side by side
// (held-out PSNR of each) and a form to train again on the same video and camera poses.
import { api, followEvents } from "./api.js";
import { h, redrawKeepingFocus, replaceChildren } from "./dom.js";
import { drawRuns, rerunForm } from "./runs.js";
import { ACTIVE, STAGE_LABELS, elapsed, etaNow, formatBytes, formatEta, formatSeconds, formatTime, metricRows } from "./format.js";

/** Above this size the viewer waits for a click before downloading the scene. */
const AUTOLOAD_BYTES = 64e6;
/** The splat files the viewer (Spark) reads; it shows the smallest one the job has. */
const VIEWER_FORMATS = ["scene.spz", "scene.splat", "scene.ply"];

/**
 * Render the page of job `jobId` into `root`.
 * @param {HTMLElement} root
 * @param {string} jobId
 * @param {{ showNotice: (msg: string|null) => void }} ctx
 * @returns {() => void} stops its live updates and frees the viewer.
 */
export function renderJob(root, jobId, ctx) {
  const heading = h("h1", { id: "job-title", text: "Job" });
  const badge = h("span", { class: "badge", id: "job-status", role: "status" });
  const summary = h("p", { class: "muted", id: "job-summary" });
  const eta = h("p", { class: "eta", id: "job-eta", role: "status", hidden: true });
  const jobError = h("p", { class: "error", id: "job-error", hidden: true });
  const capture = h("div", { class: "capture", id: "job-capture", hidden: true });
  const actions = h("div", { class: "row" });
  const timeline = h("ol", { class: "timeline", id: "timeline" });
  const media = h("div", { class: "media", id: "videos" });
  const viewerBox = h("div", { class: "viewer-box", id: "viewer-box" });
  const downloads = h("ul", { class: "downloads", id: "downloads" });
  const runsBox = h("div", { id: "runs" });
  const rerunBox = h("div", { id: "rerun" });
  const runsSection = h("section", { class: "card area-runs", "aria-labelledby": "runs-title", hidden: true }, h("h2", { id: "runs-title", text: "Runs" }), runsBox, rerunBox);
  const viewerSection = h("section", { class: "card area-viewer", "aria-labelledby": "viewer-title", hidden: true }, h("h2", { id: "viewer-title", text: "3D scene" }), viewerBox);
  const videoSection = h("section", { class: "card area-videos", "aria-labelledby": "videos-title", hidden: true }, h("h2", { id: "videos-title", text: "Flythrough" }), media);
  // On wide screens, once there is a scene: the viewer beside the timeline (see .job-layout).
  const layout = h(
    "div",
    { class: "job-layout" },
    h("section", { class: "card area-head", "aria-labelledby": "job-title" }, h("div", { class: "job-head" }, heading, badge), summary, eta, capture, jobError, actions),
    viewerSection,
    videoSection,
    h("section", { class: "card area-stages", "aria-labelledby": "timeline-title" }, h("h2", { id: "timeline-title", text: "Stages" }), timeline),
    h("section", { class: "card area-downloads", "aria-labelledby": "downloads-title" }, h("h2", { id: "downloads-title", text: "Downloads" }), downloads),
    runsSection,
  );
  replaceChildren(root, h("p", { class: "back" }, h("a", { href: "#/", text: "← All jobs" })), layout);

  let viewer = null;
  let viewerStarted = false;
  const players = new Map();
  const openMetrics = new Set();
  let job = null;
  let stopped = false;
  let runsLoadedFor = null;
  let receivedAt = Date.now();
  const drawEta = () => {
    const left = ACTIVE.has(job.status) ? etaNow(job.eta_seconds, receivedAt) : 0;
    eta.hidden = !left;
    eta.textContent = left ? `${formatEta(left)} (estimate)` : "";
  };
  const ticker = setInterval(() => {
    if (!job || !ACTIVE.has(job.status)) return;
    drawEta();
    drawTimeline(timeline, job, openMetrics, receivedAt);
  }, 1000);

  const startViewer = (artifact) => {
    viewerStarted = true;
    viewerBox.replaceChildren(h("p", { class: "muted", id: "viewer-status", role: "status", text: `Loading ${artifact.name} (${formatBytes(artifact.size)})…` }));
    import("./viewer.js")
      .then(({ SplatViewer }) => {
        if (stopped) return;
        viewer = new SplatViewer(viewerBox, artifact);
        return viewer.load();
      })
      .catch((err) => {
        viewerBox.replaceChildren(h("p", { class: "error", role: "alert", text: `The 3D view could not be shown: ${err.message}` }));
      });
  };

  const draw = (next) => {
    job = next;
    receivedAt = Date.now();
    const title = job.name || `Job ${job.id.slice(0, 8)}`;
    heading.textContent = title;
    document.title = `${title} · vid2scene`;
    badge.textContent = job.status;
    badge.className = `badge status-${job.status}`;
    const v = job.video || {};
    const facts = [`${job.methods.join(" + ")}`, `${job.preset} preset`, `created ${formatTime(job.created_at)}`];
    if (v.width) facts.push(`${v.width}×${v.height}, ${v.frame_count ?? "?"} frames, ${formatSeconds(v.duration_s)} (${v.codec})`);
    if (job.queue_position) facts.push(`#${job.queue_position} in the queue`);
    summary.textContent = facts.join(" · ");
    drawCapture(capture, job.capture);
    jobError.hidden = !job.error;
    jobError.textContent = job.error ? `${job.error.message} (${job.error.code})` : "";
    drawActions(actions, job, ctx, (j) => j && draw(j));
    drawEta();
    drawTimeline(timeline, job, openMetrics, receivedAt);
    drawDownloads(downloads, job.artifacts);
    if (!ACTIVE.has(job.status) && runsLoadedFor !== job.status) {
      runsLoadedFor = job.status;
      loadRuns(job);
    }

    const byName = Object.fromEntries(job.artifacts.map((a) => [a.name, a]));
    for (const a of job.artifacts.filter((x) => /^flythrough-.*\.mp4$/.test(x.name))) {
      if (players.has(a.name)) continue;
      const label = a.name === "flythrough-nerf.mp4" ? "TensoRF flythrough" : "Gaussian splat flythrough";
      const video = h("video", { controls: true, preload: "auto", loop: true, muted: true, playsinline: true, src: a.url, "aria-label": label, "data-artifact": a.name });
      players.set(a.name, video);
      media.append(h("figure", {}, video, h("figcaption", { text: label })));
    }
    videoSection.hidden = players.size === 0;

    const scene = VIEWER_FORMATS.map((n) => byName[n]).filter(Boolean).sort((a, b) => a.size - b.size)[0];
    if (scene && !viewerStarted) {
      viewerSection.hidden = false;
      layout.classList.add("has-scene");
      if (scene.size <= AUTOLOAD_BYTES) startViewer(scene);
      else {
        viewerBox.replaceChildren(h("button", { type: "button", text: `Load the 3D scene (${formatBytes(scene.size)})`, onClick: () => startViewer(scene) }));
      }
    }
  };

  // The family's table, and the form when this job has camera poses to start from.
  const loadRuns = (current) => {
    api(`/v1/jobs/${current.id}/runs`).then((family) => {
      if (stopped) return;
      runsSection.hidden = false;
      drawRuns(runsBox, family, current.id);
      const canRun = current.stages.sfm?.status === "succeeded" && family.items.length - 1 < family.max_runs;
      replaceChildren(rerunBox, canRun ? rerunForm(current, (run) => (location.hash = `#/jobs/${run.id}`), ctx.showNotice) : null);
    }, (err) => ctx.showNotice(err.message));
  };

  api(`/v1/jobs/${jobId}`)
    .then((j) => {
      if (stopped) return;
      draw(j);
      if (!ACTIVE.has(j.status)) return;
      // A dropped stream shows a notice; the first event after it reconnects takes it away again.
      let streamError = false;
      stopEvents = followEvents(`/v1/jobs/${jobId}/events`, (event, data) => {
        if (streamError) {
          streamError = false;
          ctx.showNotice(null);
        }
        if (event === "job") draw(data);
        else if (event === "deleted") ctx.showNotice("This job was deleted.");
      }, {
        reconnect: () => job && ACTIVE.has(job.status),
        onError: (err) => {
          streamError = true;
          ctx.showNotice(err.message);
        },
      });
    })
    .catch((err) => {
      heading.textContent = "Job not available";
      ctx.showNotice(err.message);
    });
  let stopEvents = () => {};

  return () => {
    stopped = true;
    clearInterval(ticker);
    stopEvents();
    if (viewer) viewer.dispose();
  };
}

/** The capture check at the top of the job: the verdict, a one-line summary of the figures, the advice. */
function drawCapture(el, report) {
  el.hidden = !report;
  if (!report) return;
  const facts = [
    `${Math.round(report.sharpness.blurry_share * 100)} % blurry`,
    `${Math.round(report.coverage.arc_deg)}° around the subject${report.coverage.closes_loop ? " (full loop)" : ""}`,
    `${report.usable_frames} of ${report.frame_count} frames usable`,
  ];
  const parts = [h("p", {}, "Capture check: ", h("span", { class: `badge capture-${report.verdict}`, id: "capture-verdict", text: report.verdict }), h("span", { class: "muted small", text: ` ${facts.join(" · ")}` }))];
  if (report.advice.length) parts.push(h("ul", { class: "capture-advice", id: "capture-advice" }, report.advice.map((text) => h("li", { text }))));
  el.replaceChildren(...parts);
}

function drawActions(el, job, ctx, onChange) {
  const buttons = [];
  if (ACTIVE.has(job.status)) {
    buttons.push(
      h("button", {
        type: "button",
        class: "secondary",
        "data-focus": "cancel",
        text: "Cancel job",
        onClick: () => api(`/v1/jobs/${job.id}/cancel`, { method: "POST" }).then(onChange, (err) => ctx.showNotice(err.message)),
      }),
    );
  }
  buttons.push(
    h("button", {
      type: "button",
      class: "danger",
      "data-focus": "delete",
      text: "Delete job",
      onClick: () => {
        if (!confirm("Delete this job and all its files?")) return;
        api(`/v1/jobs/${job.id}`, { method: "DELETE" }).then(() => {
          location.hash = "#/";
        }, (err) => ctx.showNotice(err.message));
      },
    }),
  );
  redrawKeepingFocus(el, buttons);
}

/**
 * The stage timeline: one entry per stage with status, progress, message, times and metrics.
 * @param {Set<string>} openMetrics stages whose "All metrics" list is open (kept across redraws).
 * @param {number} receivedAt `Date.now()` when the snapshot arrived: a running stage's estimate counts down from it.
 */
function drawTimeline(el, job, openMetrics, receivedAt) {
  const items = Object.entries(job.stages).map(([name, s]) => {
    const took = s.started_at ? formatSeconds(elapsed(s.started_at, s.finished_at)) : "";
    const when = [];
    if (s.queue_position) when.push(`#${s.queue_position} in queue`);
    if (s.started_at) when.push(`started ${formatTime(s.started_at)}`);
    if (took) when.push(s.finished_at ? `took ${took}` : `running for ${took}`);
    if (s.attempt > 1) when.push(`attempt ${s.attempt} of ${s.max_attempts}`);
    if (s.next_attempt_at) when.push(`retry at ${formatTime(s.next_attempt_at)}`);
    if (ACTIVE.has(s.status) || s.status === "pending") {
      const left = s.status === "running" ? etaNow(s.eta_seconds, receivedAt) : s.eta_seconds;
      const text = formatEta(left);
      if (text && ACTIVE.has(job.status)) when.push(s.status === "running" ? text : `takes ${text.replace(/ left$/, "")}`);
    }
    const rows = metricRows(s.metrics || {});
    return h(
      "li",
      { class: `stage status-${s.status}`, "data-stage": name, "data-status": s.status },
      h("div", { class: "stage-head" }, h("h3", { text: STAGE_LABELS[name] || name }), h("span", { class: `badge status-${s.status}`, text: s.status })),
      h("progress", { max: 1, value: s.progress, "aria-label": `${STAGE_LABELS[name] || name}: ${Math.round(s.progress * 100)} %` }),
      s.message ? h("p", { class: "stage-message", text: s.message }) : null,
      when.length ? h("p", { class: "muted small", text: when.join(" · ") }) : null,
      s.error ? h("p", { class: "error", text: `${s.error.message} (${s.error.code})` }) : null,
      rows.length ? metricList(rows) : null,
      Object.keys(s.metrics || {}).length > rows.length
        ? h(
            "details",
            { class: "all-metrics", open: openMetrics.has(name), onToggle: (e) => (e.target.open ? openMetrics.add(name) : openMetrics.delete(name)) },
            h("summary", { "data-focus": `${name}:metrics`, text: "All metrics" }),
            metricList(metricRows(s.metrics, true)),
          )
        : null,
    );
  });
  redrawKeepingFocus(el, items);
}

function metricList(rows) {
  return h("dl", { class: "metrics" }, rows.map(([k, v]) => [h("dt", { text: k }), h("dd", { text: v })]));
}

function drawDownloads(el, artifacts) {
  if (!artifacts.length) {
    replaceChildren(el, h("li", { class: "muted", text: "Nothing to download yet." }));
    return;
  }
  replaceChildren(
    el,
    artifacts.map((a) =>
      h("li", {}, h("a", { href: a.url, download: a.name, "data-artifact": a.name, text: a.name }), h("span", { class: "muted small", text: ` ${formatBytes(a.size)} · from ${a.stage}` })),
    ),
  );
}
