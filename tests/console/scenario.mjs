// The console's end-to-end test (issue 14's acceptance test): a real Mosquitto with the
// platform's plugin, `ota-server serve` with MQTT, a small `ota-fleet` (the real loader and
// agent per board) and Debian's Chromium driven by playwright-core. Through the pages only, as
// people would: sign in, upload both packages (file picker, drag and drop), create a staged
// rollout after checking its preview against the API, pause and resume it, watch it finish
// live (no reload, no polling), check the fleet agrees, check the audit log, then a viewer who
// can change nothing, not even with the page's own fetch and CSRF token. Screenshots at each
// milestone; the first load of the page is measured.
// Usage: node scenario.mjs --server ota-server --fleet ota-fleet --plugin ota_auth_plugin.so
//                          --screenshots DIR [--boards 16]
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Checks,
  apiCall,
  args,
  assert,
  createUser,
  launchBrowser,
  openPage,
  screenshot,
  serverCli,
  startBroker,
  startProcess,
  startServer,
  stopAll,
  waitFor,
} from './harness.mjs';

const a = args();
if (!a.server || !a.fleet || !a.plugin || !a.screenshots) {
  console.error('usage: node scenario.mjs --server ota-server --fleet ota-fleet --plugin ota_auth_plugin.so --screenshots DIR');
  process.exit(2);
}
const BOARDS = Number(a.boards ?? 16);
const PRODUCT = 'fleet';
const CANARY = 4; // boards in group `canary`: the rollout's first wave
const shots = a.screenshots;
mkdirSync(shots, { recursive: true });
for (const f of readdirSync(shots)) if (f.startsWith('scenario-')) rmSync(join(shots, f));

const checks = new Checks();
const work = mkdtempSync(join(tmpdir(), 'ota-console-scenario-'));
const data = join(work, 'data');
let shotCount = 0;
let page;
let server;
let browser;

// A milestone's screenshot: scenario-NN-NAME.png.
async function shot(name) {
  shotCount += 1;
  const path = await screenshot(page, shots, `scenario-${String(shotCount).padStart(2, '0')}-${name}`);
  console.log(`# screenshot ${path}`);
}

// A counted check; a failure saves a screenshot and ends the scenario (later steps depend on it).
async function step(name, fn) {
  if (await checks.check(name, fn)) return;
  if (page) await shot('failed').catch(() => {});
  throw new Error(`the check "${name}" failed`);
}

const sha256 = (file) => createHash('sha256').update(readFileSync(file)).digest('hex');
const bytes = (n) => (n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1048576).toFixed(1)} MB`);
const text = (testId) => page.getByTestId(testId).innerText();

async function call(method, path, body, expect) {
  const r = await apiCall(server, method, path, body);
  assert(r.status === expect, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r;
}

// The page is no wider than the 1366 px laptop window it is made for.
async function fitsTheWindow() {
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert(width <= 1366, `the page is ${width} px wide`);
}

async function signIn(user) {
  await page.getByLabel('User name').fill(user.name);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('whoami').getByText(`${user.name} (${user.role})`).waitFor();
}

async function signOut() {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
}

// In-app navigation: the hash changes, the page stays (as a click on a link does).
async function visit(hash) {
  await page.evaluate((h) => {
    window.location.hash = h;
  }, hash);
  await page.getByRole('heading', { level: 1 }).first().waitFor();
}

// The names of the buttons (and links styled as buttons) on the page, and its file inputs.
async function controls() {
  return page.evaluate(() => ({
    buttons: [...document.querySelectorAll('button, [role=button], input[type=submit]')].map(
      (b) => b.getAttribute('aria-label') || b.textContent.trim(),
    ),
    files: document.querySelectorAll('input[type=file]').length,
    forms: [...document.querySelectorAll('form')].filter((f) => f.getAttribute('role') !== 'search').length,
  }));
}

let code = 1;
let fleet;
try {
  // ---- the platform, its broker, users, the fleet ----
  let users;
  let fleetToken;
  let broker;
  await step('a Mosquitto with the plugin and ota-server serve with MQTT start on free ports', async () => {
    broker = await startBroker(a.server, a.plugin, data);
    server = await startServer(a.server, { data, mqttPort: broker.port });
    users = {
      admin: createUser(a.server, data, 'admin', 'admin'),
      operator: createUser(a.server, data, 'operator', 'operator'),
      viewer: createUser(a.server, data, 'viewer', 'viewer'),
    };
    const out = serverCli(a.server, data, 'token', 'ota-fleet').trim().split('\n');
    fleetToken = join(work, 'fleet.token');
    writeFileSync(fleetToken, out[out.length - 1] + '\n');
  });
  const common = [
    '--api', server.url, '--token-file', fleetToken, '--ca', join(data, 'tls', 'ca.pem'),
    '--mqtt-host', 'localhost', '--mqtt-port', String(broker.port), '--boards', String(BOARDS), '--product', PRODUCT, '--key-file', join(work, 'fleet.pem'),
    '--start-mix', 'FOTAV1=75,FOTAV0=25'];
  const pkgs = join(work, 'packages');
  const fullFile = join(pkgs, 'fleet-fotav2-full.bin');
  const diffFile = join(pkgs, 'fleet-fotav1-fotav2.bin');
  await step(`ota-fleet --setup-only makes product ${PRODUCT}, its key, ${BOARDS} devices and writes the signed packages`, async () => {
    mkdirSync(pkgs);
    const setup = startProcess('ota-fleet setup', a.fleet, [...common, '--setup-only', '--packages-out', pkgs,
      '--canary-group', 'canary', '--canary', String(CANARY)]);
    const exit = await setup.exit(60000);
    assert(exit.code === 0, `ota-fleet --setup-only: ${JSON.stringify(exit)}\n${setup.log()}`);
    assert(existsSync(fullFile) && existsSync(diffFile), `no packages in ${pkgs}`);
  });
  const ready = join(work, 'ready');
  await step(`${BOARDS} boards connect, report their versions and follow the next task`, async () => {
    fleet = startProcess('ota-fleet', a.fleet, [...common, '--skip-setup', '--no-task', '--follow-task', '--ready-file', ready,
      '--ramp-seconds', '1', '--timeout', '150', '--quiet', '--summary', join(work, 'summary.json')]);
    await waitFor(() => fleet.exited !== null || existsSync(ready), 'the fleet ready file', 60000);
    assert(!fleet.exited, `ota-fleet exited: ${JSON.stringify(fleet.exited)}\n${fleet.log()}`);
    // Every board's version report reached the platform.
    await waitFor(async () => {
      const r = await apiCall(server, 'GET', `/devices?product_id=${PRODUCT}&online=true`);
      return r.status === 200 && r.body.length === BOARDS && r.body.every((d) => d.fw_version);
    }, 'every board online with its version', 30000);
  });
  const devices = (await call('GET', `/devices?product_id=${PRODUCT}`, undefined, 200)).body;
  const onV1 = devices.filter((d) => d.fw_version === 'FOTAV1').length;
  const onV0 = devices.filter((d) => d.fw_version === 'FOTAV0').length;
  console.log(`# fleet: ${BOARDS} boards, FOTAV1=${onV1} FOTAV0=${onV0}`);

  // ---- the browser ----
  browser = await launchBrowser();
  const opened = await openPage(browser);
  page = opened.page;
  page.setDefaultTimeout(15000);
  // When the sign-in form first appears, on the page's own clock.
  await opened.context.addInitScript(() => {
    window.__formAt = null;
    new MutationObserver((_, obs) => {
      if (document.querySelector('input[name=username]')) {
        window.__formAt = performance.now();
        obs.disconnect();
      }
    }).observe(document, { childList: true, subtree: true });
  });
  const requests = [];
  page.on('request', (r) => requests.push(r));
  let firstLoad;
  await step('first load of / shows the sign-in form', async () => {
    await page.goto(server.url + '/', { waitUntil: 'load' });
    await page.getByLabel('User name').waitFor({ state: 'visible' });
    await page.getByLabel('Password').waitFor({ state: 'visible' });
    await waitFor(() => page.evaluate(() => window.__formAt !== null), 'the form time');
    firstLoad = await page.evaluate(() => {
      const n = performance.getEntriesByType('navigation')[0];
      return { form: window.__formAt, response: n.responseEnd, dom: n.domContentLoadedEventEnd, load: n.loadEventEnd };
    });
    await shot('sign-in');
  });
  console.log(
    `console: first-load ms=${Math.round(firstLoad.form)} (dom=${Math.round(firstLoad.dom)} load=${Math.round(firstLoad.load)})` +
      ` response=${Math.round(firstLoad.response)}`,
  );

  await step('sign in as admin through the form; the overview shows the fleet online and the versions chart', async () => {
    await signIn(users.admin);
    await page.getByRole('heading', { level: 1, name: 'Fleet overview', exact: true }).waitFor();
    await page.getByTestId('live-state').getByText('Live').waitFor();
    await page.getByTestId('devices-online').getByText(`${BOARDS} of ${BOARDS}`).waitFor();
    // Each bar of the SVG chart: its label and its number.
    const bars = await page
      .getByTestId('versions-chart')
      .locator('g')
      .evaluateAll((gs) => gs.map((g) => [...g.querySelectorAll('text')].map((t) => t.textContent).join('=')));
    assert(bars.join(' ') === `FOTAV1=${onV1} FOTAV0=${onV0}`, `versions chart: ${bars.join(' ')}`);
    await fitsTheWindow();
    await shot('overview');
  });

  // ---- packages ----
  const upload = page.getByRole('form', { name: 'Upload a package' });
  await step('upload the full package with the file picker: signature, full, FOTAV2 shown', async () => {
    await page.getByRole('link', { name: 'Packages' }).click();
    await page.getByRole('heading', { level: 1, name: 'Packages', exact: true }).waitFor();
    await upload.getByLabel('Product').selectOption(PRODUCT);
    await upload.getByLabel('Package file').setInputFiles(fullFile);
    await upload.getByRole('button', { name: 'Upload' }).click();
    const result = await page.getByTestId('upload-result').innerText();
    assert(/Signature verified with key/.test(result) && /full package/.test(result), result);
    assert((await text('upload-versions')) === 'FOTAV2', await text('upload-versions'));
  });
  await step('upload the diff package by dropping it (a DataTransfer with its bytes): diff, FOTAV1 → FOTAV2 shown', async () => {
    const b64 = readFileSync(diffFile).toString('base64');
    await page.getByTestId('dropzone').evaluate(
      (el, f) => {
        const raw = atob(f.b64);
        const buf = new Uint8Array(raw.length);
        for (let i = 0; i < raw.length; i += 1) buf[i] = raw.charCodeAt(i);
        const dt = new DataTransfer();
        dt.items.add(new File([buf], f.name, { type: 'application/octet-stream' }));
        for (const type of ['dragenter', 'dragover', 'drop']) {
          el.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
        }
      },
      { b64, name: 'fleet-fotav1-fotav2.bin' },
    );
    await page.getByTestId('dropzone').getByText('fleet-fotav1-fotav2.bin').waitFor();
    await upload.getByRole('button', { name: 'Upload' }).click();
    await page.getByTestId('upload-result').getByText('diff package').waitFor();
    assert((await text('upload-versions')) === 'FOTAV1 → FOTAV2', await text('upload-versions'));
    // The list reloads after each upload.
    for (const f of ['fleet-fotav2-full.bin', 'fleet-fotav1-fotav2.bin']) {
      await page.getByTestId('packages-table').getByText(f, { exact: true }).waitFor();
    }
    await fitsTheWindow();
    await shot('packages-uploaded');
  });
  await step('the stored packages are the files byte for byte (sha256)', async () => {
    const stored = (await call('GET', `/packages?product_id=${PRODUCT}`, undefined, 200)).body;
    const by = Object.fromEntries(stored.map((p) => [p.file_name, p]));
    assert(by['fleet-fotav2-full.bin']?.sha256 === sha256(fullFile), 'full package differs');
    assert(by['fleet-fotav1-fotav2.bin']?.sha256 === sha256(diffFile), 'diff package differs');
  });
  const fullSize = readFileSync(fullFile).length;
  const diffSize = readFileSync(diffFile).length;

  // ---- the rollout ----
  let taskId;
  await step('new rollout: waves (group canary, 50 %, rest), rate limit, failure threshold; the preview matches the API and the package sizes', async () => {
    await page.getByRole('link', { name: 'Rollouts' }).click();
    await page.getByRole('button', { name: 'New rollout' }).click();
    await page.getByRole('heading', { level: 1, name: 'New rollout', exact: true }).waitFor();
    await page.getByLabel(/^Product/).selectOption(PRODUCT);
    await page.getByLabel(/^Target version/).selectOption('FOTAV2');
    await page.getByLabel('Name (optional)').fill('FOTAV2 to the fleet');
    await page.getByRole('button', { name: 'Add wave' }).click();
    await page.getByLabel('Wave 1 name').fill('canary');
    await page.getByLabel('Wave 1 by').selectOption('group');
    await page.getByLabel('Wave 1 group').fill('canary');
    await page.getByRole('button', { name: 'Add wave' }).click();
    await page.getByLabel('Wave 2 name').fill('half');
    await page.getByLabel('Wave 2 percent').fill('50');
    await page.getByLabel('Rate limit (devices a minute, empty: none)').fill('60');
    await page.getByLabel('Failure threshold (% that pauses the rollout)').fill('25');
    const want = { diff: `${onV1} devices, ${bytes(onV1 * diffSize)}`, full: `${onV0} devices, ${bytes(onV0 * fullSize)}` };
    await waitFor(
      async () =>
        (await text('preview-devices').catch(() => '')) === String(BOARDS) &&
        (await text('preview-diff').catch(() => '')) === want.diff &&
        (await text('preview-full').catch(() => '')) === want.full &&
        (await text('preview').catch(() => '')).includes('Wave half'),
      `the preview to show ${JSON.stringify(want)}`,
      10000,
    );
    // The page's last preview request, asked again with the admin token: the same answer.
    const last = requests.filter((r) => new URL(r.url()).pathname === '/api/v1/tasks/preview').pop();
    const spec = JSON.parse(last.postData());
    const shown = await (await last.response()).json();
    const own = (await call('POST', '/tasks/preview', spec, 200)).body;
    assert(JSON.stringify(shown) === JSON.stringify(own), `page ${JSON.stringify(shown)} API ${JSON.stringify(own)}`);
    assert(own.diff.devices === onV1 && own.diff.bytes === onV1 * diffSize, `diff ${JSON.stringify(own.diff)}`);
    assert(own.full.devices === onV0 && own.full.bytes === onV0 * fullSize, `full ${JSON.stringify(own.full)}`);
    const waves = own.waves.map((w) => `${w.name}=${w.devices}`).join(' ');
    assert(waves === `canary=${CANARY} half=${BOARDS / 2} rest=${BOARDS - CANARY - BOARDS / 2}`, waves);
    assert(spec.rollout.failure_threshold_percent === 25 && spec.rollout.rate_per_minute === 60, JSON.stringify(spec));
    await fitsTheWindow();
    await shot('rollout-preview');
  });
  let navigations = 0;
  await step('create it: the rollout page opens', async () => {
    await page.getByRole('button', { name: 'Create rollout' }).click();
    await page.waitForURL(/#\/rollouts\/\d+$/);
    taskId = Number(/#\/rollouts\/(\d+)$/.exec(page.url())[1]);
    await page.getByTestId('task-state').waitFor();
    await page.getByTestId('live-state').getByText('Live').waitFor();
    // From here the page must stay the same document: a marker in window, navigations counted.
    await page.evaluate(() => {
      window.__scenarioMarker = 'the same page';
      window.__successSeen = [];
      const el = document.querySelector('[data-testid=state-count-Success] strong');
      new MutationObserver(() => window.__successSeen.push(el.textContent)).observe(el, {
        childList: true,
        characterData: true,
        subtree: true,
      });
    });
    page.on('framenavigated', (f) => {
      if (f === page.mainFrame()) navigations += 1;
    });
  });
  const count = async (state) => Number(await page.getByTestId(`state-count-${state}`).locator('strong').innerText());
  await step('pause it while it runs (the canary wave under way): page and server say paused; no device is commanded', async () => {
    await waitFor(async () => (await count('Success')) >= 2, 'two canary boards upgraded', 60000);
    await page.getByRole('button', { name: 'Pause' }).click();
    await page.getByRole('button', { name: 'Resume' }).waitFor();
    const shown = await text('task-state');
    assert(/^paused/.test(shown), shown);
    const t = (await call('GET', `/tasks/${taskId}?devices=false`, undefined, 200)).body;
    assert(t.state === 'paused', `server: ${t.state}`);
    assert((t.counts.Waiting ?? 0) > 0, `nothing left to pause (${JSON.stringify(t.counts)})`);
    // Paused: the boards still waiting stay waiting (no command, no query) for 3 s.
    await new Promise((r) => setTimeout(r, 3000));
    const later = (await call('GET', `/tasks/${taskId}?devices=false`, undefined, 200)).body;
    assert(later.state === 'paused' && later.counts.Waiting === t.counts.Waiting, `moved while paused: ${JSON.stringify(t.counts)} -> ${JSON.stringify(later.counts)}`);
    assert((await count('Waiting')) === t.counts.Waiting, 'the page and the server differ');
    await shot('rollout-paused');
  });
  let tasksRequests = 0;
  await step('resume it: running again', async () => {
    await page.getByRole('button', { name: 'Resume' }).click();
    await page.getByRole('button', { name: 'Pause' }).waitFor();
    const shown = await text('task-state');
    assert(/^running/.test(shown), shown);
    const t = (await call('GET', `/tasks/${taskId}?devices=false`, undefined, 200)).body;
    assert(t.state === 'running', `server: ${t.state}`);
    page.on('request', (r) => {
      if (new URL(r.url()).pathname.startsWith('/api/v1/tasks')) tasksRequests += 1;
    });
  });
  await step(`it finishes live: Success reaches ${BOARDS} with no reload and no request to /api/v1/tasks`, async () => {
    await page
      .getByTestId('state-count-Success')
      .getByText(String(BOARDS), { exact: true })
      .waitFor({ timeout: 120000 });
    await waitFor(async () => /^finished/.test(await text('task-state')), 'the task state finished', 10000);
    const live = await page.evaluate(() => ({ marker: window.__scenarioMarker, seen: window.__successSeen }));
    assert(live.marker === 'the same page', 'the page was reloaded');
    assert(navigations === 0, `${navigations} navigations`);
    assert(tasksRequests === 0, `${tasksRequests} requests to /api/v1/tasks while waiting: polling`);
    const seen = [...new Set(live.seen)];
    console.log(`# Success count as the page showed it: ${seen.join(' ')}`);
    assert(seen.length >= 2, `one update only: ${seen.join(' ')}`);
    for (const s of ['Fail', 'Stopped', 'Waiting', 'Processing', 'FailWaitRetry']) {
      assert((await page.getByTestId(`state-count-${s}`).locator('strong').innerText()) === '0', `${s} not 0`);
    }
    // Every device's row, updated by device events only, says what the server's row says:
    // state, progress, attempts, the package (the diff for FOTAV1 boards, else the full one).
    const shownRows = await page.evaluate(() =>
      Object.fromEntries(
        [...document.querySelectorAll('tr[data-testid^=device-row-]')].map((tr) => [
          tr.dataset.testid.slice('device-row-'.length),
          [...tr.cells].map((c) => c.textContent.trim()),
        ]),
      ),
    );
    const serverRows = (await call('GET', `/tasks/${taskId}`, undefined, 200)).body.devices;
    const stored = (await call('GET', `/packages?product_id=${PRODUCT}`, undefined, 200)).body;
    const pkgOf = (file) => stored.find((p) => p.file_name === file).package_id;
    assert(Object.keys(shownRows).length === BOARDS, `${Object.keys(shownRows).length} device rows`);
    for (const r of serverRows) {
      const cells = shownRows[r.device_id];
      const from = devices.find((d) => d.device_id === r.device_id).fw_version;
      const want = [
        r.device_id,
        cells?.[1],
        'Success',
        `${r.progress}%`,
        String(r.attempts),
        String(pkgOf(from === 'FOTAV1' ? 'fleet-fotav1-fotav2.bin' : 'fleet-fotav2-full.bin')),
        `${r.result_code ?? ''} ${r.description}`.trim(),
      ];
      assert(r.package_id === Number(want[5]), `${r.device_id} got package ${r.package_id}, not ${want[5]}`);
      assert(JSON.stringify(cells) === JSON.stringify(want), `${r.device_id}: page ${JSON.stringify(cells)} server ${JSON.stringify(want)}`);
    }
    const waveStates = await page.getByTestId('wave-state').allInnerTexts();
    assert(waveStates.join(',') === 'done,done,done', `waves: ${waveStates.join(',')}`);
    const es = requests.filter((r) => new URL(r.url()).pathname === '/api/v1/events');
    assert(es.length >= 1, 'no EventSource request');
    await fitsTheWindow();
    await shot('rollout-finished');
  });
  await step("ota-fleet exits 0 and its summary line agrees with the page", async () => {
    const exit = await fleet.exit(60000, 'ota-fleet to finish');
    const line = /fleet: boards=(\d+) success=(\d+) failed=(\d+) stuck=(\d+) lost=(\d+)[^\n]*/.exec(fleet.log());
    assert(line, `no summary line:\n${fleet.log()}`);
    console.log(`# ${line[0]}`);
    assert(exit.code === 0, `ota-fleet exit ${JSON.stringify(exit)}`);
    const shown = await page.getByTestId('state-count-Success').locator('strong').innerText();
    assert(line[1] === String(BOARDS) && line[2] === shown && line[3] === '0' && line[4] === '0' && line[5] === '0', line[0]);
  });

  // ---- the other pages, as admin ----
  await step('products, a product with its key, devices, a device on FOTAV2, users, account', async () => {
    await visit('#/products');
    await page.getByRole('link', { name: PRODUCT, exact: true }).waitFor();
    await shot('products');
    await visit(`#/products/${PRODUCT}`);
    await page.getByText('Signing keys').waitFor();
    await fitsTheWindow();
    await shot('product');
    await visit('#/devices');
    await page.getByTestId('pager-range').getByText(`of ${BOARDS}`).waitFor();
    await fitsTheWindow();
    await shot('devices');
    await visit(`#/devices/${PRODUCT}_n00000`);
    await page.getByTestId('fw-version').getByText('FOTAV2').waitFor();
    await page.getByTestId('device-history').getByText('FOTAV2 to the fleet').waitFor();
    await fitsTheWindow();
    await shot('device');
    await visit('#/users');
    await page.getByTestId('users-table').waitFor();
    const names = await page.getByTestId('users-table').locator('tbody tr td:first-child').allInnerTexts();
    assert(names.sort().join(',') === 'admin,operator,viewer', `users: ${names.join(',')}`);
    await shot('users');
    await visit('#/account');
    await page.getByText('Signed in as').waitFor();
  });
  await step('the audit log shows the uploads, the rollout, pause and resume by user:admin', async () => {
    await visit('#/audit');
    await page.getByLabel('Actor').fill('user:admin');
    await page.getByLabel('Actor').press('Enter');
    await page.getByLabel('Actor').blur();
    const table = page.getByTestId('audit-table');
    // The filter applies when the field changes (Enter, or leaving it): the table reloads.
    let rows = [];
    await waitFor(async () => {
      rows = await table.locator('tbody tr').allInnerTexts();
      return rows.length > 0 && rows.every((r) => r.includes('\tuser:admin\t'));
    }, 'the audit log filtered by actor user:admin');
    // What was typed stays while the list reloads.
    assert((await page.getByLabel('Actor').inputValue()) === 'user:admin', 'the Actor field lost its text');
    // The action (the route's template) and the objects it changed.
    const want = [
      ['POST /api/v1/products/{product_id}/packages', 'package_id=1'],
      ['POST /api/v1/products/{product_id}/packages', 'package_id=2'],
      ['POST /api/v1/tasks\t', `task_id=${taskId}`],
      ['POST /api/v1/tasks/{task_id}/pause', `task_id=${taskId}`],
      ['POST /api/v1/tasks/{task_id}/resume', `task_id=${taskId}`],
    ];
    for (const [action, object] of want) {
      const flat = rows.map((r) => r.replace(/\s*\n\s*/g, ' '));
      assert(
        rows.some((r) => r.includes(action) && r.includes(object)),
        `no audit row for ${action.trim()} ${object}:\n${flat.join('\n')}`,
      );
    }
    await fitsTheWindow();
    await shot('audit');
  });
  await step('sign out: back to the sign-in form, the session is gone', async () => {
    await signOut();
    const status = await page.evaluate(async () => (await fetch('/api/v1/session')).status);
    assert(status === 401, `GET /session after sign-out: ${status}`);
  });
  await step('an operator gets the change controls but not the users page; a link followed as the page first renders is not lost', async () => {
    // The hash changes the moment the signed-in shell is in the DOM, before its effects ran
    // (the router once missed such a change and stayed on the page before).
    await page.evaluate(() => {
      new MutationObserver((_, obs) => {
        if (document.querySelector('[data-testid=whoami]')) {
          obs.disconnect();
          window.location.hash = '#/rollouts';
        }
      }).observe(document.body, { childList: true, subtree: true });
    });
    await signIn(users.operator);
    await page.getByRole('heading', { level: 1, name: 'Rollouts', exact: true }).waitFor();
    await page.getByRole('button', { name: 'New rollout' }).waitFor();
    assert((await page.getByRole('link', { name: 'Users' }).count()) === 0, 'Users shown to an operator');
    await visit('#/packages');
    await page.getByRole('button', { name: 'Upload' }).waitFor();
    await signOut();
  });

  // ---- a viewer ----
  await step('a viewer signs in and sees no change control on packages, rollouts, devices, products', async () => {
    await signIn(users.viewer);
    const allowed = new Set(['Sign out', 'Previous', 'Next']);
    const pages = [
      ['#/packages', () => page.getByTestId('packages-table').waitFor(), 'viewer-packages'],
      ['#/rollouts', () => page.getByTestId('rollouts-table').waitFor()],
      [`#/rollouts/${taskId}`, () => page.getByTestId('state-count-Success').getByText(String(BOARDS)).waitFor(), 'viewer-rollout'],
      ['#/devices', () => page.getByTestId('devices-table').waitFor()],
      [`#/devices/${PRODUCT}_n00001`, () => page.getByTestId('device-props').waitFor(), 'viewer-device'],
      ['#/products', () => page.getByRole('link', { name: PRODUCT, exact: true }).waitFor()],
      [`#/products/${PRODUCT}`, () => page.getByText('Signing keys').waitFor()],
    ];
    for (const [hash, ready, name] of pages) {
      await visit(hash);
      await ready();
      await page.waitForLoadState('networkidle');
      const c = await controls();
      const extra = c.buttons.filter((b) => !allowed.has(b) && !/^Show \d+ more/.test(b));
      assert(extra.length === 0 && c.files === 0 && c.forms === 0, `${hash}: ${JSON.stringify({ ...c, extra })}`);
      if (name) await shot(name);
    }
    assert((await page.getByRole('button', { name: 'New rollout' }).count()) === 0, 'New rollout shown');
    assert((await page.getByRole('link', { name: 'Users' }).count()) === 0, 'Users shown to a viewer');
  });
  await step("the server refuses a viewer's change made with the page's own fetch and CSRF token (403)", async () => {
    const tries = await page.evaluate(
      async ({ product, task }) => {
        const s = await (await fetch('/api/v1/session')).json();
        const send = async (method, path, body) => {
          const r = await fetch('/api/v1' + path, {
            method,
            headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': s.csrf_token },
            body: body === undefined ? undefined : JSON.stringify(body),
          });
          return { path, status: r.status, error: (await r.json()).error };
        };
        return [
          await send('POST', '/products', { product_id: 'viewer-made', name: 'no' }),
          await send('POST', '/tasks', { product_id: product, target_version: 'FOTAV2', whole_product: true }),
          await send('DELETE', '/packages/1'),
          await send('PATCH', `/devices/${product}_n00001`, { enabled: false }),
          await send('POST', `/tasks/${task}/cancel`, {}),
        ];
      },
      { product: PRODUCT, task: taskId },
    );
    for (const t of tries) {
      assert(t.status === 403 && /scope is read; this needs write/.test(t.error), JSON.stringify(t));
    }
    await call('GET', '/products/viewer-made', undefined, 404);
    await call('GET', '/packages/1', undefined, 200);
    const d = (await call('GET', `/devices/${PRODUCT}_n00001`, undefined, 200)).body;
    assert(d.enabled === true, 'the device was disabled');
  });
  await step('no CSP violation on any page', async () => {
    const v = await opened.cspViolations();
    assert(v.length === 0, v.join('\n'));
  });
  // The viewer's refused changes are logged by Chromium as failed loads: expected.
  const allowedErrors = [/status of (401|403)\b/];
  await step('no unexpected console error', async () => {
    const e = opened.unexpectedErrors(allowedErrors);
    assert(e.length === 0, JSON.stringify(e, null, 1));
  });
  code = checks.summary(browser.version());
  const saved = readdirSync(shots).filter((f) => f.startsWith('scenario-')).sort();
  console.log(`console: screenshots=${saved.length} ${shots}`);
  for (const f of saved) console.log(`#   ${f}`);
} catch (e) {
  console.log(`not ok - the scenario stopped: ${e && e.stack ? e.stack : e}`);
  if (checks.failed === 0) checks.failed = 1;
  checks.summary(browser ? browser.version() : 'none');
  if (server) console.log(server.log().split('\n').slice(-40).join('\n').replace(/^/gm, '# server: '));
  if (fleet) console.log(fleet.log().split('\n').slice(-20).join('\n').replace(/^/gm, '# fleet: '));
  code = 1;
} finally {
  if (browser) await browser.close();
  await stopAll();
  rmSync(work, { recursive: true, force: true });
}
process.exit(code);
