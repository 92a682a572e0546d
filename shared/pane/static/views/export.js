// One export: its health (state, the cause in plain words, what to check), counters, backlog and
// replay progress, its settings, and what a contributor can do: resume (with the current key when it
// was regenerated), disable and enable, edit, delete. Refreshes by itself, every few seconds while
// its backlog drains; tells screen readers when its state changes or the backlog is empty.

import { api } from "../api.js";
import { session } from "../auth.js";
import { fill, h, route, uid } from "../dom.js";
import { AUTH_METHODS, methodOf } from "../fields.js";
import { age, backlogText, bytes, count, destinationText, KINDS, signalsText, stateOf, when } from "../format.js";

const DRAINING_MS = 2_000;
const STEADY_MS = 15_000;

function definitionList(rows) {
  return h("dl", { class: "facts" }, rows.filter(Boolean).map(([term, value]) => h("div", {}, h("dt", {}, term), h("dd", {}, value))));
}

export async function exportPage(ctx, project, exportId) {
  const canChange = session.grants.canChange(project);
  const heading = h("h1", {}, h("span", { class: "id" }, exportId));
  const subtitle = h("p", { class: "subtitle" });
  const updated = h("p", { class: "updated" });
  const refresh = h("button", { type: "button", class: "quiet" }, "Refresh");
  const problem = h("div", { class: "problem", role: "alert", hidden: true });
  const notice = h("div", { class: "notice", hidden: true });
  const healthBox = h("div");
  const backlogBox = h("div");
  const countersBox = h("div");
  const settingsBox = h("div");
  const historyBox = h("div");
  const section = (id, title, ...content) =>
    h("section", { "aria-labelledby": id, id: `${id}-section` }, h("h2", { id }, title), ...content);

  const resume = canChange ? resumeForm() : null;
  const manage = canChange ? manageSection() : null;

  fill(
    ctx.main,
    h(
      "div",
      { class: "page" },
      h("p", { class: "crumbs" }, h("a", { href: "#/" }, "Projects"), " › ", h("a", { href: route("p", project) }, project)),
      heading,
      subtitle,
      h("div", { class: "toolbar" }, refresh, updated),
      problem,
      notice,
      section("health", "Health", healthBox),
      resume ? resume.element : null,
      section("backlog", "Backlog and replay", backlogBox),
      section("counters", "Counters", countersBox),
      section(
        "settings",
        "Settings",
        settingsBox,
        canChange ? h("a", { class: "button", href: route("p", project, "e", exportId, "edit") }, "Edit settings") : null,
      ),
      manage ? manage.element : null,
      section("history", "Recent changes", historyBox),
    ),
  );
  ctx.titled(heading);

  let item = null;
  let etag = null;
  let lastState = null;
  let drainMax = 0;
  let cancelNext = () => {};

  const showProblem = (message) => {
    fill(problem, h("p", {}, message));
    problem.hidden = !message;
  };
  const showNotice = (message) => {
    fill(notice, h("p", {}, message));
    notice.hidden = false;
    ctx.announce(message);
  };

  async function load() {
    let health;
    try {
      const [read, view] = await Promise.all([api.get(project, exportId), api.health(project, exportId)]);
      ({ data: item, etag } = read);
      health = view.data;
    } catch (error) {
      if (!ctx.current()) return;
      showProblem(error.message);
      return;
    }
    if (!ctx.current()) return;
    showProblem("");
    const state = stateOf(item, health);
    if (lastState && lastState.key !== state.key) ctx.announce(`The export is now ${state.label.toLowerCase()}.`);
    const draining = state.key === "replaying";
    if (lastState && lastState.key === "replaying" && !draining) ctx.announce("The backlog is replayed: nothing is waiting.");
    lastState = state;
    subtitle.textContent = destinationText(item.destination);
    drawHealth(state, health);
    drawBacklog(health, draining);
    drawCounters(health);
    drawSettings();
    drawHistory(health.history);
    if (resume) resume.update(state, item);
    if (manage) manage.update(item);
    updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    cancelNext();
    cancelNext = ctx.after(draining ? DRAINING_MS : STEADY_MS, load);
  }

  function drawHealth(state, health) {
    fill(
      healthBox,
      h("p", { class: "state" }, h("span", { class: `badge ${state.key}` }, state.label), health.since ? h("span", { class: "detail" }, `since ${when(health.since)}`) : null),
      state.detail ? h("p", { class: "explanation" }, state.detail) : null,
      health.hints.length
        ? [h("h3", {}, "What to check"), h("ul", { class: "hints" }, health.hints.map((hint) => h("li", {}, hint)))]
        : null,
      definitionList([
        health.successRate == null ? null : ["Writes that succeeded recently", `${Math.round(health.successRate * 100)}%`],
        ["Last successful write", when(health.lastSuccessAt)],
        health.lastFailureAt
          ? ["Last failed write", `${when(health.lastFailureAt)}${health.lastErrorCode ? ` (the storage account answered ${health.lastErrorCode})` : ""}`]
          : null,
      ]),
    );
  }

  function drawBacklog(health, draining) {
    const left = health.backlog.files;
    drainMax = draining ? Math.max(drainMax, left) : 0;
    const progressId = uid("replay");
    fill(
      backlogBox,
      definitionList([
        ["Waiting in the backlog", backlogText(health.backlog, { withAge: false })],
        health.backlog.files > 0 && health.backlog.oldestAgeSeconds != null
          ? ["Oldest waiting for", age(health.backlog.oldestAgeSeconds)]
          : null,
      ]),
      h("p", { class: "help" }, "Signals wait here while the export is postponed and are written to the destination when it resumes. They are kept for a limited time (7 days unless the service is set otherwise)."),
      draining
        ? h(
            "div",
            { class: "replay" },
            h("label", { for: progressId }, `Replaying: ${count(left)} of ${count(drainMax)} backlog files left (${bytes(health.replay.bytesLeft)})`),
            h("progress", { id: progressId, max: String(drainMax), value: String(drainMax - left) }),
          )
        : null,
      health.replay.poisonedItems
        ? h("p", { class: "problem" }, `${count(health.replay.poisonedItems)} backlog files failed to replay five times and are set aside. Resuming again retries them.`)
        : null,
    );
  }

  function drawCounters(health) {
    const c = health.counters;
    fill(
      countersBox,
      definitionList([
        ["Signals exported in the last hour", count(c.exportedLastHour ?? 0)],
        ["Signals exported", count(c.exported)],
        ["Bytes exported", bytes(c.exportedBytes)],
        ["Signals sent to the backlog", count(c.backlogged)],
        ["Signals dropped (export disabled)", count(c.dropped)],
        ["Signals lost (backlog expired)", count(c.lost)],
        ["Failed writes", count(c.failedWrites)],
      ]),
    );
  }

  function drawSettings() {
    const d = item.destination;
    const method = AUTH_METHODS.find((m) => m.value === methodOf(d));
    fill(
      settingsBox,
      definitionList([
        ["Destination kind", KINDS[d.type] || d.type],
        ["Storage account URI", d.uri],
        d.type === "adls" ? ["File system and path", d.path] : ["Container", d.container],
        ["Authentication", `${method ? method.label : "–"}${d.hasSharedKey ? ": set (never shown)" : ""}`],
        d.type === "adls" ? ["Export granularity", item.granularity === "day" ? "A file per day" : "A file per hour"] : null,
        ["Signals", signalsText(item.signals)],
        item.location
          ? ["Client location", `${item.location.ipField} → ${item.location.key}${item.location.anonymize ? ", address anonymised" : ""}`]
          : null,
        item.notify ? ["Webhook", item.notify.webhook] : null,
        ["Created", when(item.createdAt)],
        ["Changed", when(item.updatedAt)],
      ]),
    );
  }

  function drawHistory(history) {
    const words = { active: "active", postponed: "postponed", disabled: "disabled" };
    fill(
      historyBox,
      history && history.length
        ? h(
            "ol",
            { class: "history" },
            [...history].reverse().map((change) =>
              h(
                "li",
                {},
                h("span", { class: "when" }, when(change.at)),
                " ",
                `${words[change.from] || change.from} → ${words[change.to] || change.to}`,
                change.reason ? `: ${change.reason}` : "",
              ),
            ),
          )
        : h("p", {}, "No state changes yet."),
    );
  }

  // Resume: only a postponed or disabled export; the current key first when it was regenerated.
  function resumeForm() {
    const keyId = uid("key");
    const key = h("input", { id: keyId, type: "password", autocomplete: "off", "aria-describedby": `${keyId}-help ${keyId}-error` });
    const keyError = h("div", { id: `${keyId}-error`, class: "error", hidden: true });
    const keyField = h(
      "div",
      { class: "field" },
      h("label", { for: keyId }, "Current storage account key (if it was regenerated)"),
      h("p", { class: "help", id: `${keyId}-help` }, "From the Access keys pane of the storage account. Leave empty to keep the key the export has."),
      keyError,
      key,
    );
    const button = h("button", { type: "submit", class: "primary" }, "Resume");
    const form = h("form", { class: "stack", novalidate: true }, keyField, button);
    const element = h(
      "section",
      { "aria-labelledby": "resume", class: "panel", hidden: true },
      h("h2", { id: "resume" }, "Resume the export"),
      h("p", {}, "Resuming checks that the destination takes writes, then writes every signal kept in the backlog and exports new signals again."),
      form,
    );
    const showError = (error) => {
      fill(keyError, h("p", {}, error.message), error.hints.length ? h("ul", {}, error.hints.map((hint) => h("li", {}, hint))) : null);
      keyError.hidden = false;
      key.setAttribute("aria-invalid", "true");
      key.focus();
    };
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      keyError.hidden = true;
      key.removeAttribute("aria-invalid");
      button.disabled = true;
      try {
        let status = item.status;
        if (key.value) {
          const patched = await api.patch(project, exportId, { destination: { sharedKey: key.value } }, etag);
          key.value = "";
          status = patched.data.status;
        }
        if (status !== "active") await api.resume(project, exportId);
        showNotice("Resumed: the backlog is being written to the destination.");
      } catch (error) {
        if (error.status === 412) showProblem("Someone changed this export after the page loaded, so nothing was changed. The page shows its current state: check it, then try again.");
        else showError(error);
      } finally {
        button.disabled = false;
        await load();
      }
    });
    return {
      element,
      update(state, current) {
        element.hidden = !(state.key === "postponed" || state.key === "disabled");
        keyField.hidden = methodOf(current.destination) !== "sharedKey";
      },
    };
  }

  // Disable or enable, and delete (after a confirmation saying that exported data stays).
  function manageSection() {
    const toggle = h("button", { type: "button" });
    const toggleHelp = h("p", { class: "help" });
    const remove = h("button", { type: "button", class: "danger" }, "Delete export");
    const confirmDelete = h("button", { type: "button", class: "danger" }, "Delete export");
    const cancel = h("button", { type: "button", autofocus: true }, "Cancel");
    const dialogProblem = h("p", { class: "problem", role: "alert", hidden: true });
    const dialog = h(
      "dialog",
      { "aria-labelledby": "delete-title", "aria-describedby": "delete-text" },
      h("h2", { id: "delete-title" }, "Delete export ", h("span", { class: "id" }, exportId), "?"),
      h(
        "p",
        { id: "delete-text" },
        "The export stops: no more signals are written to its destination, and signals waiting in its backlog are not written. The data it already exported stays in your storage account: nothing there is deleted.",
      ),
      dialogProblem,
      h("div", { class: "toolbar" }, confirmDelete, cancel),
    );
    cancel.addEventListener("click", () => dialog.close());
    remove.addEventListener("click", () => {
      dialogProblem.hidden = true;
      dialog.showModal();
    });
    dialog.addEventListener("close", () => remove.focus());
    confirmDelete.addEventListener("click", async () => {
      confirmDelete.disabled = true;
      try {
        await api.remove(project, exportId, etag);
        dialog.close();
        ctx.announce(`Export ${exportId} deleted. The data it exported stays in your storage account.`);
        ctx.go(route("p", project));
      } catch (error) {
        dialogProblem.textContent =
          error.status === 412 ? "Someone changed this export after the page loaded. Close this, check the export, then delete it again." : error.message;
        dialogProblem.hidden = false;
        await load();
      } finally {
        confirmDelete.disabled = false;
      }
    });
    toggle.addEventListener("click", async () => {
      toggle.disabled = true;
      try {
        if (item.enabled) {
          await api.disable(project, exportId);
          showNotice("Disabled: signals are neither written nor kept until you enable the export.");
        } else {
          await api.enable(project, exportId);
          showNotice("Enabled: new signals are exported from now on.");
        }
      } catch (error) {
        showProblem(error.message);
      } finally {
        toggle.disabled = false;
        await load();
      }
    });
    const element = h(
      "section",
      { "aria-labelledby": "manage" },
      h("h2", { id: "manage" }, "Manage"),
      h("div", { class: "stack" }, h("div", {}, toggle, toggleHelp), h("div", {}, remove, h("p", { class: "help" }, "Deleting stops the export. Data already exported stays in your storage account."))),
      dialog,
    );
    return {
      element,
      update(current) {
        toggle.textContent = current.enabled ? "Disable" : "Enable";
        toggleHelp.textContent = current.enabled
          ? "Disabling stops the export: signals are neither written nor kept while it is disabled."
          : "Enabling exports new signals from now on; signals sent while it was disabled are not exported.";
      },
    };
  }

  refresh.addEventListener("click", async () => {
    refresh.disabled = true;
    await load();
    refresh.disabled = false;
    ctx.announce("Export updated.");
  });
  await load();
}
