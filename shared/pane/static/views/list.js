// A project's exports at a glance: name, destination, state (with the cause when postponed), signals
// exported in the last hour, backlog. Refreshes by itself; tells screen readers when an export's state changes.

import { api } from "../api.js";
import { session } from "../auth.js";
import { fill, h, route } from "../dom.js";
import { backlogText, count, destinationParts, stateOf } from "../format.js";

const REFRESH_MS = 30_000;
const PARALLEL = 6;

/** Each export's health, a few requests at a time; an export whose health fails shows without it. */
async function healthOf(project, items) {
  const found = new Map();
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++];
      try {
        found.set(item.id, (await api.health(project, item.id)).data);
      } catch {
        found.set(item.id, null);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, items.length) }, worker));
  return found;
}

export async function listPage(ctx, project) {
  const grants = session.grants;
  const heading = h("h1", {}, "Exports of ", h("span", { class: "id" }, project));
  const updated = h("p", { class: "updated" });
  const refresh = h("button", { type: "button", class: "quiet" }, "Refresh");
  const problem = h("div", { class: "problem", role: "alert", hidden: true });
  const body = h("div", { class: "results" }, h("p", {}, "Loading the exports…"));
  const actions = h(
    "div",
    { class: "toolbar" },
    grants.canChange(project) ? h("a", { class: "button primary", href: route("p", project, "new") }, "New export") : null,
    refresh,
    updated,
  );
  fill(ctx.main, h("div", { class: "page" }, h("p", { class: "crumbs" }, h("a", { href: "#/" }, "Projects")), heading, actions, problem, body));
  ctx.titled(heading);

  let states = null;
  const load = async ({ announceChanges }) => {
    let items;
    try {
      items = (await api.list(project)).data.value;
    } catch (error) {
      if (!ctx.current()) return;
      fill(problem, h("p", {}, error.message));
      problem.hidden = false;
      return;
    }
    const health = await healthOf(project, items);
    if (!ctx.current()) return;
    problem.hidden = true;
    const next = new Map(items.map((item) => [item.id, stateOf(item, health.get(item.id))]));
    if (announceChanges && states) {
      const changed = items.filter((item) => states.has(item.id) && states.get(item.id).key !== next.get(item.id).key);
      if (changed.length) ctx.announce(changed.map((item) => `${item.id}: ${next.get(item.id).label}.`).join(" "));
    }
    states = next;
    fill(body, items.length ? table(project, items, health, next) : empty(project, grants));
    updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
  };
  refresh.addEventListener("click", async () => {
    refresh.disabled = true;
    await load({ announceChanges: true });
    refresh.disabled = false;
    ctx.announce("Exports updated.");
  });
  ctx.every(REFRESH_MS, () => load({ announceChanges: true }));
  await load({ announceChanges: false });
}

function empty(project, grants) {
  return h(
    "p",
    {},
    "This project has no exports yet.",
    grants.canChange(project) ? [" ", h("a", { href: route("p", project, "new") }, "Create the first one"), "."] : null,
  );
}

function table(project, items, health, states) {
  const headings = ["Name", "Destination", "State", "Exported in the last hour", "Backlog"];
  return h(
    "table",
    { class: "exports", role: "table" }, // explicit roles: phones show the rows as cards (CSS display)
    h("caption", { class: "visually-hidden" }, "The project's exports"),
    h("thead", { role: "rowgroup" }, h("tr", { role: "row" }, headings.map((text) => h("th", { scope: "col", role: "columnheader" }, text)))),
    h(
      "tbody",
      { role: "rowgroup" },
      items.map((item) => {
        const view = health.get(item.id);
        const state = states.get(item.id);
        return h(
          "tr",
          { "data-export": item.id, role: "row" },
          h("th", { scope: "row", role: "rowheader", "data-label": headings[0] }, h("a", { href: route("p", project, "e", item.id) }, item.id)),
          h("td", { "data-label": headings[1], class: "wrap", role: "cell" }, destinationParts(item.destination).map((part) => h("span", { class: "line" }, part))),
          h(
            "td",
            { "data-label": headings[2], role: "cell" },
            h("span", { class: `badge ${state.key}` }, state.label),
            state.detail && state.key !== "active" ? h("span", { class: "detail" }, state.detail) : null,
          ),
          h("td", { "data-label": headings[3], class: "number", role: "cell" }, view ? count(view.counters.exportedLastHour ?? 0) : "–"),
          h("td", { "data-label": headings[4], role: "cell" }, view ? backlogText(view.backlog) : "–"),
        );
      }),
    ),
  );
}
