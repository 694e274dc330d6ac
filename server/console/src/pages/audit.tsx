// The audit log, latest first, 50 a page, filtered by actor.
import { useState } from 'preact/hooks';
import { api, query, type AuditPage as Audit } from '../api';
import { Loading, Page, Pager, time, useLoad } from '../ui';

const PAGE = 50;

// Key IDs are SHA-256 hex: shortened, whole in the title.
function short(v: string): string {
  return v.length > 20 ? `${v.slice(0, 16)}…` : v;
}

export function AuditPage() {
  // What is typed (kept across re-renders while the list loads); applied on change (Enter, or
  // leaving the field).
  const [draft, setDraft] = useState('');
  const [actor, setActor] = useState('');
  const [offset, setOffset] = useState(0);
  const audit = useLoad(() => api.get<Audit>('/audit' + query({ actor, limit: PAGE, offset })), [actor, offset]);
  return (
    <Page title="Audit log">
      <form role="search" class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Actor
          <input
            value={draft}
            onInput={(e) => setDraft(e.currentTarget.value)}
            onChange={(e) => {
              setActor(e.currentTarget.value.trim());
              setOffset(0);
            }}
          />
        </label>
      </form>
      <Loading loaded={audit} />
      {audit.data && (
        <>
          <table data-testid="audit-table">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Actor</th>
                <th scope="col">Action</th>
                <th scope="col">Objects</th>
                <th scope="col">Status</th>
                <th scope="col">From</th>
              </tr>
            </thead>
            <tbody>
              {audit.data.items.map((a) => (
                <tr key={a.seq}>
                  <td>{time(a.at)}</td>
                  <td>{a.actor}</td>
                  <td>
                    <code>
                      {a.method} {a.route}
                    </code>
                  </td>
                  <td>
                    {Object.entries(a.object_ids ?? {}).map(([k, v]) => (
                      <span key={k} class="object-id" title={`${k}=${String(v)}`}>
                        {k}={short(String(v))}{' '}
                      </span>
                    ))}
                  </td>
                  <td>{a.status}</td>
                  <td>{a.remote_addr}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <Pager label="Audit log" offset={offset} limit={PAGE} total={audit.data.total} onPage={setOffset} />
        </>
      )}
    </Page>
  );
}
