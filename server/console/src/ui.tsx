// Small shared pieces: the alert region, loading of API data, tables, paging, the bar chart.
import type { ComponentChildren, JSX } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

// An error the user must see: role="alert" is announced at once.
export function ErrorAlert({ error }: { error: unknown }) {
  if (error === null || error === undefined || error === '') return null;
  return (
    <p role="alert" class="error" data-testid="error">
      {errorText(error)}
    </p>
  );
}

// A polite status line (e.g. "Saved").
export function Status({ text }: { text: string }) {
  return (
    <p role="status" aria-live="polite" class="status">
      {text}
    </p>
  );
}

export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
  // A value, or a function of the current one (for live updates).
  set: (v: T | undefined | ((prev: T | undefined) => T | undefined)) => void;
}

// Loads `fn()` on mount and whenever `deps` change.
export function useLoad<T>(fn: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setLoading(true);
    fn().then(
      (v) => {
        if (!live) return;
        setData(v);
        setError(null);
        setLoading(false);
      },
      (e: unknown) => {
        if (!live) return;
        setError(e);
        setLoading(false);
      },
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, loading, reload, set: setData };
}

// Runs an action, keeping its error and a busy flag for the button that started it.
export function useAction(): [
  (fn: () => Promise<void>) => Promise<void>,
  { busy: boolean; error: unknown; clear: () => void },
] {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const run = useCallback(async (fn: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await fn();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }, []);
  return [run, { busy, error, clear: () => setError(null) }];
}

export function Loading({ loaded }: { loaded: { loading: boolean; error: unknown } }) {
  if (loaded.error) return <ErrorAlert error={loaded.error} />;
  return loaded.loading ? <p aria-busy="true">Loading…</p> : null;
}

export function Page({ title, children, actions }: { title: string; children: ComponentChildren; actions?: ComponentChildren }) {
  useEffect(() => {
    document.title = `${title} · OTA console`;
  }, [title]);
  return (
    <section aria-labelledby="page-title">
      <div class="page-head">
        <h1 id="page-title" tabIndex={-1}>
          {title}
        </h1>
        {actions}
      </div>
      {children}
    </section>
  );
}

export function time(epoch: number | null | undefined): string {
  if (!epoch) return '—';
  return new Date(epoch * 1000).toLocaleString();
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GB`;
}

export function Pager({
  offset,
  limit,
  total,
  onPage,
  label,
}: {
  offset: number;
  limit: number;
  total: number;
  onPage: (offset: number) => void;
  label: string;
}) {
  const first = total === 0 ? 0 : offset + 1;
  const last = Math.min(offset + limit, total);
  return (
    <nav aria-label={`${label} pages`} class="pager">
      <button type="button" class="secondary" disabled={offset === 0} onClick={() => onPage(Math.max(0, offset - limit))}>
        Previous
      </button>
      <span data-testid="pager-range" aria-live="polite">
        {first}–{last} of {total}
      </span>
      <button type="button" class="secondary" disabled={last >= total} onClick={() => onPage(offset + limit)}>
        Next
      </button>
    </nav>
  );
}

// A horizontal SVG bar chart with the numbers as text (and a table for screen readers).
export function BarChart({ rows, label }: { rows: { name: string; value: number }[]; label: string }) {
  const max = Math.max(1, ...rows.map((r) => r.value));
  const rowH = 26;
  const labelW = 140;
  const width = 560;
  const barW = width - labelW - 70;
  return (
    <figure class="chart">
      <svg
        role="img"
        aria-labelledby="chart-caption"
        viewBox={`0 0 ${width} ${Math.max(rowH, rows.length * rowH)}`}
        width="100%"
        data-testid="versions-chart"
      >
        {rows.map((r, i) => (
          <g key={r.name} transform={`translate(0 ${i * rowH})`}>
            <text x={labelW - 8} y={rowH / 2 + 5} text-anchor="end" class="chart-label">
              {r.name || '(unknown)'}
            </text>
            <rect x={labelW} y={4} height={rowH - 8} width={Math.max(2, (r.value / max) * barW)} class="chart-bar" />
            <text x={labelW + Math.max(2, (r.value / max) * barW) + 6} y={rowH / 2 + 5} class="chart-value">
              {r.value}
            </text>
          </g>
        ))}
      </svg>
      <figcaption id="chart-caption">{label}</figcaption>
      <table class="visually-hidden">
        <caption>{label}</caption>
        <tbody>
          {rows.map((r) => (
            <tr key={r.name}>
              <th scope="row">{r.name || '(unknown)'}</th>
              <td>{r.value}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </figure>
  );
}

export function Field({
  label,
  children,
  hint,
}: {
  label: string;
  children: JSX.Element;
  hint?: string;
}) {
  return (
    <label>
      {label}
      {children}
      {hint && <small>{hint}</small>}
    </label>
  );
}

// A signing key's ID (a SHA-256 in hex), shortened; the whole ID is its title.
export function KeyId({ id }: { id: string }) {
  return (
    <code title={id} aria-label={`key ${id}`}>
      {id.length > 16 ? `${id.slice(0, 16)}…` : id}
    </code>
  );
}
