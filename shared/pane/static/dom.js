// Elements built with DOM APIs only. Text always goes in as text nodes (never parsed as markup), so a
// value from the API shows as what it is, whatever characters it holds; event handlers are functions.

const FORBIDDEN = new Set(["innerHTML", "outerHTML", "srcdoc", "style"]);

/** h("p", {class: "note"}, "text", child, [more children]) */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (FORBIDDEN.has(key)) throw new TypeError(`h(): ${key} is not allowed`);
    if (key.startsWith("on")) {
      if (typeof value !== "function") throw new TypeError(`h(): ${key} must be a function`);
      element.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "class") {
      element.className = value;
    } else if (key === "value" || key === "checked" || key === "selected") {
      element[key] = value;
    } else {
      element.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

export function append(element, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

/** Replace an element's children. */
export function fill(element, ...children) {
  element.replaceChildren();
  return append(element, children);
}

/** A hash route's address: each part encoded, so an id can never change the route's shape. */
export function route(...parts) {
  return "#/" + parts.map((part) => encodeURIComponent(part)).join("/");
}

let counter = 0;
/** An id for an element of this page, for labels and aria-describedby. */
export function uid(prefix) {
  counter += 1;
  return `${prefix}-${counter}`;
}
