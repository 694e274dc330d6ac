// Sign-in and the signed-in user's own password.
import { useState } from 'preact/hooks';
import { api, type Session } from '../api';
import { useSession } from '../session';
import { ErrorAlert, Page, Status, useAction } from '../ui';

export function SignIn({ notice, onSignedIn }: { notice: string; onSignedIn: (s: Session) => void }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [tried, setTried] = useState(false);
  const [run, act] = useAction();
  const submit = (e: Event) => {
    e.preventDefault();
    setTried(true);
    void run(async () => {
      const s = await api.signIn(username, password);
      setPassword('');
      onSignedIn(s);
    });
  };
  return (
    <main class="container signin">
      <article>
        <h1>OTA console</h1>
        <form onSubmit={submit} aria-labelledby="signin-title">
          <h2 id="signin-title">Sign in</h2>
          {notice && !tried && (
            <p role="alert" class="error" data-testid="signin-notice">
              {notice}
            </p>
          )}
          <ErrorAlert error={act.error} />
          <label>
            User name
            <input
              name="username"
              autocomplete="username"
              required
              value={username}
              onInput={(e) => setUsername(e.currentTarget.value)}
            />
          </label>
          <label>
            Password
            <input
              name="password"
              type="password"
              autocomplete="current-password"
              required
              value={password}
              onInput={(e) => setPassword(e.currentTarget.value)}
            />
          </label>
          <button type="submit" aria-busy={act.busy} disabled={act.busy}>
            Sign in
          </button>
        </form>
      </article>
    </main>
  );
}

export function Account() {
  const session = useSession();
  const [oldPassword, setOld] = useState('');
  const [newPassword, setNew] = useState('');
  const [done, setDone] = useState('');
  const [run, act] = useAction();
  const submit = (e: Event) => {
    e.preventDefault();
    setDone('');
    void run(async () => {
      await api.post('/session/password', { old_password: oldPassword, new_password: newPassword });
      setOld('');
      setNew('');
      setDone('Password changed.');
    });
  };
  return (
    <Page title="Account">
      <p>
        Signed in as <strong>{session.username}</strong>, role <strong>{session.role}</strong>; the session
        ends {new Date(session.expires_at * 1000).toLocaleString()}.
      </p>
      <form onSubmit={submit} class="narrow">
        <h2>Change password</h2>
        <ErrorAlert error={act.error} />
        <label>
          Current password
          <input type="password" autocomplete="current-password" required value={oldPassword} onInput={(e) => setOld(e.currentTarget.value)} />
        </label>
        <label>
          New password
          <input type="password" autocomplete="new-password" required minLength={8} value={newPassword} onInput={(e) => setNew(e.currentTarget.value)} />
        </label>
        <button type="submit" disabled={act.busy}>
          Change password
        </button>
        <Status text={done} />
      </form>
    </Page>
  );
}
