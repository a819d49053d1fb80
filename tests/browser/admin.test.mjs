// End-to-end test of the admin console in a real headless Chromium.
//
// Two `twofold serve` nodes share one PostgreSQL database (scripts/test's server; a fresh
// database for this test). Administrators are made with the CLI; their authenticator apps
// through the SDK. Then, as people would in the browser:
// - the owner signs in at /admin with the second factor, and axe-core checks every console
//   page for serious or critical accessibility violations;
// - the owner changes a setting on node A's settings page, and node B's sign-in page shows
//   it within seconds;
// - the owner imports a token file and watches the import's progress bar to the end;
// - a help-desk administrator scoped to the group Sales unlocks a Sales user and starts a
//   one-time bypass for them, and is refused a user outside Sales.
//
// Peers: chromium, oathtool (Debian), PostgreSQL (scripts/test), axe-core and playwright-core
// (npm, tests/browser/package.json).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';
import {
  CHROMIUM,
  CHROMIUM_FLAGS,
  PASSWORD,
  twofoldBinary,
  twofoldEnv,
  startServer,
  stopServer,
  submit,
  expectPage,
  waitForNextStep,
} from './harness.mjs';

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const SEAL_KEY = '6f'.repeat(32);

/** Runs `twofold ARGS` against the shared configuration; returns stdout. */
function cli(bin, env, args, input = '') {
  const out = spawnSync(bin, args, { env, input, encoding: 'utf8', timeout: 60_000 });
  assert.equal(out.status, 0, `twofold ${args.join(' ')} failed:\n${out.stdout}\n${out.stderr}`);
  return out.stdout;
}

/** A fresh PostgreSQL database on scripts/test's server; returns its URL. */
function freshDatabase() {
  const admin = process.env.TWOFOLD_TEST_POSTGRES_URL;
  assert.ok(admin, 'the console test needs PostgreSQL for two nodes: run it through scripts/test');
  const name = `twofold_browser_${process.pid}_${Date.now()}`;
  execFileSync('psql', [admin, '-v', 'ON_ERROR_STOP=1', '-q', '-c', `CREATE DATABASE ${name}`]);
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return url.href;
}

/** The current TOTP code of a base32 seed, from oathtool. */
function totpOf(seed) {
  return execFileSync('oathtool', ['--totp', '-b', seed], { encoding: 'utf8' }).trim();
}

/** Calls the SDK as the test's service account. */
async function sdk(context, base, account, method, path, data) {
  const response = await context.request.fetch(new URL(path, base).href, {
    method,
    headers: { Authorization: `Basic ${Buffer.from(`browser:${account}`).toString('base64')}` },
    data,
  });
  const body = await response.json().catch(() => ({}));
  return { status: response.status(), body };
}

/** Gives `user` an authenticator app through the SDK; returns its seed. */
async function giveApp(context, base, account, user) {
  const started = await sdk(context, base, account, 'POST', `/sdk/v1/users/${user}/oath`, { kind: 'software' });
  assert.equal(started.status, 201, JSON.stringify(started.body));
  const seed = new URL(started.body.otpauth_uri).searchParams.get('secret');
  const verified = await sdk(context, base, account, 'POST', `/sdk/v1/users/${user}/oath/verify`, { code: totpOf(seed) });
  assert.equal(verified.status, 200, JSON.stringify(verified.body));
  return seed;
}

/** Signs `user` in to the console of `base` in `page`, waiting for a TOTP step not used yet. */
async function consoleSignIn(page, base, user, seed) {
  await page.goto(new URL('/admin', base).href);
  await expectPage(page, '/admin/sign-in', 'Admin console sign-in');
  await page.fill('#username', user);
  await page.fill('#password', PASSWORD);
  await submit(page, page.locator('form[action="/admin/sign-in"] button[type="submit"]'));
  await expectPage(page, '/verify', "Verify it's you");
  await waitForNextStep(30);
  await page.fill('#code', totpOf(seed));
  await submit(page, page.locator('form[action="/verify"] button[type="submit"]').first());
  assert.equal(new URL(page.url()).pathname, '/admin', `after the second factor: ${page.url()}`);
}

/** Runs axe-core on the page; fails on any serious or critical violation. */
async function expectAccessible(page, what) {
  await page.evaluate(AXE_SOURCE);
  const results = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')),
    }));
  });
  const bad = results.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad, [], `${what} (${page.url()}) has serious or critical accessibility violations`);
  return results.length;
}

/** Every console page the owner can open, for the accessibility check. */
async function consolePages(page) {
  const links = await page.locator('nav.admin-nav a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
  return links;
}

test('administrators work in the console: accessible pages, settings on every node, a token import, and a help desk for one group', { timeout: 300_000 }, async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'twofold-admin-browser-'));
  const bin = twofoldBinary();
  const database = freshDatabase();
  const env = (dir) => ({
    ...twofoldEnv(dir),
    TWOFOLD_DATABASE__URL: database,
    TWOFOLD_SECRETS__KEY: SEAL_KEY,
    TWOFOLD_SETTINGS__LOCKOUT_THRESHOLD: '3',
  });
  const dirA = join(work, 'node-a');
  const dirB = join(work, 'node-b');
  mkdirSync(dirA);
  mkdirSync(dirB);
  const envA = env(dirA);
  const servers = [];
  let context;
  let failed = true;
  try {
    for (const user of ['alice', 'hank', 'sam', 'olga']) {
      cli(bin, envA, ['user', 'add', user, '--password-stdin'], `${PASSWORD}\n`);
    }
    cli(bin, envA, ['admin', 'add', 'alice', '--role', 'owner']);
    cli(bin, envA, ['admin', 'add', 'hank', '--role', 'help-desk', '--scope', 'group:Sales', '--bypass-max-seconds', '900']);
    cli(bin, envA, ['group', 'add', 'Sales', 'sam']);
    const account = cli(bin, envA, ['service-account', 'add', 'browser']).trim();
    const a = await startServer(bin, envA);
    servers.push(a);
    // Node B: the same database and key, its own data directory (and certificate).
    const b = await startServer(bin, env(dirB));
    servers.push(b);
    t.diagnostic(`node A ${a.url}, node B ${b.url}`);

    context = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS })
      .then((browser) => browser.newContext({
        ignoreHTTPSErrors: true,
        locale: 'en-GB',
        // axe-core is injected into the pages, which allow only their own scripts.
        bypassCSP: true,
        viewport: { width: 1200, height: 900 },
      }));
    context.setDefaultTimeout(15_000);
    const page = await context.newPage();
    const aliceSeed = await giveApp(context, a.url, account, 'alice');
    const hankSeed = await giveApp(context, a.url, account, 'hank');
    await giveApp(context, a.url, account, 'sam');

    // 1. The owner signs in with the second factor; every console page passes axe-core.
    await consoleSignIn(page, a.url, 'alice', aliceSeed);
    await expectPage(page, '/admin', 'Admin console');
    let checked = 0;
    for (const href of await consolePages(page)) {
      await page.goto(new URL(href, a.url).href);
      await expectAccessible(page, href);
      checked += 1;
    }
    assert.ok(checked >= 8, `the owner sees every console page (${checked})`);
    for (const path of ['/admin/users/sam', '/admin/new-user']) {
      await page.goto(new URL(path, a.url).href);
      await expectAccessible(page, path);
      checked += 1;
    }
    t.diagnostic(`${checked} console pages pass axe-core`);

    // 2. The owner turns the portal's sign-in off on node A; node B says so within seconds.
    await page.goto(new URL('/admin/settings', a.url).href);
    await expectPage(page, '/admin/settings', 'Settings');
    await page.locator('#setting-allow_user_login').uncheck();
    await submit(page, page.locator('#save-settings'));
    assert.match(await page.locator('#settings-notice').textContent(), /1 settings? saved/);
    // A visitor of their own: cookies are not kept apart by port, so the owner's session
    // (valid on every node) would follow this page to node B.
    const newcomer = () => context.browser().newContext({ ignoreHTTPSErrors: true, locale: 'en-GB' });
    const visitorB = await newcomer();
    const onB = await visitorB.newPage();
    let seen = false;
    const changedAt = Date.now();
    while (!seen && Date.now() - changedAt < 15_000) {
      await onB.goto(new URL('/sign-in', b.url).href);
      seen = (await onB.locator('#sign-in-error').count()) > 0
        && /turned off/.test(await onB.locator('#sign-in-error').textContent());
      if (!seen) await sleep(250);
    }
    assert.ok(seen, "node B's sign-in page says signing in is off");
    t.diagnostic(`node B showed the change after ${Date.now() - changedAt} ms`);
    await visitorB.close();
    await page.goto(new URL('/admin/settings', a.url).href);
    await page.locator('#setting-allow_user_login').check();
    await submit(page, page.locator('#save-settings'));

    // 3. A token import: the page follows its progress bar to the end.
    const rows = [];
    for (let i = 0; i < 3000; i += 1) {
      rows.push(`${700000 + i},${(i.toString(16).padStart(4, '0')).repeat(10)},totp,6,30`);
    }
    const file = join(work, 'tokens.csv');
    writeFileSync(file, `${rows.join('\n')}\n`);
    await page.goto(new URL('/admin/tokens', a.url).href);
    await page.setInputFiles('#token-file', file);
    await submit(page, page.locator('#import-tokens'));
    assert.match(new URL(page.url()).pathname, /^\/admin\/tokens\/import\/[^/]+$/);
    const values = new Set();
    const importStarted = Date.now();
    let finished = false;
    while (!finished && Date.now() - importStarted < 120_000) {
      const bar = page.locator('#import-progress');
      if (await bar.count()) {
        const value = await bar.evaluate((el) => `${el.value}/${el.max}`).catch(() => null);
        if (value) values.add(value);
      }
      finished = (await page.locator('#import[data-finished]').count()) > 0;
      if (!finished) await sleep(100);
    }
    assert.ok(finished, `the import finished (progress seen: ${[...values].join(' ')})`);
    assert.match(await page.locator('#import-state').textContent(), /3000 tokens imported/);
    t.diagnostic(`import progress seen: ${[...values].join(' ')}`);
    await expectAccessible(page, 'the token import');

    // 4. A help desk for Sales unlocks a Sales user and starts a bypass; other users are not theirs.
    const stranger = await newcomer();
    const portal = await stranger.newPage();
    for (let i = 0; i < 4; i += 1) {
      await portal.goto(new URL('/sign-in', a.url).href);
      await portal.fill('#username', 'sam');
      await portal.fill('#password', 'not the password at all');
      await submit(portal, portal.locator('form[action="/sign-in"] button[type="submit"]'));
    }
    assert.match(await portal.locator('#sign-in-error').textContent(), /locked/);
    await stranger.close();
    const helpDesk = await context.browser().newContext({
      ignoreHTTPSErrors: true, locale: 'en-GB', bypassCSP: true, viewport: { width: 1200, height: 900 },
    });
    helpDesk.setDefaultTimeout(15_000);
    const hankPage = await helpDesk.newPage();
    await consoleSignIn(hankPage, a.url, 'hank', hankSeed);
    await hankPage.goto(new URL('/admin/users', a.url).href);
    const listed = await hankPage.locator('main').textContent();
    assert.match(listed, /sam/, 'the help desk sees Sales');
    assert.doesNotMatch(listed, /olga/, 'and no one else');
    await hankPage.goto(new URL('/admin/users/sam', a.url).href);
    assert.doesNotMatch(await hankPage.locator('#state-lock').textContent(), /not locked/i);
    await submit(hankPage, hankPage.locator('#unlock'));
    assert.match(await hankPage.locator('#state-lock').textContent(), /not locked/i);
    await hankPage.fill('#bypass-seconds', '600');
    await hankPage.fill('#bypass-reason', 'phone left at home');
    await submit(hankPage, hankPage.locator('#start-bypass'));
    assert.doesNotMatch(await hankPage.locator('#state-bypass').textContent(), /^\s*No\s*$/);
    const refused = await hankPage.goto(new URL('/admin/users/olga', a.url).href);
    assert.equal(refused.status(), 403, 'a user outside Sales is refused');
    // Sam's next sign-in takes the password alone (the bypass), on node B.
    const samContext = await newcomer();
    const samPage = await samContext.newPage();
    await samPage.goto(new URL('/sign-in', b.url).href);
    await samPage.fill('#username', 'sam');
    await samPage.fill('#password', PASSWORD);
    await submit(samPage, samPage.locator('form[action="/sign-in"] button[type="submit"]'));
    assert.notEqual(new URL(samPage.url()).pathname, '/verify', 'the bypass spares sam the second factor');
    const audit = cli(bin, envA, ['audit', 'tail', '-n', '200', '--json'])
      .trim().split('\n').map((l) => JSON.parse(l));
    for (const action of ['user_unlocked', 'bypass_started']) {
      assert.ok(
        audit.some((e) => e.action === action && e.actor === 'admin:hank' && e.subject === 'sam'),
        `${action} by admin:hank`,
      );
    }
    assert.ok(audit.some((e) => e.action === 'setting_changed' && e.actor === 'admin:alice'), 'setting_changed by admin:alice');

    failed = false;
  } finally {
    if (failed) console.error(`\n--- the console's browser test failed; kept ${work}`);
    if (context) await context.browser()?.close().catch(() => {});
    for (const s of servers) {
      if (failed) console.error(`--- stderr of ${s.url}:\n${s.stderr()}`);
      await stopServer(s);
    }
  }
});
