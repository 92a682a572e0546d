// Who is signed in, and their access token. Both live in this module's memory only: never in the URL,
// localStorage or sessionStorage (MSAL's cache is "memoryStorage"), so closing or reloading the page
// signs out. Two ways in: Microsoft Entra ID through MSAL for the browser (in Azure), or the local
// host's development sign-in (only where the local host offers it).

import { loadVendorScript } from "./trusted.js";

const RENEW_BEFORE_SECONDS = 120;
const SIGN_IN_ENDED = "Your sign-in has ended. Sign in again to go on.";
const DEV_SIGNIN = "/_local/signin";
let current = null; // {kind, token, expiresOn, claims, label, renew}
const signOutListeners = new Set();

/** The app roles of a token's `roles` claim, as the API reads them (shared/api/auth.py). */
export function grantsOf(roles) {
  const projects = new Map();
  let operator = false;
  const rank = { Read: 1, Write: 2, Owner: 3 };
  for (const role of Array.isArray(roles) ? roles : []) {
    if (role === "Exports.Admin") {
      operator = true;
      continue;
    }
    const match = /^Exports\.(Read|Write|Owner)\.([A-Za-z0-9][A-Za-z0-9_.-]{0,62})$/.exec(role);
    if (match && (projects.get(match[2]) ?? 0) < rank[match[1]]) projects.set(match[2], rank[match[1]]);
  }
  return {
    operator,
    projects: [...projects.keys()].sort(),
    canRead: (project) => operator || projects.has(project),
    canChange: (project) => operator || (projects.get(project) ?? 0) >= rank.Write,
  };
}

/** The claims of a JWT, for display and for hiding controls only: the API checks the token itself. */
function claimsOf(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
  } catch {
    return {};
  }
}

function start(kind, first, renew, label) {
  const claims = claimsOf(first.token);
  current = { kind, ...first, claims, label: label || claims.name || claims.sub || "", renew };
}

export const session = {
  get signedIn() {
    return current !== null;
  },
  get label() {
    return current ? current.label : "";
  },
  get kind() {
    return current ? current.kind : "";
  },
  get grants() {
    return grantsOf(current ? current.claims.roles : []);
  },
  /** The access token, renewed shortly before it expires. */
  async token() {
    if (!current) return null;
    if (current.expiresOn - Date.now() / 1000 < RENEW_BEFORE_SECONDS) {
      let renewed;
      try {
        renewed = await current.renew();
      } catch {
        // The sign-in cannot be renewed without the person (it ended, or needs their consent again).
        session.signOut(SIGN_IN_ENDED);
        throw new Error(SIGN_IN_ENDED);
      }
      current = { ...current, ...renewed, claims: claimsOf(renewed.token) };
    }
    return current.token;
  },
  signOut(reason = "") {
    const was = current;
    current = null;
    if (was && was.forget) was.forget();
    for (const listener of signOutListeners) listener(reason);
  },
  onSignOut(listener) {
    signOutListeners.add(listener);
  },
};

/** The roles the local host's development sign-in offers, or null where there is none (Azure). */
export async function developmentOffer() {
  try {
    const response = await fetch(DEV_SIGNIN, { cache: "no-store", credentials: "omit" });
    if (!response.ok) return null;
    const offer = await response.json();
    return Array.isArray(offer.roles) ? offer.roles.filter((r) => typeof r === "string") : null;
  } catch {
    return null;
  }
}

export async function signInDevelopment(project, role) {
  const mint = async () => {
    let response;
    try {
      response = await fetch(DEV_SIGNIN, {
        method: "POST",
        cache: "no-store",
        credentials: "omit",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ project, role }),
      });
    } catch {
      throw new Error("The local host could not be reached. Is `scripts/run host` still running?");
    }
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(typeof answer.detail === "string" ? answer.detail : "Signing in failed.");
    return { token: answer.accessToken, expiresOn: answer.expiresOn };
  };
  start("development", await mint(), mint, `${role}${project ? ` of ${project}` : ""} (development)`);
}

/** Sign in with Microsoft Entra ID in a popup window (MSAL for the browser, vendored with the pane). */
export async function signInMicrosoft(entra) {
  await loadVendorScript("msal-browser.min.js");
  const msal = globalThis.msal;
  const app = await msal.createStandardPublicClientApplication({
    auth: {
      clientId: entra.clientId,
      authority: entra.authority,
      redirectUri: new URL("redirect.html", document.baseURI).href,
      postLogoutRedirectUri: new URL("./", document.baseURI).href,
    },
    cache: { cacheLocation: "memoryStorage" },
  });
  const result = await app.loginPopup({ scopes: entra.scopes, prompt: "select_account" });
  const tokenOf = (answer) => ({ token: answer.accessToken, expiresOn: answer.expiresOn.getTime() / 1000 });
  const renew = async () =>
    tokenOf(await app.acquireTokenSilent({ scopes: entra.scopes, account: result.account }));
  start("microsoft", tokenOf(result), renew, result.account.name || result.account.username);
  current.forget = () => app.clearCache().catch(() => {});
}
