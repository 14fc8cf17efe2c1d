import { useEffect, useState } from 'preact/hooks';

// A small history-API router: every view's state lives in its URL (path and query), so a
// copied URL reproduces the view.

type Listener = () => void;
const listeners = new Set<Listener>();

export function navigate(url: string, replace = false): void {
  if (url === location.pathname + location.search) return;
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  listeners.forEach((l) => l());
}

window.addEventListener('popstate', () => listeners.forEach((l) => l()));

// Same-origin <a href> clicks navigate without a reload.
document.addEventListener('click', (ev) => {
  if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  const a = (ev.target as Element | null)?.closest?.('a');
  if (!a || a.target || a.hasAttribute('download') || a.dataset.external !== undefined) return;
  const href = a.getAttribute('href');
  if (!href || !href.startsWith('/') || href.startsWith('//')) return;
  if (href.startsWith('/api/') || href.startsWith('/spoor/api/') || href === '/healthz') return;
  ev.preventDefault();
  navigate(href);
});

export interface Loc {
  path: string;
  query: URLSearchParams;
}

export function useLocation(): Loc {
  const [, tick] = useState(0);
  useEffect(() => {
    const l = () => tick((n) => n + 1);
    listeners.add(l);
    return () => listeners.delete(l);
  }, []);
  return { path: location.pathname, query: new URLSearchParams(location.search) };
}

// href builds a URL from a path and parameters, leaving out empty ones.
export function href(path: string, params: Record<string, string | number | undefined | null> = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}
