// The console's first browser test: a real `ota-server serve` on free loopback ports, Debian's
// Chromium through playwright-core. Loads /, checks the sign-in form (labelled fields, keyboard
// focus that shows), the security headers, gzip, no console errors, no CSP violation, and saves
// a screenshot. Usage: node smoke.mjs --server path/to/ota-server --screenshots DIR
import { Checks, args, assert, launchBrowser, openPage, screenshot, startServer } from './harness.mjs';

const a = args();
if (!a.server || !a.screenshots) {
  console.error('usage: node smoke.mjs --server ota-server --screenshots DIR');
  process.exit(2);
}

// The page asks GET /api/v1/session at load: 401 (not signed in) is the expected answer, and
// Chromium logs every non-2xx fetch as a console error.
const EXPECTED = [/Failed to load resource: the server responded with a status of 401\b.*\/api\/v1\/session$/];

const checks = new Checks();
const server = await startServer(a.server);
const browser = await launchBrowser();
const version = browser.version();
let code = 1;
try {
  const { page, responses, unexpectedErrors, cspViolations } = await openPage(browser);
  let main;
  await checks.check('GET / answers 200 with the strict CSP, nosniff and no-referrer', async () => {
    main = await page.goto(server.url + '/', { waitUntil: 'load' });
    assert(main.status() === 200, `status ${main.status()}`);
    const h = main.headers();
    assert(
      h['content-security-policy'] ===
        "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
      `CSP: ${h['content-security-policy']}`,
    );
    assert(h['x-content-type-options'] === 'nosniff', 'nosniff');
    assert(h['referrer-policy'] === 'no-referrer', 'referrer-policy');
  });
  await checks.check('the sign-in form renders with labelled fields', async () => {
    const user = page.getByLabel('User name');
    const password = page.getByLabel('Password');
    await user.waitFor({ state: 'visible', timeout: 10000 });
    await password.waitFor({ state: 'visible' });
    assert((await password.getAttribute('type')) === 'password', 'the password field hides its text');
    await page.getByRole('button', { name: 'Sign in' }).waitFor({ state: 'visible' });
    await page.getByRole('heading', { name: 'Sign in' }).waitFor({ state: 'visible' });
  });
  await checks.check('a screenshot of the sign-in page is saved', async () => {
    console.log(`# screenshot ${await screenshot(page, a.screenshots, 'sign-in')}`);
  });
  await checks.check('the script and the style came gzipped from the embedded files', async () => {
    for (const name of ['/assets/app.js', '/assets/app.css']) {
      const r = responses.find((x) => new URL(x.url()).pathname === name);
      assert(r, `no request for ${name}`);
      assert(r.status() === 200, `${name}: ${r.status()}`);
      const h = await r.allHeaders();
      assert(h['content-encoding'] === 'gzip', `${name}: content-encoding ${h['content-encoding']}`);
      assert(h['etag'], `${name}: no ETag`);
    }
  });
  await checks.check('the keyboard reaches the fields and the focus is visible', async () => {
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => {
      const el = document.activeElement;
      const style = el ? getComputedStyle(el) : null;
      return {
        name: el?.getAttribute('name'),
        outline: style ? `${style.outlineStyle} ${style.outlineWidth}` : '',
        shadow: style?.boxShadow ?? 'none',
      };
    });
    assert(focused.name === 'username', `first Tab focused ${JSON.stringify(focused)}`);
    assert(
      !focused.outline.startsWith('none') || focused.shadow !== 'none',
      `no visible focus: ${JSON.stringify(focused)}`,
    );
  });
  await checks.check('a refused sign-in is shown in an alert', async () => {
    await page.getByLabel('User name').fill('nobody');
    await page.getByLabel('Password').fill('wrong-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').first().waitFor({ state: 'visible', timeout: 10000 });
    console.log(`# screenshot ${await screenshot(page, a.screenshots, 'sign-in-refused')}`);
  });
  // The refused sign-in above logs its own status: allowed like the probe.
  const allowed = [
    ...EXPECTED,
    /Failed to load resource: the server responded with a status of (401|429)\b.*\/api\/v1\/session$/,
  ];
  await checks.check('no console errors', async () => {
    const errors = unexpectedErrors(allowed);
    assert(errors.length === 0, JSON.stringify(errors, null, 1));
  });
  await checks.check('no CSP violation', async () => {
    const v = await cspViolations();
    assert(v.length === 0, v.join('\n'));
  });
  code = checks.summary(version);
} catch (e) {
  console.log(`not ok - the smoke test stopped: ${e && e.stack ? e.stack : e}`);
  console.log(server.log().replace(/^/gm, '#   '));
} finally {
  await browser.close();
  await server.stop();
}
process.exit(code);
