// The page's entry: the API key panel, the notice area and a hash router between the home page
// (upload + job list, "#/") and a job's page ("#/jobs/<id>").
import "./styles.css";
import { getApiKey, setApiKey } from "./api.js";
import { renderHome } from "./home.js";
import { renderJob } from "./job-page.js";

const main = document.getElementById("main");
let cleanup = () => {};

/** Show an error (or clear it with null) in the page-wide alert region. */
export function showNotice(message) {
  const notice = document.getElementById("notice");
  notice.textContent = message || "";
  notice.hidden = !message;
}

function setupKeyPanel() {
  const form = document.getElementById("key-form");
  const input = document.getElementById("api-key");
  const state = document.getElementById("key-state");
  const refresh = () => {
    state.textContent = getApiKey() ? "saved" : "not set";
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    setApiKey(input.value.trim());
    input.value = "";
    refresh();
    showNotice(null);
    document.getElementById("key-panel").open = false;
    route();
  });
  document.getElementById("key-forget").addEventListener("click", () => {
    setApiKey("");
    input.value = "";
    refresh();
    route();
  });
  refresh();
}

function route() {
  cleanup();
  showNotice(null);
  const match = /^#\/jobs\/([A-Za-z0-9_-]+)/.exec(location.hash);
  if (match) {
    cleanup = renderJob(main, match[1], { showNotice });
    document.title = "Job · vid2scene";
  } else {
    cleanup = renderHome(main, { showNotice });
    document.title = "vid2scene";
  }
}

window.addEventListener("hashchange", () => {
  route();
  main.focus({ preventScroll: false });
});
setupKeyPanel();
route();
