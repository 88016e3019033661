// One resource: live log, build history, timeline, and the API objects behind it.

import { memo } from "preact/compat";
import { useEffect, useMemo, useState } from "preact/hooks";
import { ApiButton, DisableToggle, isPlainButton, TriggerButton, TriggerModeToggle } from "./Actions";
import { linkHandler, navigate, resourcePath, useNow, useViewKey } from "./hooks";
import { LogPane } from "./Logs";
import { view } from "./state";
import {
  buildDuration,
  buildTone,
  deps,
  fmtAgo,
  fmtClock,
  fmtDuration,
  ms,
  overallTone,
  resourceKind,
  runtimeTone,
  sortResources,
  TONE_LABEL,
  TRIGGER_MODES,
} from "./status";
import { StatusIcon } from "./StatusIcon";
import { Timeline } from "./Timeline";
import type { ApiObject, UIButton, UIResource } from "./types";
import { RESOURCE_ANNOTATION } from "./types";

const TABS = ["log", "history", "timeline", "objects"] as const;
type Tab = (typeof TABS)[number];

function relatedObjects(name: string): ApiObject[] {
  const out: ApiObject[] = [];
  for (const [kind, m] of view.objects) {
    if (kind === "UIResource" || kind === "UIButton" || kind === "UISession") continue;
    for (const o of m.values()) if (o.metadata.annotations?.[RESOURCE_ANNOTATION] === name) out.push(o);
  }
  return out.sort((a, b) => a.kind.localeCompare(b.kind) || a.metadata.name.localeCompare(b.metadata.name));
}

function History({ r }: { r: UIResource }) {
  const history = r.status?.buildHistory ?? [];
  const now = useNow();
  if (!history.length) return <div class="muted pad">No builds yet.</div>;
  return (
    <table class="history" data-testid="build-history">
      <thead>
        <tr>
          <th>#</th>
          <th>Started</th>
          <th>Duration</th>
          <th>Steps</th>
          <th>Result</th>
        </tr>
      </thead>
      <tbody>
        {history.map((b, i) => (
          <tr key={b.spanID ?? i} data-testid="build-row">
            <td>{history.length - i}</td>
            <td title={b.startTime}>
              {fmtClock(ms(b.startTime))} <span class="muted">({fmtAgo(ms(b.startTime), now)})</span>
            </td>
            <td>{fmtDuration(buildDuration(b))}</td>
            <td class="steps">
              {(b.stages ?? []).map((s) => (
                <span key={s.name} class="step">
                  {s.name} <b>{fmtDuration(ms(s.finishTime) - ms(s.startTime))}</b>
                </span>
              ))}
            </td>
            <td>
              {b.error ? (
                <span class="err-text" title={b.error}>
                  ✕ {b.error}
                </span>
              ) : (
                <span class="tone-text-ok">✓ ok</span>
              )}
              {(b.warnings?.length ?? 0) > 0 && <span class="tone-text-warn"> {b.warnings!.length} warnings</span>}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function objectSummary(o: ApiObject): string {
  const s = o.status ?? {};
  switch (o.kind) {
    case "FileWatch":
      return `${(o.spec?.watchedPaths ?? []).join(", ")}${s.lastEventTime ? ` · last event ${s.lastEventTime}` : ""}`;
    case "PortForward":
      return (o.spec?.forwards ?? []).map((f: any) => `localhost:${f.localPort} → ${f.containerPort}`).join(", ");
    case "KubernetesApply":
      return s.error ? `error: ${s.error}` : s.lastApplyTime ? `applied ${s.lastApplyTime}` : "";
    case "KubernetesDiscovery":
      return (s.pods ?? []).map((p: any) => `${p.name} ${p.phase}`).join(", ");
    case "LiveUpdate":
      return s.failed ? `failed: ${s.failed.reason}` : `${(s.containers ?? []).length} containers`;
    case "Cmd":
      return s.running ? `running pid ${s.running.pid}` : s.terminated ? `exited ${s.terminated.exitCode}` : "waiting";
    case "ConfigMap":
      return Object.entries(o.data ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(" ");
    default:
      return "";
  }
}

function Objects({ objs }: { objs: ApiObject[] }) {
  const [open, setOpen] = useState<string | null>(null);
  if (!objs.length) return <div class="muted pad">No objects annotated with this resource.</div>;
  return (
    <div class="objects" data-testid="objects">
      {objs.map((o) => {
        const key = `${o.kind}/${o.metadata.name}`;
        return (
          <div key={key} class="object">
            <div class="object-head" onClick={() => setOpen(open === key ? null : key)}>
              <span class="caret">{open === key ? "▾" : "▸"}</span>
              <span class="kind">{o.kind}</span>
              <b>{o.metadata.name}</b>
              <span class="muted"> {objectSummary(o)}</span>
            </div>
            {open === key && <pre class="object-json">{JSON.stringify(o, null, 2)}</pre>}
          </div>
        );
      })}
    </div>
  );
}

/// The resource list on the left; only re-rendered when a UIResource changes.
const Sidebar = memo(function Sidebar({ all, name, tab }: { all: UIResource[]; name: string; tab: Tab }) {
  return (
    <aside class="sidebar">
      {all.map((x) => (
        <a
          key={x.metadata.name}
          href={resourcePath(x.metadata.name, tab)}
          onClick={linkHandler(resourcePath(x.metadata.name, tab))}
          class={`side-item${x.metadata.name === name ? " active" : ""}`}
        >
          <StatusIcon tone={overallTone(x)} />
          <span>{x.metadata.name}</span>
        </a>
      ))}
    </aside>
  );
});

export function ResourcePage({ name, tab }: { name: string; tab: Tab }) {
  useViewKey(() => view.version);
  const now = useNow();
  useEffect(() => {
    view.setSubscribed([name]);
    return () => view.setSubscribed([]);
  }, [name]);
  const r = view.kind("UIResource").get(name) as UIResource | undefined;
  const uiVersion = view.kindVersion.get("UIResource") ?? 0;
  const all = useMemo(() => sortResources(view.resources()), [uiVersion, view.loaded]);
  if (!view.loaded) return <div class="loading">Connecting…</div>;
  if (!r)
    return (
      <div class="loading">
        No resource named “{name}”. <a href="/" onClick={linkHandler("/")}>Back to overview</a>
      </div>
    );
  const buttons = view
    .buttons()
    .filter(
      (b: UIButton) =>
        b.spec.location.componentType === "Resource" && b.spec.location.componentID === name && isPlainButton(b),
    );
  const stop = view
    .buttons()
    .find(
      (b: UIButton) =>
        b.spec.location.componentID === name && b.metadata.annotations?.["tilt.dev/uibutton-type"] === "StopBuild",
    );
  const related = relatedObjects(name);
  const tone = overallTone(r);
  const last = r.status?.buildHistory?.[0];
  const dependents = all.filter((x) => deps(x).includes(name)).map((x) => x.metadata.name);
  return (
    <div class="resource-page" data-testid={`resource-${name}`}>
      <Sidebar all={all} name={name} tab={tab} />
      <section class="detail">
        <header class="detail-head">
          <StatusIcon tone={tone} testId="detail-status" />
          <h2>{name}</h2>
          <span class={`kind kind-${resourceKind(r)}`}>{resourceKind(r)}</span>
          <TriggerButton r={r} />
          {stop && buildTone(r) === "building" && <ApiButton b={stop} />}
          <TriggerModeToggle r={r} />
          <DisableToggle r={r} />
          {buttons.map((b) => (
            <ApiButton key={b.metadata.name} b={b} />
          ))}
          <span class="spacer" />
          {(r.status?.endpointLinks ?? []).map((l) => (
            <a key={l.url} href={l.url} target="_blank" rel="noopener noreferrer" class="endpoint">
              {l.name || l.url}
            </a>
          ))}
        </header>
        <div class="facts">
          <span>
            Update: <StatusIcon tone={buildTone(r)} /> {TONE_LABEL[buildTone(r)]}
            {last && ` · last ${fmtAgo(ms(last.finishTime), now)} in ${fmtDuration(buildDuration(last))}`}
          </span>
          <span>
            Runtime: <StatusIcon tone={runtimeTone(r)} /> {r.status?.runtimeStatus ?? "unknown"}
            {r.status?.k8sResourceInfo?.podName && ` · pod ${r.status.k8sResourceInfo.podName}`}
          </span>
          <span>Trigger: {TRIGGER_MODES[r.status?.triggerMode ?? 0]}</span>
          {r.status?.hasPendingChanges && <span class="pending-dot">● files changed since the last update</span>}
          {r.status?.waiting?.reason && <span class="muted">waiting: {r.status.waiting.reason}</span>}
          {deps(r).length > 0 && (
            <span>
              Needs:{" "}
              {deps(r).map((d) => (
                <a key={d} href={resourcePath(d)} onClick={linkHandler(resourcePath(d))} class="dep">
                  {d}
                </a>
              ))}
            </span>
          )}
          {dependents.length > 0 && (
            <span>
              Needed by:{" "}
              {dependents.map((d) => (
                <a key={d} href={resourcePath(d)} onClick={linkHandler(resourcePath(d))} class="dep">
                  {d}
                </a>
              ))}
            </span>
          )}
        </div>
        <nav class="tabs">
          {TABS.map((t) => (
            <button
              key={t}
              class={t === tab ? "active" : ""}
              data-testid={`tab-${t}`}
              onClick={() => navigate(resourcePath(name, t === "log" ? undefined : t))}
            >
              {t === "log"
                ? "Log"
                : t === "history"
                  ? `Build history (${r.status?.buildHistory?.length ?? 0})`
                  : t === "timeline"
                    ? "Timeline"
                    : `Objects (${related.length})`}
            </button>
          ))}
        </nav>
        <div class="tab-body">
          {tab === "log" && <LogPane key={name} resource={name} showResourcePicker={false} />}
          {tab === "history" && <History r={r} />}
          {tab === "timeline" && <Timeline r={r} related={related} />}
          {tab === "objects" && <Objects objs={related} />}
        </div>
      </section>
    </div>
  );
}

export function parseTab(s: string | undefined): Tab {
  return (TABS as readonly string[]).includes(s ?? "") ? (s as Tab) : "log";
}
