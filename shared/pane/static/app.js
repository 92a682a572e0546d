// The pane: a hash router over a handful of views, the header, and what every view shares (the
// announcer for screen readers, focus on each new page's heading, refreshes that stop on leaving).

import { session } from "./auth.js";
import { fill, h } from "./dom.js";
import { exportPage } from "./views/export.js";
import { formPage } from "./views/form.js";
import { listPage } from "./views/list.js";
import { projectsPage } from "./views/projects.js";
import { signInPage } from "./views/signin.js";

const main = document.getElementById("main");
const who = document.getElementById("who");
const announcer = document.getElementById("announcer");
let config = { entra: null };
let leaving = () => {};
let rendering = 0;

/** Say something to screen readers without moving focus (the page's polite live region). What is
 * said within a moment is said together, so a notice and the state change that follows both reach. */
let pending = [];
export function announce(text) {
  pending.push(text);
  if (pending.length > 1) return;
  announcer.textContent = "";
  setTimeout(() => {
    announcer.textContent = pending.join(" ");
    pending = [];
  }, 150);
}

/** What each view gets: where to draw, how to go elsewhere, and a timer that stops when it is left. */
function context(token) {
  const timers = new Set();
  return {
    main,
    config,
    announce,
    go: (hash) => {
      if (location.hash === hash) render();
      else location.hash = hash;
    },
    current: () => token === rendering,
    every(ms, task) {
      const id = setInterval(() => {
        if (!document.hidden && token === rendering) task();
      }, ms);
      timers.add(id);
      return () => {
        clearInterval(id);
        timers.delete(id);
      };
    },
    /** Run a task once after a delay, unless the view is left first. */
    after(ms, task) {
      const id = setTimeout(() => {
        timers.delete(id);
        if (token === rendering) task();
      }, ms);
      timers.add(id);
      return () => {
        clearTimeout(id);
        timers.delete(id);
      };
    },
    stop: () => timers.forEach((id) => clearTimeout(id)),
    /** Put the page's title in place and move focus to its heading, as a new page would. */
    titled(heading) {
      document.title = `${heading.textContent} – Signals export`;
      heading.tabIndex = -1;
      heading.focus();
    },
  };
}

function header() {
  if (!session.signedIn) {
    fill(who);
    return;
  }
  fill(
    who,
    h("span", { class: "signed-in" }, "Signed in: ", h("strong", {}, session.label)),
    h("button", { type: "button", class: "quiet", onClick: () => session.signOut("You signed out.") }, "Sign out"),
  );
}

function parse(hash) {
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean).map((part) => {
    try {
      return decodeURIComponent(part);
    } catch {
      return "";
    }
  });
  const [p, project, e, exportId, action] = parts;
  if (p === "p" && project && !e) return { view: "list", project };
  if (p === "p" && project && e === "new" && !exportId) return { view: "create", project };
  if (p === "p" && project && e === "e" && exportId && !action) return { view: "export", project, exportId };
  if (p === "p" && project && e === "e" && exportId && action === "edit") return { view: "edit", project, exportId };
  return { view: "projects" };
}

async function render() {
  leaving();
  rendering += 1;
  const ctx = context(rendering);
  leaving = ctx.stop;
  header();
  if (!session.signedIn) {
    await signInPage(ctx, { note: takeSignOutNote(), onSignedIn: () => render() });
    return;
  }
  const where = parse(location.hash);
  if (where.view === "list") await listPage(ctx, where.project);
  else if (where.view === "create") await formPage(ctx, where.project, null);
  else if (where.view === "edit") await formPage(ctx, where.project, where.exportId);
  else if (where.view === "export") await exportPage(ctx, where.project, where.exportId);
  else await projectsPage(ctx);
}

let signOutNote = "";
session.onSignOut((reason) => {
  signOutNote = reason;
  render();
});
const takeSignOutNote = () => {
  const note = signOutNote;
  signOutNote = "";
  return note;
};

document.getElementById("skip").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});

async function boot() {
  try {
    const response = await fetch("config.json", { cache: "no-store", credentials: "omit" });
    if (response.ok) config = await response.json();
  } catch {
    // No configuration: only a development sign-in, if the host offers one.
  }
  window.addEventListener("hashchange", () => render());
  await render();
}

boot();
