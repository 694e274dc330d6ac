// Users (admin): the list, a new user (its password shown once), role, disable, delete.
import { useState } from 'preact/hooks';
import { api, enc, type Role, type User } from '../api';
import { isAdmin, useSession } from '../session';
import { ErrorAlert, Loading, Page, Status, time, useAction, useLoad } from '../ui';

const ROLES: Role[] = ['viewer', 'operator', 'admin'];

export function UsersPage() {
  const session = useSession();
  const users = useLoad(() => api.get<User[]>('/users'), []);
  const [run, act] = useAction();
  const [done, setDone] = useState('');
  if (!isAdmin(session.role)) {
    return (
      <Page title="Users">
        <p role="alert">Only an admin manages users.</p>
      </Page>
    );
  }
  const change = (u: User, body: Partial<Pick<User, 'role' | 'disabled'>>, what: string) =>
    void run(async () => {
      await api.patch(`/users/${enc(u.username)}`, body);
      setDone(`${u.username}: ${what}.`);
      users.reload();
    });
  const remove = (u: User) =>
    void run(async () => {
      if (!window.confirm(`Delete user ${u.username}?`)) return;
      await api.del(`/users/${enc(u.username)}`);
      setDone(`${u.username} deleted.`);
      users.reload();
    });
  return (
    <Page title="Users">
      <Loading loaded={users} />
      <ErrorAlert error={act.error} />
      <Status text={done} />
      {users.data && (
        <table data-testid="users-table">
          <thead>
            <tr>
              <th scope="col">User</th>
              <th scope="col">Role</th>
              <th scope="col">State</th>
              <th scope="col">Created</th>
              <th scope="col">Last sign-in</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {users.data.map((u) => (
              <tr key={u.username}>
                <td>{u.username}</td>
                <td>
                  <select
                    aria-label={`Role of ${u.username}`}
                    value={u.role}
                    disabled={u.username === session.username}
                    onChange={(e) => change(u, { role: e.currentTarget.value as Role }, `role ${e.currentTarget.value}`)}
                  >
                    {ROLES.map((r) => (
                      <option key={r} value={r}>
                        {r}
                      </option>
                    ))}
                  </select>
                </td>
                <td>{u.disabled ? 'disabled' : 'active'}</td>
                <td>{time(u.created_at)}</td>
                <td>{time(u.last_login_at)}</td>
                <td class="row-actions">
                  <button
                    type="button"
                    class="secondary"
                    disabled={u.username === session.username}
                    onClick={() => change(u, { disabled: !u.disabled }, u.disabled ? 'enabled' : 'disabled')}
                  >
                    {u.disabled ? `Enable ${u.username}` : `Disable ${u.username}`}
                  </button>
                  <button type="button" class="secondary" disabled={u.username === session.username} onClick={() => remove(u)}>
                    Delete {u.username}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <NewUser onCreated={users.reload} />
    </Page>
  );
}

function NewUser({ onCreated }: { onCreated: () => void }) {
  const [username, setUsername] = useState('');
  const [role, setRole] = useState<Role>('viewer');
  const [password, setPassword] = useState('');
  const [created, setCreated] = useState<{ username: string; password: string } | null>(null);
  const [run, act] = useAction();
  const submit = (e: Event) => {
    e.preventDefault();
    setCreated(null);
    void run(async () => {
      const u = await api.post<{ username: string; role: Role; password: string }>('/users', {
        username,
        role,
        password: password || undefined,
      });
      setCreated({ username: u.username, password: u.password });
      setUsername('');
      setPassword('');
      onCreated();
    });
  };
  return (
    <form onSubmit={submit} class="narrow" aria-labelledby="new-user-title">
      <h2 id="new-user-title">New user</h2>
      <ErrorAlert error={act.error} />
      <div class="grid">
        <label>
          New user name
          <input required autocomplete="off" value={username} onInput={(e) => setUsername(e.currentTarget.value)} />
        </label>
        <label>
          New user role
          <select value={role} onChange={(e) => setRole(e.currentTarget.value as Role)}>
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </label>
      </div>
      <label>
        Initial password (empty: generated)
        <input type="password" autocomplete="new-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
      </label>
      <button type="submit" disabled={act.busy}>
        Create user
      </button>
      {created && (
        <article role="status" data-testid="new-user-password">
          User <strong>{created.username}</strong> created. Password (shown once): <code>{created.password}</code>
        </article>
      )}
    </form>
  );
}
