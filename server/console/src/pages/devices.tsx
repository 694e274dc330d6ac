// Devices: search, filters and paging (50 a page) over the whole fleet; one device's
// properties, versions, upgrade history, and commands to it.
import { useEffect, useState } from 'preact/hooks';
import { api, enc, query, type Device, type HistoryRow, type Product } from '../api';
import { hashQuery, href } from '../router';
import { canChange, useSession } from '../session';
import { ErrorAlert, Loading, Page, Pager, Status, time, useAction, useLoad } from '../ui';

const PAGE = 50;

interface Filters {
  q: string;
  product_id: string;
  group: string;
  version: string;
  online: string;
}

function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = useState(value);
  useEffect(() => {
    const t = window.setTimeout(() => setV(value), ms);
    return () => window.clearTimeout(t);
  }, [value, ms]);
  return v;
}

export function DevicesPage() {
  const initial = hashQuery();
  const [filters, setFilters] = useState<Filters>({
    q: initial.get('q') ?? '',
    product_id: initial.get('product_id') ?? '',
    group: initial.get('group') ?? '',
    version: initial.get('version') ?? '',
    online: initial.get('online') ?? '',
  });
  const [offset, setOffset] = useState(0);
  const debounced = useDebounced(filters, 300);
  const products = useLoad(() => api.get<Product[]>('/products'), []);
  const devices = useLoad(async () => {
    const r = await api.getWithHeaders<Device[]>('/devices' + query({ ...debounced, limit: PAGE, offset }));
    const header = r.headers.get('X-Total-Count');
    // Without X-Total-Count (a server that does not page), what came is all there is.
    return { rows: r.body.slice(0, PAGE), total: header !== null ? Number(header) : offset + r.body.length };
  }, [JSON.stringify(debounced), offset]);
  const set = (k: keyof Filters) => (e: Event) => {
    setFilters({ ...filters, [k]: (e.currentTarget as HTMLInputElement).value });
    setOffset(0);
  };
  return (
    <Page title="Devices">
      <form role="search" class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Search
          <input type="search" placeholder="ID or node" value={filters.q} onInput={set('q')} />
        </label>
        <label>
          Product
          <select value={filters.product_id} onChange={set('product_id')}>
            <option value="">All</option>
            {(products.data ?? []).map((p) => (
              <option key={p.product_id} value={p.product_id}>
                {p.product_id}
              </option>
            ))}
          </select>
        </label>
        <label>
          Group
          <input value={filters.group} onInput={set('group')} />
        </label>
        <label>
          Version
          <input value={filters.version} onInput={set('version')} />
        </label>
        <label>
          Online
          <select value={filters.online} onChange={set('online')}>
            <option value="">Any</option>
            <option value="true">Online</option>
            <option value="false">Offline</option>
          </select>
        </label>
      </form>
      <Loading loaded={devices} />
      {devices.data && (
        <>
          <table data-testid="devices-table">
            <thead>
              <tr>
                <th scope="col">Device</th>
                <th scope="col">Product</th>
                <th scope="col">Online</th>
                <th scope="col">Firmware</th>
                <th scope="col">Software</th>
                <th scope="col">Groups</th>
                <th scope="col">Last seen</th>
              </tr>
            </thead>
            <tbody>
              {devices.data.rows.map((d) => (
                <tr key={d.device_id}>
                  <td>
                    <a href={href('devices', d.device_id)}>{d.device_id}</a>
                    {!d.enabled && <small> (disabled)</small>}
                  </td>
                  <td>{d.product_id}</td>
                  <td>{d.online ? 'online' : 'offline'}</td>
                  <td>{d.fw_version || '—'}</td>
                  <td>{d.sw_version || '—'}</td>
                  <td>{d.groups.join(', ')}</td>
                  <td>{time(d.last_seen)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {devices.data.rows.length === 0 && <p>No devices match.</p>}
          <Pager label="Devices" offset={offset} limit={PAGE} total={devices.data.total} onPage={setOffset} />
        </>
      )}
    </Page>
  );
}

type Properties = Record<string, Record<string, unknown>> | unknown;

export function DevicePage({ id }: { id: string }) {
  const session = useSession();
  const device = useLoad(() => api.get<Device>(`/devices/${enc(id)}`), [id]);
  const props = useLoad(() => api.get<Properties>(`/devices/${enc(id)}/properties`), [id]);
  const history = useLoad(() => api.get<HistoryRow[]>(`/devices/${enc(id)}/history`), [id]);
  const [run, act] = useAction();
  const d = device.data;
  const toggle = () =>
    void run(async () => {
      if (!d) return;
      await api.patch(`/devices/${enc(id)}`, { enabled: !d.enabled });
      device.reload();
    });
  return (
    <Page title={`Device ${id}`}>
      <Loading loaded={device} />
      <ErrorAlert error={act.error} />
      {d && (
        <dl class="props" data-testid="device-props">
          <dt>Product</dt>
          <dd>
            <a href={href('products', d.product_id)}>{d.product_id}</a>
          </dd>
          <dt>Node</dt>
          <dd>{d.node_id}</dd>
          <dt>State</dt>
          <dd>
            {d.online ? 'online' : 'offline'}, {d.enabled ? 'enabled' : 'disabled'}
            {canChange(session.role) && (
              <button type="button" class="secondary inline" onClick={toggle} disabled={act.busy}>
                {d.enabled ? 'Disable' : 'Enable'}
              </button>
            )}
          </dd>
          <dt>Firmware version</dt>
          <dd data-testid="fw-version">{d.fw_version || '—'}</dd>
          <dt>Software version</dt>
          <dd>{d.sw_version || '—'}</dd>
          <dt>Groups</dt>
          <dd>{d.groups.join(', ') || '—'}</dd>
          <dt>Gateway</dt>
          <dd>{d.gateway_id ? <a href={href('devices', d.gateway_id)}>{d.gateway_id}</a> : '—'}</dd>
          <dt>Last seen</dt>
          <dd>{time(d.last_seen)}</dd>
          {d.sdk_info && (
            <>
              <dt>SDK</dt>
              <dd>{Object.entries(d.sdk_info).map(([k, v]) => `${k}: ${v}`).join(', ')}</dd>
            </>
          )}
        </dl>
      )}
      <h2>Properties</h2>
      <Loading loaded={props} />
      {props.data !== undefined && (
        <pre class="json" tabIndex={0} aria-label="Latest properties (JSON)">
          {JSON.stringify(props.data, null, 2)}
        </pre>
      )}
      <h2>Upgrade history</h2>
      <Loading loaded={history} />
      {history.data && history.data.length === 0 && <p>No upgrades yet.</p>}
      {history.data && history.data.length > 0 && (
        <table data-testid="device-history">
          <thead>
            <tr>
              <th scope="col">Rollout</th>
              <th scope="col">Kind</th>
              <th scope="col">Target</th>
              <th scope="col">State</th>
              <th scope="col">Package</th>
              <th scope="col">Result</th>
              <th scope="col">Updated</th>
            </tr>
          </thead>
          <tbody>
            {history.data.map((h) => (
              <tr key={h.task_id}>
                <td>
                  <a href={href('rollouts', h.task_id)}>{h.task_name || `Task ${h.task_id}`}</a>
                </td>
                <td>{h.kind}</td>
                <td>{h.target_version}</td>
                <td>{h.state}</td>
                <td>
                  {h.package_id ?? '—'}
                  {h.diff === true ? ' (diff)' : h.diff === false ? ' (full)' : ''}
                </td>
                <td>
                  {h.result_code ?? ''} {h.result ?? ''}
                </td>
                <td>{time(h.updated_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {canChange(session.role) && <SendCommand id={id} />}
    </Page>
  );
}

function SendCommand({ id }: { id: string }) {
  const [service, setService] = useState('');
  const [name, setName] = useState('');
  const [paras, setParas] = useState('{}');
  const [result, setResult] = useState<unknown>(undefined);
  const [run, act] = useAction();
  const submit = (e: Event) => {
    e.preventDefault();
    setResult(undefined);
    void run(async () => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(paras || '{}');
      } catch {
        throw new Error('The parameters are not valid JSON.');
      }
      setResult(
        await api.post(`/devices/${enc(id)}/commands`, { service_id: service, command_name: name, paras: parsed }),
      );
    });
  };
  return (
    <form onSubmit={submit} class="narrow" aria-labelledby="command-title">
      <h2 id="command-title">Send a command</h2>
      <ErrorAlert error={act.error} />
      <div class="grid">
        <label>
          Service
          <input required value={service} onInput={(e) => setService(e.currentTarget.value)} />
        </label>
        <label>
          Command
          <input required value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
      </div>
      <label>
        Parameters (JSON)
        <textarea rows={3} value={paras} onInput={(e) => setParas(e.currentTarget.value)} />
      </label>
      <button type="submit" aria-busy={act.busy} disabled={act.busy}>
        Send command
      </button>
      <Status text={act.busy ? 'Waiting for the device…' : ''} />
      {result !== undefined && (
        <pre class="json" data-testid="command-result" tabIndex={0} aria-label="Command result (JSON)">
          {JSON.stringify(result, null, 2)}
        </pre>
      )}
    </form>
  );
}
