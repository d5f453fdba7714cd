/**
 * Headless Chromium for tests: Debian's /usr/bin/chromium driven by playwright-core, with the
 * project's flags, a fresh profile, and every request off 127.0.0.1 refused and recorded.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { BrowserContext } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** Why browser tests cannot run here, or null when they can. */
export function browserUnavailable(): string | null {
  return existsSync(CHROMIUM) ? null : `${CHROMIUM} is missing (Debian: apt-get install chromium; .ci/run installs it)`;
}

/** Nothing in the browser talks to the outside: no background services, no QUIC, no sync. */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Name lookups fail for every host but loopback: a stray URL cannot leave the machine.
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
];

export interface Browser {
  context: BrowserContext;
  /** URLs the pages asked for off 127.0.0.1 (refused). */
  offsite: string[];
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  const profile = mkdtempSync(path.join(os.tmpdir(), 'psm-chromium-'));
  // A persistent context is how playwright takes a --user-data-dir of ours (a fresh one).
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    chromiumSandbox: false,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1280, height: 760 },
    deviceScaleFactor: 1,
  });
  const offsite: string[] = [];
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === '127.0.0.1' || url.protocol === 'data:') return route.continue();
    offsite.push(url.href);
    return route.abort('blockedbyclient');
  });
  return {
    context,
    offsite,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
