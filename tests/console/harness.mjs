// A reusable harness for browser tests of the web console: starts Mosquitto with the
// platform's plugin and `ota-server serve` (with or without MQTT) on free loopback ports,
// makes users with `ota-server user create`, launches Debian's Chromium through playwright-core
// (never a downloaded browser), collects console errors and CSP violations, counts checks, and
// saves screenshots. Every process it starts is stopped by stopAll(). Used by smoke.mjs and
// scenario.mjs.
import { execFileSync, spawn } from 'node:child_process';
import { request } from 'node:https';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect, createServer } from 'node:net';
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

// A child process whose output is kept; stop() ends it (SIGTERM, then SIGKILL after 10 s).
// Every process started here is stopped by stopAll(), which the tests call in `finally` and on
// SIGINT/SIGTERM, so nothing is left running after a failure.
const running = new Set();

export function startProcess(name, bin, argv, { cwd } = {}) {
  const proc = spawn(bin, argv, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const p = {
    name,
    proc,
    output: '',
    exited: null,
    log: () => p.output,
    async stop() {
      if (p.exited === null) {
        proc.kill('SIGTERM');
        await waitFor(() => p.exited !== null, `${name} to stop`, 10000).catch(() => proc.kill('SIGKILL'));
      }
      running.delete(p);
    },
    // Resolves with the exit code once the process ended by itself.
    async exit(ms, what = `${name} to exit`) {
      await waitFor(() => p.exited !== null, what, ms);
      return p.exited;
    },
  };
  proc.stdout.on('data', (d) => (p.output += d));
  proc.stderr.on('data', (d) => (p.output += d));
  proc.on('exit', (code, signal) => (p.exited = { code, signal }));
  proc.on('error', (e) => {
    p.output += `\n${name}: ${e.message}\n`;
    p.exited = { code: null, signal: null, error: e.message };
  });
  running.add(p);
  return p;
}

export async function stopAll() {
  for (const p of [...running].reverse()) await p.stop();
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    void stopAll().finally(() => process.exit(1));
  });
}

// Mosquitto with the platform's plugin, configured by `ota-server broker-config` on DATA
// (docs/server.md), MQTTS only, on a free port. Returns the process with `port`.
export async function startBroker(serverBin, plugin, data, mosquitto = '/usr/sbin/mosquitto') {
  const port = await freePort();
  mkdirSync(data, { recursive: true });
  const conf = execFileSync(
    serverBin,
    ['broker-config', '--data', data, '--plugin', plugin, '--mqtts-port', String(port), '--mqtt-port', '0'],
    { encoding: 'utf8' },
  );
  const file = join(dirname(resolve(data)), 'mosquitto.conf');
  writeFileSync(file, `${conf}\nuser root\npersistence false\n`);
  const broker = startProcess('mosquitto', mosquitto, ['-c', file]);
  await waitFor(() => broker.exited !== null || portOpen(port), 'mosquitto to listen', 10000);
  if (broker.exited) throw new Error(`mosquitto exited (${JSON.stringify(broker.exited)}):\n${broker.log()}`);
  broker.port = port;
  return broker;
}

function portOpen(port) {
  return new Promise((ok) => {
    const s = connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      ok(true);
    });
    s.on('error', () => ok(false));
  });
}

// Starts `ota-server serve` on free ports; resolves once it printed its line. Without
// `mqttPort` it runs without MQTT (--no-mqtt) on a fresh data directory; with it, on `data`
// (made by startBroker's broker-config) and connected to that broker over MQTTS.
// Returns {url, api(path, init), token, data, log(), stop()}.
export async function startServer(serverBin, { extraArgs = [], data, mqttPort } = {}) {
  const dir = data ?? mkdtempSync(join(tmpdir(), 'ota-console-'));
  const http = await freePort();
  const downloads = await freePort();
  const mqtt = mqttPort
    ? ['--mqtt-port', String(mqttPort), '--mqtt-ca', join(dir, 'tls', 'ca.pem'), '--mqtt-host', 'localhost']
    : ['--no-mqtt'];
  const proc = startProcess('ota-server', serverBin, [
    'serve', '--data', dir, '--http-port', String(http), '--download-port', String(downloads), ...mqtt, ...extraArgs,
  ]);
  await waitFor(() => proc.exited !== null || proc.output.includes('ota-server: api='), 'ota-server to start', 20000);
  if (proc.exited) throw new Error(`ota-server exited (${JSON.stringify(proc.exited)}):\n${proc.log()}`);
  const url = `https://127.0.0.1:${http}`;
  const token = readFileSync(join(dir, 'admin.token'), 'utf8').trim();
  const ca = readFileSync(join(dir, 'tls', 'ca.pem'));
  return {
    url,
    data: dir,
    token,
    ca,
    log: () => proc.log(),
    async stop() {
      await proc.stop();
      if (!data) rmSync(dir, { recursive: true, force: true });
    },
  };
}

// `ota-server ARGS... --data DATA` on the server's machine; its standard output.
export function serverCli(serverBin, data, ...argv) {
  return execFileSync(serverBin, [...argv, '--data', data], { encoding: 'utf8' });
}

// A user made with `ota-server user create` (its password is printed once, alone on its line).
export function createUser(serverBin, data, name, role) {
  const out = serverCli(serverBin, data, 'user', 'create', name, '--role', role).trim().split('\n');
  const password = out[out.length - 1].trim();
  assert(password.length >= 12, `user create ${name}: no password in ${JSON.stringify(out)}`);
  return { name, role, password };
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
