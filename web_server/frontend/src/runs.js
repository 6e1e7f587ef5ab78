// A job's runs: the uploaded job and every run trained on its video and SfM result, side by side
// with each training stage's held-out PSNR; and the form that starts a new run (POST /v1/jobs/{id}/runs).
import { api } from "./api.js";
import { h, replaceChildren } from "./dom.js";
import { STAGE_LABELS } from "./format.js";

const TRAINING = ["gs", "nerf"];
const PRESETS = ["preview", "standard", "high"];

/** @returns {string} the stage's held-out PSNR, e.g. "24.31 dB", or "–". */
function psnr(job, stage) {
  const value = job.stages[stage]?.metrics?.heldout_psnr;
  return Number.isFinite(value) ? `${value.toFixed(2)} dB` : job.stages[stage] ? job.stages[stage].status : "–";
}

/**
 * Draw the runs table of a family (GET /v1/jobs/{id}/runs) into `el`; the current job's row is marked.
 * @param {HTMLElement} el
 * @param {{ root_job: string, max_runs: number, items: any[] }} family
 * @param {string} currentId
 */
export function drawRuns(el, family, currentId) {
  const head = h("tr", {}, ["Run", "Status", "Preset", "SfM", ...TRAINING.map((s) => `${STAGE_LABELS[s]} PSNR`)].map((t) => h("th", { scope: "col", text: t })));
  const rows = family.items.map((job) => {
    const label = job.from_job ? `run ${job.id.slice(0, 8)}` : `upload ${job.id.slice(0, 8)}`;
    const sfm = job.from_job ? (job.sfm_reused_from ? "reused" : "run again") : "run";
    return h(
      "tr",
      { "data-job": job.id, class: job.id === currentId ? "current" : "" },
      h("th", { scope: "row" }, job.id === currentId ? h("strong", { text: label }) : h("a", { href: `#/jobs/${job.id}`, text: label })),
      h("td", { text: job.status }),
      h("td", { text: job.preset }),
      h("td", { text: sfm }),
      TRAINING.map((stage) => h("td", { "data-psnr": stage, text: psnr(job, stage) })),
    );
  });
  const note = h("p", { class: "muted small", text: `${family.items.length - 1} of ${family.max_runs} runs · held-out PSNR on every 8th frame, higher is better` });
  replaceChildren(
    el,
    h("div", { class: "runs-scroll" }, h("table", { class: "runs", id: "runs-table" }, h("thead", {}, head), h("tbody", {}, rows))),
    note,
  );
}

/**
 * The "Train again" form: methods and preset for a new run of `job`; `onStarted(run)` gets the new job.
 * @param {any} job a finished job whose SfM stage succeeded.
 * @param {(run: any) => void} onStarted
 * @param {(message: string) => void} onError
 */
export function rerunForm(job, onStarted, onError) {
  const boxes = TRAINING.map((m) => h("label", {}, h("input", { type: "checkbox", name: "methods", value: m, checked: !job.methods.includes(m) }), ` ${STAGE_LABELS[m]}`));
  const preset = h("select", { name: "preset", "aria-label": "Preset" }, PRESETS.map((p) => h("option", { value: p, text: p, selected: p === job.preset })));
  const button = h("button", { type: "submit", "data-focus": "rerun", text: "Start run" });
  return h(
    "form",
    {
      class: "row rerun-form",
      id: "rerun-form",
      onSubmit: (e) => {
        e.preventDefault();
        const methods = boxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
        if (!methods.length) return onError("Pick at least one method for the run.");
        button.disabled = true;
        api(`/v1/jobs/${job.id}/runs`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ methods, preset: preset.value }) })
          .then(onStarted, (err) => onError(err.message))
          .finally(() => (button.disabled = false));
      },
    },
    h("span", { class: "muted small", text: "Train again on this video and its camera poses:" }),
    ...boxes,
    preset,
    button,
  );
}
