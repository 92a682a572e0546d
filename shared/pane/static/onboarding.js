// The onboarding of a keyless destination (Microsoft Entra ID), as the pane words it: the request the
// API's onboarding operation takes, from the form's values, and its answer as steps in order. Pure: no
// DOM. The steps are built from the answer's structured fields (never from its prose), so each command
// is shown whole, in a code block of its own.

import { definitionOf } from "./fields.js";

/** The onboarding operation's body for the form's values: the destination as the export will give it. */
export function onboardingRequest(values) {
  return { destination: definitionOf(values).destination || {} };
}

/** The link itself when it is an http(s) address, else null (shown as text, never followed). */
export function linkOf(url) {
  if (typeof url !== "string" || !url) return null;
  try {
    const parsed = new URL(url);
    return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
  } catch {
    return null;
  }
}

const text = (value) => (typeof value === "string" ? value : "");

/** The filesystem or container the destination names: the first segment of the path, or the container. */
export function scopeOf(destination) {
  if (destination.type === "adls") return text(destination.path).split("/").find(Boolean) || "";
  return text(destination.container);
}

/**
 * The steps of an onboarding answer, in order, for the destination it was asked for: each {text},
 * with a `link` (the consent), a `code` (a command to run, named by `label`) and `bicep` (the same as a
 * Bicep file) when it has them.
 */
export function stepsOf(answer, destination) {
  const kind = destination.type === "adls" ? "file system" : "container";
  const name = scopeOf(destination);
  const called = name ? `${kind} ${name}` : kind;
  const role = answer.roleAssignment || {};
  const claim = answer.claim || {};
  const who = text(answer.principal) || `the application ${text(answer.applicationClientId)}`;
  const steps = [];
  const consent = text(answer.adminConsentUrl);
  if (consent) {
    steps.push({
      text: `An administrator of the tenant ${text(answer.tenantId)} opens this link once and consents to the service's application (client ID ${text(answer.applicationClientId)}):`,
      link: linkOf(consent),
      linkText: consent,
    });
  }
  steps.push({
    text: `Create the ${called} if it does not exist yet: the role is assigned on an existing ${kind}.`,
  });
  steps.push({
    text: `Claim the ${called} for this project: someone who may change it sets its metadata ${text(claim.metadata)} to ${text(claim.value)}. The command replaces the ${kind}'s metadata: if it has other metadata, or names other projects, add them to the command (projects separated by commas).`,
    code: text(claim.azCommand),
    label: "Claim command",
  });
  steps.push({
    text: `Give ${who} the role ${text(role.role)} on the ${called}:`,
    code: text(role.azCommand),
    label: "Role assignment command",
    bicep: text(role.bicep),
  });
  steps.push({ text: "Wait for the role assignment to take effect: up to about 10 minutes." });
  steps.push({
    text: `Create the export with Microsoft Entra ID and the tenant ID ${text(answer.tenantId)}: the service checks that it can write there before it saves the export.`,
  });
  return steps;
}
