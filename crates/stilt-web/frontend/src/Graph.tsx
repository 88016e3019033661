// The resource dependency graph (annotation stilt.dev/resource-deps), laid out in layers:
// resources without dependencies on the left, each dependent to the right of what it needs.

import { useMemo, useState } from "preact/hooks";
import { navigate, resourcePath, useViewKey } from "./hooks";
import { view } from "./state";
import { deps, overallTone, sortResources } from "./status";
import type { UIResource } from "./types";
import { TILTFILE } from "./types";

const NODE_W = 170;
const NODE_H = 30;
const COL_GAP = 90;
const ROW_GAP = 10;
const PAD = 20;

interface Layout {
  nodes: { r: UIResource; x: number; y: number }[];
  edges: { from: string; to: string }[];
  width: number;
  height: number;
}

export function layout(resources: UIResource[]): Layout {
  const byName = new Map(resources.map((r) => [r.metadata.name, r]));
  const layer = new Map<string, number>();
  const visiting = new Set<string>();
  const depth = (n: string): number => {
    const known = layer.get(n);
    if (known !== undefined) return known;
    if (visiting.has(n)) return 0; // a cycle: cut it here
    visiting.add(n);
    const ds = deps(byName.get(n)!).filter((d) => byName.has(d));
    const l = ds.length ? 1 + Math.max(...ds.map(depth)) : 0;
    visiting.delete(n);
    layer.set(n, l);
    return l;
  };
  for (const r of resources) depth(r.metadata.name);
  const cols: UIResource[][] = [];
  for (const r of resources) {
    const l = layer.get(r.metadata.name)!;
    (cols[l] ??= []).push(r);
  }
  // Order each column by the mean row of its dependencies (fewer crossings).
  const row = new Map<string, number>();
  cols.forEach((col, ci) => {
    if (ci > 0) {
      const key = (r: UIResource) => {
        const ds = deps(r).filter((d) => row.has(d));
        return ds.length ? ds.reduce((s, d) => s + row.get(d)!, 0) / ds.length : Infinity;
      };
      col.sort((a, b) => key(a) - key(b));
    }
    col.forEach((r, i) => row.set(r.metadata.name, i));
  });
  const nodes = cols.flatMap((col, ci) =>
    col.map((r, i) => ({ r, x: PAD + ci * (NODE_W + COL_GAP), y: PAD + i * (NODE_H + ROW_GAP) })),
  );
  const edges = resources.flatMap((r) =>
    deps(r)
      .filter((d) => byName.has(d))
      .map((d) => ({ from: d, to: r.metadata.name })),
  );
  const maxRows = Math.max(1, ...cols.map((c) => c.length));
  return {
    nodes,
    edges,
    width: PAD * 2 + cols.length * NODE_W + Math.max(0, cols.length - 1) * COL_GAP,
    height: PAD * 2 + maxRows * (NODE_H + ROW_GAP),
  };
}

export function Graph() {
  useViewKey(() => view.kindVersion.get("UIResource") ?? 0);
  const [hover, setHover] = useState<string | null>(null);
  const resources = useMemo(
    () => sortResources(view.resources()).filter((r) => r.metadata.name !== TILTFILE),
    [view.kindVersion.get("UIResource")],
  );
  const g = useMemo(() => layout(resources), [resources]);
  const pos = new Map(g.nodes.map((n) => [n.r.metadata.name, n]));
  // Everything upstream and downstream of the hovered node is highlighted.
  const related = new Set<string>();
  if (hover) {
    const walk = (n: string, dir: "up" | "down") => {
      for (const e of g.edges) {
        const [a, b] = dir === "up" ? [e.to, e.from] : [e.from, e.to];
        if (a === n && !related.has(b)) {
          related.add(b);
          walk(b, dir);
        }
      }
    };
    related.add(hover);
    walk(hover, "up");
    walk(hover, "down");
  }
  if (!resources.length) return <div class="loading">No resources yet.</div>;
  return (
    <div class="graph-page" data-testid="graph">
      <div class="toolbar">
        <span class="muted">
          {resources.length} resources · {g.edges.length} dependencies · arrows point from a dependency to what needs
          it. Hover to trace, click to open.
        </span>
      </div>
      <div class="graph-scroll">
        <svg width={g.width} height={g.height} class="graph-svg">
          <defs>
            <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">
              <path d="M0,0 L10,5 L0,10 z" class="arrow-head" />
            </marker>
          </defs>
          {g.edges.map((e) => {
            const a = pos.get(e.from)!;
            const b = pos.get(e.to)!;
            const x1 = a.x + NODE_W;
            const y1 = a.y + NODE_H / 2;
            const x2 = b.x;
            const y2 = b.y + NODE_H / 2;
            const mx = (x1 + x2) / 2;
            const lit = hover && related.has(e.from) && related.has(e.to);
            return (
              <path
                key={`${e.from}->${e.to}`}
                d={`M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2 - 2},${y2}`}
                class={`edge${lit ? " lit" : hover ? " dim" : ""}`}
                marker-end="url(#arrow)"
              />
            );
          })}
          {g.nodes.map(({ r, x, y }) => {
            const name = r.metadata.name;
            const tone = overallTone(r);
            const dim = hover && !related.has(name);
            return (
              <g
                key={name}
                transform={`translate(${x},${y})`}
                class={`node tone-${tone}${dim ? " dim" : ""}`}
                data-testid={`node-${name}`}
                onMouseEnter={() => setHover(name)}
                onMouseLeave={() => setHover(null)}
                onClick={() => navigate(resourcePath(name))}
              >
                <rect width={NODE_W} height={NODE_H} rx="5" />
                <circle cx="14" cy={NODE_H / 2} r="5" class="node-dot" />
                <text x="26" y={NODE_H / 2 + 4}>
                  {name.length > 20 ? name.slice(0, 19) + "…" : name}
                </text>
              </g>
            );
          })}
        </svg>
      </div>
    </div>
  );
}
