// fmtDuration writes a duration given in µs the way engineers read them: 850µs, 12.3ms, 1.25s.
export function fmtDuration(us: number): string {
  if (!isFinite(us)) return '–';
  if (us < 1000) return `${Math.round(us)}µs`;
  if (us < 1e6) return `${trim(us / 1000)}ms`;
  if (us < 60e6) return `${trim(us / 1e6)}s`;
  const m = Math.floor(us / 60e6);
  return `${m}m${Math.round((us - m * 60e6) / 1e6)}s`;
}

export function fmtMs(ms: number): string {
  return fmtDuration(ms * 1000);
}

function trim(v: number): string {
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

export function fmtPercent(x: number): string {
  if (!isFinite(x)) return '–';
  if (x === 0) return '0%';
  if (x < 0.001) return '<0.1%';
  return `${(x * 100).toFixed(x < 0.1 ? 1 : 0)}%`;
}

export function fmtRate(perSec: number): string {
  if (!isFinite(perSec)) return '–';
  if (perSec >= 10) return `${perSec.toFixed(0)}/s`;
  if (perSec >= 0.1) return `${perSec.toFixed(2)}/s`;
  return `${(perSec * 60).toFixed(1)}/min`;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

// fmtTime writes a µs epoch time in local time, with milliseconds.
export function fmtTime(us: number): string {
  const d = new Date(us / 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export function fmtClock(us: number): string {
  const d = new Date(us / 1000);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtClockMs(us: number): string {
  return `${fmtClock(us)}.${pad(new Date(us / 1000).getMilliseconds(), 3)}`;
}

export function fmtAgo(us: number, nowUs = Date.now() * 1000): string {
  const s = Math.max(0, (nowUs - us) / 1e6);
  if (s < 60) return `${Math.round(s)}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

// parseDuration reads "250ms", "1.5s", "300us"/"300µs", "2m" into µs; NaN when malformed.
export function parseDuration(s: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(us|µs|ms|s|m|h)?\s*$/.exec(s);
  if (!m) return NaN;
  const v = parseFloat(m[1]);
  switch (m[2] ?? 'ms') {
    case 'us':
    case 'µs':
      return v;
    case 'ms':
      return v * 1e3;
    case 's':
      return v * 1e6;
    case 'm':
      return v * 60e6;
    case 'h':
      return v * 3600e6;
  }
  return NaN;
}

// goDuration writes µs as a Go duration string for the query APIs.
export function goDuration(us: number): string {
  return `${Math.round(us)}us`;
}

export function shortID(id: string): string {
  return id.length > 7 ? id.slice(0, 7) : id;
}
