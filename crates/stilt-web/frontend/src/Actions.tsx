// Buttons that change things: trigger, disable toggle, trigger mode, UIButtons.

import { useState } from "preact/hooks";
import { post } from "./state";
import { buildTone, isDisabled, isManual } from "./status";
import type { UIButton, UIResource } from "./types";

function useAction(): [boolean, string, (f: () => Promise<void>) => void] {
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState("");
  const run = (f: () => Promise<void>) => {
    setBusy(true);
    setErr("");
    f()
      .catch((e) => setErr(String(e.message ?? e)))
      .finally(() => setBusy(false));
  };
  return [busy, err, run];
}

export function TriggerButton({ r }: { r: UIResource }) {
  const [busy, err, run] = useAction();
  const name = r.metadata.name;
  const building = buildTone(r) === "building";
  const queued = r.status?.queued;
  const manual = isManual(r.status?.triggerMode);
  const emphasis = manual && (r.status?.hasPendingChanges ?? false);
  return (
    <button
      class={`icon-btn trigger${emphasis ? " emphasis" : ""}`}
      data-testid={`trigger-${name}`}
      title={err || (building ? "Updating…" : queued ? "Queued" : `Trigger an update of ${name}`)}
      disabled={busy || building || queued || isDisabled(r)}
      onClick={(e) => {
        e.stopPropagation();
        run(() => post("/api/trigger", { manifest_names: [name], build_reason: 16 }));
      }}
    >
      {building ? <span class="spin">⟳</span> : "▶"}
    </button>
  );
}

export function DisableToggle({ r }: { r: UIResource }) {
  const [busy, err, run] = useAction();
  const name = r.metadata.name;
  const disabled = isDisabled(r);
  return (
    <label class={`switch${disabled ? "" : " on"}`} title={err || (disabled ? "Enable resource" : "Disable resource")}>
      <input
        type="checkbox"
        data-testid={`disable-${name}`}
        checked={!disabled}
        disabled={busy}
        onChange={() => run(() => post("/api/disable", { manifest_names: [name], disabled: !disabled }))}
      />
      <span class="knob" />
    </label>
  );
}

export function TriggerModeToggle({ r }: { r: UIResource }) {
  const [busy, err, run] = useAction();
  const name = r.metadata.name;
  const mode = r.status?.triggerMode ?? 0;
  const manual = isManual(mode);
  const next = manual ? (mode === 2 ? 3 : 0) : mode === 3 ? 2 : 1;
  return (
    <button
      class={`chip mode${manual ? " manual" : ""}`}
      data-testid={`mode-${name}`}
      disabled={busy}
      title={err || `Updates on file changes: ${manual ? "manual (click ▶)" : "automatic"}. Click to switch.`}
      onClick={() => run(() => post("/api/override/trigger_mode", { manifest_names: [name], trigger_mode: next }))}
    >
      {manual ? "manual" : "auto"}
    </button>
  );
}

/// A UIButton defined through the API: a click writes status.lastClickedAt (and inputs).
export function ApiButton({ b, compact }: { b: UIButton; compact?: boolean }) {
  const [busy, err, run] = useAction();
  const [open, setOpen] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const inputs = (b.spec.inputs ?? []).filter((i) => !i.hidden);
  const [values, setValues] = useState<Record<string, string | boolean>>(() => {
    const v: Record<string, string | boolean> = {};
    for (const i of b.spec.inputs ?? []) {
      if (i.bool) v[i.name] = i.bool.defaultValue ?? false;
      else if (i.choice) v[i.name] = i.choice.choices?.[0] ?? "";
      else if (i.hidden) v[i.name] = i.hidden.value;
      else v[i.name] = i.text?.defaultValue ?? "";
    }
    return v;
  });
  const submit = () => {
    const statusInputs = (b.spec.inputs ?? []).map((i) => {
      const v = values[i.name];
      if (i.bool) return { name: i.name, bool: { value: Boolean(v) } };
      if (i.hidden) return { name: i.name, hidden: { value: String(v) } };
      if (i.choice) return { name: i.name, choice: { value: String(v) } };
      return { name: i.name, text: { value: String(v) } };
    });
    setOpen(false);
    setConfirming(false);
    run(() => post("/api/button", { name: b.metadata.name, inputs: statusInputs }));
  };
  const click = () => {
    if (inputs.length) return setOpen(!open);
    if (b.spec.requiresConfirmation && !confirming) return setConfirming(true);
    submit();
  };
  return (
    <span class="api-btn-wrap">
      <button
        class={`api-btn${compact ? " compact" : ""}${confirming ? " confirm" : ""}`}
        data-testid={`button-${b.metadata.name}`}
        disabled={busy || b.spec.disabled}
        title={err || b.spec.text}
        onClick={(e) => {
          e.stopPropagation();
          click();
        }}
      >
        {confirming ? "Confirm?" : b.spec.text}
        {inputs.length > 0 && " ▾"}
      </button>
      {open && (
        <div class="popover" onClick={(e) => e.stopPropagation()}>
          {inputs.map((i) => (
            <label key={i.name} class="popover-row">
              <span>{i.label || i.name}</span>
              {i.bool ? (
                <input
                  type="checkbox"
                  checked={Boolean(values[i.name])}
                  onChange={(e) => setValues({ ...values, [i.name]: (e.target as HTMLInputElement).checked })}
                />
              ) : i.choice ? (
                <select
                  value={String(values[i.name])}
                  onChange={(e) => setValues({ ...values, [i.name]: (e.target as HTMLSelectElement).value })}
                >
                  {(i.choice.choices ?? []).map((c) => (
                    <option key={c}>{c}</option>
                  ))}
                </select>
              ) : (
                <input
                  type="text"
                  data-testid={`input-${b.metadata.name}-${i.name}`}
                  placeholder={i.text?.placeholder}
                  value={String(values[i.name])}
                  onInput={(e) => setValues({ ...values, [i.name]: (e.target as HTMLInputElement).value })}
                />
              )}
            </label>
          ))}
          <button class="api-btn primary" data-testid={`submit-${b.metadata.name}`} onClick={submit}>
            {b.spec.requiresConfirmation ? "Confirm & run" : "Run"}
          </button>
        </div>
      )}
    </span>
  );
}

/// UIButtons shown as ordinary buttons (not the disable toggles or stop-build buttons Stilt
/// renders its own way).
export function isPlainButton(b: UIButton): boolean {
  const type = b.metadata.annotations?.["tilt.dev/uibutton-type"];
  if (type === "DisableToggle" || type === "StopBuild") return false;
  if (b.metadata.ownerReferences?.some((o) => o.kind === "ToggleButton")) return false;
  return true;
}
