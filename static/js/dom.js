// Page content built from data without ever parsing data as HTML. Labels, names, file
// names and job messages are typed by users (some of them by other users): they go into
// the page as text nodes and attribute values only, so a "<img onerror=…>" stays text.
// Every script builds its nodes here instead of writing innerHTML.

const URL_ATTRIBUTES = new Set(["href", "src", "action", "formaction", "poster"]);
// Same-site paths, http(s), blob: and data: images; never javascript:, other schemes or
// another host by a protocol-relative "//host".
const SAFE_URL = /^(?:\/(?![/\\])|\.{1,2}\/|https?:|blob:|data:image\/|(?![/\\]{2})[^:]*$)/i;

// h("a", {href: "/x/", class: "muted"}, "text", otherNode): an element with attributes and
// children; strings become text nodes, null/false children and attributes are left out.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue;
    if (/^on/i.test(name) || name === "style") {
      // Handlers belong in addEventListener and styles in classes (CSP: no inline either).
      throw new Error(`h(): attribute ${name} is not allowed`);
    }
    if (name === "class") el.className = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (URL_ATTRIBUTES.has(name.toLowerCase())) el.setAttribute(name, safeUrl(value));
    else if (value === true) el.setAttribute(name, "");
    else if (name === "value" || name === "max") el[name] = value;
    else el.setAttribute(name, String(value));
  }
  el.append(...children.flat().filter((c) => c != null && c !== false).map((c) => (c instanceof Node ? c : String(c))));
  return el;
}

// A URL that cannot run script: anything but the schemes above becomes "#".
export function safeUrl(value) {
  const url = String(value).trim();
  return SAFE_URL.test(url) ? url : "#";
}

// Replace an element's children with these nodes or strings (text, never HTML).
export function setChildren(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c != null && c !== false));
}

// An inline refusal or error, read out by screen readers: replaces alert().
export function showAlert(where, text) {
  const message = h("p", { class: "error", role: "alert" }, text);
  where.replaceChildren(message);
  return message;
}
