// The operator API client: same-origin fetch with the session cookie, the CSRF token on every
// change, JSON in and out, errors as ApiError with the server's {"error": "..."} message.

export type Role = 'admin' | 'operator' | 'viewer';

export interface Session {
  username: string;
  role: Role;
  csrf_token: string;
  expires_at: number;
}

export interface Overview {
  devices: { total: number; online: number };
  versions: { version: string; devices: number }[];
  products: number;
  packages: number;
  tasks: { open: number; by_state: Record<string, number> };
}

export interface ProductKey {
  key_id: string;
  may_downgrade: boolean;
}

export interface Product {
  product_id: string;
  name: string;
  manufacturer: string;
  protocol: string;
  model: unknown;
  keys: ProductKey[];
}

export interface Device {
  device_id: string;
  product_id: string;
  node_id: string;
  enabled: boolean;
  online: boolean;
  last_seen: number;
  fw_version: string;
  sw_version: string;
  groups: string[];
  gateway_id: string | null;
  sdk_info?: Record<string, string> | null;
}

export interface HistoryRow {
  task_id: number;
  task_name: string;
  kind: string;
  target_version: string;
  state: string;
  result_code?: number | null;
  result?: string | null;
  package_id?: number | null;
  diff?: boolean | null;
  updated_at: number;
  created_at: number;
}

export interface Package {
  package_id: number;
  product_id: string;
  sha256: string;
  size: number;
  kind: string;
  version: string;
  source_version: string | null;
  key_id: string;
  file_name: string;
  description: string;
  category: string;
}

export interface Wave {
  wave: number;
  name: string;
  failure_threshold_percent: number;
  threshold_waived: boolean;
  size: number;
  counts: Record<string, number>;
  state: 'done' | 'active' | 'pending';
}

export interface TaskDevice {
  device_id: string;
  status: string;
  attempts: number;
  progress: number;
  description: string;
  wave: number;
  package_id: number | null;
  result_code: number | null;
}

export interface Task {
  task_id: number;
  product_id: string;
  name: string;
  kind: string;
  target_version: string;
  package_id: number | null;
  start_at: number;
  deadline: number;
  rate_per_minute: number;
  status: string;
  state: 'scheduled' | 'running' | 'paused' | 'finished' | 'cancelled';
  pause_reason: string;
  waves: Wave[];
  counts: Record<string, number>;
  devices?: TaskDevice[];
}

export interface WaveSpec {
  name: string;
  group?: string;
  percent?: number;
  devices?: string[];
}

export interface TaskSpec {
  product_id: string;
  name?: string;
  kind?: string;
  target_version?: string;
  devices?: string[];
  groups?: string[];
  whole_product?: boolean;
  retry_count?: number;
  rollout?: {
    waves?: WaveSpec[];
    rate_per_minute?: number;
    failure_threshold_percent?: number;
  };
}

export interface Preview {
  devices: number;
  diff: { devices: number; bytes: number };
  full: { devices: number; bytes: number };
  up_to_date: number;
  no_package: number;
  waves: { name: string; devices: number }[];
}

export interface AuditItem {
  seq: number;
  at: number;
  actor: string;
  method: string;
  route: string;
  object_ids: Record<string, unknown> | null;
  summary: unknown;
  remote_addr: string;
  status: number;
}

export interface AuditPage {
  total: number;
  limit: number;
  offset: number;
  items: AuditItem[];
}

export interface User {
  username: string;
  role: Role;
  disabled: boolean;
  created_at: number;
  last_login_at: number | null;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

let csrfToken = '';
let onUnauthorized: () => void = () => {};

export function setCsrfToken(token: string): void {
  csrfToken = token;
}

// Called on a 401 from any call but the session probe: the page returns to sign-in.
export function setUnauthorizedHandler(fn: () => void): void {
  onUnauthorized = fn;
}

export interface Answer<T> {
  body: T;
  headers: Headers;
}

async function send<T>(method: string, path: string, body?: unknown, quiet401 = false): Promise<Answer<T>> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  let payload: BodyInit | undefined;
  if (body instanceof Blob || body instanceof ArrayBuffer) {
    headers['Content-Type'] = 'application/octet-stream';
    payload = body;
  } else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  if (method !== 'GET') headers['X-CSRF-Token'] = csrfToken;
  let res: Response;
  try {
    res = await fetch('/api/v1' + path, { method, headers, body: payload, credentials: 'same-origin' });
  } catch (e) {
    throw new ApiError(0, 'the server cannot be reached (' + String(e) + ')');
  }
  const text = await res.text();
  let json: unknown = null;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
  }
  if (!res.ok) {
    if (res.status === 401 && !quiet401) onUnauthorized();
    const message =
      json && typeof json === 'object' && 'error' in json && typeof json.error === 'string'
        ? `${json.error} (${res.status})`
        : `${method} /api/v1${path.split('?')[0]} answered ${res.status} ${res.statusText}`.trim();
    const retry = res.headers.get('Retry-After');
    throw new ApiError(res.status, retry ? `${message} (try again in ${retry} s)` : message);
  }
  return { body: json as T, headers: res.headers };
}

export const api = {
  get: async <T>(path: string) => (await send<T>('GET', path)).body,
  getWithHeaders: <T>(path: string) => send<T>('GET', path),
  post: async <T>(path: string, body?: unknown) => (await send<T>('POST', path, body ?? {})).body,
  patch: async <T>(path: string, body: unknown) => (await send<T>('PATCH', path, body)).body,
  del: async <T>(path: string) => (await send<T>('DELETE', path)).body,
  upload: async <T>(path: string, file: Blob) => (await send<T>('POST', path, file)).body,
  // The session probe at page load: a 401 means "not signed in", not an error.
  session: async () => (await send<Session>('GET', '/session', undefined, true)).body,
  signIn: async (username: string, password: string) =>
    (await send<Session>('POST', '/session', { username, password }, true)).body,
};

export function query(params: Record<string, string | number | boolean | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? '?' + s : '';
}

export const enc = encodeURIComponent;
