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
import { spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  REPO_ROOT,
  USERNAME,
  PASSWORD,
  ANSWERS,
  FALLBACK_LABEL,
  twofoldBinary,
  submit,
  expectPage,
  expectAutocomplete,
  signIn,
  signOut,
  totpParameters,
  totp,
  waitForNextStep,
  startPortal,
  cleanUp,
} from './harness.mjs';

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
