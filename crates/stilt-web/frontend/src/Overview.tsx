// The overview: every resource, grouped by label, with its status and actions.

import { memo } from "preact/compat";
import { useMemo, useState } from "preact/hooks";
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

const Row = memo(function Row({ r, now, buttons }: { r: UIResource; now: number; buttons: UIButton[] }) {
  const name = r.metadata.name;
  const last = r.status?.buildHistory?.[0];
  const cur = r.status?.currentBuild?.startTime;
  const tone = overallTone(r);
  const bt = buildTone(r);
  const rt = runtimeTone(r);
  const pending = r.status?.hasPendingChanges;
  const links = r.status?.endpointLinks ?? [];
  return (
    <tr class={`res-row tone-row-${tone}`} data-testid={`row-${name}`} data-status={tone}>
      <td class="c-status">
        <StatusIcon tone={tone} testId={`status-${name}`} />
      </td>
      <td class="c-name">
        <a href={resourcePath(name)} onClick={linkHandler(resourcePath(name))} class="res-name">
          {name}
        </a>
        <span class={`kind kind-${resourceKind(r)}`}>{resourceKind(r)}</span>
        {hasLiveUpdate(r) && (
          <span class="kind kind-lu" title="Has live update">
            live
          </span>
        )}
      </td>
      <td class="c-update">
        <StatusIcon tone={bt} label={`Update: ${TONE_LABEL[bt]}`} />
        <span class="muted" data-testid={`build-${name}`}>
          {cur
            ? `updating ${fmtDuration(now - ms(cur))}`
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
      </td>
      <td class="c-runtime">
        <StatusIcon tone={rt} label={`Runtime: ${TONE_LABEL[rt]}`} />
        <span class="muted">{runtimeText(r)}</span>
      </td>
      <td class="c-trigger">
        <TriggerButton r={r} />
        {name !== TILTFILE && <TriggerModeToggle r={r} />}
      </td>
      <td class="c-links">
        {links.map((l) => (
          <a key={l.url} href={l.url} target="_blank" rel="noopener noreferrer" class="endpoint">
            {l.name || (l.url ?? "").replace(/^https?:\/\//, "").replace(/\/$/, "")}
          </a>
        ))}
      </td>
      <td class="c-buttons">
        {buttons.map((b) => (
          <ApiButton key={b.metadata.name} b={b} compact />
        ))}
      </td>
      <td class="c-toggle">{name !== TILTFILE && <DisableToggle r={r} />}</td>
    </tr>
  );
});

export function Overview() {
  useViewKey(() => view.version);
  const now = useNow(5000);
  const [filter, setFilter] = useState("");
  const [collapsed, setCollapsed] = useState<Record<string, boolean>>({});
  const [onlyProblems, setOnlyProblems] = useState(false);

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
  }, [view.version]);

  const groups = useMemo(() => {
    const f = filter.toLowerCase();
    const g = new Map<string, UIResource[]>();
    for (const r of resources) {
      if (r.metadata.name === TILTFILE) continue;
      if (f && !r.metadata.name.toLowerCase().includes(f)) continue;
      if (onlyProblems && overallTone(r) !== "error") continue;
      const ls = labels(r);
      for (const l of ls.length ? ls : [UNLABELED]) {
        if (!g.has(l)) g.set(l, []);
        g.get(l)!.push(r);
      }
    }
    return [...g.entries()].sort(([a], [b]) => (a === UNLABELED ? 1 : b === UNLABELED ? -1 : a.localeCompare(b)));
  }, [resources, filter, onlyProblems]);

  const tiltfile = resources.find((r) => r.metadata.name === TILTFILE);
  const empty = EMPTY;
  if (!view.loaded) return <div class="loading">Connecting…</div>;
  return (
    <div class="overview" data-testid="overview">
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
        <span class="muted">{resources.length - (tiltfile ? 1 : 0)} resources</span>
      </div>
      <table class="res-table">
        <thead>
          <tr>
            <th />
            <th>Resource</th>
            <th>Update</th>
            <th>Runtime</th>
            <th>Trigger</th>
            <th>Endpoints</th>
            <th>Actions</th>
            <th>Enabled</th>
          </tr>
        </thead>
        {tiltfile && (
          <tbody>
            <Row r={tiltfile} now={now} buttons={empty} />
          </tbody>
        )}
        {groups.map(([label, rs]) => {
          const counts = { ok: 0, error: 0, other: 0 };
          for (const r of rs) {
            const t = overallTone(r);
            if (t === "ok") counts.ok++;
            else if (t === "error") counts.error++;
            else counts.other++;
          }
          const closed = collapsed[label];
          return (
            <tbody key={label} data-testid={`group-${label}`}>
              <tr class="group-row" onClick={() => setCollapsed({ ...collapsed, [label]: !closed })}>
                <td colSpan={8}>
                  <span class="caret">{closed ? "▸" : "▾"}</span>
                  <span class="group-name">{label}</span>
                  <span class="group-counts">
                    <span class="tone-text-ok">{counts.ok} ok</span>
                    {counts.error > 0 && <span class="tone-text-error">{counts.error} error</span>}
                    {counts.other > 0 && <span class="muted">{counts.other} other</span>}
                  </span>
                </td>
              </tr>
              {!closed &&
                rs.map((r) => (
                  <Row
                    key={r.metadata.name}
                    r={r}
                    now={now}
                    buttons={buttonsByResource.get(r.metadata.name) ?? empty}
                  />
                ))}
            </tbody>
          );
        })}
      </table>
    </div>
  );
}

const EMPTY: UIButton[] = [];
