// End-to-end test of the user portal in a real headless Chromium.
//
// It starts `twofold serve` on 127.0.0.1 (port 0) with a throwaway data directory, adds a user
// with a local password, and then walks the pages as a person would: sign in, choose the
// authenticator app on the method page, scan the QR code of its enrolment (a screenshot decoded
// by zbarimg, not the HTML's secret), type the code `oathtool` computes, choose four security
// questions, sign out, sign in again with a fresh code, see a replayed code refused, and fall
// back to the security questions. A second test enrols a phone with a call of the console
// channel, answered in /dev/inbox, and signs in with another call: the waiting pages move on
// by themselves (their script polls). A third activates the mobile app: the activation QR
// code, read out of a screenshot by `twofold-authenticator activate --qr`, "Authenticate me
// now" approved with the number the page shows, a sign-in approved the same way, and "not
// me", after which the account is blocked.
//
// Peers (Debian packages, installed by scripts/test): chromium, oathtool, zbar-tools.
// Browser driver: npm playwright-core (tests/browser/package.json); no browser is downloaded.
//
// Run from the repository root: node --test tests/browser/
// TWOFOLD_BIN=path/to/twofold skips the `cargo build -p twofold` this test does otherwise.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const USERNAME = 'alice';
const PASSWORD = 'correct horse battery';
const ANSWERS = ['blue harbour', 'seven lanterns', 'quiet orchard', 'paper comet'];
const FALLBACK_LABEL = "I can't use my token: answer security questions";

/** The `twofold` binary: $TWOFOLD_BIN, or target/debug/twofold built now. */
function twofoldBinary() {
  if (process.env.TWOFOLD_BIN) return resolve(process.env.TWOFOLD_BIN);
  const build = spawnSync('cargo', ['build', '-p', 'twofold'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (build.status !== 0) {
    throw new Error(`cargo build -p twofold failed (${build.status}):\n${build.stderr}`);
  }
  return join(REPO_ROOT, 'target', 'debug', 'twofold');
}

/**
 * Environment for every `twofold` command of this test. The server reads every TWOFOLD_*
 * variable as configuration and refuses unknown keys, so none is inherited: TWOFOLD_BIN
 * (ours) and TWOFOLD_TEST_POSTGRES_URL (scripts/test's) would stop it from starting.
 */
function twofoldEnv(dataDir) {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('TWOFOLD_')),
  );
  return {
    ...inherited,
    TWOFOLD_DATA_DIR: dataDir,
    TWOFOLD_LISTEN: '127.0.0.1:0',
    TWOFOLD_SETTINGS__SECURITY_QUESTIONS_FALLBACK: 'true',
    TWOFOLD_SETTINGS__ALLOW_ONE_TIME_BYPASS: 'true',
    TWOFOLD_SETTINGS__PROMPT_FOR_BYPASS_SECONDS: 'true',
  };
}

/**
 * Starts `twofold serve`; resolves with { child, url, stderr() } once its banner names the
 * portal URL. Rejects (and kills it) when it exits or says nothing of the kind in 60 s.
 */
function startServer(bin, env) {
  const child = spawn(bin, ['serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  const server = { child, url: null, stdout: () => stdout, stderr: () => stderr };
  return new Promise((resolvePromise, reject) => {
    const fail = (why) => {
      clearTimeout(timer);
      stopServer(server).finally(() =>
        reject(new Error(`twofold serve did not start: ${why}\nstdout:\n${stdout}\nstderr:\n${stderr}`)));
    };
    const timer = setTimeout(() => fail('no portal URL within 60 s'), 60_000);
    child.on('error', (err) => fail(err.message));
    child.on('exit', (code, signal) => {
      if (!server.url) fail(`it exited (code ${code}, signal ${signal})`);
    });
    // Keep reading stdout to the end, so that the server never blocks on a full pipe.
    createInterface({ input: child.stdout }).on('line', (line) => {
      stdout += `${line}\n`;
      const m = /^ {2}portal: +(https:\/\/127\.0\.0\.1:\d+\/)$/.exec(line);
      if (m && !server.url) {
        server.url = m[1];
        clearTimeout(timer);
        resolvePromise(server);
      }
    });
  });
}

/** Stops the server by its PID: SIGTERM, then SIGKILL after 5 s. */
async function stopServer(server) {
  const { child } = server;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timedOut = await Promise.race([exited.then(() => false), sleep(5_000).then(() => true)]);
  if (timedOut) {
    child.kill('SIGKILL');
    await exited;
  }
}

/** Clicks `locator` and waits for the page it loads; returns that page's response. */
async function submit(page, locator) {
  const [response] = await Promise.all([
    page.waitForNavigation({ waitUntil: 'load', timeout: 15_000 }),
    locator.click(),
  ]);
  return response;
}

/** Asserts the page's path and that it has exactly one <h1>, with the given text. */
async function expectPage(page, path, heading) {
  assert.equal(new URL(page.url()).pathname, path, `expected to be on ${path}, but the page is ${page.url()}`);
  const h1 = page.locator('h1');
  assert.equal(await h1.count(), 1, `${path} should have exactly one <h1>`);
  assert.equal((await h1.textContent()).trim(), heading, `the <h1> of ${path}`);
}

async function expectAutocomplete(page, selector, value) {
  const field = page.locator(selector);
  assert.equal(await field.count(), 1, `${selector} should exist once on ${page.url()}`);
  assert.equal(await field.getAttribute('autocomplete'), value, `autocomplete of ${selector}`);
}

async function signIn(page, baseUrl) {
  await page.goto(new URL('/sign-in', baseUrl).href);
  await expectPage(page, '/sign-in', 'Sign in');
  await expectAutocomplete(page, '#username', 'username');
  await expectAutocomplete(page, '#password', 'current-password');
  await page.fill('#username', USERNAME);
  await page.fill('#password', PASSWORD);
  const response = await submit(page, page.locator('form[action="/sign-in"] button[type="submit"]'));
  assert.equal(response?.status(), 200, `status of the page after signing in (${page.url()})`);
}

async function signOut(page) {
  const response = await submit(page, page.getByRole('button', { name: 'Sign out', exact: true }));
  assert.equal(response?.status(), 200, `status of the page after signing out (${page.url()})`);
  await expectPage(page, '/sign-in', 'Sign in');
}

/** The TOTP parameters of an otpauth:// URI, as oathtool takes them. */
function totpParameters(uri) {
  const parsed = new URL(uri);
  assert.equal(parsed.protocol, 'otpauth:', `not an otpauth URI: ${uri}`);
  assert.equal(parsed.host, 'totp', `not a TOTP URI: ${uri}`);
  const secret = parsed.searchParams.get('secret');
  assert.match(secret ?? '', /^[A-Z2-7]+=*$/i, `the URI's secret should be base32: ${uri}`);
  return {
    secret: secret.replace(/=+$/, '').toUpperCase(),
    digits: Number(parsed.searchParams.get('digits') ?? 6),
    period: Number(parsed.searchParams.get('period') ?? 30),
    algorithm: (parsed.searchParams.get('algorithm') ?? 'SHA1').toLowerCase(),
  };
}

/** The current TOTP code, from oathtool. */
function totp({ secret, digits, period, algorithm }) {
  const code = execFileSync(
    'oathtool',
    [`--totp=${algorithm}`, `--digits=${digits}`, `--time-step-size=${period}s`, '-b', secret],
    { encoding: 'utf8' },
  ).trim();
  assert.match(code, new RegExp(`^\\d{${digits}}$`), `oathtool's code: ${code}`);
  return code;
}

/** Sleeps until 1 s into the next TOTP step, so that its code differs from any used before. */
async function waitForNextStep(period) {
  const now = Date.now() / 1000;
  const next = Math.floor(now / period) * period + period + 1;
  await sleep(Math.ceil((next - now) * 1000));
}

/**
 * Adds the user, starts `twofold serve` (with `extraEnv`) and a headless Chromium on a
 * profile in `work`. Returns { server, context, page, base }; `state` gets them as they come,
 * so that the caller's `finally` can stop what was started.
 */
async function startPortal(t, work, state, extraEnv = {}) {
  const dataDir = join(work, 'data');
  const profileDir = join(work, 'chromium-profile');
  mkdirSync(dataDir);
  mkdirSync(profileDir);
  const bin = twofoldBinary();
  const env = { ...twofoldEnv(dataDir), ...extraEnv };
  const added = spawnSync(bin, ['user', 'add', USERNAME, '--password-stdin'], {
    env,
    input: `${PASSWORD}\n`,
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(added.status, 0, `twofold user add failed:\n${added.stdout}\n${added.stderr}`);
  state.server = await startServer(bin, env);
  // Should the test runner give up on this test (its timeout), still stop the server.
  const { child } = state.server;
  process.once('exit', () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
  const base = state.server.url;
  t.diagnostic(`portal at ${base}`);
  state.context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    // The server's certificate is self-signed, generated in the data directory.
    ignoreHTTPSErrors: true,
    locale: 'en-GB',
    viewport: { width: 1000, height: 900 },
  });
  state.context.setDefaultTimeout(15_000);
  state.page = state.context.pages()[0] ?? (await state.context.newPage());
  return base;
}

/** What a failed test leaves behind to look at; then stops the browser and the server. */
async function cleanUp(work, state, failed) {
  const { server, context, page } = state;
  if (failed) {
    const saved = [];
    if (page && !page.isClosed()) {
      try {
        const shot = join(work, 'failure.png');
        await page.screenshot({ path: shot, fullPage: true, timeout: 10_000 });
        saved.push(`screenshot: ${shot}`);
        const html = join(work, 'failure.html');
        writeFileSync(html, await page.content());
        saved.push(`page HTML:  ${html} (of ${page.url()})`);
      } catch (err) {
        saved.push(`(could not save the page: ${err.message})`);
      }
    }
    console.error(`\n--- the browser test failed; kept ${work}`);
    for (const line of saved) console.error(`  ${line}`);
    if (server) console.error(`--- twofold serve's stderr:\n${server.stderr()}`);
  }
  if (context) await context.close().catch(() => {});
  if (server) await stopServer(server);
  if (!failed) rmSync(work, { recursive: true, force: true });
}

/** On the method page, chooses `label` and goes on. */
async function chooseMethod(page, label) {
  await expectPage(page, '/enroll/method', "Choose how to confirm it's you");
  await page.getByLabel(label, { exact: true }).check();
  await submit(page, page.locator('form[action="/enroll/method"] button[type="submit"]'));
}

test('a user enrols an authenticator app and security questions, then signs in with them', { timeout: 180_000 }, async (t) => {
  const started = Date.now();
  const work = mkdtempSync(join(tmpdir(), 'twofold-browser-'));
  const state = {};
  let failed = true;
  try {
    // 1. The server, with one user who has a local password; the browser.
    const base = await startPortal(t, work, state);
    const { page } = state;

    // 2. Sign in: a user without a method chooses one, here the authenticator app.
    await signIn(page, base);
    await chooseMethod(page, 'Authenticator app');
    await expectPage(page, '/enroll/oath', 'Add an authenticator app');
    // Showing the page changes nothing: the key is made when the user asks for it.
    assert.equal(await page.locator('figure#qr').count(), 0, 'no key before the user starts the enrolment');
    await submit(page, page.locator('#start-oath'));
    await expectPage(page, '/enroll/oath', 'Add an authenticator app');
    const qr = page.locator('figure#qr');
    assert.equal(await qr.locator('svg').count(), 1, 'the QR code should be an inline <svg> in <figure id="qr">');
    await expectAutocomplete(page, '#code', 'one-time-code');

    // 3. Scan the QR code as a phone would: a picture of it, decoded by zbarimg.
    const qrPng = join(work, 'qr.png');
    await qr.screenshot({ path: qrPng });
    const uri = execFileSync('zbarimg', ['--nodbus', '--raw', qrPng], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'], // its "scanned 1 barcode symbols" line goes to stderr
    }).trim();
    assert.match(uri, /^otpauth:\/\/totp\/[^?]+\?(.+&)?secret=/, `zbarimg decoded: ${uri}`);
    // The same URI is written out for typing by hand, behind a <details>.
    const shownUri = page.locator('#otpauth-uri');
    assert.equal(await shownUri.isVisible(), false, 'the URI should be folded away at first');
    await page.locator('details > summary').click();
    assert.equal(await shownUri.isVisible(), true, 'opening the <details> should show the URI');
    assert.equal((await shownUri.textContent()).trim(), uri, 'the written URI should be the one in the QR code');
    assert.ok(await page.locator('#secret').isVisible(), 'opening the <details> should show the key');
    const params = totpParameters(uri);
    assert.equal(
      (await page.locator('#secret').textContent()).replace(/\s+/g, '').toUpperCase(),
      params.secret,
      'the written key should be the secret of the QR code',
    );

    // 4. Confirm with the app's code, then choose four security questions.
    const enrolmentStep = Math.floor(Date.now() / 1000 / params.period);
    const enrolmentCode = totp(params);
    await page.fill('#code', enrolmentCode);
    await submit(page, page.locator('form[action="/enroll/oath"] button[type="submit"]'));
    await expectPage(page, '/enroll/questions', 'Choose your security questions');
    const chosen = new Map(); // question text -> answer
    for (let i = 1; i <= 4; i += 1) {
      const selected = page.locator(`select#question-${i} option:checked`);
      assert.equal(await selected.count(), 1, `#question-${i} should have one selected question`);
      const question = (await selected.textContent()).trim();
      assert.ok(question.length > 0, `#question-${i} should preselect a question`);
      assert.ok(!chosen.has(question), `#question-${i} preselects "${question}", already preselected above`);
      chosen.set(question, ANSWERS[i - 1]);
      await page.fill(`#answer-${i}`, ANSWERS[i - 1]);
    }
    await submit(page, page.locator('form[action="/enroll/questions"] button[type="submit"]'));
    await expectPage(page, '/account', 'Your account');
    assert.equal((await page.locator('#profile-username').textContent()).trim(), USERNAME);
    assert.equal((await page.locator('#profile-token').textContent()).trim(), 'Authenticator app');

    // 5. Sign out, and in again with a code of a later step (each code is single-use).
    await signOut(page);
    await signIn(page, base);
    await expectPage(page, '/verify', "Verify it's you");
    await expectAutocomplete(page, '#code', 'one-time-code');
    await waitForNextStep(params.period);
    const signInStep = Math.floor(Date.now() / 1000 / params.period);
    assert.ok(signInStep > enrolmentStep, 'the sign-in code should be of a later step than the enrolment code');
    const signInCode = totp(params);
    await page.fill('#code', signInCode);
    await submit(page, page.locator('form[action="/verify"] button[type="submit"]'));
    await expectPage(page, '/account', 'Your account');
    assert.equal((await page.locator('#profile-username').textContent()).trim(), USERNAME);

    // 6. A replayed code is refused; the security questions still let the user in.
    await signOut(page);
    await signIn(page, base);
    await expectPage(page, '/verify', "Verify it's you");
    await page.fill('#code', signInCode);
    await submit(page, page.locator('form[action="/verify"] button[type="submit"]'));
    await expectPage(page, '/verify', "Verify it's you");
    const error = page.locator('#verify-error');
    assert.equal(await error.count(), 1, 'a replayed code should be answered with #verify-error');
    assert.match(await error.textContent(), /already been used/, 'the error should say the code was used');

    await submit(page, page.getByRole('button', { name: FALLBACK_LABEL, exact: true }));
    await expectPage(page, '/verify', "Verify it's you");
    const inputs = page.locator('input[id^="answer-"]');
    const asked = await inputs.count();
    assert.equal(asked, 2, 'two security questions should be asked');
    const askedQuestions = [];
    for (let i = 0; i < asked; i += 1) {
      const id = await inputs.nth(i).getAttribute('id');
      const label = page.locator(`label[for="${id}"]`);
      assert.equal(await label.count(), 1, `#${id} should have a <label>`);
      const question = (await label.textContent()).trim();
      assert.ok(chosen.has(question), `"${question}" is not one of the questions chosen: ${[...chosen.keys()].join(' | ')}`);
      askedQuestions.push(question);
      await inputs.nth(i).fill(chosen.get(question));
    }
    assert.notEqual(askedQuestions[0], askedQuestions[1], 'the two questions asked should differ');
    await submit(page, page.locator('form[action="/verify"] button[type="submit"]'));
    await expectPage(page, '/account', 'Your account');
    assert.equal((await page.locator('#profile-username').textContent()).trim(), USERNAME);

    failed = false;
    t.diagnostic(`took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await cleanUp(work, state, failed);
  }
});

/**
 * In the /dev/inbox tab, answers the newest call not in `seen` by pressing `digits`; returns
 * its id. Waits a little for the call to arrive.
 */
async function answerNewestCall(inbox, baseUrl, digits, seen) {
  for (let tries = 0; tries < 50; tries += 1) {
    await inbox.goto(new URL('/dev/inbox', baseUrl).href);
    await expectPage(inbox, '/dev/inbox', 'Development inbox');
    const ids = await inbox.locator('ol > li[id^="call-"]').evaluateAll((items) => items.map((li) => li.id));
    const id = ids.find((candidate) => !seen.includes(candidate));
    if (id) {
      const entry = inbox.locator(`li[id="${id}"]`);
      await entry.getByLabel(/keys pressed/).fill(digits);
      await submit(inbox, entry.getByRole('button', { name: 'Answer the call', exact: true }));
      seen.push(id);
      return id;
    }
    await sleep(200);
  }
  throw new Error(`no new call in /dev/inbox:\n${await inbox.content()}`);
}

test('a user enrols a phone with a call answered in /dev/inbox, then signs in with another call', { timeout: 180_000 }, async (t) => {
  const started = Date.now();
  const work = mkdtempSync(join(tmpdir(), 'twofold-browser-'));
  const state = {};
  let failed = true;
  try {
    const base = await startPortal(t, work, state);
    const { page } = state;
    const calls = [];

    // 1. Sign in, choose phone calls, type the number, and ask to be called.
    await signIn(page, base);
    await chooseMethod(page, 'Phone call');
    await expectPage(page, '/enroll/phone', 'Your phone');
    await expectAutocomplete(page, '#number', 'tel');
    assert.equal(await page.locator('#number').getAttribute('type'), 'tel', 'the number field is type="tel"');
    await page.getByLabel('Phone number', { exact: true }).fill('+33 6 12 34 56 78');
    await submit(page, page.getByRole('button', { name: 'Call me now', exact: true }));
    await expectPage(page, '/enroll/phone', 'Your phone');
    assert.match(await page.locator('#phone-status').textContent(), /Calling \+33 6 12 34 56 78…/);

    // 2. The developer answers the call in /dev/inbox (another tab) with the pound key; the
    //    waiting page's script sees it and goes on by itself, to the security questions.
    const inbox = await state.context.newPage();
    await answerNewestCall(inbox, base, '#', calls);
    await page.waitForURL((url) => url.pathname === '/enroll/questions', { timeout: 20_000 });
    await expectPage(page, '/enroll/questions', 'Choose your security questions');
    for (let i = 1; i <= 4; i += 1) {
      await page.fill(`#answer-${i}`, ANSWERS[i - 1]);
    }
    await submit(page, page.locator('form[action="/enroll/questions"] button[type="submit"]'));
    await expectPage(page, '/account', 'Your account');
    assert.equal((await page.locator('#profile-method').textContent()).trim(), 'Phone call');
    assert.equal((await page.locator('#profile-phone').textContent()).trim(), '+33 6 12 34 56 78');

    // 3. Sign out and in again: the phone rings, the answer signs in without a click.
    await signOut(page);
    await signIn(page, base);
    await expectPage(page, '/verify', "Verify it's you");
    assert.match(await page.locator('#phone-status').textContent(), /Calling \+33 6 •• •• •• 78…/);
    await answerNewestCall(inbox, base, '#', calls);
    await page.waitForURL((url) => url.pathname === '/account', { timeout: 20_000 });
    await expectPage(page, '/account', 'Your account');
    assert.equal((await page.locator('#profile-username').textContent()).trim(), USERNAME);

    failed = false;
    t.diagnostic(`took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await cleanUp(work, state, failed);
  }
});

/** The workspace's `twofold-authenticator`, beside the `twofold` binary (built if missing). */
function authenticatorBinary() {
  const bin = join(dirname(twofoldBinary()), 'twofold-authenticator');
  const build = spawnSync('cargo', ['build', '-p', 'twofold-authenticator'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (build.status !== 0) {
    throw new Error(`cargo build -p twofold-authenticator failed (${build.status}):\n${build.stderr}`);
  }
  return bin;
}

/** Runs twofold-authenticator with its own data directory, trusting the server's certificate. */
function authenticator(work, args) {
  return execFileSync(
    authenticatorBinary(),
    ['--data-dir', join(work, 'authenticator'), '--ca-file', join(work, 'data', 'tls', 'cert.pem'), ...args],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
}

/** The request waiting in the app: waits for it (the long-poll is the app's; here we ask). */
async function pendingRequest(work) {
  for (let i = 0; i < 50; i += 1) {
    const requests = JSON.parse(authenticator(work, ['pending', '--json']));
    if (requests.length > 0) return requests[0];
    await sleep(200);
  }
  throw new Error('no request reached the app');
}

test('a user activates the mobile app from its QR code, signs in by choosing the number, and "not me" blocks them', { timeout: 180_000 }, async (t) => {
  const started = Date.now();
  const work = mkdtempSync(join(tmpdir(), 'twofold-browser-'));
  const state = {};
  let failed = true;
  try {
    const base = await startPortal(t, work, state, {
      TWOFOLD_SETTINGS__ALLOW_MOBILE_APP_ACTIVATION: 'true',
      TWOFOLD_SETTINGS__ALLOW_METHOD_SELECTION: 'true',
      TWOFOLD_SETTINGS__SELECTABLE_METHODS: '["mobile_app","oath"]',
      TWOFOLD_SETTINGS__SECURITY_QUESTIONS_FALLBACK: 'false',
    });
    const { page } = state;

    // 1. Choose the mobile app, generate an activation code, and activate the app by
    //    scanning the page's QR code: a picture of it, as a phone's camera takes one.
    await signIn(page, base);
    await chooseMethod(page, 'Mobile app');
    await expectPage(page, '/enroll/app', 'Activate the mobile app');
    await submit(page, page.locator('#generate-code'));
    const qr = page.locator('#activation-qr');
    assert.equal(await qr.locator('svg').count(), 1, 'the activation QR code is an inline <svg>');
    const code = (await page.locator('#activation-code').textContent()).trim();
    assert.match(code, /^[0-9A-Z]{4}(-[0-9A-Z]{4}){3}$/, 'the code is shown in four groups');
    const qrPng = join(work, 'activation-qr.png');
    await qr.screenshot({ path: qrPng });
    const activated = authenticator(work, ['activate', '--qr', qrPng, '--name', 'browser test']);
    assert.match(activated, /alice/, `the app is activated for alice: ${activated}`);

    // 2. "Authenticate me now": the page shows a number; the app approves with it and the
    //    page goes on by itself (its script polls) to the account.
    await submit(page, page.locator('#activated'));
    await submit(page, page.locator('#authenticate-now'));
    const shown = (await page.locator('#push-number').textContent()).trim();
    let request = await pendingRequest(work);
    assert.ok(request.numbers.map(String).includes(shown), `the app offers the page's number ${shown}: ${request.numbers}`);
    assert.equal(request.numbers.length, 3, 'the app offers three numbers');
    authenticator(work, ['approve', request.id, '--number', shown]);
    await page.waitForURL((url) => url.pathname === '/account', { timeout: 20_000 });
    await expectPage(page, '/account', 'Your account');

    // 3. Sign out and in: the request is approved in the app, the page goes on.
    await signOut(page);
    await signIn(page, base);
    await expectPage(page, '/verify', "Verify it's you");
    const number = (await page.locator('#push-number').textContent()).trim();
    request = await pendingRequest(work);
    assert.equal(request.context.username, USERNAME);
    authenticator(work, ['approve', request.id, '--number', number]);
    await page.waitForURL((url) => url.pathname === '/account', { timeout: 20_000 });
    await expectPage(page, '/account', 'Your account');

    // 4. A sign-in the user did not start: "not me" ends it and blocks the account.
    await signOut(page);
    await signIn(page, base);
    await expectPage(page, '/verify', "Verify it's you");
    request = await pendingRequest(work);
    const said = authenticator(work, ['deny', request.id, '--not-me']);
    assert.match(said, /fraud/, `the app reports fraud: ${said}`);
    await page.waitForURL((url) => url.pathname !== '/verify', { timeout: 20_000 });
    await page.goto(new URL('/sign-in', base).href);
    await page.fill('#username', USERNAME);
    await page.fill('#password', PASSWORD);
    await submit(page, page.locator('form[action="/sign-in"] button[type="submit"]'));
    assert.match(await page.content(), /blocked after a fraud report/, 'the next sign-in is refused as blocked');

    failed = false;
    t.diagnostic(`took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await cleanUp(work, state, failed);
  }
});
