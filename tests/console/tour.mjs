// Screenshots of every page of the console against a real ota-server with real data (seeded
// through the API with the admin token; packages made and signed by the `ota` tool). Until
// the server has sessions, the browser side stands in for them here, in the test only: GET
// /api/v1/session is answered with an admin session and every other API request gets the
// admin token added. Pages whose routes the server lacks show their error state. Every page
// must fit the width of a 1366x768 laptop screen.
// Usage: node tour.mjs --server ota-server --ota ota --screenshots DIR
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Checks, apiCall, args, assert, launchBrowser, openPage, screenshot, startServer } from './harness.mjs';

const a = args();
if (!a.server || !a.ota || !a.screenshots) {
  console.error('usage: node tour.mjs --server ota-server --ota ota --screenshots DIR');
  process.exit(2);
}

// Signed packages for product `fire`: FOTAV2 full, FOTAV1 -> FOTAV2 diff (as tests/cli does).
function makePackages(dir) {
  const run = (...x) => execFileSync(resolve(a.ota), x, { cwd: dir, stdio: 'pipe' });
  writeFileSync(join(dir, 'pw'), 'pw-for-the-key\n');
  run('keygen', '-o', 'key.pem', '--pub', 'key.pub', '--password-file', 'pw');
  execFileSync('python3', ['-c', `
import random, struct
random.seed(7)
body = bytes(random.getrandbits(8) & 0x3f for _ in range(40000))
table = struct.pack("<II", 0x20030000, 0x08020401) + bytes(0x200 - 8)
open("v1.raw", "wb").write(table + bytes(64) + body)
open("v2.raw", "wb").write(table + bytes(64) + body[:30000] + b"new code" * 100 + body[30000:])
`], { cwd: dir });
  run('stamp', 'v1.raw', '--version', 'FOTAV1', '-o', 'v1.bin');
  run('stamp', 'v2.raw', '--version', 'FOTAV2', '-o', 'v2.bin');
  run('pack', '--full', 'v2.bin', '--version', 'FOTAV2', '-o', 'fire-v2-full.bin', '--key', 'key.pem', '--password-file', 'pw');
  run('pack', '--diff', 'v1.bin', 'v2.bin', '--from-version', 'FOTAV1', '--version', 'FOTAV2', '-o', 'fire-v1-v2.bin',
    '--key', 'key.pem', '--password-file', 'pw');
}

const checks = new Checks('console-tour');
const work = mkdtempSync(join(tmpdir(), 'ota-console-tour-'));
const server = await startServer(a.server);
const browser = await launchBrowser();
let code = 1;
try {
  makePackages(work);
  const call = async (method, path, body, expect) => {
    const r = await apiCall(server, method, path, body);
    assert(r.status === expect, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  await checks.check('seed: a product with a model and a key, devices, a full package, a rollout', async () => {
    await call('POST', '/products', {
      product_id: 'fire',
      name: 'FIRE board',
      manufacturer: 'embedfire',
      model: { services: [{ service_id: 'DeviceStatus', properties: [{ name: 'radioValue', type: 'int' }] }] },
    }, 201);
    await call('POST', '/products', { product_id: 'sim', name: 'Simulated board' }, 201);
    await call('POST', '/products/fire/keys', { public_pem: readFileSync(join(work, 'key.pub'), 'utf8') }, 201);
    for (let i = 1; i <= 12; i += 1) {
      await call('POST', '/devices', { product_id: 'fire', node_id: `n${i}` }, 201);
      await call('POST', `/devices/fire_n${i}/groups`, { group: i <= 3 ? 'canary' : 'field' }, 200);
    }
    await call('POST', '/products/fire/packages?file_name=fire-v2-full.bin', readFileSync(join(work, 'fire-v2-full.bin')), 201);
    await call('POST', '/tasks', {
      product_id: 'fire',
      name: 'FOTAV2 to the field',
      target_version: 'FOTAV2',
      whole_product: true,
      rollout: { waves: [{ name: 'canary', group: 'canary' }, { name: 'rest', percent: 100 }], failure_threshold_percent: 20, rate_per_minute: 60 },
    }, 201);
  });

  const { page, unexpectedErrors, cspViolations } = await openPage(browser);
  let role = 'admin';
  await page.route('**/api/v1/**', async (route) => {
    const req = route.request();
    if (new URL(req.url()).pathname === '/api/v1/session' && req.method() === 'GET') {
      return route.fulfill({
        status: 200,
        contentType: 'application/json',
        body: JSON.stringify({ username: role, role, csrf_token: 'tour', expires_at: Math.floor(Date.now() / 1000) + 3600 }),
      });
    }
    return route.continue({ headers: { ...req.headers(), authorization: `Bearer ${server.token}` } });
  });
  const visit = async (hash, name, ready) => {
    await checks.check(`page ${hash}: ${name}`, async () => {
      await page.goto(`${server.url}/${hash}`);
      await page.getByRole('heading', { level: 1 }).first().waitFor({ state: 'visible' });
      if (ready) await ready();
      await page.waitForLoadState('networkidle');
      // Usable at 1366x768: nothing wider than the window.
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      assert(width <= 1366, `the page is ${width} px wide`);
      console.log(`# screenshot ${await screenshot(page, a.screenshots, name)}`);
    });
  };
  await visit('#/', 'overview', () => page.getByRole('link', { name: 'FOTAV2 to the field' }).waitFor());
  await visit('#/products', 'products', () => page.getByRole('link', { name: 'fire' }).waitFor());
  await visit('#/products/fire', 'product', () => page.getByText('Signing keys').waitFor());
  await visit('#/devices', 'devices', () => page.getByRole('link', { name: 'fire_n1', exact: true }).waitFor());
  await visit('#/devices/fire_n1', 'device', async () => {
    await page.getByTestId('device-props').waitFor();
    await page.getByTestId('device-history').or(page.getByRole('alert')).first().waitFor();
  });
  await visit('#/packages', 'packages', () => page.getByTestId('packages-table').waitFor());
  await checks.check('upload a diff package with the file picker: signature, kind and versions shown', async () => {
    await page.getByLabel('Package file').setInputFiles(join(work, 'fire-v1-v2.bin'));
    await page.getByRole('button', { name: 'Upload' }).click();
    const result = page.getByTestId('upload-result');
    await result.waitFor({ timeout: 10000 });
    const text = await result.innerText();
    assert(/diff package/.test(text) && /FOTAV1 → FOTAV2/.test(text), text);
    console.log(`# screenshot ${await screenshot(page, a.screenshots, 'packages-uploaded')}`);
  });
  await visit('#/rollouts', 'rollouts', () => page.getByTestId('rollouts-table').waitFor());
  await visit('#/rollouts/1', 'rollout', () => page.getByTestId('state-count-Waiting').waitFor());
  await checks.check('rollout: Pause, then Resume, change its state and the controls', async () => {
    await page.getByRole('button', { name: 'Pause' }).click();
    await page.getByRole('button', { name: 'Resume' }).waitFor();
    const paused = await page.getByTestId('task-state').innerText();
    assert(/^paused/.test(paused), paused);
    console.log(`# screenshot ${await screenshot(page, a.screenshots, 'rollout-paused')}`);
    await page.getByRole('button', { name: 'Resume' }).click();
    await page.getByRole('button', { name: 'Pause' }).waitFor();
    const running = await page.getByTestId('task-state').innerText();
    assert(/^running/.test(running), running);
    const canary = await page.getByTestId('wave-canary').getByTestId('wave-count-Waiting').innerText();
    assert(canary === '3', `canary wave Waiting: ${canary}`);
    const waiting = await page.getByTestId('state-count-Waiting').innerText();
    assert(/12/.test(waiting), waiting);
  });
  await visit('#/rollouts/new', 'rollout-new', async () => {
    // The target version comes from the product's packages; then the preview (or its error).
    await page.getByLabel('Target version').getByText('FOTAV2').waitFor({ state: 'attached' });
    await page.getByTestId('preview-devices').or(page.getByText('Preview unavailable')).waitFor();
  });
  await visit('#/audit', 'audit', () => page.getByTestId('audit-table').waitFor());
  await visit('#/users', 'users', () => page.getByRole('alert').first().or(page.getByTestId('users-table')).waitFor());
  await visit('#/account', 'account');
  await checks.check('a viewer sees no change control', async () => {
    role = 'viewer';
    await page.goto(`${server.url}/#/packages`);
    await page.reload();
    await page.getByTestId('whoami').getByText('viewer (viewer)').waitFor();
    await page.getByTestId('packages-table').waitFor();
    assert((await page.getByRole('button', { name: 'Upload' }).count()) === 0, 'Upload shown to a viewer');
    assert((await page.getByRole('button', { name: /^Delete/ }).count()) === 0, 'Delete shown to a viewer');
    assert((await page.getByRole('link', { name: 'Users' }).count()) === 0, 'Users shown to a viewer');
    await page.goto(`${server.url}/#/rollouts/1`);
    await page.getByTestId('state-count-Waiting').waitFor();
    assert((await page.getByRole('button', { name: /Pause|Resume|Cancel rollout/ }).count()) === 0, 'rollout controls shown to a viewer');
    console.log(`# screenshot ${await screenshot(page, a.screenshots, 'rollout-viewer')}`);
  });
  await checks.check('no CSP violation on any page', async () => {
    const v = await cspViolations();
    assert(v.length === 0, v.join('\n'));
  });
  console.log('# console errors (expected for routes the server lacks):');
  for (const e of unexpectedErrors()) console.log(`#   ${e.text} ${e.url}`);
  code = checks.summary(browser.version());
} catch (e) {
  console.log(`not ok - the tour stopped: ${e && e.stack ? e.stack : e}`);
} finally {
  await browser.close();
  await server.stop();
  rmSync(work, { recursive: true, force: true });
}
process.exit(code);
