// The pane's form table (shared/pane/static/fields.js), pure: run by tests/pane/test_fields.py with
// Node.js's own test runner.
import assert from "node:assert/strict";
import { test } from "node:test";

import { definitionOf, initialValues, methodOf, namesOf, placeOf, valuesOf } from "../../../shared/pane/static/fields.js";
import { stateOf } from "../../../shared/pane/static/format.js";

const lake = {
  id: "lake",
  projectId: "p",
  destination: { type: "adls", uri: "https://acct.dfs.core.windows.net/", path: "fs/dir/", authentication: "sharedKey", hasSharedKey: true },
  granularity: "day",
  signals: ["a", "b"],
  replayPlacement: "original",
  enabled: true,
  status: "active",
};

test("a new ADLS Gen2 export's form gives the seeds' definition", () => {
  const values = {
    ...initialValues(),
    exportId: "lake",
    "destination.uri": " https://acct.dfs.core.windows.net/ ",
    "destination.sharedKey": "a2V5 ",
    "destination.path": "fs/dir/",
    "destination.container": "left over from blob",
  };
  assert.deepEqual(definitionOf(values), {
    destination: { type: "adls", uri: "https://acct.dfs.core.windows.net/", sharedKey: "a2V5", path: "fs/dir/" },
    granularity: "hour",
    signals: "all",
    replayPlacement: "current",
  });
});

test("a Blob export sends its container and no granularity", () => {
  const values = { ...initialValues(), "destination.type": "blob", "destination.uri": "https://a.blob.core.windows.net/", "destination.container": "c1", "destination.path": "x/" };
  const definition = definitionOf(values);
  assert.deepEqual(definition.destination, { type: "blob", uri: "https://a.blob.core.windows.net/", container: "c1" });
  assert.equal("granularity" in definition, false);
});

test("an export read back fills the form, and the form gives the same definition without the key", () => {
  const values = valuesOf(lake);
  assert.equal(values["destination.sharedKey"], "");
  assert.equal(values.auth, "sharedKey");
  assert.equal(values.signalsMode, "list");
  assert.deepEqual(definitionOf(values), {
    destination: { type: "adls", uri: lake.destination.uri, path: "fs/dir/" },
    granularity: "day",
    signals: ["a", "b"],
    replayPlacement: "original",
  });
});

test("a SAS or a tenant id is sent for its method only, and read back from the answer", () => {
  const base = { ...initialValues(), exportId: "k", "destination.uri": "https://acct.dfs.core.windows.net/", "destination.path": "fs/", "destination.sharedKey": "left over" };
  const sas = definitionOf({ ...base, auth: "sas", "destination.sas": "sv=1&sig=a%2Bb" });
  assert.deepEqual(sas.destination, { type: "adls", uri: "https://acct.dfs.core.windows.net/", sas: "sv=1&sig=a%2Bb", path: "fs/" });
  const entra = definitionOf({ ...base, auth: "entra", "destination.entra.tenantId": " 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0 " });
  assert.deepEqual(entra.destination.entra, { tenantId: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0" });
  assert.equal("sharedKey" in entra.destination, false);
  const keyless = { ...lake, destination: { ...lake.destination, hasSharedKey: false, authentication: "entra", entra: { tenantId: "t" } } };
  assert.equal(valuesOf(keyless).auth, "entra");
  assert.equal(valuesOf(keyless)["destination.entra.tenantId"], "t");
  assert.equal(methodOf({ authentication: "sas", sasExpiresAt: "2030-01-01T00:00:00Z" }), "sas");
  assert.equal(methodOf({ authentication: "something new" }), "sharedKey");
  assert.deepEqual(placeOf("destination.entra.tenantId"), { field: "destination.entra.tenantId" });
  assert.deepEqual(placeOf("destination.sas"), { field: "destination.sas" });
});

test("the location option is sent only when chosen, its anonymisation as a boolean", () => {
  const values = { ...initialValues(), "destination.uri": "https://acct.dfs.core.windows.net/", "destination.path": "fs/" };
  assert.equal("location" in definitionOf(values), false);
  assert.equal("location" in definitionOf({ ...values, "location.ipField": "/clientIp" }), false);
  const on = { ...values, locationMode: "on", "location.ipField": " /context/location/ip " };
  assert.deepEqual(definitionOf(on).location, { ipField: "/context/location/ip", key: "location", anonymize: true });
  assert.deepEqual(definitionOf({ ...on, "location.key": "geo", "location.anonymize": "false" }).location, {
    ipField: "/context/location/ip",
    key: "geo",
    anonymize: false,
  });
});

test("an export with a location reads back into the same option; one without, into none", () => {
  const option = { ipField: "/clientIp", key: "where", anonymize: false };
  const values = valuesOf({ ...lake, location: option });
  assert.equal(values.locationMode, "on");
  assert.deepEqual(definitionOf(values).location, option);
  const plain = valuesOf(lake);
  assert.equal(plain.locationMode, "off");
  assert.equal(plain["location.key"], "location");
  assert.equal(plain["location.anonymize"], "true");
  assert.equal("location" in definitionOf(plain), false); // an edit that leaves it off removes it (PUT)
});

test("signal names are one a line, blanks dropped, markup kept as characters", () => {
  assert.deepEqual(namesOf("a\r\n\n  <b>x</b>  \n"), ["a", "<b>x</b>"]);
});

test("an API error's target finds its field, else its group, else none", () => {
  assert.deepEqual(placeOf("destination.path"), { field: "destination.path" });
  assert.deepEqual(placeOf("signals[3]"), { field: "signals" });
  assert.deepEqual(placeOf("exportId"), { field: "exportId" });
  assert.deepEqual(placeOf("If-None-Match"), { field: "exportId" });
  assert.deepEqual(placeOf("destination"), { group: "destination" });
  assert.deepEqual(placeOf("location.ipField"), { field: "location.ipField" });
  assert.deepEqual(placeOf("location"), { group: "location" }); // LocationDatabaseNotConfigured
  assert.equal(placeOf("If-Match"), null);
  assert.equal(placeOf(""), null);
});

test("states in the seeds' words", () => {
  assert.equal(stateOf({ ...lake, enabled: false }).label, "Switched off");
  assert.equal(stateOf({ ...lake, status: "postponed" }, { enabled: true, status: "postponed", explanation: "E", backlog: { files: 1 } }).detail, "E");
  assert.equal(stateOf({ ...lake, status: "disabled" }).label, "Disabled");
  const replaying = { enabled: true, status: "active", backlog: { files: 2 }, lastSuccessAt: "2026-01-01T00:00:02Z", lastFailureAt: "2026-01-01T00:00:01Z" };
  assert.equal(stateOf(lake, replaying).key, "replaying");
  assert.equal(stateOf(lake, { ...replaying, lastFailureAt: "2026-01-01T00:00:03Z" }).key, "failing");
  assert.equal(stateOf(lake, { ...replaying, backlog: { files: 0 } }).label, "Active");
  const resumedAfterFailing = {
    ...replaying,
    lastFailureAt: "2026-01-01T00:00:03Z",
    history: [{ at: "2026-01-01T00:00:04.5+00:00", from: "postponed", to: "active" }],
  };
  assert.equal(stateOf(lake, resumedAfterFailing).key, "replaying");
  assert.equal(stateOf(lake, { ...resumedAfterFailing, lastFailureAt: "2026-01-01T00:00:05Z" }).key, "failing");
});
