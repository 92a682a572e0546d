// Create an export, or edit one: the form is drawn from the field table (fields.js). Each error the
// API answers is shown beside the field its `target` names, listed above the form, and focused.
// Editing is conditional on the version read (If-Match): a change made meanwhile by someone else is
// shown, never overwritten.

import { api } from "../api.js";
import { session } from "../auth.js";
import { fill, h, route, uid } from "../dom.js";
import { definitionOf, FIELDS, GROUPS, helpOf, initialValues, placeOf, valuesOf, visible } from "../fields.js";
import { onboardingPanel } from "./onboarding.js";

export async function formPage(ctx, project, exportId) {
  const mode = exportId ? "edit" : "create";
  const heading = h("h1", {}, mode === "edit" ? ["Edit ", h("span", { class: "id" }, exportId)] : "New export");
  const crumbs = h("p", { class: "crumbs" }, h("a", { href: "#/" }, "Projects"), " › ", h("a", { href: route("p", project) }, project));
  const page = h("div", { class: "page narrow" }, crumbs, heading);
  fill(ctx.main, page);
  ctx.titled(heading);
  if (!session.grants.canChange(project)) {
    page.append(h("p", { class: "problem" }, "You can read this project's exports but not change them: that needs a contributor role."));
    return;
  }

  let etag = null;
  let values = initialValues();
  if (mode === "edit") {
    try {
      const read = await api.get(project, exportId);
      etag = read.etag;
      values = valuesOf(read.data);
    } catch (error) {
      if (ctx.current()) page.append(h("p", { class: "problem", role: "alert" }, error.message));
      return;
    }
    if (!ctx.current()) return;
  }

  const summary = h("div", { class: "problem summary", role: "alert", tabindex: "-1", hidden: true });
  const controls = new Map(); // field name -> {wrapper, inputs, error, help}
  const groupErrors = new Map(); // group id -> error element
  const form = h("form", { class: "stack", novalidate: true });
  // Built before the fields, placed in the destination group; `read` and the errors' functions below.
  const onboarding = onboardingPanel({
    project,
    read: () => read(),
    showErrors: (...args) => showErrors(...args),
    clearErrors: () => clearErrors(),
    announce: ctx.announce,
    current: ctx.current,
  });

  for (const group of GROUPS) {
    const fields = FIELDS.filter((f) => f.group === group.id && !(mode === "edit" && f.only === "create"));
    if (!fields.length) continue;
    const error = h("div", { class: "error", id: uid("group-error"), hidden: true });
    groupErrors.set(group.id, error);
    const container = group.legend ? h("fieldset", { class: "group" }, h("legend", {}, group.legend), error) : h("div", { class: "group" }, error);
    for (const field of fields) {
      const control = fieldControl(field, values[field.name], mode);
      controls.set(field.name, control);
      container.append(control.wrapper);
    }
    form.append(container);
    if (group.id === "destination") container.append(onboarding.element);
  }
  const submit = h("button", { type: "submit", class: "primary" }, mode === "edit" ? "Save changes" : "Create export");
  const cancel = h("a", { class: "button", href: mode === "edit" ? route("p", project, "e", exportId) : route("p", project) }, "Cancel");
  form.append(h("div", { class: "toolbar" }, submit, cancel));
  page.append(summary, form);

  const read = () => {
    const current = {};
    for (const [name, control] of controls) current[name] = control.value();
    return { ...values, ...current };
  };
  const relayout = () => {
    const current = read();
    for (const field of FIELDS) {
      const control = controls.get(field.name);
      if (!control) continue;
      control.wrapper.hidden = !visible(field, current);
      control.help.textContent = helpOf(field, current, mode);
      control.help.hidden = !control.help.textContent;
    }
    onboarding.relayout(current);
  };
  form.addEventListener("input", relayout);
  form.addEventListener("change", relayout);
  relayout();

  const clearErrors = () => {
    summary.hidden = true;
    for (const control of controls.values()) control.setError("");
    for (const error of groupErrors.values()) error.hidden = true;
  };
  const showErrors = (errors, hints = []) => {
    const items = [];
    for (const error of errors) {
      const place = placeOf(error.target);
      const control = place && place.field ? controls.get(place.field) : null;
      if (control && !control.wrapper.hidden) {
        control.setError(error.message);
        items.push(h("li", {}, h("button", { type: "button", class: "link", onClick: () => control.focus() }, error.message)));
      } else if (place && place.group && groupErrors.has(place.group)) {
        const slot = groupErrors.get(place.group);
        fill(slot, h("p", {}, error.message), hints.length ? h("ul", {}, hints.map((hint) => h("li", {}, hint))) : null);
        slot.hidden = false;
        items.push(h("li", {}, error.message));
      } else {
        items.push(h("li", {}, error.message));
      }
    }
    fill(summary, h("h2", {}, errors.length > 1 ? `There are ${errors.length} problems` : "There is a problem"), h("ul", {}, items));
    summary.hidden = false;
    summary.focus();
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const current = read();
    const definition = definitionOf(current);
    submit.disabled = true;
    try {
      if (mode === "create") {
        const id = current.exportId.trim();
        if (!id) {
          showErrors([{ message: "Name is required.", target: "exportId" }]);
          return;
        }
        await api.create(project, id, definition);
        ctx.announce(`Export ${id} created.`);
        ctx.go(route("p", project, "e", id));
      } else {
        await api.replace(project, exportId, definition, etag);
        ctx.announce("Changes saved.");
        ctx.go(route("p", project, "e", exportId));
      }
    } catch (error) {
      if (error.status === 412 && mode === "create") {
        showErrors([{ message: "An export with this name already exists in the project: choose another name.", target: "exportId" }]);
      } else if (error.status === 412) {
        conflict();
      } else {
        showErrors(error.errors, error.hints);
      }
    } finally {
      submit.disabled = false;
    }
  });

  // Someone changed the export after this form was read: keep what was typed, say so, offer the
  // current version. Nothing was saved.
  function conflict() {
    const reload = h("button", { type: "button" }, "Load the current version");
    reload.addEventListener("click", () => formPage(ctx, project, exportId));
    fill(
      summary,
      h("h2", {}, "Someone else changed this export"),
      h("p", {}, "It was changed after you opened this form, so your changes were not saved (nothing was overwritten). Load the current version, then make your changes again."),
      reload,
    );
    summary.hidden = false;
    summary.focus();
  }
}

/** One field: its label, help, error and input(s), all tied together for screen readers. */
function fieldControl(field, initial, mode) {
  const id = `f-${field.name.replace(/[^A-Za-z0-9]/g, "-")}`;
  const help = h("p", { class: "help", id: `${id}-help` });
  const error = h("p", { class: "error", id: `${id}-error`, hidden: true });
  const describedBy = `${id}-help ${id}-error`;
  let inputs;
  let wrapper;
  if (field.type === "radio") {
    inputs = field.options.map((option, index) =>
      h("input", { type: "radio", name: field.name, id: `${id}-${index}`, value: option.value, checked: option.value === initial, "aria-describedby": describedBy }),
    );
    wrapper = h(
      "fieldset",
      { class: "field choices" },
      h("legend", {}, field.label),
      help,
      error,
      inputs.map((input, index) => h("div", { class: "choice" }, input, h("label", { for: input.id }, field.options[index].label))),
    );
  } else {
    const common = { id, name: field.name, "aria-describedby": describedBy, autocomplete: field.autocomplete };
    let input;
    if (field.type === "select") {
      input = h("select", common, field.options.map((o) => h("option", { value: o.value, selected: o.value === initial }, o.label)));
    } else if (field.type === "textarea") {
      input = h("textarea", { ...common, rows: "5", spellcheck: "false" });
      input.value = initial || "";
    } else {
      input = h("input", { ...common, type: field.type, spellcheck: "false", required: field.required && mode === "create" });
      input.value = initial || "";
    }
    inputs = [input];
    wrapper = h("div", { class: "field" }, h("label", { for: id }, field.label), help, error, input);
  }
  return {
    wrapper,
    help,
    value: () => (field.type === "radio" ? (inputs.find((i) => i.checked) || {}).value : inputs[0].value),
    focus: () => (inputs.find((i) => i.checked) || inputs[0]).focus(),
    setError(message) {
      error.textContent = message;
      error.hidden = !message;
      for (const input of inputs) {
        if (message) input.setAttribute("aria-invalid", "true");
        else input.removeAttribute("aria-invalid");
      }
      wrapper.classList.toggle("invalid", Boolean(message));
    },
  };
}
