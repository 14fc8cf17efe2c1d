import { render } from 'preact';
import './style.css';
import { navigate, useLocation } from './lib/router';
import { Home } from './views/Home';
import { Search } from './views/Search';
import { TraceView } from './views/TraceView';
import { ServiceMap } from './views/ServiceMap';
import { FlowView } from './views/FlowView';
import { Compare } from './views/Compare';
import { Alerts } from './views/Alerts';
import { Empty } from './components/common';

const nav = [
  ['/', 'Services'],
  ['/search', 'Search'],
  ['/map', 'Service map'],
  ['/flow', 'Payment flow'],
  ['/alerts', 'Alerts'],
] as const;

function App() {
  const loc = useLocation();
  const p = loc.path;
  let view;
  let m: RegExpMatchArray | null;
  if (p === '/' || p === '') view = <Home />;
  else if (p === '/search') view = <Search loc={loc} />;
  else if ((m = p.match(/^\/trace\/([^/]+)$/))) view = <TraceView id={decodeURIComponent(m[1])} loc={loc} />;
  else if (p === '/map') view = <ServiceMap loc={loc} />;
  else if (p === '/flow') view = <FlowView loc={loc} />;
  else if (p === '/compare') view = <Compare loc={loc} />;
  else if (p === '/alerts') view = <Alerts />;
  else
    view = (
      <Empty title="No such page">
        <span class="mono">{p}</span> is not a page of Spoor. <a href="/">Go to the services</a>.
      </Empty>
    );
  const active = p === '/' ? '/' : nav.find(([h]) => h !== '/' && p.startsWith(h))?.[0] ?? (p.startsWith('/trace') || p === '/compare' ? '/search' : '');
  return (
    <>
      <header class="top">
        <a href="/" class="brand">
          <svg width="18" height="18" viewBox="0 0 16 16" aria-hidden="true">
            <circle cx="4.5" cy="11.5" r="2.6" fill="#ff8a4c" />
            <circle cx="11.5" cy="4.5" r="2.6" fill="#ff8a4c" />
            <circle cx="11" cy="12" r="1.4" fill="#ffb98f" />
          </svg>
          Spoor
        </a>
        <nav>
          {nav.map(([h, label]) => (
            <a href={h} class={active === h ? 'active' : ''}>
              {label}
            </a>
          ))}
        </nav>
        <TraceJump />
      </header>
      <main>{view}</main>
    </>
  );
}

function TraceJump() {
  return (
    <form
      class="jump"
      onSubmit={(e) => {
        e.preventDefault();
        const v = (new FormData(e.currentTarget).get('id') as string).trim().toLowerCase();
        if (v) navigate(`/trace/${encodeURIComponent(v)}`);
      }}
    >
      <input name="id" placeholder="Trace ID…" aria-label="Open trace by ID" spellcheck={false} />
    </form>
  );
}

render(<App />, document.getElementById('app')!);
