// Fleet overview: devices online, versions in the field, open rollouts; live from the server.
import { api, type Overview, type Task } from '../api';
import { useEvents } from '../events';
import { href } from '../router';
import { BarChart, Loading, Page, useLoad } from '../ui';
import { LiveBadge, upsertTask } from './live';

export function OverviewPage() {
  const overview = useLoad(() => api.get<Overview>('/overview'), []);
  const tasks = useLoad(() => api.get<Task[]>('/tasks'), []);
  const live = useEvents({
    overview: (o) => overview.set(o),
    task: (t) => tasks.set((list) => upsertTask(list, t)),
  });
  const o = overview.data;
  const open = (tasks.data ?? []).filter((t) => t.state !== 'finished' && t.state !== 'cancelled');
  return (
    <Page title="Fleet overview" actions={<LiveBadge state={live} />}>
      <Loading loaded={overview} />
      {o && (
        <>
          <div class="cards">
            <article>
              <header>Devices online</header>
              <p class="big" data-testid="devices-online">
                {o.devices.online} <small>of {o.devices.total}</small>
              </p>
            </article>
            <article>
              <header>Products</header>
              <p class="big" data-testid="products-count">{o.products}</p>
            </article>
            <article>
              <header>Packages</header>
              <p class="big" data-testid="packages-count">{o.packages}</p>
            </article>
            <article>
              <header>Open rollouts</header>
              <p class="big" data-testid="open-rollouts">{o.tasks.open}</p>
            </article>
          </div>
          <h2>Versions in the field</h2>
          <BarChart
            label="Devices per firmware version"
            rows={o.versions.map((v) => ({ name: v.version, value: v.devices }))}
          />
        </>
      )}
      <h2>Open rollouts</h2>
      <Loading loaded={tasks} />
      {tasks.data && open.length === 0 && <p>No open rollouts.</p>}
      {open.length > 0 && (
        <table>
          <thead>
            <tr>
              <th scope="col">Rollout</th>
              <th scope="col">Product</th>
              <th scope="col">Target</th>
              <th scope="col">State</th>
              <th scope="col">Devices</th>
            </tr>
          </thead>
          <tbody>
            {open.map((t) => (
              <tr key={t.task_id}>
                <td>
                  <a href={href('rollouts', t.task_id)}>{t.name || `Task ${t.task_id}`}</a>
                </td>
                <td>{t.product_id}</td>
                <td>{t.target_version}</td>
                <td>{t.state}</td>
                <td>{Object.values(t.counts).reduce((a, b) => a + b, 0)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Page>
  );
}
