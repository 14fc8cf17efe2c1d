import type { ComponentChildren } from 'preact';
import { HttpError, setToken } from '../lib/api';

const palette = [
  '#1c7ed6', '#2f9e44', '#f08c00', '#7048e8', '#0c8599', '#d6336c', '#5c940d', '#e8590c',
  '#4263eb', '#ae3ec9', '#099268', '#a61e4d', '#3b5bdb', '#862e9c', '#66a80f', '#c2255c',
];

// serviceColor gives each service a stable colour from its name.
export function serviceColor(name: string): string {
  let h = 2166136261;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619);
  return palette[(h >>> 0) % palette.length];
}

export function Loading({ what }: { what: string }) {
  return (
    <div class="state state-loading" role="status" data-testid="loading">
      <span class="spinner" aria-hidden="true" />
      Loading {what}…
    </div>
  );
}

export function ErrorBox({ error, what, retry }: { error: Error; what: string; retry?: () => void }) {
  return (
    <div class="state state-error" role="alert" data-testid="error">
      <strong>Could not load {what}.</strong>
      <div class="mono">{error.message}</div>
      {error instanceof HttpError && error.status === 401 && (
        <form
          class="token-form"
          onSubmit={(e) => {
            e.preventDefault();
            setToken(String(new FormData(e.currentTarget).get('token') ?? '').trim());
            location.reload();
          }}
        >
          This Spoor asks for a token (SPOOR_QUERY_AUTH_TOKEN). It is kept in this browser only.
          <input name="token" type="password" placeholder="Bearer token" autoComplete="off" />
          <button class="btn" type="submit">
            Use token
          </button>
        </form>
      )}
      {retry && (
        <button class="btn" onClick={retry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Empty({ title, children }: { title: string; children?: ComponentChildren }) {
  return (
    <div class="state state-empty" data-testid="empty">
      <strong>{title}</strong>
      {children && <div>{children}</div>}
    </div>
  );
}

export function Note({ children }: { children: ComponentChildren }) {
  return <div class="note">{children}</div>;
}

export function ServiceChip({ name, count, errors }: { name: string; count?: number; errors?: number }) {
  return (
    <span class={'chip' + (errors ? ' chip-err' : '')} title={errors ? `${errors} error spans` : undefined}>
      <i style={{ background: serviceColor(name) }} />
      {name}
      {count !== undefined && <b>{count}</b>}
    </span>
  );
}

export function ErrorShare({ share }: { share: number }) {
  const pct = isFinite(share) ? Math.min(1, share) : 0;
  return (
    <span class={'share' + (share > 0.05 ? ' share-bad' : share > 0 ? ' share-warn' : '')}>
      <span class="share-bar">
        <span style={{ width: `${Math.max(pct > 0 ? 2 : 0, pct * 100)}%` }} />
      </span>
      {isFinite(share) ? (share === 0 ? '0%' : share < 0.001 ? '<0.1%' : `${(share * 100).toFixed(share < 0.1 ? 1 : 0)}%`) : '–'}
    </span>
  );
}
