import type { Tone } from "./status";
import { TONE_LABEL } from "./status";

const GLYPH: Record<Tone, string> = {
  ok: "✓",
  error: "✕",
  pending: "…",
  building: "⟳",
  none: "–",
  disabled: "⏸",
  warning: "!",
};

export function StatusIcon({ tone, label, testId }: { tone: Tone; label?: string; testId?: string }) {
  return (
    <span class={`status-icon tone-${tone}`} title={label ?? TONE_LABEL[tone]} data-tone={tone} data-testid={testId}>
      <span class={tone === "building" ? "spin" : ""}>{GLYPH[tone]}</span>
    </span>
  );
}
