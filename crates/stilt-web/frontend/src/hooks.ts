import { useEffect, useState } from "preact/hooks";
import { view } from "./state";

/// Re-renders the caller when `select()` (a cheap version key) changes after a view update.
export function useViewKey(select: () => unknown): unknown {
  const [key, setKey] = useState(select);
  useEffect(() => {
    const check = () => setKey(select());
    check();
    return view.subscribe(check);
  }, []);
  return key;
}

export function useNow(intervalMs = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(t);
  }, [intervalMs]);
  return now;
}

// A tiny path router: /, /r/<name>, /r/<name>/<tab>, /logs, /graph.
export function currentPath(): string {
  return location.pathname;
}

export function navigate(path: string) {
  if (path === location.pathname + location.search) return;
  history.pushState(null, "", path);
  window.dispatchEvent(new Event("stilt:navigate"));
}

export function usePath(): string {
  const [path, setPath] = useState(currentPath());
  useEffect(() => {
    const on = () => setPath(currentPath() + location.search);
    window.addEventListener("popstate", on);
    window.addEventListener("stilt:navigate", on);
    on();
    return () => {
      window.removeEventListener("popstate", on);
      window.removeEventListener("stilt:navigate", on);
    };
  }, []);
  return path;
}

export function resourcePath(name: string, tab?: string): string {
  return `/r/${encodeURIComponent(name)}${tab ? `/${tab}` : ""}`;
}

export function linkHandler(path: string) {
  return (e: MouseEvent) => {
    if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    navigate(path);
  };
}
