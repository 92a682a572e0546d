// The management API, as the pane calls it: one function per operation, answers as {data, etag}, and
// failures as ApiError in plain words, with the API's own `target` (the property at fault) and hints.

import { session } from "./auth.js";

const API = "/api";

export class ApiError extends Error {
  constructor(status, code, message, { target = "", details = [], hints = [] } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.target = target;
    this.details = details; // [{code, message, target}]: every validation error, each with its target
    this.hints = hints; // what to check, when the destination failed
  }

  /** Each error with its own target: the details when there are several, else this one. */
  get errors() {
    const fields = this.details.filter((d) => d.code !== "Hint");
    return fields.length ? fields : [{ code: this.code, message: this.message, target: this.target }];
  }
}

const PLAIN = {
  0: "The service could not be reached. Check your connection, then try again.",
  401: "Your sign-in has ended. Sign in again to go on.",
  404: "This export does not exist (any more), or the project is not one you have access to.",
  429: "The service is busy. Wait a moment, then try again.",
  500: "The service failed to handle the request. Try again in a minute.",
  503: "The service is not available right now. Try again in a minute.",
};

function errorFrom(status, body) {
  const error = body && typeof body === "object" && body.error && typeof body.error === "object" ? body.error : {};
  const text = (value) => (typeof value === "string" ? value : "");
  const details = Array.isArray(error.details)
    ? error.details.map((d) => ({ code: text(d?.code), message: text(d?.message), target: text(d?.target) }))
    : [];
  const hints = details.filter((d) => d.code === "Hint").map((d) => d.message);
  const message = text(error.message) || PLAIN[status] || PLAIN[status >= 500 ? 500 : 0];
  return new ApiError(status, text(error.code) || `Http${status}`, message, { target: text(error.target), details, hints });
}

async function call(method, path, { body, headers = {}, mediaType = "application/json" } = {}) {
  let token;
  try {
    token = await session.token();
  } catch (error) {
    throw new ApiError(401, "SignInEnded", error.message);
  }
  const sent = { Accept: "application/json", ...headers };
  if (token) sent.Authorization = `Bearer ${token}`;
  if (body !== undefined) sent["Content-Type"] = mediaType;
  let response;
  try {
    response = await fetch(API + path, {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
      redirect: "error",
    });
  } catch {
    throw new ApiError(0, "NetworkError", PLAIN[0]);
  }
  const etag = response.headers.get("ETag");
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    const error = errorFrom(response.status, data);
    if (response.status === 401) session.signOut(PLAIN[401]);
    throw error;
  }
  return { data, etag };
}

const exportPath = (project, id) =>
  `/projects/${encodeURIComponent(project)}/exports${id === undefined ? "" : `/${encodeURIComponent(id)}`}`;

export const api = {
  listAll: () => call("GET", "/exports"),
  list: (project) => call("GET", exportPath(project)),
  get: (project, id) => call("GET", exportPath(project, id)),
  health: (project, id) => call("GET", `${exportPath(project, id)}/health`),
  create: (project, id, definition) =>
    call("PUT", exportPath(project, id), { body: definition, headers: { "If-None-Match": "*" } }),
  replace: (project, id, definition, etag) =>
    call("PUT", exportPath(project, id), { body: definition, headers: { "If-Match": etag } }),
  patch: (project, id, patch, etag) =>
    call("PATCH", exportPath(project, id), {
      body: patch,
      headers: { "If-Match": etag },
      mediaType: "application/merge-patch+json",
    }),
  disable: (project, id) => call("POST", `${exportPath(project, id)}/disable`),
  enable: (project, id) => call("POST", `${exportPath(project, id)}/enable`),
  resume: (project, id) => call("POST", `${exportPath(project, id)}/resume`),
  onboarding: (project, request) => call("POST", `/projects/${encodeURIComponent(project)}/onboarding`, { body: request }),
  remove: (project, id, etag) => call("DELETE", exportPath(project, id), { headers: { "If-Match": etag } }),
};
