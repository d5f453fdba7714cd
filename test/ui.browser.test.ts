/**
 * The live status page in a real browser (Debian's Chromium, headless, driven by
 * playwright-core) beside a live loopback cluster of server processes: it shows the cluster,
 * shows hostile `data` as text, loads nothing from anywhere else, and after the master is
 * SIGKILLed shows the new master within tock + tick + 1 s, by itself; when its own server
 * goes away it greys every figure under a banner saying since when, and when the server is
 * back it recovers by itself. Screenshots go to test-results/ (git-ignored).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import { ProcessCluster } from '../tools/process-cluster';
import { freeTcpPort, loopbackWebConfig } from '../tools/web';
import { browserUnavailable, launchBrowser, type Browser } from '../tools/browser';
import { preciseNow } from '../tools/child';

const ROOT = path.resolve(__dirname, '..', '..');
const RESULTS = path.join(ROOT, 'test-results');
const HOSTS = ['alpha', 'bravo', 'charlie'];
const TICK_S = 0.3;
const CHECK_BEATS = 3;
const HOSTILE = '<img src=x onerror="document.title=\'pwned\'">';
/** What charlie's failing health check throws: other servers' input, shown as text. */
const SICK = '<b onmouseover="document.title=\'pwned\'">disk</b> full';
const skip = browserUnavailable();

describe('status page in headless Chromium', { skip: skip ?? false }, () => {
  const cluster = new ProcessCluster({ heartbeatFreq: TICK_S, checkBeats: CHECK_BEATS, multi: { http_ui_uri: '/cluster' } });
  const htdocs = mkdtempSync(path.join(os.tmpdir(), 'psm-ui-'));
  const ports: Record<string, number> = {};
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];

  before(async () => {
    for (const host of HOSTS) ports[host] = await freeTcpPort();
    await Promise.all(HOSTS.map((host) => cluster.start(host, {}, true, loopbackWebConfig(ports[host] as number, htdocs))));
    await cluster.release(HOSTS);
    await cluster.waitAgreed(15_000, 'alpha');
    cluster.command('charlie', { cmd: 'data', value: { note: HOSTILE, jobs: 3 } });
    cluster.command('bravo', { cmd: 'data', value: { jobs: 5, queue: 'mail' } });
    cluster.command('charlie', { cmd: 'healthcheck', fail: SICK });
    browser = await launchBrowser();
    page = await browser.context.newPage();
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning') problems.push(`console ${message.type()}: ${message.text()}`);
    });
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    mkdirSync(RESULTS, { recursive: true });
  });
  after(async () => {
    await browser?.close();
    await cluster.stopAll();
    rmSync(htdocs, { recursive: true, force: true });
  });

  const text = (selector: string): Promise<string> => page.locator(selector).innerText();
  /** Wait (as the page redraws itself) until `selector` shows exactly `expected`. */
  const shows = (selector: string, expected: RegExp, timeout = 15_000): Promise<void> =>
    page.locator(selector, { hasText: expected }).waitFor({ timeout });
  const rows = async (): Promise<string[][]> => {
    const result: string[][] = [];
    for (const row of await page.locator('#servers-body tr').all())
      result.push((await row.locator('td').allTextContents()).map((cell) => cell.trim()));
    return result;
  };

  test("shows members, master and term, each server's state, health check and data, with hostile data as text", async (t) => {
    await page.goto(`http://127.0.0.1:${ports.bravo}/cluster`);
    await shows('#master-name', /^alpha$/);
    await shows('#servers-body', /onerror/);
    await shows('#servers-body', /failing \d+\/1/);
    assert.match(await text('#master-term'), /^term \d+$/);
    assert.equal(await text('#members-count'), '3 servers');
    assert.equal(await text('#self-state'), 'slave');
    const table = await rows();
    assert.deepEqual(
      table.map((r) => [r[0], r[2]]),
      [
        ['alpha', 'master'],
        ['bravothis server', 'slave'],
        ['charlie', 'slave'],
      ],
    );
    assert.match(table[1]?.[9] ?? '', /"jobs":5/);
    // The hostile data is shown as text, not parsed into an element, and nothing ran.
    assert.ok(table[2]?.[9]?.includes('<img src=x onerror='), table[2]?.[9]);
    assert.equal(await page.locator('img').count(), 0);
    // Health: none on alpha and bravo; charlie's check fails, so it is not eligible, and the page says why (as text).
    assert.deepEqual(
      table.map((r) => [r[3], r[4]?.replace(/\d+\/1/, 'N/1')]),
      [
        ['yes', ''],
        ['yes', ''],
        ['no', `failing N/1${SICK}`],
      ],
    );
    assert.equal(await page.locator('#servers-body b').count(), 0);
    assert.notEqual(await page.title(), 'pwned');
    await page.screenshot({ path: path.join(RESULTS, 'status-page.png'), fullPage: true });
    t.diagnostic(`screenshot: ${path.join(RESULTS, 'status-page.png')}`);
  });

  test('after SIGKILL of the master the page shows the new master within tock + tick + 1 s, by itself', async (t) => {
    const boundMs = (CHECK_BEATS * TICK_S + TICK_S + 1) * 1000;
    const killedAt = cluster.kill('alpha');
    await shows('#master-name', /^bravo$/);
    const shownMs = preciseNow() - killedAt;
    t.diagnostic(`new master shown ${Math.round(shownMs)} ms after the kill (bound ${boundMs} ms)`);
    assert.ok(shownMs <= boundMs, `shown after ${Math.round(shownMs)} ms, bound ${boundMs} ms`);
    assert.equal(await text('#self-state'), 'master');
    // The dead master stays listed, as left, and the failover is timed.
    await page.locator('#servers-body tr', { hasText: /^alpha.*left/ }).waitFor({ timeout: 15_000 });
    // How long it took counts from alpha's last heartbeat: at least the silence it takes to notice (a tock).
    const sub = await text('#failover-sub');
    const took = /^alpha → bravo in (\d+(?:\.\d)?) s · 1 in total$/.exec(sub);
    assert.ok(took, sub);
    assert.ok(Number(took[1]) >= CHECK_BEATS * TICK_S && Number(took[1]) <= boundMs / 1000, sub);
    assert.match(await text('#failover-when'), /ago$/);
    // The card and the table's heading count the same servers, and the same departure.
    assert.equal(await text('#members-count'), '2 servers');
    assert.equal(await text('#servers-count'), '2 servers · 1 left');
    assert.match(await text('#members-sub'), /· 1 left recently$/);
    await page.screenshot({ path: path.join(RESULTS, 'status-page-after-failover.png'), fullPage: true });
    t.diagnostic(`screenshot: ${path.join(RESULTS, 'status-page-after-failover.png')}`);
  });

  test('loaded nothing off 127.0.0.1, and no console errors (a CSP violation would be one)', () => {
    assert.deepEqual(browser.offsite, []);
    assert.deepEqual(problems, []);
  });

  /** What a reader sees of the page's figures: is the main part greyed out, and how faded. */
  const looks = (): Promise<{ filter: string; opacity: number; banner: boolean; stale: boolean }> =>
    page.evaluate(`(() => {
      const style = getComputedStyle(document.querySelector('main'));
      return { filter: style.filter, opacity: Number(style.opacity), banner: !document.getElementById('stale').hidden, stale: document.body.classList.contains('stale') };
    })()`);

  test('its server gone: every figure greyed under a banner naming the server and the time of the data; back by itself when the server is', async (t) => {
    const live = await looks();
    assert.deepEqual(live, { filter: 'none', opacity: 1, banner: false, stale: false });
    const lastGood = Date.now();
    await cluster.stop('bravo');
    await page.locator('#stale:not([hidden])').waitFor({ timeout: 10_000 });
    const banner = await text('#stale');
    const shown = /^Connection to bravo lost — data as of (\d\d):(\d\d):(\d\d) \(.* ago; every figure below is stale; retrying\)$/.exec(
      banner.replace(/\s+/g, ' ').trim(),
    );
    assert.ok(shown, banner);
    // The time shown is the last answer's (local time of the browser, as the test's): within a few seconds of before the stop.
    const at = new Date(lastGood);
    at.setHours(Number(shown[1]), Number(shown[2]), Number(shown[3]));
    assert.ok(
      Math.abs(at.getTime() - lastGood) < 5_000,
      `data as of ${shown.slice(1).join(':')}, last good answer at ${new Date(lastGood).toTimeString()}`,
    );
    const stale = await looks();
    assert.equal(stale.filter, 'grayscale(1)');
    assert.ok(stale.opacity <= 0.5, `opacity ${stale.opacity}`);
    assert.ok(stale.banner && stale.stale);
    assert.match(await text('#conn-text'), /connection lost/);
    assert.equal(await page.title(), 'connection lost · pixl-server-multi');
    await page.screenshot({ path: path.join(RESULTS, 'status-page-stale.png'), fullPage: true });
    t.diagnostic(`screenshot: ${path.join(RESULTS, 'status-page-stale.png')}`);

    // The same server comes back on the same port: the page finds it by itself.
    await cluster.start('bravo', {}, false, loopbackWebConfig(ports.bravo as number, htdocs));
    await page.locator('#stale[hidden]').waitFor({ state: 'attached', timeout: 15_000 });
    await page.waitForFunction("!document.body.classList.contains('stale')", undefined, { timeout: 15_000 });
    assert.deepEqual(await looks(), { filter: 'none', opacity: 1, banner: false, stale: false });
    assert.match(await text('#conn-text'), /^live · from bravo$/);
    await shows('#servers-body', /bravo/);
    await page.screenshot({ path: path.join(RESULTS, 'status-page-recovered.png'), fullPage: true });
    t.diagnostic(`screenshot: ${path.join(RESULTS, 'status-page-recovered.png')}`);
    problems.length = 0; // the failed fetches are logged by Chromium as console errors, as they should be
  });
});
