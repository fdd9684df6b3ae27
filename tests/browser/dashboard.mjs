// Dashboard end to end in a real headless Chromium (Debian's /usr/bin/chromium).
//
// Environment: KEYWARD_URL (base URL of a running `keyward serve`), KEYWARD_TOKEN (an
// operator token), KEYWARD_IDENTITY (an identity id with an owner and a blast radius),
// optional SCREENSHOTS=dir to save one PNG per page, CHROMIUM (default /usr/bin/chromium).
// Exits non-zero with the failed step on any failure.
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';

const base = process.env.KEYWARD_URL;
const token = process.env.KEYWARD_TOKEN;
const identity = process.env.KEYWARD_IDENTITY;
const shots = process.env.SCREENSHOTS;
if (!base || !token || !identity) {
  console.error('set KEYWARD_URL, KEYWARD_TOKEN and KEYWARD_IDENTITY');
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = await (await browser.newContext({ viewport: { width: 1360, height: 900 } })).newPage();
const errors = [];
page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
const shot = async (name, fullPage = true) => {
  if (shots) await page.screenshot({ path: `${shots}/${name}.png`, fullPage });
};
let step = 'start';
try {
  step = 'unauthenticated pages redirect to sign-in';
  await page.goto(`${base}/ui/identities`);
  assert.match(page.url(), /\/ui\/login$/);

  step = 'a wrong token is refused';
  await page.fill('#token', 'kw_not-a-token');
  await page.click('button[type=submit]');
  assert.match(await page.textContent('.error'), /Unknown or revoked token/);
  await shot('sign-in');
  errors.length = 0; // the refused sign-in answered 401 on purpose

  step = 'sign in with the token';
  await page.fill('#token', token);
  await page.click('button[type=submit]');
  await page.waitForURL(`${base}/ui/`);
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === 'kw_session');
  assert.ok(session, 'session cookie set');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Strict');
  assert.equal(await page.evaluate(() => document.cookie), '', 'the cookie is invisible to scripts');

  step = 'overview';
  assert.match(await page.textContent('h1'), /Overview/);
  assert.ok(Number((await page.textContent('.tile b')).trim()) > 0, 'identities counted');
  await shot('overview');

  step = 'inventory: filter, sort, page';
  await page.click('nav >> text=Inventory');
  await page.waitForURL(/\/ui\/identities/);
  const total = Number((await page.textContent('main p.muted')).match(/(\d+) identities/)[1]);
  assert.ok(total > 50, `inventory lists ${total}`);
  assert.equal(await page.locator('#inventory tbody tr').count(), 50, 'first page of 50');
  await page.selectOption('select[name=platform]', 'aws');
  await page.selectOption('select[name=kind]', 'iam_role');
  await page.click('form.filters button');
  await page.waitForURL(/kind=iam_role/);
  const kinds = await page.locator('#inventory tbody td:nth-child(3)').allTextContents();
  assert.ok(kinds.length > 0 && kinds.every((k) => k === 'iam_role'), 'filtered by kind');
  await page.click('#inventory thead >> text=Last used');
  await page.waitForURL(/sort=last_used/);
  await shot('inventory');

  step = 'open an identity from the inventory';
  await page.goto(`${base}/ui/identities?q=${encodeURIComponent(identity)}`);
  await page.click(`#inventory tbody a[href*="${encodeURIComponent(identity)}"]`);
  await page.waitForURL(/\/ui\/identity\?id=/);
  assert.equal((await page.textContent('p.id')).trim(), identity);

  step = 'its ownership chain and blast radius are drawn as a graph';
  const graph = page.locator('#graph svg');
  await graph.waitFor();
  const box = await graph.boundingBox();
  assert.ok(box && box.width > 400 && box.height > 40, 'graph rendered with a size');
  assert.equal(await page.locator('#graph g.node.root').count(), 1);
  assert.ok(await page.locator('#graph g.node.owner').count() >= 1, 'an owner node');
  assert.ok(await page.locator('#graph path.edge').count() >= 2, 'edges drawn');
  assert.ok(await page.locator('ol.timeline li').count() > 0, 'recent activity (its sessions) listed');
  await shot('identity');

  step = 'findings queue: acknowledge a finding';
  await page.click('nav >> text=Findings');
  await page.waitForURL(/\/ui\/findings/);
  const row = page.locator('#findings tbody tr').filter({ has: page.locator('td.status', { hasText: /^open$/ }) }).first();
  const rowId = await row.getAttribute('id');
  assert.ok(rowId, 'an open finding');
  await shot('findings', false);
  await row.locator('button[value=acknowledged]').click();
  await page.waitForURL(/done=acknowledged/);
  assert.match(await page.textContent('p.ok'), /marked acknowledged/);
  assert.equal((await page.textContent(`#${rowId} td.status`)).trim(), 'acknowledged');

  step = 'plan containment from a finding: a dry-run plan page, no Execute for an operator';
  const backdoor = page.locator('#findings tbody tr').filter({ hasText: 'kw-aws-backdoor-access-key' }).first();
  await backdoor.locator('form[action="/ui/respond/plan"] button').click();
  await page.waitForURL(/\/ui\/respond\/rp-[0-9a-f]{16}$/);
  assert.equal((await page.textContent('#plan-status')).trim(), 'planned');
  assert.ok(await page.locator('#steps li').count() >= 2, 'steps listed');
  assert.match(await page.textContent('#steps'), /aws iam put-user-policy/);
  assert.equal(await page.locator('#execute-form').count(), 0, 'operators cannot execute');
  await shot('plan');
  await page.goto(`${base}/ui/findings`);

  step = 'a forged form (session cookie, no CSRF token) is refused';
  const api = page.context().request;
  let r = await api.post(`${base}/ui/findings/${rowId.slice(2)}/status`, { form: { status: 'resolved' }, maxRedirects: 0 });
  assert.equal(r.status(), 403);
  step = 'a form from another origin is refused';
  r = await api.post(`${base}/ui/findings/${rowId.slice(2)}/status`, {
    form: { status: 'resolved', csrf: 'x' }, headers: { Origin: 'https://evil.example' }, maxRedirects: 0,
  });
  assert.equal(r.status(), 403);
  await page.reload();
  assert.equal((await page.textContent(`#${rowId} td.status`)).trim(), 'acknowledged', 'unchanged');

  step = 'sign out ends the session';
  await page.click('header form.who button');
  await page.waitForURL(/\/ui\/login$/);
  await page.goto(`${base}/ui/findings`);
  assert.match(page.url(), /\/ui\/login$/);

  assert.deepEqual(errors, [], 'no console errors (CSP violations included)');
  console.log('dashboard: all steps passed');
} catch (e) {
  console.error(`dashboard: FAILED at "${step}": ${e.message}`);
  if (shots) await page.screenshot({ path: `${shots}/failure.png`, fullPage: true }).catch(() => {});
  process.exitCode = 1;
} finally {
  await browser.close();
}
