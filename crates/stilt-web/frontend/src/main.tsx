import { render } from "preact";
import { useEffect } from "preact/hooks";
import { ApiButton, isPlainButton } from "./Actions";
import { GlobalTimeline } from "./GlobalTimeline";
import { Graph } from "./Graph";
import { linkHandler, usePath, useViewKey } from "./hooks";
import { LogPane } from "./Logs";
import { Overview } from "./Overview";
import { parseTab, ResourcePage } from "./ResourcePage";
import { view } from "./state";
import { overallTone } from "./status";
import "./style.css";
import { TILTFILE } from "./types";

function Summary() {
  useViewKey(() => view.kindVersion.get("UIResource") ?? 0);
  let ok = 0;
  let err = 0;
  let busy = 0;
  let total = 0;
  for (const r of view.resources()) {
    if (r.metadata.name === TILTFILE) continue;
    total++;
    const t = overallTone(r);
    if (t === "ok") ok++;
    else if (t === "error") err++;
    else if (t === "building" || t === "pending") busy++;
  }
  return (
    <span class="summary" data-testid="summary">
      <span class="tone-text-ok">{ok} ok</span>
      <span class="tone-text-error">{err} error</span>
      <span class="tone-text-pending">{busy} updating</span>
      <span class="muted">of {total}</span>
    </span>
  );
}

/// A fatal session error or a failed Tiltfile load, shown above every page.
function Banner() {
  useViewKey(() => view.version);
  const session = view.kind("UISession").get("Tiltfile");
  const fatal = session?.status?.fatalError as string | undefined;
  const tf = view.kind("UIResource").get(TILTFILE);
  const tfError = tf?.status?.buildHistory?.[0]?.error as string | undefined;
  // A cluster connection error holds every update of the resources that deploy there.
  const clusterErrors = [...view.kind("Cluster").values()].filter((c) => c.status?.error);
  if (!fatal && !tfError && clusterErrors.length === 0) return null;
  if (!fatal && !tfError) {
    return (
      <div class="banner" data-testid="cluster-banner">
        {clusterErrors.map((c) => `Cluster ${c.metadata.name}: ${c.status.error}`).join("\n")}
      </div>
    );
  }
  return (
    <div class="banner" data-testid="banner">
      {fatal ? `Stilt stopped: ${fatal}` : `Tiltfile error: ${tfError}`}
      {!fatal && (
        <a href={`/r/${encodeURIComponent(TILTFILE)}`} onClick={linkHandler(`/r/${encodeURIComponent(TILTFILE)}`)}>
          {" "}
          see the log
        </a>
      )}
    </div>
  );
}

function GlobalButtons() {
  useViewKey(() => view.kindVersion.get("UIButton") ?? 0);
  const bs = view.buttons().filter((b) => b.spec.location.componentType === "Global" && isPlainButton(b));
  return (
    <span class="global-buttons">
      {bs.map((b) => (
        <ApiButton key={b.metadata.name} b={b} />
      ))}
    </span>
  );
}

function afterPaint(f: () => void) {
  requestAnimationFrame(() => setTimeout(f, 0));
}

/// Records when data first reached the screen and when the initial load was fully rendered
/// (read by the browser tests and the benchmark through window.__stilt.stats).
function Marks() {
  useViewKey(() => `${view.version}:${view.logVersion}`);
  useEffect(() => {
    const s = view.stats;
    if (!s.firstRenderAt && view.loaded && document.querySelector(".res-row, .log-line, .node, .gtl-row")) {
      afterPaint(() => (s.firstRenderAt ||= performance.now()));
    }
    if (!s.interactiveAt && view.loaded && view.backfilled) {
      afterPaint(() => (s.interactiveAt ||= performance.now()));
    }
  });
  return null;
}

function App() {
  const path = usePath();
  useViewKey(() => view.connected);
  const seg = path.split("?")[0].split("/").filter(Boolean).map(decodeURIComponent);
  let page;
  let section = "overview";
  if (seg[0] === "r" && seg[1]) {
    page = <ResourcePage name={seg[1]} tab={parseTab(seg[2])} />;
    section = "resource";
  } else if (seg[0] === "logs") {
    page = <LogPane showResourcePicker={true} />;
    section = "logs";
  } else if (seg[0] === "graph") {
    page = <Graph />;
    section = "graph";
  } else if (seg[0] === "timeline") {
    page = <GlobalTimeline />;
    section = "timeline";
  } else {
    page = <Overview />;
  }
  useEffect(() => {
    document.title = seg[0] === "r" ? `${seg[1]} · Stilt` : "Stilt";
  }, [path]);
  const nav = (href: string, label: string, id: string) => (
    <a href={href} onClick={linkHandler(href)} class={section === id ? "active" : ""} data-testid={`nav-${id}`}>
      {label}
    </a>
  );
  return (
    <div class="app">
      <header class="topbar">
        <a class="brand" href="/" onClick={linkHandler("/")}>
          <svg class="logo" width="18" height="18" viewBox="0 0 16 16" aria-hidden="true">
            <rect x="3" y="1" width="3" height="14" fill="#20ba31" />
            <rect x="10" y="1" width="3" height="14" fill="#20ba31" />
            <rect x="1" y="5" width="14" height="3" fill="#03c7d3" />
          </svg>{" "}
          Stilt
        </a>
        <nav class="nav">
          {nav("/", "Resources", "overview")}
          {nav("/logs", "All logs", "logs")}
          {nav("/graph", "Graph", "graph")}
          {nav("/timeline", "Timeline", "timeline")}
        </nav>
        <Summary />
        <span class="spacer" />
        <GlobalButtons />
        <span
          class={`conn ${view.connected ? "up" : "down"}`}
          data-testid="connection"
          title={view.connected ? "Live" : "Reconnecting…"}
        >
          {view.connected ? "● live" : "○ reconnecting"}
        </span>
      </header>
      <Banner />
      <main class="main">{page}</main>
      <Marks />
    </div>
  );
}

view.connect();
render(<App />, document.getElementById("app")!);
