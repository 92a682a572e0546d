// Plain words for what the API answers: states, sizes, ages, times, destinations. Pure functions.

export const KINDS = {
  adls: "Azure Data Lake Storage Gen2",
  blob: "Blob storage (Application Insights layout)",
};

/** An export's state as a customer reads it, from the export and (when read) its health. */
export function stateOf(item, health) {
  const enabled = health ? health.enabled : item.enabled;
  const status = health ? health.status : item.status;
  if (!enabled) {
    return {
      key: "off",
      label: "Switched off",
      detail: "Disabled by you: signals are neither written nor kept. Enable it to export new signals.",
    };
  }
  if (status === "postponed") {
    return {
      key: "postponed",
      label: "Postponed",
      detail: health?.explanation || "Writes to the destination failed: signals wait in the backlog.",
    };
  }
  if (status === "disabled") {
    return {
      key: "disabled",
      label: "Disabled",
      detail:
        "It stayed postponed longer than the backlog keeps signals, so new signals are dropped. " +
        "Fix the destination, then resume.",
    };
  }
  if (health && health.backlog && health.backlog.files > 0) {
    // Signals wait in the backlog of an active export either because its latest writes failed (the
    // health check has not postponed it yet) or because it was resumed since, and the backlog replays.
    const failed = Date.parse(health.lastFailureAt || "") || 0;
    const resumed = Math.max(
      0,
      ...(health.history || []).filter((change) => change.to === "active").map((change) => Date.parse(change.at) || 0),
    );
    if (failed > Math.max(Date.parse(health.lastSuccessAt || "") || 0, resumed)) {
      return {
        key: "failing",
        label: "Active, writes failing",
        detail: "The latest writes failed and their signals wait in the backlog. The health check postpones the export if the failures go on.",
      };
    }
    return { key: "replaying", label: "Active, replaying", detail: "The backlog is being written to the destination." };
  }
  return { key: "active", label: "Active", detail: "" };
}

export function count(value) {
  return Number.isFinite(value) ? value.toLocaleString("en-US") : "–";
}

export function bytes(value) {
  if (!Number.isFinite(value)) return "–";
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let size = value;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} bytes` : `${size.toFixed(size < 10 ? 1 : 0)} ${units[unit]}`;
}

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

export function age(seconds) {
  if (!Number.isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  if (s < 90) return plural(s, "second");
  if (s < 90 * 60) return plural(Math.round(s / 60), "minute");
  if (s < 36 * 3600) return plural(Math.round(s / 3600), "hour");
  return plural(Math.round(s / 86400), "day");
}

/** An ISO time in the reader's time zone, or a dash. */
export function when(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "–" : date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

/** The backlog in a few words: what waits (and, unless told not to, for how long). */
export function backlogText(backlog, { withAge = true } = {}) {
  if (!backlog || !backlog.files) return "Empty";
  const oldest = withAge && backlog.oldestAgeSeconds != null ? `, oldest ${age(backlog.oldestAgeSeconds)}` : "";
  return `${plural(backlog.files, "file")}, ${bytes(backlog.bytes)}${oldest}`;
}

/** Where an export writes: its kind, its account's URI, and the path (or container) there. */
export function destinationParts(destination) {
  if (!destination) return [];
  const kind = destination.type === "adls" ? "ADLS Gen2" : "Blob";
  return [kind, destination.uri, destination.type === "adls" ? destination.path : destination.container];
}

export function destinationText(destination) {
  return destinationParts(destination).filter(Boolean).join(" · ");
}

export function signalsText(signals) {
  if (signals === "all" || !Array.isArray(signals)) return "All signals";
  return `${signals.length} ${signals.length === 1 ? "name" : "names"}: ${signals.join(", ")}`;
}
