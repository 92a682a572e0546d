// MSAL's redirect bridge (msal-browser v5): the sign-in window lands here, and the bridge hands the
// answer to the pane over a BroadcastChannel, then closes the window. The answer never stays in the URL.
"use strict";
globalThis.msalRedirectBridge.broadcastResponseToMainFrame().catch(() => {
  document.querySelector("main p").textContent =
    "Signing in did not finish. Close this window and try again from the management pane.";
});
