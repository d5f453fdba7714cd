/**
 * Real pixl-server instances with the component, in this process, on loopback
 * (broadcast 127.255.255.255, a free port per test), and waiting on their events.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import PixlServer = require('pixl-server');
import MultiServer = require('../../src/index');
import { assertLoopbackConfig } from '../../tools/loopback';
import { WAIT_MS } from './wait';

export const PACKAGE_ROOT = path.resolve(__dirname, '..', '..', '..');
export const BROADCAST = '127.255.255.255';
export { WAIT_MS } from './wait';

/** A log folder for one test file; remove it with the returned function. */
export function logFolder(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export function makeServer(
  hostname: string,
  port: number,
  logDir: string,
  multi: Record<string, unknown> = {},
  extra: Record<string, unknown> = {},
): PixlServer {
  // A broadcast address only where it is the transport: unicast and multicast refuse one.
  const broadcast = multi.transport === undefined || multi.transport === 'broadcast' ? { broadcast_ip: BROADCAST } : {};
  const section = { comm_port: port, heartbeat_freq: 0.05, check_beats: 3, ...broadcast, ...multi };
  assertLoopbackConfig(section);
  return new PixlServer({
    __name: 'TestServer',
    __version: '1.0',
    config: {
      hostname,
      ip: '127.0.0.1',
      foreground: true,
      echo: false,
      log_dir: logDir,
      log_filename: `${hostname}.log`,
      debug_level: 9,
      MultiServer: section,
      ...extra,
    },
    components: [require(PACKAGE_ROOT) as typeof MultiServer],
  });
}

export const multi = (server: PixlServer): MultiServer => server.MultiServer as MultiServer;

export function start(server: PixlServer): Promise<void> {
  return new Promise((resolve) => server.startup(() => resolve()));
}

/** Shut down a pixl-server, or a component on its own (anything with pixl-server's `shutdown(callback)`). */
export function stop(server: { shutdown(callback: () => void): void }): Promise<void> {
  return new Promise((resolve) => server.shutdown(() => resolve()));
}

/** Resolve when `predicate` holds (checked on every election event and every 10 ms); reject at the deadline. */
export function until(predicate: () => boolean, what: string, servers: PixlServer[], waitMs = WAIT_MS): Promise<void> {
  return new Promise((resolve, reject) => {
    const names = ['master', 'slave', 'addserver', 'deleteserver', 'masterchange'] as const;
    const check = (): void => {
      if (!predicate()) return;
      cleanup();
      resolve();
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      clearInterval(poll);
      for (const server of servers) for (const name of names) server.removeListener(name, check);
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out waiting for ${what}`));
    }, waitMs);
    const poll = setInterval(check, 10);
    for (const server of servers) for (const name of names) server.on(name, check);
    check();
  });
}
