// Minimal ANSI SGR rendering for log lines: 8/16 colours, bold, dim, reset. Other escape
// sequences are dropped.

// eslint-disable-next-line no-control-regex
export const ANSI_RE = /\x1b\[([0-9;?]*)([A-Za-z])/g;

export interface Span {
  text: string;
  cls: string;
}

export function stripAnsi(s: string): string {
  return s.includes("\x1b") ? s.replace(ANSI_RE, "") : s;
}

export function parseAnsi(s: string): Span[] {
  if (!s.includes("\x1b")) return [{ text: s, cls: "" }];
  const out: Span[] = [];
  let fg = 0;
  let bold = false;
  let dim = false;
  let at = 0;
  const cls = () => [fg ? `ansi-${fg}` : "", bold ? "ansi-b" : "", dim ? "ansi-d" : ""].filter(Boolean).join(" ");
  ANSI_RE.lastIndex = 0;
  for (let m = ANSI_RE.exec(s); m; m = ANSI_RE.exec(s)) {
    if (m.index > at) out.push({ text: s.slice(at, m.index), cls: cls() });
    at = m.index + m[0].length;
    if (m[2] !== "m") continue;
    for (const p of (m[1] || "0").split(";").map(Number)) {
      if (p === 0) [fg, bold, dim] = [0, false, false];
      else if (p === 1) bold = true;
      else if (p === 2) dim = true;
      else if (p === 22) [bold, dim] = [false, false];
      else if ((p >= 30 && p <= 37) || (p >= 90 && p <= 97)) fg = p;
      else if (p === 39) fg = 0;
    }
  }
  if (at < s.length) out.push({ text: s.slice(at), cls: cls() });
  return out;
}
