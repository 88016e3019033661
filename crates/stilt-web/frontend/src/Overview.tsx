// The overview: every resource, grouped by label, with its status and actions.

import { memo } from "preact/compat";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { ApiButton, DisableToggle, isPlainButton, TriggerButton, TriggerModeToggle } from "./Actions";
import { linkHandler, resourcePath, useNow, useViewKey } from "./hooks";
import { view } from "./state";
import {
  buildDuration,
  buildTone,
  fmtAgo,
  fmtDuration,
  hasLiveUpdate,
  labels,
  ms,
  overallTone,
  resourceKind,
  runtimeTone,
  sortResources,
  TONE_LABEL,
} from "./status";
import { StatusIcon } from "./StatusIcon";
import type { UIButton, UIResource } from "./types";
import { TILTFILE } from "./types";

const UNLABELED = "unlabeled";

function runtimeText(r: UIResource): string {
  const k = r.status?.k8sResourceInfo;
  if (k?.podStatus) return k.podRestarts ? `${k.podStatus} (${k.podRestarts} restarts)` : k.podStatus;
  const s = r.status?.runtimeStatus;
  if (s === "not_applicable") return "n/a";
  if (!s || s === "none" || s === "unknown") return "–";
  return s;
}

const Row = memo(function Row({
  r,
  now,
  buttons,
  top,
}: {
  r: UIResource;
  now: number;
  buttons: UIButton[];
  top: number;
}) {
  const name = r.metadata.name;
  const last = r.status?.buildHistory?.[0];
  const cur = r.status?.currentBuild?.startTime;
  const tone = overallTone(r);
  const bt = buildTone(r);
  const rt = runtimeTone(r);
  const pending = r.status?.hasPendingChanges;
  const links = r.status?.endpointLinks ?? [];
  return (
    <div class={`res-row grid tone-row-${tone}`} style={{ top }} data-testid={`row-${name}`} data-status={tone}>
      <div class="c-status">
        <StatusIcon tone={tone} testId={`status-${name}`} />
      </div>
      <div class="c-name">
        <a href={resourcePath(name)} onClick={linkHandler(resourcePath(name))} class="res-name" title={name}>
          {name}
        </a>
        <span class={`kind kind-${resourceKind(r)}`}>{resourceKind(r)}</span>
        {hasLiveUpdate(r) && (
          <span class="kind kind-lu" title="Has live update">
            live
          </span>
        )}
      </div>
      <div class="c-update">
        <StatusIcon tone={bt} label={`Update: ${TONE_LABEL[bt]}`} />
        <span class="muted" data-testid={`build-${name}`}>
          {cur
            ? `updating ${fmtDuration(now - ms(cur))}`
            : r.status?.waiting?.reason && !last
              ? `waiting: ${r.status.waiting.reason}${
                  r.status.waiting.on?.length ? ` (${r.status.waiting.on.map((o) => o.name).join(", ")})` : ""
                }`
              : r.status?.queued
                ? "queued"
                : last
                  ? `${fmtAgo(ms(last.finishTime), now)} · ${fmtDuration(buildDuration(last))}`
                  : "no build yet"}
        </span>
        {last?.error && !cur && <span class="err-text"> failed</span>}
        {pending && (
          <span class="pending-dot" title="Files changed since the last update" data-testid={`pending-${name}`}>
            ● changes
          </span>
        )}
      </div>
      <div class="c-runtime">
        <StatusIcon tone={rt} label={`Runtime: ${TONE_LABEL[rt]}`} />
        <span class="muted">{runtimeText(r)}</span>
      </div>
      <div class="c-trigger">
        <TriggerButton r={r} />
        {name !== TILTFILE && <TriggerModeToggle r={r} />}
      </div>
      <div class="c-links">
        {links.map((l) => (
          <a key={l.url} href={l.url} target="_blank" rel="noopener noreferrer" class="endpoint">
            {l.name || (l.url ?? "").replace(/^https?:\/\//, "").replace(/\/$/, "")}
          </a>
        ))}
      </div>
      <div class="c-buttons">
        {buttons.map((b) => (
          <ApiButton key={b.metadata.name} b={b} compact />
        ))}
      </div>
      <div class="c-toggle">{name !== TILTFILE && <DisableToggle r={r} />}</div>
    </div>
  );
});

type Item =
  | { kind: "group"; label: string; ok: number; error: number; other: number; closed: boolean }
  | { kind: "row"; r: UIResource; key: string };

const ITEM_HEIGHT = 34;
const OVERSCAN = 8;

/// The overview is virtualized: only the rows in view are rendered, so 300 (or 3,000)
/// resources cost the same to draw and to update as 30.
export function Overview() {
  useViewKey(() => view.version);
  const now = useNow(5000);
  const [filter, setFilter] = useState("");
  const [collapsed, setCollapsed] = useState<Record<string, boolean>>({});
  const [onlyProblems, setOnlyProblems] = useState(false);
  const scroller = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(800);
  useEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setHeight(el.clientHeight));
    ro.observe(el);
    setHeight(el.clientHeight);
    return () => ro.disconnect();
  }, [view.loaded]);

  const resources = useMemo(() => sortResources(view.resources()), [view.version]);
  const buttonsByResource = useMemo(() => {
    const m = new Map<string, UIButton[]>();
    for (const b of view.buttons()) {
      if (b.spec.location.componentType !== "Resource" || !isPlainButton(b)) continue;
      const id = b.spec.location.componentID;
      if (!m.has(id)) m.set(id, []);
      m.get(id)!.push(b);
    }
    return m;
  }, [view.kindVersion.get("UIButton")]);

  const { items, matching } = useMemo(() => {
    const f = filter.toLowerCase();
    const g = new Map<string, UIResource[]>();
    let matching = 0;
    const items: Item[] = [];
    for (const r of resources) {
      if (f && !r.metadata.name.toLowerCase().includes(f)) continue;
      if (onlyProblems && overallTone(r) !== "error") continue;
      matching++;
      if (r.metadata.name === TILTFILE) {
        items.push({ kind: "row", r, key: TILTFILE });
        continue;
      }
      const ls = labels(r);
      for (const l of ls.length ? ls : [UNLABELED]) {
        if (!g.has(l)) g.set(l, []);
        g.get(l)!.push(r);
      }
    }
    const groups = [...g.entries()].sort(([a], [b]) =>
      a === UNLABELED ? 1 : b === UNLABELED ? -1 : a.localeCompare(b),
    );
    for (const [label, rs] of groups) {
      let ok = 0;
      let error = 0;
      for (const r of rs) {
        const t = overallTone(r);
        if (t === "ok") ok++;
        else if (t === "error") error++;
      }
      const closed = !!collapsed[label];
      items.push({ kind: "group", label, ok, error, other: rs.length - ok - error, closed });
      if (!closed) for (const r of rs) items.push({ kind: "row", r, key: `${label}/${r.metadata.name}` });
    }
    return { items, matching };
  }, [resources, filter, onlyProblems, collapsed]);

  if (!view.loaded) return <div class="loading">Connecting…</div>;
  const first = Math.max(0, Math.floor(scrollTop / ITEM_HEIGHT) - OVERSCAN);
  const last = Math.min(items.length, Math.ceil((scrollTop + height) / ITEM_HEIGHT) + OVERSCAN);
  const visible = [];
  for (let i = first; i < last; i++) {
    const it = items[i];
    const top = i * ITEM_HEIGHT;
    if (it.kind === "row") {
      visible.push(
        <Row key={it.key} r={it.r} now={now} top={top} buttons={buttonsByResource.get(it.r.metadata.name) ?? EMPTY} />,
      );
    } else {
      visible.push(
        <div
          key={`g/${it.label}`}
          class="group-row"
          style={{ top }}
          data-testid={`group-${it.label}`}
          onClick={() => setCollapsed({ ...collapsed, [it.label]: !it.closed })}
        >
          <span class="caret">{it.closed ? "▸" : "▾"}</span>
          <span class="group-name">{it.label}</span>
          <span class="group-counts">
            <span class="tone-text-ok">{it.ok} ok</span>
            {it.error > 0 && <span class="tone-text-error">{it.error} error</span>}
            {it.other > 0 && <span class="muted">{it.other} other</span>}
          </span>
        </div>,
      );
    }
  }
  const total = resources.length - (resources.some((r) => r.metadata.name === TILTFILE) ? 1 : 0);
  return (
    <div class="overview" data-testid="overview" data-count={matching}>
      <div class="toolbar">
        <input
          class="search"
          placeholder="Filter resources by name"
          value={filter}
          data-testid="resource-filter"
          onInput={(e) => setFilter((e.target as HTMLInputElement).value)}
        />
        <label class="check">
          <input type="checkbox" checked={onlyProblems} onChange={() => setOnlyProblems(!onlyProblems)} /> errors only
        </label>
        <span class="muted">{total} resources</span>
      </div>
      <div class="res-head grid">
        <div />
        <div>Resource</div>
        <div>Update</div>
        <div>Runtime</div>
        <div>Trigger</div>
        <div>Endpoints</div>
        <div>Actions</div>
        <div>Enabled</div>
      </div>
      <div class="res-scroll" ref={scroller} onScroll={(e) => setScrollTop((e.target as HTMLElement).scrollTop)}>
        <div class="res-spacer" style={{ height: items.length * ITEM_HEIGHT }}>
          {visible}
        </div>
      </div>
    </div>
  );
}

const EMPTY: UIButton[] = [];
