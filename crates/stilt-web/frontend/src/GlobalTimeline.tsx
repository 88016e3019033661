// Every resource's recent updates on one wall-clock axis: what ran when, what ran in parallel,
// and which stage each update spent its time in. Rows are virtualized (300 resources are fine).

import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { linkHandler, resourcePath, useNow, useViewKey } from "./hooks";
import { view } from "./state";
import { fmtClock, fmtDuration, ms, overallTone, sortResources } from "./status";
import { StatusIcon } from "./StatusIcon";
import { stageColor } from "./Timeline";
import type { UIResource } from "./types";

const ROW = 26;
const LABEL_W = 200;
const BUILDS_PER_RESOURCE = 5;

interface Bar {
  start: number;
  end: number;
  error?: string;
  running?: boolean;
  stages: { name: string; start: number; end: number }[];
}

function bars(r: UIResource, now: number): Bar[] {
  const out: Bar[] = [];
  const cur = r.status?.currentBuild?.startTime;
  if (cur) out.push({ start: ms(cur), end: now, running: true, stages: [] });
  for (const b of (r.status?.buildHistory ?? []).slice(0, BUILDS_PER_RESOURCE)) {
    const start = ms(b.startTime);
    const end = ms(b.finishTime);
    if (!isFinite(start) || !isFinite(end)) continue;
    out.push({
      start,
      end,
      error: b.error,
      stages: (b.stages ?? [])
        .map((s) => ({ name: s.name, start: ms(s.startTime), end: ms(s.finishTime) }))
        .filter((s) => isFinite(s.start) && isFinite(s.end)),
    });
  }
  return out;
}

export function GlobalTimeline() {
  useViewKey(() => view.kindVersion.get("UIResource") ?? 0);
  const now = useNow(1000);
  const scroller = useRef<HTMLDivElement>(null);
  const hasRows = view.resources().some((r) => r.status?.buildHistory?.length || r.status?.currentBuild);
  const [scrollTop, setScrollTop] = useState(0);
  const [size, setSize] = useState({ w: 1000, h: 600 });
  useEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setSize({ w: el.clientWidth, h: el.clientHeight }));
    ro.observe(el);
    setSize({ w: el.clientWidth, h: el.clientHeight });
    return () => ro.disconnect();
  }, [hasRows]);
  const rows = useMemo(() => {
    const rs = sortResources(view.resources()).map((r) => ({ r, bars: bars(r, now) }));
    // Earliest activity first: the startup cascade reads top to bottom.
    const first = (x: { bars: Bar[] }) => Math.min(...x.bars.map((b) => b.start), Infinity);
    return rs.filter((x) => x.bars.length).sort((a, b) => first(a) - first(b));
  }, [view.kindVersion.get("UIResource"), now]);
  let t0 = Infinity;
  let t1 = -Infinity;
  for (const row of rows)
    for (const b of row.bars) {
      t0 = Math.min(t0, b.start);
      t1 = Math.max(t1, b.end);
    }
  const span = Math.max(1, t1 - t0);
  const stageNames = new Set<string>();
  for (const row of rows) for (const b of row.bars) for (const s of b.stages) stageNames.add(s.name);
  const trackW = Math.max(200, size.w - LABEL_W - 24);
  const x = (t: number) => ((t - t0) / span) * trackW;
  // Tick marks at a round interval.
  const steps = [100, 250, 500, 1000, 2000, 5000, 10_000, 30_000, 60_000, 300_000, 600_000, 1_800_000, 3_600_000];
  const step = steps.find((s) => (s / span) * trackW >= 90) ?? steps[steps.length - 1];
  const ticks: number[] = [];
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) ticks.push(t);

  const first = Math.max(0, Math.floor(scrollTop / ROW) - 10);
  const last = Math.min(rows.length, Math.ceil((scrollTop + size.h) / ROW) + 10);
  if (!rows.length) return <div class="loading">No updates yet.</div>;
  return (
    <div class="gtl-page" data-testid="global-timeline">
      <div class="toolbar">
        <span class="muted">
          The last {BUILDS_PER_RESOURCE} updates of {rows.length} resources, {fmtClock(t0)} → {fmtClock(t1)} (
          {fmtDuration(span)}). Hover a bar for its times.
        </span>
        <span class="tl-legend">
          {[...stageNames].map((n) => (
            <span key={n} class="tl-legend-item">
              <i style={{ background: stageColor(n) }} />
              {n}
            </span>
          ))}
        </span>
      </div>
      <div class="gtl-axis" style={{ marginLeft: LABEL_W + 16 }}>
        {ticks.map((t) => (
          <span key={t} class="gtl-tick" style={{ left: x(t) }}>
            {fmtClock(t).slice(0, step < 1000 ? 12 : 8)}
          </span>
        ))}
      </div>
      <div class="gtl-scroll" ref={scroller} onScroll={(e) => setScrollTop((e.target as HTMLElement).scrollTop)}>
        <div class="gtl-spacer" style={{ height: rows.length * ROW }}>
          {rows.slice(first, last).map(({ r, bars }, k) => {
            const name = r.metadata.name;
            return (
              <div key={name} class="gtl-row" style={{ top: (first + k) * ROW }} data-testid={`gtl-${name}`}>
                <a class="gtl-label" href={resourcePath(name, "timeline")} onClick={linkHandler(resourcePath(name, "timeline"))}>
                  <StatusIcon tone={overallTone(r)} /> {name}
                </a>
                <div class="gtl-track" style={{ width: trackW }}>
                  {ticks.map((t) => (
                    <i key={t} class="gtl-grid" style={{ left: x(t) }} />
                  ))}
                  {bars.map((b, i) => (
                    <div
                      key={i}
                      class={`gtl-bar${b.error ? " err" : ""}${b.running ? " running" : ""}`}
                      style={{ left: x(b.start), width: Math.max(2, x(b.end) - x(b.start)) }}
                      title={`${name}: ${fmtClock(b.start)}, ${fmtDuration(b.end - b.start)}${b.running ? " (running)" : ""}${
                        b.error ? `\n${b.error}` : ""
                      }${b.stages.map((s) => `\n  ${s.name}: ${fmtDuration(s.end - s.start)}`).join("")}`}
                    >
                      {b.stages.map((s) => (
                        <span
                          key={s.name}
                          class="gtl-stage"
                          data-stage={s.name}
                          style={{
                            left: x(s.start) - x(b.start),
                            width: Math.max(1, x(s.end) - x(s.start)),
                            background: stageColor(s.name),
                          }}
                        />
                      ))}
                    </div>
                  ))}
                </div>
              </div>
            );
          })}
        </div>
      </div>
    </div>
  );
}
