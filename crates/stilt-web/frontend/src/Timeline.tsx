// Per-resource timeline of recent updates, split into stages, so a developer sees where the
// time goes: builds (buildHistory[].stages) and live updates (LiveUpdate lastUpdateTimings).

import type { ApiObject, BuildTerminated, UIResource } from "./types";
import { buildDuration, fmtClock, fmtDuration, ms } from "./status";

const PALETTE = ["#4aa3ff", "#a77bff", "#ffb340", "#2fd3b5", "#ff7aa8", "#c6d64a", "#7fb2c9", "#ff8f5a"];
const colors = new Map<string, string>();
export function stageColor(name: string): string {
  let c = colors.get(name);
  if (!c) {
    c = PALETTE[colors.size % PALETTE.length];
    colors.set(name, c);
  }
  return c;
}

interface Segment {
  name: string;
  start: number; // ms from the row's start
  dur: number;
}

interface Row {
  label: string;
  sub: string;
  total: number;
  segments: Segment[];
  error?: string;
  running?: boolean;
}

function buildRow(b: BuildTerminated, n: number): Row {
  const t0 = ms(b.startTime);
  const total = buildDuration(b);
  const stages = (b.stages ?? []).filter((s) => s.startTime && s.finishTime);
  const segments = stages.length
    ? stages.map((s) => ({ name: s.name, start: ms(s.startTime) - t0, dur: ms(s.finishTime) - ms(s.startTime) }))
    : [{ name: "build", start: 0, dur: total }];
  return {
    label: `#${n}`,
    sub: isFinite(t0) ? fmtClock(t0) : "",
    total,
    segments,
    error: b.error,
  };
}

function liveUpdateRows(objs: ApiObject[]): Row[] {
  const rows: Row[] = [];
  for (const lu of objs) {
    for (const c of lu.status?.containers ?? []) {
      const t = c.lastUpdateTimings;
      if (!t) continue;
      const marks: [string, number][] = [
        ["batch", t.batchClosedMs ?? 0],
        ["archive", t.archiveBuiltMs ?? 0],
        ["transfer", t.transferDoneMs ?? 0],
        ["run steps", t.runStepsDoneMs ?? 0],
      ];
      let prev = 0;
      const segments: Segment[] = [];
      for (const [name, at] of marks) {
        if (at > prev) segments.push({ name, start: prev, dur: at - prev });
        prev = Math.max(prev, at);
      }
      rows.push({
        label: "live",
        sub: `${lu.metadata.name} → ${c.containerName} (${t.files ?? 0} files, ${((t.bytes ?? 0) / 1024).toFixed(1)} KiB)`,
        total: prev,
        segments,
        error: c.lastExecError,
      });
    }
  }
  return rows;
}

function Bars({ rows, testId }: { rows: Row[]; testId: string }) {
  const max = Math.max(1, ...rows.map((r) => (isFinite(r.total) ? r.total : 0)));
  return (
    <div class="timeline" data-testid={testId}>
      {rows.map((r, i) => (
        <div class="tl-row" key={i}>
          <div class="tl-label">
            <b>{r.label}</b> <span class="muted">{r.sub}</span>
          </div>
          <div class="tl-track">
            {r.segments.map((s) => (
              <div
                key={s.name}
                class="tl-seg"
                title={`${s.name}: ${fmtDuration(s.dur)}`}
                data-stage={s.name}
                style={{
                  left: `${(Math.max(0, s.start) / max) * 100}%`,
                  width: `${Math.max(0.4, (s.dur / max) * 100)}%`,
                  background: stageColor(s.name),
                }}
              >
                {s.dur / max > 0.12 ? `${s.name} ${fmtDuration(s.dur)}` : ""}
              </div>
            ))}
          </div>
          <div class={`tl-total${r.error ? " err-text" : ""}`} title={r.error}>
            {r.running ? "running" : fmtDuration(r.total)}
            {r.error ? " ✕" : ""}
          </div>
        </div>
      ))}
    </div>
  );
}

function Summary({ rows }: { rows: Row[] }) {
  // Mean time per stage across the rows: where the time goes.
  const sum = new Map<string, { total: number; n: number }>();
  for (const r of rows)
    for (const s of r.segments) {
      const e = sum.get(s.name) ?? { total: 0, n: 0 };
      e.total += s.dur;
      e.n++;
      sum.set(s.name, e);
    }
  const all = [...sum.values()].reduce((a, e) => a + e.total, 0) || 1;
  return (
    <div class="tl-legend">
      {[...sum.entries()].map(([name, e]) => (
        <span key={name} class="tl-legend-item">
          <i style={{ background: stageColor(name) }} />
          {name} <b>{fmtDuration(e.total / e.n)}</b> <span class="muted">avg · {Math.round((e.total / all) * 100)}%</span>
        </span>
      ))}
    </div>
  );
}

export function Timeline({ r, related }: { r: UIResource; related: ApiObject[] }) {
  const history = r.status?.buildHistory ?? [];
  const count = history.length;
  const rows = history.slice(0, 12).map((b, i) => buildRow(b, count - i));
  const cur = r.status?.currentBuild?.startTime;
  if (cur) {
    rows.unshift({
      label: `#${count + 1}`,
      sub: fmtClock(ms(cur)),
      total: Date.now() - ms(cur),
      segments: [{ name: "in progress", start: 0, dur: Date.now() - ms(cur) }],
      running: true,
    });
  }
  const lu = liveUpdateRows(related.filter((o) => o.kind === "LiveUpdate"));
  return (
    <div class="timeline-page">
      <h3>Builds</h3>
      {rows.length ? (
        <>
          <Summary rows={rows.filter((x) => !x.running)} />
          <Bars rows={rows} testId="timeline-builds" />
        </>
      ) : (
        <div class="muted">No builds yet.</div>
      )}
      <h3>Live updates</h3>
      {lu.length ? (
        <>
          <Summary rows={lu} />
          <Bars rows={lu} testId="timeline-live" />
        </>
      ) : (
        <div class="muted">No live update has run.</div>
      )}
    </div>
  );
}
