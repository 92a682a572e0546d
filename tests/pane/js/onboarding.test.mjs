// The onboarding steps' wording and request (shared/pane/static/onboarding.js), pure: run by
// tests/pane/test_fields.py with Node.js's own test runner.
import assert from "node:assert/strict";
import { test } from "node:test";

import { initialValues } from "../../../shared/pane/static/fields.js";
import { linkOf, onboardingRequest, scopeOf, stepsOf } from "../../../shared/pane/static/onboarding.js";

const TENANT = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
const answer = {
  tenantId: TENANT,
  applicationClientId: "app-id",
  principal: "the application app-id",
  adminConsentUrl: `https://login.example/${TENANT}/adminconsent?client_id=app-id`,
  claim: { metadata: "signalsexportprojects", value: "p1", azCommand: "az storage container metadata update --name exports" },
  roleAssignment: { role: "Storage Blob Data Contributor", azCommand: "az role assignment create --assignee app-id", bicep: "resource x" },
};

test("the request is the form's destination with its tenant, and nothing of other methods", () => {
  const values = {
    ...initialValues(),
    auth: "entra",
    "destination.uri": " https://acct.dfs.core.windows.net/ ",
    "destination.path": "exports/signals/",
    "destination.sharedKey": "left over",
    "destination.entra.tenantId": ` ${TENANT} `,
  };
  assert.deepEqual(onboardingRequest(values), {
    destination: { type: "adls", uri: "https://acct.dfs.core.windows.net/", path: "exports/signals/", entra: { tenantId: TENANT } },
  });
});

test("the steps go in order: consent, create, claim, role, wait, create the export", () => {
  const steps = stepsOf(answer, { type: "adls", path: "exports/signals/" });
  assert.equal(steps.length, 6);
  assert.equal(steps[0].link, answer.adminConsentUrl);
  assert.match(steps[0].text, new RegExp(TENANT));
  assert.match(steps[1].text, /file system exports/);
  assert.equal(steps[2].code, answer.claim.azCommand);
  assert.match(steps[2].text, /signalsexportprojects to p1/);
  assert.equal(steps[3].code, answer.roleAssignment.azCommand);
  assert.equal(steps[3].bicep, "resource x");
  assert.deepEqual([steps[2].label, steps[3].label], ["Claim command", "Role assignment command"]);
  assert.match(steps[5].text, new RegExp(TENANT));
});

test("in the service's own tenant there is no consent step", () => {
  const steps = stepsOf({ ...answer, adminConsentUrl: undefined }, { type: "blob", container: "signals" });
  assert.equal(steps.length, 5);
  assert.match(steps[0].text, /container signals/);
  assert.ok(steps.every((step) => !step.link && !step.linkText));
});

test("a consent link that is not http(s) is never a link", () => {
  assert.equal(linkOf("javascript:alert(1)"), null);
  assert.equal(linkOf("data:text/html,x"), null);
  assert.equal(linkOf("not a url"), null);
  assert.equal(linkOf(""), null);
  assert.equal(linkOf("https://login.example/t/adminconsent?client_id=a"), "https://login.example/t/adminconsent?client_id=a");
  const steps = stepsOf({ ...answer, adminConsentUrl: "javascript:alert(1)" }, { type: "adls", path: "fs" });
  assert.equal(steps[0].link, null);
  assert.equal(steps[0].linkText, "javascript:alert(1)");
});

test("the file system is the path's first segment; a container is itself", () => {
  assert.equal(scopeOf({ type: "adls", path: "/fs/a/b/" }), "fs");
  assert.equal(scopeOf({ type: "adls" }), "");
  assert.equal(scopeOf({ type: "blob", container: "c1" }), "c1");
});
