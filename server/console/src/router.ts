// A tiny hash router: #/devices/ID -> ['devices', 'ID'].
import { useEffect, useState } from 'preact/hooks';

export function currentRoute(): string[] {
  const h = window.location.hash.replace(/^#\/?/, '');
  const [path] = h.split('?');
  return (path ?? '').split('/').filter(Boolean).map(decodeURIComponent);
}

export function useRoute(): string[] {
  const [state, setState] = useState(() => ({ hash: window.location.hash, route: currentRoute() }));
  useEffect(() => {
    const on = () => setState({ hash: window.location.hash, route: currentRoute() });
    window.addEventListener('hashchange', on);
    // Effects run after the first paint: a change in between had no listener yet.
    if (window.location.hash !== state.hash) on();
    return () => window.removeEventListener('hashchange', on);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  return state.route;
}

export function href(...parts: (string | number)[]): string {
  return '#/' + parts.map((p) => encodeURIComponent(String(p))).join('/');
}

export function go(...parts: (string | number)[]): void {
  window.location.hash = href(...parts);
}

// The query part of the hash: #/devices?product_id=fire.
export function hashQuery(): URLSearchParams {
  const h = window.location.hash;
  const i = h.indexOf('?');
  return new URLSearchParams(i < 0 ? '' : h.slice(i + 1));
}
