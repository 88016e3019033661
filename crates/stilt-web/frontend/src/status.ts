// Status derivation and formatting shared by the views.

import type { BuildTerminated, UIResource } from "./types";
import { DEPS_ANNOTATION, TILTFILE } from "./types";

export type Tone = "ok" | "error" | "pending" | "building" | "none" | "disabled" | "warning";

export function isDisabled(r: UIResource): boolean {
  return r.status?.disableStatus?.state === "Disabled";
}

export function buildTone(r: UIResource): Tone {
  if (isDisabled(r)) return "disabled";
  const s = r.status?.updateStatus ?? "none";
  if (s === "in_progress" || r.status?.currentBuild?.startTime) return "building";
  if (s === "error") return "error";
  if (s === "pending") return "pending";
  if (s === "ok") {
    const w = r.status?.buildHistory?.[0]?.warnings?.length ?? 0;
    return w > 0 ? "warning" : "ok";
  }
  return "none";
}

export function runtimeTone(r: UIResource): Tone {
  if (isDisabled(r)) return "disabled";
  switch (r.status?.runtimeStatus) {
    case "ok":
      return "ok";
    case "error":
      return "error";
    case "pending":
      return "pending";
    default:
      return "none";
  }
}

/// The one status a resource is summarised by (worst of build and runtime).
export function overallTone(r: UIResource): Tone {
  const b = buildTone(r);
  const rt = runtimeTone(r);
  if (b === "disabled") return "disabled";
  if (b === "error" || rt === "error") return "error";
  if (b === "building") return "building";
  if (b === "pending" || rt === "pending") return "pending";
  if (b === "warning") return "warning";
  if (b === "ok" || rt === "ok") return "ok";
  return "none";
}

export const TONE_LABEL: Record<Tone, string> = {
  ok: "Healthy",
  error: "Error",
  pending: "Pending",
  building: "Updating",
  none: "Idle",
  disabled: "Disabled",
  warning: "Warning",
};

export function resourceKind(r: UIResource): string {
  if (r.metadata.name === TILTFILE) return "tiltfile";
  const specs = r.status?.specs ?? [];
  const t =
    specs.find((s) => s.type && s.type !== "image")?.type ??
    specs[0]?.type ??
    r.metadata.annotations?.["stilt.dev/resource-type"] ??
    "unknown";
  return t === "docker-compose" ? "compose" : t;
}

export function hasLiveUpdate(r: UIResource): boolean {
  return (r.status?.specs ?? []).some((s) => s.hasLiveUpdate);
}

export function deps(r: UIResource): string[] {
  const a = r.metadata.annotations?.[DEPS_ANNOTATION] ?? "";
  return a
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

export function labels(r: UIResource): string[] {
  return Object.keys(r.metadata.labels ?? {}).sort();
}

export const TRIGGER_MODES: Record<number, string> = {
  0: "auto",
  1: "manual",
  2: "manual (no auto-init)",
  3: "auto (no auto-init)",
};

export function isManual(mode: number | undefined): boolean {
  return mode === 1 || mode === 2;
}

export function ms(t?: string): number {
  return t ? Date.parse(t) : NaN;
}

export function buildDuration(b: BuildTerminated): number {
  return ms(b.finishTime) - ms(b.startTime);
}

export function fmtDuration(d: number): string {
  if (!isFinite(d) || d < 0) return "–";
  if (d < 1000) return `${Math.round(d)}ms`;
  if (d < 60_000) return `${(d / 1000).toFixed(d < 10_000 ? 1 : 0)}s`;
  const m = Math.floor(d / 60_000);
  const s = Math.round((d % 60_000) / 1000);
  return `${m}m${s.toString().padStart(2, "0")}s`;
}

export function fmtAgo(t: number, now: number): string {
  if (!isFinite(t)) return "–";
  const d = Math.max(0, now - t);
  if (d < 5_000) return "just now";
  if (d < 60_000) return `${Math.floor(d / 1000)}s ago`;
  if (d < 3_600_000) return `${Math.floor(d / 60_000)}m ago`;
  if (d < 86_400_000) return `${Math.floor(d / 3_600_000)}h ago`;
  return new Date(t).toLocaleDateString();
}

export function fmtClock(t: number): string {
  const d = new Date(t);
  const p = (n: number, w = 2) => n.toString().padStart(w, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

export function sortResources(rs: UIResource[]): UIResource[] {
  return rs.sort((a, b) => {
    if (a.metadata.name === TILTFILE) return -1;
    if (b.metadata.name === TILTFILE) return 1;
    const oa = a.status?.order ?? 0;
    const ob = b.status?.order ?? 0;
    return oa - ob || a.metadata.name.localeCompare(b.metadata.name);
  });
}
