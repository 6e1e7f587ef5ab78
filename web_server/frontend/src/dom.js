// Small helpers to build DOM nodes without innerHTML (job names and messages are user data).

/**
 * Create an element.
 * @param {string} tag e.g. "div".
 * @param {Record<string, any>} [attrs] attributes; `class`, `text`, `on<Event>` handled specially.
 * @param {...(Node|string|null|undefined|false)} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") el.textContent = String(value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2).toLowerCase(), value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace all children of `el`. */
export function replaceChildren(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

/**
 * Replace the children of `el` and keep keyboard focus on the element with the same
 * `data-focus` key as the one focused before (live updates redraw lists under the user).
 */
export function redrawKeepingFocus(el, ...children) {
  const key = document.activeElement instanceof HTMLElement ? document.activeElement.dataset.focus : undefined;
  replaceChildren(el, ...children);
  if (key) el.querySelector(`[data-focus="${CSS.escape(key)}"]`)?.focus();
}
