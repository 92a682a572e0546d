// The export form, as a table: one entry per field, in the API's own property names (the `target` of
// its errors), so a new API option is one entry here. Pure: no DOM.
//
// A field: name (the API property path, or a form-only name when `send` is false), label, type (text,
// url, password, radio, select, textarea), group, and optionally options, help (text or a function
// of the form's values), when (shown only if it returns true), only ("create": not editable later),
// read (its value from an export the API answered; by default the property at `name`), initial (its
// value in a new export's form), trim (false: sent as typed), send (false: a form-only field; a
// function: the property's value from the field's, e.g. a boolean), required, autocomplete. A new option of the API, say a replay
// placement, is one entry: {name: "replayPlacement", group: "options", label: "...", type: "radio",
// options: [...], initial: "..."}.
//
// Authentication methods: one entry of AUTH_METHODS per method the API offers, naming the fields that
// method needs (each field's `when` tests `values.auth`); `methodOf` reads it back from the API's answer.

export const AUTH_METHODS = [
  { value: "sharedKey", label: "Storage account key (shared key)" },
  { value: "sas", label: "Shared access signature (SAS) for the file system or container" },
  { value: "entra", label: "Microsoft Entra ID: no key (a role for the service on the file system or container)" },
];

export const DESTINATION_KINDS = [
  { value: "adls", label: "Azure Data Lake Storage Gen2: files per hour or per day" },
  { value: "blob", label: "Blob storage: the Application Insights continuous-export layout" },
];

export const GROUPS = [
  { id: "export", legend: "" },
  { id: "destination", legend: "Destination", target: "destination" },
  { id: "options", legend: "Options" },
  { id: "location", legend: "Client location (optional)", target: "location" },
  { id: "notify", legend: "Notifications (optional)", target: "notify" },
];

const adls = (v) => v["destination.type"] === "adls";
const blob = (v) => v["destination.type"] === "blob";
const located = (v) => v.locationMode === "on";

export const FIELDS = [
  {
    name: "exportId",
    group: "export",
    read: (item) => item.id,
    label: "Name",
    type: "text",
    only: "create",
    required: true,
    autocomplete: "off",
    help: "1 to 63 letters, digits, '-', '_' or '.', starting with a letter or digit. It is part of every file's name.",
  },
  {
    name: "destination.type",
    group: "destination",
    label: "Destination kind",
    type: "radio",
    options: DESTINATION_KINDS,
    initial: "adls",
  },
  {
    name: "destination.uri",
    group: "destination",
    label: "Storage account URI",
    type: "url",
    required: true,
    autocomplete: "off",
    help: (v) =>
      adls(v)
        ? "The Data Lake Storage endpoint, from the Properties pane of the storage account: https://<account>.dfs.core.windows.net/"
        : "The Blob service endpoint, from the Endpoints pane of the storage account: https://<account>.blob.core.windows.net/",
  },
  {
    name: "auth",
    group: "destination",
    label: "Authentication",
    type: "select",
    options: AUTH_METHODS,
    send: false,
    initial: AUTH_METHODS[0].value,
    read: (item) => methodOf(item.destination),
  },
  {
    name: "destination.sharedKey",
    group: "destination",
    label: "Storage account key",
    type: "password",
    autocomplete: "off",
    when: (v) => v.auth === "sharedKey",
    help: (v, mode) =>
      mode === "edit"
        ? "Leave empty to keep the current key. Enter the current key if it was regenerated (Access keys pane of the storage account)."
        : "From the Access keys pane of the storage account. It is never shown again.",
  },
  {
    name: "destination.sas",
    group: "destination",
    label: "SAS token",
    type: "password",
    autocomplete: "off",
    trim: false,
    when: (v) => v.auth === "sas",
    help: (v, mode) =>
      (mode === "edit" ? "Leave empty to keep the current SAS. " : "") +
      `A SAS for the whole ${adls(v) ? "file system (permissions racwdlm)" : "container (permissions racwdl)"}, service or user delegation: the token after '?'. It is never shown again; the export is postponed when it expires, and warned of a week before.`,
  },
  {
    name: "destination.entra.tenantId",
    group: "destination",
    label: "Tenant ID",
    type: "text",
    autocomplete: "off",
    when: (v) => v.auth === "entra",
    help: "Your Microsoft Entra tenant's ID (a GUID). Before creating the export, an administrator consents to the service's application, claims the file system or container for this project in its metadata (signalsexportprojects) and gives the application the role Storage Blob Data Contributor on it: Show the onboarding steps (below) gives the link and the exact commands.",
  },
  {
    name: "destination.path",
    group: "destination",
    label: "File system and path",
    type: "text",
    autocomplete: "off",
    when: adls,
    help: "The file system, then optional directories, e.g. myfilesystem/directory1/directory2/. Missing ones are created.",
  },
  {
    name: "destination.container",
    group: "destination",
    label: "Container",
    type: "text",
    autocomplete: "off",
    when: blob,
    help: "3 to 63 lowercase letters, digits and single hyphens. Created if missing.",
  },
  {
    name: "granularity",
    group: "options",
    label: "Export granularity",
    type: "radio",
    when: adls,
    options: [
      { value: "hour", label: "A file per hour" },
      { value: "day", label: "A file per day" },
    ],
    initial: "hour",
    read: (item) => item.granularity || "hour",
  },
  {
    name: "signalsMode",
    group: "options",
    label: "Signals to export",
    type: "radio",
    send: false,
    options: [
      { value: "all", label: "All signals" },
      { value: "list", label: "Only signals with these names" },
    ],
    initial: "all",
    read: (item) => (Array.isArray(item.signals) ? "list" : "all"),
  },
  {
    name: "signals",
    group: "options",
    label: "Signal names",
    type: "textarea",
    when: (v) => v.signalsMode === "list",
    help: "One name per line, as in each signal's name field.",
    read: (item) => (Array.isArray(item.signals) ? item.signals.join("\n") : ""),
  },
  {
    name: "replayPlacement",
    group: "options",
    label: "Where signals go after an outage",
    type: "radio",
    options: [
      { value: "current", label: "With the signals of the time they are replayed (readers moving forward find them)" },
      { value: "original", label: "Back in their own hour or day (for readers that re-read old folders)" },
    ],
    initial: "current",
    read: (item) => item.replayPlacement || "current",
  },
  {
    name: "locationMode",
    group: "location",
    label: "Location of the client",
    type: "radio",
    send: false,
    options: [
      { value: "off", label: "Export signals as sent" },
      { value: "on", label: "Add the location of the client's IP address, as Application Insights' export did" },
    ],
    initial: "off",
    read: (item) => (item.location ? "on" : "off"),
    help: "Continent, country, province and city, from the operator's location database (the service says so if it has none).",
  },
  {
    name: "location.ipField",
    group: "location",
    label: "Field holding the client's IP address",
    type: "text",
    autocomplete: "off",
    when: located,
    help: "A JSON pointer into each signal, e.g. /clientIp or /context/location/ip. A signal without it is exported as sent.",
  },
  {
    name: "location.key",
    group: "location",
    label: "Member the location is added under",
    type: "text",
    autocomplete: "off",
    when: located,
    initial: "location",
    read: (item) => (item.location ? item.location.key : "location"),
    help: "A top-level member of each signal. A signal that already has it is exported as sent.",
  },
  {
    name: "location.anonymize",
    group: "location",
    label: "The address in exported signals",
    type: "radio",
    when: located,
    options: [
      { value: "true", label: "Anonymised: last IPv4 octet zeroed, last 80 bits of IPv6 (as Application Insights did)" },
      { value: "false", label: "As sent" },
    ],
    initial: "true",
    send: (value) => value !== "false",
    read: (item) => (item.location && item.location.anonymize === false ? "false" : "true"),
  },
  {
    name: "notify.webhook",
    group: "notify",
    label: "Webhook URL",
    type: "url",
    autocomplete: "off",
    help: "An https address that is told when the export's state changes (postponed, resumed, disabled).",
  },
  {
    name: "notify.secret",
    group: "notify",
    label: "Webhook secret",
    type: "password",
    autocomplete: "off",
    when: (v) => Boolean(v["notify.webhook"]),
    trim: false, // a secret is sent as typed
    help: "Signs each notification (HMAC-SHA256). Leave empty to keep the current one.",
  },
];

/** A new export's form values: each field's `initial`, else empty. */
export function initialValues() {
  return Object.fromEntries(FIELDS.map((field) => [field.name, field.initial ?? ""]));
}

export function visible(field, values) {
  return !field.when || field.when(values);
}

export function helpOf(field, values, mode) {
  return typeof field.help === "function" ? field.help(values, mode) : field.help || "";
}

/** Signal names from the text area: one a line, blanks dropped (the API checks each name). */
export function namesOf(text) {
  return String(text || "")
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter(Boolean);
}

function put(document, path, value) {
  const parts = path.split(".");
  let node = document;
  for (const part of parts.slice(0, -1)) node = node[part] ??= {};
  node[parts.at(-1)] = value;
}

/** The export definition (the API's PUT body) the form's values describe. */
export function definitionOf(values) {
  const document = {};
  for (const field of FIELDS) {
    if (field.send === false || field.only === "create" || !visible(field, values)) continue;
    const value = values[field.name];
    if (typeof field.send === "function") put(document, field.name, field.send(value));
    else if (field.name === "signals") put(document, "signals", namesOf(value));
    else if (typeof value === "string" && value.trim() !== "") put(document, field.name, field.trim === false ? value : value.trim());
  }
  if (values.signalsMode !== "list") document.signals = "all";
  if (document.notify && !document.notify.webhook) delete document.notify;
  return document;
}

/** The authentication method an export uses, from what the API answers of its destination. */
export function methodOf(destination) {
  if (destination && AUTH_METHODS.some((m) => m.value === destination.authentication)) return destination.authentication;
  return AUTH_METHODS[0].value;
}

/** The form's values for an export the API answered: each field's `read`, else the property at its
 * name. Secrets (keys, webhook secrets) are never answered, so their fields start empty. */
export function valuesOf(item) {
  const at = (path) => path.split(".").reduce((node, part) => (node == null ? undefined : node[part]), item);
  return Object.fromEntries(
    FIELDS.map((field) => {
      const value = field.read ? field.read(item) : field.type === "password" ? "" : at(field.name);
      return [field.name, value ?? ""];
    }),
  );
}

/** The field an API error belongs to: the one its target names (`signals[3]` is `signals`), else
 * the group whose target it is (`destination`), else none (shown above the form). */
export function placeOf(target) {
  if (!target) return null;
  if (target === "If-None-Match") return { field: "exportId" };
  const field = FIELDS.find(
    (f) => target === f.name || target.startsWith(`${f.name}[`) || target.startsWith(`${f.name}.`),
  );
  if (field) return { field: field.name };
  const group = GROUPS.find((g) => g.target && (target === g.target || target.startsWith(`${g.target}.`)));
  return group ? { group: group.id } : null;
}
