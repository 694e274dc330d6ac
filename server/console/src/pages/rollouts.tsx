// Rollouts (upgrade tasks): the list; a new one with a preview of diff/full devices and bytes;
// one rollout's live progress per wave and per device state, pause / resume / cancel.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, enc, query, type Package, type Preview, type Product, type Task, type TaskDevice, type TaskSpec, type WaveSpec } from '../api';
import { useEvents, type DeviceEvent } from '../events';
import { go, href } from '../router';
import { canChange, useSession } from '../session';
import { ErrorAlert, Loading, Page, Status, bytes, errorText, time, useAction, useLoad } from '../ui';
import { LiveBadge, upsertTask } from './live';

export const STATES = ['Waiting', 'Processing', 'FailWaitRetry', 'Success', 'Fail', 'Stopped'];

function total(t: Task): number {
  return Object.values(t.counts).reduce((a, b) => a + b, 0);
}

export function RolloutsPage() {
  const session = useSession();
  const tasks = useLoad(() => api.get<Task[]>('/tasks'), []);
  const live = useEvents({ task: (t) => tasks.set((l) => upsertTask(l, t)) });
  const sorted = useMemo(() => [...(tasks.data ?? [])].sort((a, b) => b.task_id - a.task_id), [tasks.data]);
  return (
    <Page
      title="Rollouts"
      actions={
        <>
          <LiveBadge state={live} />
          {canChange(session.role) && (
            <a role="button" href={href('rollouts', 'new')}>
              New rollout
            </a>
          )}
        </>
      }
    >
      <Loading loaded={tasks} />
      {tasks.data && tasks.data.length === 0 && <p>No rollouts yet.</p>}
      {sorted.length > 0 && (
        <table data-testid="rollouts-table">
          <thead>
            <tr>
              <th scope="col">ID</th>
              <th scope="col">Name</th>
              <th scope="col">Product</th>
              <th scope="col">Target</th>
              <th scope="col">State</th>
              <th scope="col">Status</th>
              <th scope="col">Done</th>
            </tr>
          </thead>
          <tbody>
            {sorted.map((t) => (
              <tr key={t.task_id}>
                <td>{t.task_id}</td>
                <td>
                  <a href={href('rollouts', t.task_id)}>{t.name || `Task ${t.task_id}`}</a>
                </td>
                <td>{t.product_id}</td>
                <td>{t.target_version}</td>
                <td>{t.state}</td>
                <td>{t.status}</td>
                <td>
                  {(t.counts['Success'] ?? 0) + (t.counts['Fail'] ?? 0) + (t.counts['Stopped'] ?? 0)} / {total(t)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Page>
  );
}

// A device's row updated by its device event (the row's fields the event carries).
function deviceRow(x: TaskDevice, d: DeviceEvent): TaskDevice {
  return {
    ...x,
    status: d.state ?? x.status,
    attempts: d.attempts ?? x.attempts,
    progress: d.progress ?? x.progress,
    package_id: d.package_id !== undefined ? d.package_id : x.package_id,
    result_code: d.result_code !== undefined ? d.result_code : x.result_code,
    description: d.description ?? x.description,
  };
}

export function RolloutPage({ id }: { id: number }) {
  const session = useSession();
  const task = useLoad(() => api.get<Task>(`/tasks/${id}`), [id]);
  const [announce, setAnnounce] = useState('');
  const live = useEvents(
    {
      // The summary has no device list: keep ours.
      task: (t) => {
        if (t.task_id !== id) return;
        task.set((old) => ({ ...t, devices: old?.devices ?? [] }));
        setAnnounce(`${t.state}: ${t.counts['Success'] ?? 0} succeeded, ${t.counts['Fail'] ?? 0} failed of ${total(t)}`);
      },
      device: (d) => {
        if (d.task_id !== id || !d.state) return;
        task.set((old) =>
          old ? { ...old, devices: (old.devices ?? []).map((x) => (x.device_id === d.device_id ? deviceRow(x, d) : x)) } : old,
        );
      },
    },
    id,
  );
  const [run, act] = useAction();
  const control = (verb: 'pause' | 'resume' | 'cancel') =>
    void run(async () => {
      if (verb === 'cancel' && !window.confirm(`Cancel rollout ${id}? Devices not yet upgraded stop.`)) return;
      const t = await api.post<Task>(`/tasks/${id}/${verb}`, {});
      task.set((old) => ({ ...t, devices: old?.devices ?? [] }));
    });
  const t = task.data;
  const open = t && (t.state === 'running' || t.state === 'paused' || t.state === 'scheduled');
  return (
    <Page title={t?.name ? `Rollout ${t.name}` : `Rollout ${id}`} actions={<LiveBadge state={live} />}>
      <Loading loaded={task} />
      <ErrorAlert error={act.error} />
      {t && (
        <>
          <dl class="props">
            <dt>Product</dt>
            <dd>
              <a href={href('products', t.product_id)}>{t.product_id}</a>
            </dd>
            <dt>Target</dt>
            <dd>
              {t.kind} {t.target_version}
              {t.package_id ? ` (package ${t.package_id})` : ''}
            </dd>
            <dt>State</dt>
            <dd data-testid="task-state">
              {t.state}
              {t.pause_reason ? ` (${t.pause_reason})` : ''}, {t.status}
            </dd>
            <dt>Rate limit</dt>
            <dd>{t.rate_per_minute ? `${t.rate_per_minute} devices a minute` : 'none'}</dd>
            <dt>Started</dt>
            <dd>{time(t.start_at)}</dd>
            <dt>Deadline</dt>
            <dd>{time(t.deadline)}</dd>
          </dl>
          {canChange(session.role) && open && (
            <div class="actions">
              {t.state === 'paused' ? (
                <button type="button" onClick={() => control('resume')} disabled={act.busy}>
                  Resume
                </button>
              ) : (
                <button type="button" onClick={() => control('pause')} disabled={act.busy}>
                  Pause
                </button>
              )}
              <button type="button" class="secondary" onClick={() => control('cancel')} disabled={act.busy}>
                Cancel rollout
              </button>
            </div>
          )}
          <p class="visually-hidden" aria-live="polite" data-testid="progress-announce">
            {announce}
          </p>
          <h2>Devices by state</h2>
          <ul class="counts" aria-live="polite" data-testid="state-counts">
            {STATES.map((s) => (
              <li key={s} data-testid={`state-count-${s}`}>
                <span>{s}</span> <strong>{t.counts[s] ?? 0}</strong>
              </li>
            ))}
          </ul>
          <h2>Waves</h2>
          <table>
            <thead>
              <tr>
                <th scope="col">Wave</th>
                <th scope="col">State</th>
                <th scope="col">Devices</th>
                {STATES.map((s) => (
                  <th scope="col" key={s}>
                    {s}
                  </th>
                ))}
                <th scope="col">Failure threshold</th>
              </tr>
            </thead>
            <tbody>
              {t.waves.map((w) => (
                <tr key={w.wave} data-testid={`wave-${w.name || w.wave}`}>
                  <th scope="row">{w.name || `Wave ${w.wave + 1}`}</th>
                  <td data-testid="wave-state">{w.state}</td>
                  <td>{w.size}</td>
                  {STATES.map((s) => (
                    <td key={s} data-testid={`wave-count-${s}`}>
                      {w.counts[s] ?? 0}
                    </td>
                  ))}
                  <td>
                    {w.failure_threshold_percent}%{w.threshold_waived ? ' (waived)' : ''}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <h2>Devices</h2>
          <DeviceRows t={t} />
        </>
      )}
    </Page>
  );
}

const ROWS = 200;

function DeviceRows({ t }: { t: Task }) {
  const [filter, setFilter] = useState('');
  const [limit, setLimit] = useState(ROWS);
  const rows = (t.devices ?? []).filter((d) => !filter || d.status === filter);
  return (
    <>
      <label class="inline-field">
        Show
        <select value={filter} onChange={(e) => setFilter(e.currentTarget.value)}>
          <option value="">All states</option>
          {STATES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </label>
      <table data-testid="task-devices">
        <thead>
          <tr>
            <th scope="col">Device</th>
            <th scope="col">Wave</th>
            <th scope="col">State</th>
            <th scope="col">Progress</th>
            <th scope="col">Attempts</th>
            <th scope="col">Package</th>
            <th scope="col">Result</th>
          </tr>
        </thead>
        <tbody>
          {rows.slice(0, limit).map((d) => (
            <tr key={d.device_id} data-testid={`device-row-${d.device_id}`}>
              <td>
                <a href={href('devices', d.device_id)}>{d.device_id}</a>
              </td>
              <td>{t.waves[d.wave]?.name || d.wave + 1}</td>
              <td data-testid="device-state">{d.status}</td>
              <td>
                <progress value={d.progress} max={100} aria-label={`${d.device_id} progress`} /> {d.progress}%
              </td>
              <td>{d.attempts}</td>
              <td>{d.package_id ?? '—'}</td>
              <td>
                {d.result_code ?? ''} {d.description}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {rows.length > limit && (
        <button type="button" class="secondary" onClick={() => setLimit(limit + ROWS)}>
          Show {Math.min(ROWS, rows.length - limit)} more of {rows.length - limit}
        </button>
      )}
    </>
  );
}

interface WaveRow {
  name: string;
  by: 'percent' | 'group' | 'devices';
  value: string;
}

function list(s: string): string[] {
  return s
    .split(/[\s,]+/)
    .map((x) => x.trim())
    .filter(Boolean);
}

export function NewRolloutPage() {
  const products = useLoad(() => api.get<Product[]>('/products'), []);
  const [product, setProduct] = useState('');
  const chosen = product || products.data?.[0]?.product_id || '';
  const packages = useLoad(
    () => (chosen ? api.get<Package[]>('/packages' + query({ product_id: chosen })) : Promise.resolve([])),
    [chosen],
  );
  const [name, setName] = useState('');
  const [kind, setKind] = useState<'firmware' | 'software'>('firmware');
  const [version, setVersion] = useState('');
  const [targets, setTargets] = useState<'all' | 'groups' | 'devices'>('all');
  const [targetList, setTargetList] = useState('');
  const [waves, setWaves] = useState<WaveRow[]>([]);
  const [rate, setRate] = useState('');
  const [threshold, setThreshold] = useState('');
  const [retries, setRetries] = useState('0');
  const versions = useMemo(
    () =>
      [...new Set((packages.data ?? []).filter((p) => (p.category || 'firmware') === kind).map((p) => p.version))].sort(),
    [packages.data, kind],
  );
  const target = version || versions[versions.length - 1] || '';

  const spec = useMemo((): TaskSpec | null => {
    if (!chosen || !target) return null;
    const s: TaskSpec = { product_id: chosen, kind, target_version: target, retry_count: Number(retries) || 0 };
    if (name) s.name = name;
    if (targets === 'all') s.whole_product = true;
    else if (targets === 'groups') s.groups = list(targetList);
    else s.devices = list(targetList);
    const rollout: NonNullable<TaskSpec['rollout']> = {};
    if (waves.length) {
      rollout.waves = waves.map((w, i): WaveSpec => {
        const ws: WaveSpec = { name: w.name || `wave${i + 1}` };
        if (w.by === 'percent') ws.percent = Number(w.value) || 0;
        else if (w.by === 'group') ws.group = w.value.trim();
        else ws.devices = list(w.value);
        return ws;
      });
    }
    if (rate) rollout.rate_per_minute = Number(rate);
    if (threshold) rollout.failure_threshold_percent = Number(threshold);
    if (Object.keys(rollout).length) s.rollout = rollout;
    return s;
  }, [chosen, kind, target, name, targets, targetList, waves, rate, threshold, retries]);

  // The preview follows the form, debounced.
  const [preview, setPreview] = useState<Preview | null>(null);
  const [previewError, setPreviewError] = useState<unknown>(null);
  const specText = JSON.stringify(spec);
  useEffect(() => {
    if (!spec) {
      setPreview(null);
      return undefined;
    }
    let live = true;
    const t = window.setTimeout(() => {
      api.post<Preview>('/tasks/preview', spec).then(
        (p) => {
          if (live) {
            setPreview(p);
            setPreviewError(null);
          }
        },
        (e: unknown) => {
          if (live) {
            setPreview(null);
            setPreviewError(e);
          }
        },
      );
    }, 400);
    return () => {
      live = false;
      window.clearTimeout(t);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [specText]);

  const [run, act] = useAction();
  const submit = (e: Event) => {
    e.preventDefault();
    void run(async () => {
      if (!spec) throw new Error('Choose a product and a target version.');
      const t = await api.post<Task>('/tasks', spec);
      go('rollouts', t.task_id);
    });
  };
  const setWave = (i: number, w: Partial<WaveRow>) => setWaves(waves.map((x, j) => (j === i ? { ...x, ...w } : x)));

  return (
    <Page title="New rollout">
      <Loading loaded={products} />
      <form onSubmit={submit} class="rollout-form">
        <div class="grid">
          <label>
            Product
            <select value={chosen} onChange={(e) => { setProduct(e.currentTarget.value); setVersion(''); }}>
              {(products.data ?? []).map((p) => (
                <option key={p.product_id} value={p.product_id}>
                  {p.product_id}
                </option>
              ))}
            </select>
          </label>
          <label>
            Kind
            <select value={kind} onChange={(e) => { setKind(e.currentTarget.value as 'firmware' | 'software'); setVersion(''); }}>
              <option value="firmware">Firmware</option>
              <option value="software">Software</option>
            </select>
          </label>
          <label>
            Target version
            <select value={target} onChange={(e) => setVersion(e.currentTarget.value)}>
              {versions.length === 0 && <option value="">No packages</option>}
              {versions.map((v) => (
                <option key={v} value={v}>
                  {v}
                </option>
              ))}
            </select>
          </label>
          <label>
            Name (optional)
            <input value={name} onInput={(e) => setName(e.currentTarget.value)} />
          </label>
        </div>
        <fieldset>
          <legend>Targets</legend>
          <label>
            <input type="radio" name="targets" checked={targets === 'all'} onChange={() => setTargets('all')} />
            Every device of the product
          </label>
          <label>
            <input type="radio" name="targets" checked={targets === 'groups'} onChange={() => setTargets('groups')} />
            Groups
          </label>
          <label>
            <input type="radio" name="targets" checked={targets === 'devices'} onChange={() => setTargets('devices')} />
            Devices
          </label>
          {targets !== 'all' && (
            <label>
              {targets === 'groups' ? 'Group names' : 'Device IDs'} (comma separated)
              <input required value={targetList} onInput={(e) => setTargetList(e.currentTarget.value)} />
            </label>
          )}
        </fieldset>
        <fieldset>
          <legend>Waves</legend>
          {waves.length === 0 && <p>One wave: every target at once.</p>}
          {waves.map((w, i) => (
            <div class="grid wave" key={i} role="group" aria-label={`Wave ${i + 1}`}>
              <label>
                Wave {i + 1} name
                <input value={w.name} onInput={(e) => setWave(i, { name: e.currentTarget.value })} />
              </label>
              <label>
                Wave {i + 1} by
                <select value={w.by} onChange={(e) => setWave(i, { by: e.currentTarget.value as WaveRow['by'] })}>
                  <option value="percent">Percent of the targets</option>
                  <option value="group">Group</option>
                  <option value="devices">Devices</option>
                </select>
              </label>
              <label>
                Wave {i + 1} {w.by === 'percent' ? 'percent' : w.by === 'group' ? 'group' : 'device IDs'}
                <input value={w.value} onInput={(e) => setWave(i, { value: e.currentTarget.value })} />
              </label>
              <button type="button" class="secondary" onClick={() => setWaves(waves.filter((_, j) => j !== i))}>
                Remove wave {i + 1}
              </button>
            </div>
          ))}
          <button
            type="button"
            class="secondary"
            onClick={() => setWaves([...waves, { name: `wave${waves.length + 1}`, by: 'percent', value: '10' }])}
          >
            Add wave
          </button>
        </fieldset>
        <div class="grid">
          <label>
            Rate limit (devices a minute, empty: none)
            <input type="number" min={0} value={rate} onInput={(e) => setRate(e.currentTarget.value)} />
          </label>
          <label>
            Failure threshold (% that pauses the rollout)
            <input type="number" min={0} max={100} value={threshold} onInput={(e) => setThreshold(e.currentTarget.value)} />
          </label>
          <label>
            Retries per device
            <input type="number" min={0} max={5} value={retries} onInput={(e) => setRetries(e.currentTarget.value)} />
          </label>
        </div>
        <section aria-labelledby="preview-title" aria-live="polite" data-testid="preview">
          <h2 id="preview-title">Before you create it</h2>
          {!spec && <p>Choose a product and a target version.</p>}
          {previewError !== null && (
            <p role="alert" class="error">
              Preview unavailable: {errorText(previewError)}
            </p>
          )}
          {preview && (
            <table>
              <tbody>
                <tr>
                  <th scope="row">Devices</th>
                  <td data-testid="preview-devices">{preview.devices}</td>
                </tr>
                <tr>
                  <th scope="row">Get a diff package</th>
                  <td data-testid="preview-diff">
                    {preview.diff.devices} devices, {bytes(preview.diff.bytes)}
                  </td>
                </tr>
                <tr>
                  <th scope="row">Get a full package</th>
                  <td data-testid="preview-full">
                    {preview.full.devices} devices, {bytes(preview.full.bytes)}
                  </td>
                </tr>
                <tr>
                  <th scope="row">Already up to date</th>
                  <td>{preview.up_to_date}</td>
                </tr>
                <tr>
                  <th scope="row">No package for their version</th>
                  <td>{preview.no_package}</td>
                </tr>
                {preview.waves.map((w) => (
                  <tr key={w.name}>
                    <th scope="row">Wave {w.name}</th>
                    <td>{w.devices} devices</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
        <ErrorAlert error={act.error} />
        <button type="submit" aria-busy={act.busy} disabled={act.busy || !spec}>
          Create rollout
        </button>
        <Status text="" />
      </form>
      <p>
        <a href={href('rollouts')}>Back to rollouts</a> · <a href={href('packages')}>Packages of {enc(chosen) || 'the product'}</a>
      </p>
    </Page>
  );
}
