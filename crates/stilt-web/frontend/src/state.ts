// The client's mirror of the server view: objects by kind and name, and the log as columns.
// Fed only by the /ws/view websocket (never polled). Components subscribe to change counters.

import { stripAnsi } from "./ansi";
import type { ApiObject, UIButton, UIResource } from "./types";

export const LEVEL_INFO = 0;
/// Most log lines the page holds (the server's log store is bounded too).
export const MAX_LINES = 300_000;
export const LEVEL_WARN = 1;
export const LEVEL_ERROR = 2;

type WireLine = [number, number, number, number, number, string];
interface WireLogs {
  from: number;
  to: number;
  truncated: boolean;
  names: string[];
  spans: string[];
  lines: WireLine[];
}
interface WireMsg {
  full: boolean;
  objects?: ApiObject[];
  deleted?: [string, string][];
  logs?: WireLogs;
  more: boolean;
  time: number;
}

/// Growable columnar log storage: 100k lines stay cheap to filter and render.
export class LogColumns {
  resource: Int32Array = new Int32Array(1024);
  level: Uint8Array = new Uint8Array(1024);
  time: Float64Array = new Float64Array(1024);
  span: Int32Array = new Int32Array(1024);
  text: string[] = [];
  /// Lower-cased text, filled on demand by text filters.
  private lower: string[] = [];
  length = 0;
  names: string[] = [];
  nameIndex = new Map<string, number>();
  spans: string[] = [];
  spanIndex = new Map<string, number>();
  /// Line indices per resource index.
  byResource: number[][] = [];
  truncated = false;

  lowerText(i: number): string {
    let l = this.lower[i];
    if (l === undefined) {
      l = stripAnsi(this.text[i]).toLowerCase();
      this.lower[i] = l;
    }
    return l;
  }

  intern(name: string): number {
    let i = this.nameIndex.get(name);
    if (i === undefined) {
      i = this.names.length;
      this.names.push(name);
      this.nameIndex.set(name, i);
      this.byResource.push([]);
    }
    return i;
  }

  internSpan(span: string): number {
    let i = this.spanIndex.get(span);
    if (i === undefined) {
      i = this.spans.length;
      this.spans.push(span);
      this.spanIndex.set(span, i);
    }
    return i;
  }

  grow(n: number) {
    if (n <= this.resource.length) return;
    let cap = this.resource.length;
    while (cap < n) cap *= 2;
    const r = new Int32Array(cap);
    r.set(this.resource);
    this.resource = r;
    const l = new Uint8Array(cap);
    l.set(this.level);
    this.level = l;
    const t = new Float64Array(cap);
    t.set(this.time);
    this.time = t;
    const s = new Int32Array(cap);
    s.set(this.span);
    this.span = s;
  }

  /// A copy holding only the newest `keep` lines (line indices change, so it is a new object).
  trimmed(keep: number): LogColumns {
    const out = new LogColumns();
    out.truncated = true;
    out.names = this.names.slice();
    out.nameIndex = new Map(this.nameIndex);
    out.spans = this.spans.slice();
    out.spanIndex = new Map(this.spanIndex);
    out.byResource = this.names.map(() => []);
    const from = Math.max(0, this.length - keep);
    const n = this.length - from;
    out.grow(n);
    out.resource.set(this.resource.subarray(from, this.length));
    out.level.set(this.level.subarray(from, this.length));
    out.time.set(this.time.subarray(from, this.length));
    out.span.set(this.span.subarray(from, this.length));
    out.text = this.text.slice(from, this.length);
    out.length = n;
    for (let i = 0; i < n; i++) out.byResource[out.resource[i]].push(i);
    return out;
  }

  append(w: WireLogs) {
    if (w.truncated) this.truncated = true;
    const nameMap = w.names.map((n) => this.intern(n));
    const spanMap = w.spans.map((s) => this.internSpan(s));
    this.grow(this.length + w.lines.length);
    for (const [, n, s, lvl, t, text] of w.lines) {
      const i = this.length++;
      const r = nameMap[n];
      this.resource[i] = r;
      this.span[i] = spanMap[s];
      this.level[i] = lvl;
      this.time[i] = t;
      this.text.push(text);
      this.byResource[r].push(i);
    }
  }
}

export type Listener = () => void;

export class ViewState {
  objects = new Map<string, Map<string, ApiObject>>();
  logs = new LogColumns();
  /// Bumped on every object change; per-kind counters let components skip work.
  version = 0;
  kindVersion = new Map<string, number>();
  logVersion = 0;
  connected = false;
  loaded = false; // the first full message arrived
  backfilled = false; // initial log backfill complete
  serverTimeOffset = 0;
  private listeners = new Set<Listener>();
  private ws: WebSocket | null = null;
  private subscribed: string[] = [];
  private retry = 500;
  /// The next full message starts a new connection: logs restart from checkpoint 0.
  private fresh = false;
  private scheduled = false;
  // Instrumentation for tests and the benchmark.
  stats = {
    messages: 0,
    bytes: 0,
    lines: 0,
    firstMessageAt: 0,
    loadedAt: 0,
    backfilledAt: 0,
    firstRenderAt: 0,
    interactiveAt: 0,
  };

  constructor(public token: string) {}

  kind(kind: string): Map<string, ApiObject> {
    let m = this.objects.get(kind);
    if (!m) {
      m = new Map();
      this.objects.set(kind, m);
    }
    return m;
  }

  resources(): UIResource[] {
    return [...this.kind("UIResource").values()] as UIResource[];
  }

  buttons(): UIButton[] {
    return [...this.kind("UIButton").values()] as UIButton[];
  }

  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  private notify() {
    // Coalesce bursts of messages into one render per frame.
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      for (const l of this.listeners) l();
    });
  }

  /// Which resources' backing objects (FileWatch, LiveUpdate, …) the server should send.
  setSubscribed(resources: string[]) {
    this.subscribed = resources;
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ subscribe: resources }));
    }
  }

  connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/ws/view?csrf=${encodeURIComponent(this.token)}`);
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.fresh = true;
      this.connected = true;
      this.retry = 500;
      if (this.subscribed.length) ws.send(JSON.stringify({ subscribe: this.subscribed }));
      this.notify();
    };
    ws.onmessage = (ev) => {
      const text = ev.data as string;
      this.stats.messages++;
      this.stats.bytes += text.length;
      if (!this.stats.firstMessageAt) this.stats.firstMessageAt = performance.now();
      this.apply(JSON.parse(text) as WireMsg);
    };
    ws.onclose = () => {
      this.connected = false;
      this.ws = null;
      this.notify();
      const again = () => setTimeout(() => this.connect(), this.retry);
      this.retry = Math.min(this.retry * 2, 5000);
      if (opened) return void again();
      // Refused before opening: maybe a restarted server with a new token. Same-origin only.
      fetch("/api/websocket_token")
        .then((r) => (r.ok ? r.text() : Promise.reject()))
        .then((t) => {
          if (t) this.token = t;
        })
        .catch(() => {})
        .finally(again);
    };
  }

  apply(msg: WireMsg) {
    this.serverTimeOffset = msg.time - Date.now();
    if (msg.full) {
      // A full message replaces every object; on a new connection the logs restart too.
      for (const kind of this.objects.keys()) this.kindVersion.set(kind, (this.kindVersion.get(kind) ?? 0) + 1);
      this.objects.clear();
      if (this.fresh) {
        this.fresh = false;
        this.logs = new LogColumns();
        this.logVersion++;
      }
    }
    for (const o of msg.objects ?? []) {
      this.kind(o.kind).set(o.metadata.name, o);
      this.kindVersion.set(o.kind, (this.kindVersion.get(o.kind) ?? 0) + 1);
    }
    for (const [kind, name] of msg.deleted ?? []) {
      this.kind(kind).delete(name);
      this.kindVersion.set(kind, (this.kindVersion.get(kind) ?? 0) + 1);
    }
    if (msg.full || msg.objects?.length || msg.deleted?.length) this.version++;
    if (msg.logs) {
      this.logs.append(msg.logs);
      // The browser keeps at most MAX_LINES; past that the oldest fifth goes.
      if (this.logs.length > MAX_LINES) this.logs = this.logs.trimmed(Math.floor(MAX_LINES * 0.8));
      this.stats.lines += msg.logs.lines.length;
      this.logVersion++;
    }
    if (msg.full && !this.loaded) {
      this.loaded = true;
      this.stats.loadedAt = performance.now();
    }
    if (!msg.more && !this.backfilled) {
      this.backfilled = true;
      this.stats.backfilledAt = performance.now();
    }
    this.notify();
  }
}

function readToken(): string {
  const meta = document.querySelector('meta[name="stilt-token"]');
  return meta?.getAttribute("content") ?? "";
}

export const view = new ViewState(readToken());
(window as any).__stilt = view;

export async function post(path: string, body: unknown): Promise<void> {
  const resp = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Stilt-Token": view.token },
    body: JSON.stringify(body),
  });
  if (!resp.ok) throw new Error(`${path}: ${resp.status} ${await resp.text()}`);
}
