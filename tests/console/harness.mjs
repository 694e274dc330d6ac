// A reusable harness for browser tests of the web console: starts `ota-server serve` on free
// loopback ports with a fresh data directory, launches Debian's Chromium through playwright-core
// (never a downloaded browser), collects console errors and CSP violations, counts checks, and
// saves screenshots. Used by smoke.mjs; a scenario test adds its own steps the same way.
import { spawn } from 'node:child_process';
import { request } from 'node:https';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// playwright-core is a devDependency of the console, pinned by its package-lock.json.
const require = createRequire(resolve(here, '../../server/console/package.json'));
const { chromium } = require('playwright-core');

export const CHROMIUM = process.env.OTA_CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

// --name value pairs from the command line.
export function args(argv = process.argv.slice(2)) {
  const out = {};
  for (let i = 0; i < argv.length; i += 1) {
    if (argv[i].startsWith('--')) out[argv[i].slice(2)] = argv[i + 1];
  }
  return out;
}

export function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

// Waits for `cond()` to be true, up to `ms`; throws `what` then.
export async function waitFor(cond, what, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// Starts `ota-server serve` (no MQTT) on free ports; resolves once it printed its line.
// Returns {url, api(path, init), token, data, log(), stop()}.
export async function startServer(serverBin, { extraArgs = [] } = {}) {
  const data = mkdtempSync(join(tmpdir(), 'ota-console-'));
  const http = await freePort();
  const downloads = await freePort();
  const proc = spawn(
    serverBin,
    ['serve', '--data', data, '--http-port', String(http), '--download-port', String(downloads), '--no-mqtt', ...extraArgs],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  proc.stdout.on('data', (d) => (output += d));
  proc.stderr.on('data', (d) => (output += d));
  let exited = null;
  proc.on('exit', (code, signal) => (exited = { code, signal }));
  await waitFor(() => exited !== null || output.includes('ota-server: api='), 'ota-server to start', 20000);
  if (exited) throw new Error(`ota-server exited (${JSON.stringify(exited)}):\n${output}`);
  const url = `https://127.0.0.1:${http}`;
  const token = readFileSync(join(data, 'admin.token'), 'utf8').trim();
  const ca = readFileSync(join(data, 'tls', 'ca.pem'));
  return {
    url,
    data,
    token,
    ca,
    log: () => output,
    async stop() {
      if (exited === null) {
        proc.kill('SIGTERM');
        await waitFor(() => exited !== null, 'ota-server to stop', 10000).catch(() => proc.kill('SIGKILL'));
      }
      rmSync(data, { recursive: true, force: true });
    },
  };
}

// Chromium with the project's flags; each context is fresh (its own temporary profile).
export async function launchBrowser() {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  return browser;
}

// A page at the laptop size the console is made for, recording console errors, failed
// requests and CSP violations. `allowedErrors`: regexps of console errors that are expected.
export async function openPage(browser, { viewport = { width: 1366, height: 768 } } = {}) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport });
  // Runs before the page's own script; CDP's injection is not subject to the page's CSP.
  await context.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  const page = await context.newPage();
  const consoleErrors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push({ text: m.text(), url: m.location().url });
  });
  page.on('pageerror', (e) => consoleErrors.push({ text: `uncaught: ${e.message}`, url: '' }));
  const responses = [];
  page.on('response', (r) => responses.push(r));
  return {
    context,
    page,
    responses,
    consoleErrors,
    // Console errors not matched by `allowed` (regexps over "text url").
    unexpectedErrors(allowed = []) {
      return consoleErrors.filter((e) => !allowed.some((re) => re.test(`${e.text} ${e.url}`)));
    },
    async cspViolations() {
      const fromPage = await page.evaluate(() => window.__cspViolations ?? []);
      const fromConsole = consoleErrors.filter((e) => /Content Security Policy/i.test(e.text)).map((e) => e.text);
      return [...fromPage, ...fromConsole];
    },
  };
}

// Counts checks; a failed check is reported and the run goes on. summary() prints the closing
// line and returns the exit code.
export class Checks {
  constructor(prefix = 'console') {
    this.prefix = prefix;
    this.total = 0;
    this.failed = 0;
  }

  async check(name, fn) {
    this.total += 1;
    try {
      const r = await fn();
      if (r === false) throw new Error('check returned false');
      console.log(`ok - ${name}`);
      return true;
    } catch (e) {
      this.failed += 1;
      console.log(`not ok - ${name}`);
      console.log(String(e && e.stack ? e.stack : e).replace(/^/gm, '#   '));
      return false;
    }
  }

  summary(browserVersion) {
    if (this.failed === 0) {
      console.log(`${this.prefix}: checks=${this.total} ok browser=${browserVersion}`);
      return 0;
    }
    console.log(`${this.prefix}: checks=${this.total} failed=${this.failed} browser=${browserVersion}`);
    return 1;
  }
}

// Saves a full-page screenshot as DIR/NAME.png; returns the path.
export async function screenshot(page, dir, name) {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

// One operator API call with the server's admin token, TLS checked against its CA (seeding
// data for a scenario). Resolves {status, headers, body} (body parsed when JSON).
export function apiCall(server, method, path, body, { token = server.token, contentType } = {}) {
  return new Promise((ok, fail) => {
    const u = new URL(server.url + '/api/v1' + path);
    const raw = body === undefined ? null : Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        method,
        ca: server.ca,
        headers: {
          Authorization: `Bearer ${token}`,
          ...(raw ? { 'Content-Type': contentType ?? (Buffer.isBuffer(body) ? 'application/octet-stream' : 'application/json') } : {}),
        },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed = text;
          try {
            parsed = text ? JSON.parse(text) : null;
          } catch {
            /* not JSON */
          }
          ok({ status: res.statusCode, headers: res.headers, body: parsed });
        });
      },
    );
    req.on('error', fail);
    if (raw) req.write(raw);
    req.end();
  });
}

export function assert(cond, message) {
  if (!cond) throw new Error(message);
}
