// Log panes: all resources interleaved, or one resource; filter by resource, level and text.

import { useRef, useState } from "preact/hooks";
import { useViewKey } from "./hooks";
import { LogView } from "./LogView";
import { type LogColumns, view } from "./state";
import { sortResources } from "./status";

interface Filter {
  resource: string; // "" = all
  minLevel: number; // 0 all, 1 warnings and errors, 2 errors
  text: string;
}

/// Incrementally maintained list of matching line indices (only new lines are scanned).
function useFilteredRows(logs: LogColumns, f: Filter): number[] | null {
  const cache = useRef<{ logs: LogColumns | null; key: string; rows: number[]; scanned: number }>({
    logs: null,
    key: "",
    rows: [],
    scanned: 0,
  });
  if (!f.resource && !f.minLevel && !f.text) return null;
  const key = `${f.resource}\u0000${f.minLevel}\u0000${f.text}`;
  const c = cache.current;
  const needle = f.text.toLowerCase();
  if (c.logs !== logs || c.key !== key) {
    // Typing more of the same filter narrows the previous matches instead of rescanning.
    const prev = c.key.split("\u0000");
    const narrows =
      c.logs === logs &&
      prev.length === 3 &&
      prev[0] === f.resource &&
      prev[1] === String(f.minLevel) &&
      prev[2] !== "" &&
      needle.startsWith(prev[2].toLowerCase());
    c.rows = narrows ? c.rows.filter((i) => logs.lowerText(i).includes(needle)) : [];
    if (!narrows) c.scanned = 0;
    c.logs = logs;
    c.key = key;
  }
  const resIdx = f.resource ? logs.nameIndex.get(f.resource) : undefined;
  if (f.resource && resIdx === undefined) return c.rows;
  // Scan only lines of the chosen resource when there is one.
  if (resIdx !== undefined) {
    const own = logs.byResource[resIdx];
    // byResource is ascending; resume after the last scanned line.
    let k = c.scanned;
    for (; k < own.length; k++) {
      const i = own[k];
      if (logs.level[i] < f.minLevel) continue;
      if (needle && !logs.lowerText(i).includes(needle)) continue;
      c.rows.push(i);
    }
    c.scanned = k;
  } else {
    for (let i = c.scanned; i < logs.length; i++) {
      if (logs.level[i] < f.minLevel) continue;
      if (needle && !logs.lowerText(i).includes(needle)) continue;
      c.rows.push(i);
    }
    c.scanned = logs.length;
  }
  return c.rows;
}

export function LogPane({ resource, showResourcePicker }: { resource?: string; showResourcePicker: boolean }) {
  useViewKey(() => view.logVersion);
  useViewKey(() => view.kindVersion.get("UIResource") ?? 0);
  const [picked, setPicked] = useState("");
  const [minLevel, setMinLevel] = useState(0);
  const [text, setText] = useState("");
  const [follow, setFollow] = useState(true);
  const logs = view.logs;
  const res = resource ?? picked;
  const rows = useFilteredRows(logs, { resource: res, minLevel, text });
  const total = rows ? rows.length : logs.length;
  const names = showResourcePicker ? sortResources(view.resources()).map((r) => r.metadata.name) : [];
  let errors = 0;
  let warns = 0;
  if (res) {
    const ri = logs.nameIndex.get(res);
    for (const i of ri === undefined ? [] : logs.byResource[ri]) {
      if (logs.level[i] === 2) errors++;
      else if (logs.level[i] === 1) warns++;
    }
  }
  return (
    <div class="log-pane">
      <div class="toolbar log-toolbar">
        {showResourcePicker && (
          <select
            data-testid="log-resource"
            value={picked}
            onChange={(e) => setPicked((e.target as HTMLSelectElement).value)}
          >
            <option value="">All resources</option>
            {names.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        )}
        <div class="seg" role="group" aria-label="Level">
          {[
            ["All levels", 0],
            ["Warnings", 1],
            ["Errors", 2],
          ].map(([label, lvl]) => (
            <button
              key={lvl}
              class={minLevel === lvl ? "active" : ""}
              data-testid={`level-${lvl}`}
              onClick={() => setMinLevel(lvl as number)}
            >
              {label}
            </button>
          ))}
        </div>
        <input
          class="search"
          placeholder="Filter log text"
          value={text}
          data-testid="log-filter"
          onInput={(e) => setText((e.target as HTMLInputElement).value)}
        />
        <button
          class={`follow${follow ? " active" : ""}`}
          data-testid="follow"
          onClick={() => setFollow(!follow)}
          title="Keep the newest line in view"
        >
          {follow ? "● Following" : "○ Follow"}
        </button>
        <span class="muted" data-testid="log-count">
          {total.toLocaleString()} {total === 1 ? "line" : "lines"}
          {res && (errors > 0 || warns > 0) && (
            <>
              {" · "}
              <span class="tone-text-error">{errors} errors</span> · <span class="tone-text-warn">{warns} warnings</span>
            </>
          )}
        </span>
        {logs.truncated && <span class="muted"> (oldest lines dropped)</span>}
      </div>
      <LogView
        logs={logs}
        rows={rows}
        version={view.logVersion}
        showResource={!resource}
        highlight={text}
        follow={follow}
        onFollowChange={setFollow}
      />
    </div>
  );
}
