// The onboarding steps of a keyless destination, inside the export form: when the method is Microsoft
// Entra ID, a button asks the API's onboarding operation for the form's tenant and destination and
// shows what the tenant's administrator does, in order: the consent link, the claim and the role
// assignment as commands to copy. Errors with a target go beside their fields (the form's own
// showErrors); a service without Microsoft Entra ID set up is said in plain words here.

import { api } from "../api.js";
import { fill, h, uid } from "../dom.js";
import { onboardingRequest, stepsOf } from "../onboarding.js";

/** A command in a code block of its own, with a button that copies it (selects it where the clipboard
 * is not available, so the keyboard's copy works). */
function codeBlock(command, label, announce) {
  const code = h("code", {}, command);
  const copy = h("button", { type: "button", class: "quiet copy", "aria-label": `Copy the ${label.toLowerCase()}` }, "Copy");
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(command);
      announce(`${label} copied.`);
    } catch {
      const range = document.createRange();
      range.selectNodeContents(code);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      announce("The command is selected: copy it with your keyboard.");
    }
  });
  return h("div", { class: "command", role: "group", "aria-label": label }, h("pre", {}, code), copy);
}

function stepItem(step, announce) {
  const parts = [h("p", {}, step.text)];
  if (step.link) {
    parts.push(h("p", {}, h("a", { href: step.link, target: "_blank", rel: "noopener noreferrer", class: "consent" }, step.linkText, h("span", { class: "visually-hidden" }, " (opens in a new tab)"))));
  } else if (step.linkText) {
    parts.push(h("p", { class: "id" }, step.linkText));
  }
  if (step.code) parts.push(codeBlock(step.code, step.label, announce));
  if (step.bicep) {
    parts.push(h("details", {}, h("summary", {}, "The same role assignment as a Bicep file"), codeBlock(step.bicep, "Bicep file", announce)));
  }
  return h("li", {}, parts);
}

/**
 * The panel: `read()` gives the form's values, `showErrors`/`clearErrors` are the form's, `announce`
 * the pane's live region, `current()` whether the page is still shown. `relayout(values)` shows it only
 * for Microsoft Entra ID, and drops steps made for another tenant or destination.
 */
export function onboardingPanel({ project, read, showErrors, clearErrors, announce, current }) {
  const headingId = uid("onboarding");
  const button = h("button", { type: "button" }, "Show the onboarding steps");
  const problem = h("div", { class: "problem", role: "alert", hidden: true });
  const result = h("div", { class: "onboarding-steps" });
  const element = h(
    "section",
    { class: "onboarding", "aria-labelledby": headingId },
    h("h2", { id: headingId }, "Onboarding"),
    h("p", { class: "help" }, "Before the export is created, an administrator of your tenant consents to the service's application, claims the file system or container for this project, and gives the application a role on it. The steps name your tenant and this destination."),
    button,
    problem,
    result,
  );
  let shownFor = "";

  const say = (message) => {
    fill(problem, h("p", {}, message));
    problem.hidden = false;
  };

  button.addEventListener("click", async () => {
    clearErrors();
    problem.hidden = true;
    const values = read();
    const body = onboardingRequest(values);
    if (!String(values["destination.entra.tenantId"] || "").trim()) {
      showErrors([{ message: "Enter your tenant ID: the onboarding steps are for that tenant.", target: "destination.entra.tenantId" }]);
      return;
    }
    button.disabled = true;
    try {
      const { data } = await api.onboarding(project, body);
      if (!current()) return;
      shownFor = JSON.stringify(body);
      const heading = h("h3", { tabindex: "-1" }, "Steps for the tenant ", h("span", { class: "id" }, data.tenantId));
      fill(result, heading, h("ol", { class: "steps" }, stepsOf(data, body.destination).map((step) => stepItem(step, announce))));
      heading.focus();
      announce("The onboarding steps are shown.");
    } catch (error) {
      if (!current()) return;
      fill(result);
      shownFor = "";
      if (error.code === "EntraIdNotConfigured") {
        say(`This service is not set up for keyless destinations yet, so there are no onboarding steps to show: ask its operator to set it up, or choose the storage account key or a SAS instead. (${error.message})`);
      } else if (error.errors.some((e) => e.target)) {
        showErrors(error.errors, error.hints);
      } else {
        say(error.message);
      }
    } finally {
      button.disabled = false;
    }
  });

  return {
    element,
    relayout(values) {
      element.hidden = values.auth !== "entra";
      if (shownFor && shownFor !== JSON.stringify(onboardingRequest(values))) {
        shownFor = "";
        fill(result, h("p", { class: "help" }, "The tenant or the destination changed: show the onboarding steps again for the new ones."));
      }
    },
  };
}
