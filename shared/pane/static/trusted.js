// The pane's one Trusted Types policy (its CSP allows no other, and no string reaches a DOM sink
// without it): it only lets a script of the pane's own vendor/ folder be loaded.

const VENDOR = new URL("vendor/", import.meta.url);

const policy = globalThis.trustedTypes
  ? globalThis.trustedTypes.createPolicy("pane", { createScriptURL: checkedScript })
  : { createScriptURL: checkedScript };

function checkedScript(address) {
  const url = new URL(address, VENDOR);
  if (url.origin !== VENDOR.origin || !url.pathname.startsWith(VENDOR.pathname) || url.search || url.hash) {
    throw new TypeError("only the pane's own vendored scripts may be loaded");
  }
  return url.href;
}

/** Load one of the pane's vendored classic scripts (for example MSAL) once. */
const loading = new Map();
export function loadVendorScript(name) {
  if (!loading.has(name)) {
    loading.set(
      name,
      new Promise((resolve, reject) => {
        const script = document.createElement("script");
        script.src = policy.createScriptURL(name);
        script.addEventListener("load", resolve);
        script.addEventListener("error", () => reject(new Error(`${name} did not load`)));
        document.head.append(script);
      }),
    );
  }
  return loading.get(name);
}
