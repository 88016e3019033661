// A virtualized log: only the visible rows (plus a margin) are in the DOM, so 100,000 lines
// scroll as smoothly as 100. Rows have a fixed height; long lines scroll horizontally.

import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { LEVEL_ERROR, LEVEL_WARN, type LogColumns } from "./state";
import { fmtClock } from "./status";
import { parseAnsi } from "./ansi";
import { linkHandler, resourcePath } from "./hooks";

export const ROW_HEIGHT = 18;
const OVERSCAN = 12;

/// A log line's text: ANSI colours rendered, filter matches marked.
function LineText({ raw, needle }: { raw: string; needle: string }) {
  if (!raw.includes("\x1b")) return <Highlighted text={raw} needle={needle} />;
  return (
    <>
      {parseAnsi(raw).map((sp, k) =>
        sp.cls ? (
          <span key={k} class={sp.cls}>
            <Highlighted text={sp.text} needle={needle} />
          </span>
        ) : (
          <Highlighted key={k} text={sp.text} needle={needle} />
        ),
      )}
    </>
  );
}

function Highlighted({ text, needle }: { text: string; needle: string }) {
  if (!needle) return <>{text}</>;
  const lower = text.toLowerCase();
  const n = needle.toLowerCase();
  const parts = [];
  let at = 0;
  for (let i = lower.indexOf(n); i >= 0; i = lower.indexOf(n, at)) {
    if (i > at) parts.push(text.slice(at, i));
    parts.push(<mark key={i}>{text.slice(i, i + n.length)}</mark>);
    at = i + n.length;
  }
  if (at < text.length) parts.push(text.slice(at));
  return <>{parts}</>;
}

export interface LogViewProps {
  logs: LogColumns;
  /// Line indices to show, in order; `null` shows every line.
  rows: number[] | null;
  /// Changes whenever `rows` or the log grow (so the view re-measures).
  version: number;
  showResource: boolean;
  highlight?: string;
  follow: boolean;
  onFollowChange: (follow: boolean) => void;
  testId?: string;
}

export function LogView(p: LogViewProps) {
  const ref = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(600);
  const total = p.rows ? p.rows.length : p.logs.length;

  useEffect(() => {
    const el = ref.current!;
    const ro = new ResizeObserver(() => setHeight(el.clientHeight));
    ro.observe(el);
    setHeight(el.clientHeight);
    return () => ro.disconnect();
  }, []);

  // Following: render the tail straight away (no second render after the scroll), then move
  // the scroll position to match.
  const maxTop = Math.max(0, total * ROW_HEIGHT - height);
  const top = p.follow ? maxTop : Math.min(scrollTop, maxTop);
  useLayoutEffect(() => {
    const el = ref.current!;
    if (p.follow && Math.abs(el.scrollTop - maxTop) > 1) el.scrollTop = maxTop;
  }, [p.follow, maxTop]);

  const onScroll = () => {
    const el = ref.current!;
    const atBottom = el.scrollTop + el.clientHeight >= el.scrollHeight - ROW_HEIGHT;
    if (atBottom !== p.follow) p.onFollowChange(atBottom);
    if (!atBottom || !p.follow) setScrollTop(el.scrollTop);
  };

  const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(total, Math.ceil((top + height) / ROW_HEIGHT) + OVERSCAN);
  const items = [];
  const L = p.logs;
  for (let row = first; row < last; row++) {
    const i = p.rows ? p.rows[row] : row;
    const lvl = L.level[i];
    const res = L.names[L.resource[i]];
    const cls = lvl === LEVEL_ERROR ? "log-line err" : lvl === LEVEL_WARN ? "log-line warn" : "log-line";
    items.push(
      <div key={i} class={cls} style={{ top: row * ROW_HEIGHT }} data-level={lvl}>
        <span class="log-time">{fmtClock(L.time[i])}</span>
        {p.showResource && (
          <a class="log-res" href={resourcePath(res)} onClick={linkHandler(resourcePath(res))} title={res}>
            {res}
          </a>
        )}
        <span class="log-text">
          <LineText raw={L.text[i]} needle={p.highlight ?? ""} />
        </span>
      </div>,
    );
  }
  return (
    <div class="log-view" ref={ref} onScroll={onScroll} data-testid={p.testId ?? "log-view"} data-lines={total}>
      <div class="log-spacer" style={{ height: total * ROW_HEIGHT }}>
        {items}
      </div>
      {total === 0 && <div class="log-empty">No log lines yet.</div>}
    </div>
  );
}
