// Who is signed in, and what their role may change.
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { Role, Session } from './api';

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error('no session');
  return s;
}

// viewer: read only; operator: packages, devices, rollouts, products; admin: also users and keys.
export function canChange(role: Role): boolean {
  return role === 'operator' || role === 'admin';
}

export function isAdmin(role: Role): boolean {
  return role === 'admin';
}
