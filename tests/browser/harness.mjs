// What the browser tests share: starting `twofold serve` and a headless Chromium, walking
// pages, one-time codes from oathtool, and what a failed test leaves behind.

import assert from 'node:assert/strict';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export const USERNAME = 'alice';
export const PASSWORD = 'correct horse battery';
export const ANSWERS = ['blue harbour', 'seven lanterns', 'quiet orchard', 'paper comet'];
export const FALLBACK_LABEL = "I can't use my token: answer security questions";

/** The `twofold` binary: $TWOFOLD_BIN, or target/debug/twofold built now. */
export function twofoldBinary() {
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
export function twofoldEnv(dataDir) {
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
export function startServer(bin, env) {
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
export async function stopServer(server) {
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
export async function submit(page, locator) {
  const [response] = await Promise.all([
    page.waitForNavigation({ waitUntil: 'load', timeout: 15_000 }),
    locator.click(),
  ]);
  return response;
}

/** Asserts the page's path and that it has exactly one <h1>, with the given text. */
export async function expectPage(page, path, heading) {
  assert.equal(new URL(page.url()).pathname, path, `expected to be on ${path}, but the page is ${page.url()}`);
  const h1 = page.locator('h1');
  assert.equal(await h1.count(), 1, `${path} should have exactly one <h1>`);
  assert.equal((await h1.textContent()).trim(), heading, `the <h1> of ${path}`);
}

export async function expectAutocomplete(page, selector, value) {
  const field = page.locator(selector);
  assert.equal(await field.count(), 1, `${selector} should exist once on ${page.url()}`);
  assert.equal(await field.getAttribute('autocomplete'), value, `autocomplete of ${selector}`);
}

export async function signIn(page, baseUrl) {
  await page.goto(new URL('/sign-in', baseUrl).href);
  await expectPage(page, '/sign-in', 'Sign in');
  await expectAutocomplete(page, '#username', 'username');
  await expectAutocomplete(page, '#password', 'current-password');
  await page.fill('#username', USERNAME);
  await page.fill('#password', PASSWORD);
  const response = await submit(page, page.locator('form[action="/sign-in"] button[type="submit"]'));
  assert.equal(response?.status(), 200, `status of the page after signing in (${page.url()})`);
}

export async function signOut(page) {
  const response = await submit(page, page.getByRole('button', { name: 'Sign out', exact: true }));
  assert.equal(response?.status(), 200, `status of the page after signing out (${page.url()})`);
  await expectPage(page, '/sign-in', 'Sign in');
}

/** The TOTP parameters of an otpauth:// URI, as oathtool takes them. */
export function totpParameters(uri) {
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
export function totp({ secret, digits, period, algorithm }) {
  const code = execFileSync(
    'oathtool',
    [`--totp=${algorithm}`, `--digits=${digits}`, `--time-step-size=${period}s`, '-b', secret],
    { encoding: 'utf8' },
  ).trim();
  assert.match(code, new RegExp(`^\\d{${digits}}$`), `oathtool's code: ${code}`);
  return code;
}

/** Sleeps until 1 s into the next TOTP step, so that its code differs from any used before. */
export async function waitForNextStep(period) {
  const now = Date.now() / 1000;
  const next = Math.floor(now / period) * period + period + 1;
  await sleep(Math.ceil((next - now) * 1000));
}

/**
 * Adds the user, starts `twofold serve` (with `extraEnv`) and a headless Chromium on a
 * profile in `work`. Returns { server, context, page, base }; `state` gets them as they come,
 * so that the caller's `finally` can stop what was started.
 */
export async function startPortal(t, work, state, extraEnv = {}) {
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
export async function cleanUp(work, state, failed) {
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

