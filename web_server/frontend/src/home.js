// The home page: the upload form and the live list of the caller's jobs.
import { ApiError, api, followEvents, uploadJob } from "./api.js";
import { h, redrawKeepingFocus, replaceChildren } from "./dom.js";
import { ACTIVE, STAGE_LABELS, formatBytes, formatEta, formatTime } from "./format.js";

/**
 * Render the home page into `root`.
 * @param {HTMLElement} root
 * @param {{ showNotice: (msg: string|null) => void }} ctx
 * @returns {() => void} stops its live updates.
 */
export function renderHome(root, ctx) {
  const list = h("ul", { class: "job-list", id: "job-list", "aria-live": "polite" });
  const listStatus = h("p", { class: "muted", id: "job-list-status", text: "Loading jobs…" });
  replaceChildren(
    root,
    uploadSection(ctx),
    h("section", { class: "card", "aria-labelledby": "jobs-title" }, h("h2", { id: "jobs-title", text: "Your jobs" }), listStatus, list),
  );

  /** @type {Map<string, any>} */
  const jobs = new Map();
  const draw = () => {
    const sorted = [...jobs.values()].sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
    listStatus.hidden = sorted.length > 0;
    listStatus.textContent = "No jobs yet: upload a video above.";
    redrawKeepingFocus(list, sorted.map((job) => jobItem(job, ctx, () => reload())));
  };
  const reload = async () => {
    try {
      const page = await api("/v1/jobs?limit=50");
      jobs.clear();
      for (const job of page.items) jobs.set(job.id, job);
      draw();
    } catch (err) {
      listStatus.textContent = err.message;
      ctx.showNotice(err.message);
    }
  };
  reload();
  const stop = followEvents(
    "/v1/events",
    (event, data) => {
      if (event === "deleted") jobs.delete(data.id);
      else if (event === "job") jobs.set(data.id, data);
      draw();
    },
    { onError: (err) => err.status === 401 && ctx.showNotice(err.message) },
  );
  return stop;
}

function uploadSection(ctx) {
  const fileInput = h("input", { id: "video", name: "video", type: "file", accept: "video/*,.mp4,.mov,.mkv,.webm", required: true, class: "visually-hidden" });
  const fileName = h("span", { class: "file-name", id: "video-name", text: "No video chosen" });
  const drop = h(
    "label",
    { class: "drop-zone", for: "video" },
    h("strong", { text: "Choose a video" }),
    h("span", { text: " or drop it here" }),
    h("br"),
    h("span", { class: "muted", text: "MP4, MOV, MKV or WebM (H.264, HEVC, VP9, AV1). Walk around the object slowly." }),
    h("br"),
    fileName,
  );
  const showFile = () => {
    const f = fileInput.files[0];
    fileName.textContent = f ? `${f.name} (${formatBytes(f.size)})` : "No video chosen";
  };
  fileInput.addEventListener("change", showFile);
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (e) => {
      e.preventDefault();
      drop.classList.add("dragging");
    });
  }
  for (const type of ["dragleave", "drop"]) drop.addEventListener(type, () => drop.classList.remove("dragging"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer && e.dataTransfer.files.length) {
      fileInput.files = e.dataTransfer.files;
      showFile();
    }
  });

  const methods = h(
    "fieldset",
    { class: "methods" },
    h("legend", { text: "Methods" }),
    checkbox("method-gs", "gs", "Gaussian splats (3D viewer)", true),
    checkbox("method-nerf", "nerf", "TensoRF radiance field", false),
  );
  const preset = h(
    "select",
    { id: "preset", name: "preset" },
    h("option", { value: "preview", text: "Preview: fastest, rough" }),
    h("option", { value: "standard", text: "Standard", selected: true }),
    h("option", { value: "high", text: "High: slowest, sharpest" }),
  );
  const presetHint = h("p", { id: "preset-hint", class: "hint", role: "status" });
  preset.setAttribute("aria-describedby", "preset-hint");
  // The server knows what its training workers run on: preselect the preset the CLI would choose, and say why.
  api("/v1/capabilities")
    .then((caps) => {
      if (!preset.dataset.touched) preset.value = caps.default_preset;
      presetHint.textContent = caps.reason;
    })
    .catch(() => {});
  preset.addEventListener("change", () => (preset.dataset.touched = "1"));
  const name = h("input", { id: "job-name", name: "name", type: "text", maxlength: 200, placeholder: "e.g. garden bench", autocomplete: "off" });
  const options = h("textarea", { id: "options", name: "options", rows: 4, spellcheck: "false", placeholder: '{"gs": {"iterations": 3000}}', "aria-describedby": "options-hint" });
  const progress = h("progress", { id: "upload-progress", max: 1, value: 0, hidden: true, "aria-label": "Upload progress" });
  const status = h("p", { id: "upload-status", class: "muted", role: "status" });
  const error = h("p", { id: "upload-error", class: "error", role: "alert", hidden: true });
  const submit = h("button", { type: "submit", id: "upload-submit", text: "Upload and start" });

  const form = h(
    "form",
    { id: "upload-form", class: "upload-form", novalidate: true },
    drop,
    fileInput,
    h("div", { class: "grid" }, methods, h("div", { class: "field" }, h("label", { for: "preset", text: "Preset" }), preset, presetHint), h("div", { class: "field" }, h("label", { for: "job-name", text: "Name (optional)" }), name)),
    h(
      "details",
      { class: "advanced" },
      h("summary", { text: "Advanced: per-stage options" }),
      h("label", { for: "options", text: "Options (JSON)" }),
      options,
      h("p", { id: "options-hint", class: "hint", text: "Overrides per stage (sfm, gs, nerf) on top of the preset; see /docs for the fields." }),
    ),
    h("div", { class: "row" }, submit, progress),
    status,
    error,
  );

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.hidden = true;
    const file = fileInput.files[0];
    const chosen = [...form.querySelectorAll("input[name=methods]:checked")].map((el) => el.value);
    const fail = (msg) => {
      error.textContent = msg;
      error.hidden = false;
    };
    if (!file) return fail("Choose a video first.");
    if (!chosen.length) return fail("Choose at least one method.");
    const text = options.value.trim();
    if (text) {
      try {
        JSON.parse(text);
      } catch (err) {
        return fail(`Options: not valid JSON (${err.message}).`);
      }
    }
    const data = new FormData();
    data.append("video", file);
    data.append("methods", chosen.join(","));
    data.append("preset", preset.value);
    if (name.value.trim()) data.append("name", name.value.trim());
    if (text) data.append("options", text);
    submit.disabled = true;
    progress.hidden = false;
    progress.value = 0;
    status.textContent = "Uploading…";
    try {
      const job = await uploadJob(data, (f) => {
        progress.value = f;
        status.textContent = f < 1 ? `Uploading… ${Math.round(f * 100)} %` : "Checking the video…";
      });
      status.textContent = "Uploaded.";
      location.hash = `#/jobs/${job.id}`;
    } catch (err) {
      status.textContent = "";
      fail(err instanceof ApiError && err.code ? `${err.message} (${err.code})` : String(err.message || err));
    } finally {
      submit.disabled = false;
      progress.hidden = true;
    }
  });
  return h("section", { class: "card", "aria-labelledby": "upload-title" }, h("h2", { id: "upload-title", text: "New scene" }), form);
}

function checkbox(id, value, label, checked) {
  return h("div", { class: "check" }, h("input", { type: "checkbox", id, name: "methods", value, checked }), h("label", { for: id, text: label }));
}

/** One job in the list: name, status, per-stage progress, and its buttons. */
function jobItem(job, ctx, reload) {
  const title = job.name || `Job ${job.id.slice(0, 8)}`;
  const stages = Object.entries(job.stages).map(([name, stage]) =>
    h(
      "li",
      { class: `stage-mini status-${stage.status}` },
      h("span", { class: "stage-name", text: STAGE_LABELS[name] || name }),
      h("progress", { max: 1, value: stage.progress, "aria-label": `${STAGE_LABELS[name] || name} progress` }),
      h("span", { class: "stage-state", text: stage.status === "running" ? `${Math.round(stage.progress * 100)} %${stage.eta_seconds ? ` · ${formatEta(stage.eta_seconds)}` : ""}` : stage.status }),
    ),
  );
  const act = async (fn) => {
    try {
      await fn();
      ctx.showNotice(null);
      reload();
    } catch (err) {
      ctx.showNotice(err.message);
    }
  };
  const buttons = [];
  if (ACTIVE.has(job.status)) {
    buttons.push(h("button", { type: "button", class: "secondary", "data-focus": `${job.id}:cancel`, "aria-label": `Cancel ${title}`, text: "Cancel", onClick: () => act(() => api(`/v1/jobs/${job.id}/cancel`, { method: "POST" })) }));
  }
  buttons.push(
    h("button", {
      type: "button",
      class: "danger",
      "data-focus": `${job.id}:delete`,
      "aria-label": `Delete ${title}`,
      text: "Delete",
      onClick: () => confirm(`Delete “${title}” and all its files?`) && act(() => api(`/v1/jobs/${job.id}`, { method: "DELETE" })),
    }),
  );
  return h(
    "li",
    { class: "job-item", "data-job-id": job.id, "data-status": job.status },
    h(
      "div",
      { class: "job-head" },
      h("a", { href: `#/jobs/${job.id}`, class: "job-link", "data-focus": `${job.id}:open`, text: title }),
      h("span", { class: `badge status-${job.status}`, text: job.status }),
    ),
    h("p", { class: "muted small", text: `${job.methods.join(" + ")} · ${job.preset} · ${formatTime(job.created_at)}${job.queue_position ? ` · #${job.queue_position} in queue` : ""}` }),
    job.error ? h("p", { class: "error small", text: job.error.message }) : null,
    h("ul", { class: "stage-minis" }, stages),
    h("div", { class: "row" }, buttons),
  );
}
