// The operator's web console: sign-in, then the pages under a hash router.
import './app.css';
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, setCsrfToken, setUnauthorizedHandler, type Session } from './api';
import { href, useRoute } from './router';
import { SessionContext, isAdmin } from './session';
import { ErrorAlert, errorText } from './ui';
import { SignIn, Account } from './pages/auth';
import { OverviewPage } from './pages/overview';
import { ProductsPage, ProductPage } from './pages/products';
import { DevicesPage, DevicePage } from './pages/devices';
import { PackagesPage } from './pages/packages';
import { RolloutsPage, RolloutPage, NewRolloutPage } from './pages/rollouts';
import { AuditPage } from './pages/audit';
import { UsersPage } from './pages/users';

const nav: { path: string; label: string; admin?: boolean }[] = [
  { path: '', label: 'Overview' },
  { path: 'products', label: 'Products' },
  { path: 'devices', label: 'Devices' },
  { path: 'packages', label: 'Packages' },
  { path: 'rollouts', label: 'Rollouts' },
  { path: 'audit', label: 'Audit log' },
  { path: 'users', label: 'Users', admin: true },
];

function Pages({ route }: { route: string[] }) {
  const [top, id, sub] = route;
  switch (top ?? '') {
    case '':
      return <OverviewPage />;
    case 'products':
      return id ? <ProductPage id={id} /> : <ProductsPage />;
    case 'devices':
      return id ? <DevicePage id={id} /> : <DevicesPage />;
    case 'packages':
      return <PackagesPage />;
    case 'rollouts':
      if (id === 'new') return <NewRolloutPage />;
      return id ? <RolloutPage id={Number(id)} /> : <RolloutsPage />;
    case 'audit':
      return <AuditPage />;
    case 'users':
      return <UsersPage />;
    case 'account':
      return <Account />;
    default:
      return <p role="alert">No page {[top, id, sub].filter(Boolean).join('/')}.</p>;
  }
}

function Shell({ session, onSignOut }: { session: Session; onSignOut: () => void }) {
  const route = useRoute();
  const main = useRef<HTMLElement>(null);
  const [error, setError] = useState<unknown>(null);
  // A page change moves focus to the new page's heading (announced by screen readers).
  useEffect(() => {
    main.current?.querySelector<HTMLElement>('h1')?.focus();
  }, [route.join('/')]);
  const signOut = async () => {
    try {
      await api.del('/session');
      onSignOut();
    } catch (e) {
      setError(e);
    }
  };
  const top = route[0] ?? '';
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); main.current?.querySelector<HTMLElement>('h1')?.focus(); }}>
        Skip to content
      </a>
      <header class="container-fluid">
        <nav aria-label="Main">
          <ul>
            <li>
              <strong>OTA console</strong>
            </li>
          </ul>
          <ul>
            {nav
              .filter((n) => !n.admin || isAdmin(session.role))
              .map((n) => (
                <li key={n.path}>
                  <a href={href(n.path)} aria-current={top === n.path ? 'page' : undefined}>
                    {n.label}
                  </a>
                </li>
              ))}
          </ul>
          <ul>
            <li>
              <a href={href('account')} data-testid="whoami">
                {session.username} ({session.role})
              </a>
            </li>
            <li>
              <button type="button" class="secondary outline" onClick={signOut}>
                Sign out
              </button>
            </li>
          </ul>
        </nav>
      </header>
      <main id="main" class="container-fluid" ref={main}>
        <ErrorAlert error={error} />
        <Pages route={route} />
      </main>
    </>
  );
}

function App() {
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [notice, setNotice] = useState('');
  useEffect(() => {
    setUnauthorizedHandler(() => {
      setCsrfToken('');
      setSession(null);
      setNotice('Your session has ended; sign in again.');
    });
    api.session().then(
      (s) => {
        setCsrfToken(s.csrf_token);
        setSession(s);
      },
      (e: unknown) => {
        setSession(null);
        // 401: not signed in. Anything else is shown on the sign-in page.
        if (!(e instanceof Error && 'status' in e && e.status === 401)) setNotice(errorText(e));
      },
    );
  }, []);
  if (session === undefined) return <p aria-busy="true">Loading…</p>;
  if (session === null) {
    return (
      <SignIn
        notice={notice}
        onSignedIn={(s) => {
          setCsrfToken(s.csrf_token);
          setNotice('');
          setSession(s);
        }}
      />
    );
  }
  return (
    <SessionContext.Provider value={session}>
      <Shell
        session={session}
        onSignOut={() => {
          setCsrfToken('');
          setSession(null);
        }}
      />
    </SessionContext.Provider>
  );
}

const root = document.getElementById('app');
if (root) render(<App />, root);
