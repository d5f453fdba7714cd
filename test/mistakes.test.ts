/**
 * A user's first hour: the plausible mistakes of a new user, each caught and named where the
 * user looks (the log at the default debug_level 1, the terminal), in real pixl-server
 * instances on loopback. The README's Troubleshooting section lists each with its message.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import type { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import PixlServer = require('pixl-server');
import MultiServer = require('../src/index');
import { assertLoopbackConfig, freeUdpPort } from '../tools/loopback';

const logDir = mkdtempSync(path.join(os.tmpdir(), 'psm-mistakes-'));
after(() => rmSync(logDir, { recursive: true, force: true }));

interface Row {
  category: string;
  code: string;
  component: string;
  msg: string;
}

/** A server as a new user writes it: debug_level 1 (pixl-server's default), every log row captured. */
function server(hostname: string, config: Record<string, unknown>): { server: PixlServer; rows: Row[] } {
  const section = config.MultiServer as Record<string, unknown> | undefined;
  if (section) assertLoopbackConfig(section);
  const pixl = new PixlServer({
    __name: 'FirstHour',
    __version: '1.0',
    config: { hostname, ip: '127.0.0.1', foreground: true, echo: false, log_dir: logDir, log_filename: `${hostname}.log`, debug_level: 1, ...config },
    components: [MultiServer],
  });
  const rows: Row[] = [];
  pixl.once('prestart', () =>
    (pixl.logger as unknown as EventEmitter).on('row', (_line: string, _cols: unknown, args: Record<string, unknown>) =>
      rows.push({ category: String(args.category ?? ''), code: String(args.code ?? ''), component: String(args.component ?? ''), msg: String(args.msg ?? '') }),
    ),
  );
  return { server: pixl, rows };
}

function start(pixl: PixlServer): Promise<void> {
  return new Promise((resolve) => pixl.startup(() => resolve()));
}

function stop(pixl: PixlServer): Promise<void> {
  return new Promise((resolve) => pixl.shutdown(() => resolve()));
}

/** MultiServer's lines at level 1: what a user sees by default. */
const levelOne = (rows: Row[]): string[] => rows.filter((r) => r.component === 'MultiServer' && r.category === 'debug' && r.code === '1').map((r) => r.msg);

describe('config mistakes are named at level 1, with the key that was meant', () => {
  test('a misspelt key in the section: the line names it and the key meant, and the server runs on', async () => {
    const port = await freeUdpPort();
    const { server: pixl, rows } = server('speller', { MultiServer: { comm_port: port, broadcast_ip: '127.255.255.255', heartbeat_frequency: 1, coordinator: null } });
    await start(pixl);
    try {
      assert.deepEqual(levelOne(rows), ['MultiServer config: unknown key `heartbeat_frequency` (did you mean `heartbeat_freq`?) in the MultiServer section; it is ignored']);
      assert.equal((pixl.MultiServer as MultiServer).settings?.heartbeat_freq, 20, 'the misspelt key was read after all');
    } finally {
      await stop(pixl);
    }
  });

  test('a section name in the wrong case, and a key of the section at the top level: each named with where it belongs', async () => {
    // A real MultiServer section keeps this test on loopback; without one the defaults would
    // broadcast on the LAN (what the message then says is checked in config.test.ts).
    const port = await freeUdpPort();
    const { server: pixl, rows } = server('sectionless', { multiserver: { heartbeat_freq: 1 }, heartbeat_freq: 1, MultiServer: { comm_port: port, broadcast_ip: '127.255.255.255' } });
    await start(pixl);
    try {
      assert.deepEqual(levelOne(rows), [
        'MultiServer config: the top-level key `multiserver` is not read (did you mean `MultiServer`? the name is case-sensitive)',
        'MultiServer config: `heartbeat_freq` is at the top level of the config, where MultiServer does not read it (did you mean `MultiServer.heartbeat_freq`, inside the section?)',
      ]);
    } finally {
      await stop(pixl);
    }
  });

  test('strict_config: the unknown key stops startup before any socket, with an error naming it', async () => {
    const port = await freeUdpPort();
    const { server: pixl } = server('strict', { MultiServer: { comm_port: port, broadcast_ip: '127.255.255.255', strict_config: true, heartbeat_frequency: 1 } });
    // pixl-server initialises components inside startup(): a config error throws from there,
    // before any daemon fork, so it lands on the terminal as an uncaught exception would.
    assert.throws(
      () => pixl.startup(),
      (err: unknown) => err instanceof MultiServer.ConfigError && err.key === 'heartbeat_frequency' && /did you mean `heartbeat_freq`\?.*strict_config is on/.test(err.message),
    );
    assert.equal((pixl.MultiServer as MultiServer).transport, null, 'a socket was opened');
  });

  test('on reload: a new unknown key is named; with strict_config the reload is refused and the running settings stay', async () => {
    const port = await freeUdpPort();
    const base = { comm_port: port, broadcast_ip: '127.255.255.255', heartbeat_freq: 0.5 };
    const { server: pixl, rows } = server('reloader', { MultiServer: base });
    await start(pixl);
    const component = pixl.MultiServer as MultiServer;
    const config = pixl.config as unknown as { set(key: string, value: unknown): void; refreshSubs(): void };
    try {
      assert.deepEqual(levelOne(rows), []);
      config.set('MultiServer', { ...base, heartbeat_freq: 0.25, check_beat: 2 });
      config.refreshSubs();
      assert.deepEqual(levelOne(rows), ['MultiServer config: unknown key `check_beat` (did you mean `check_beats`?) in the MultiServer section; it is ignored']);
      assert.equal(component.settings?.heartbeat_freq, 0.25, 'the valid part of the reload applies');
      config.set('MultiServer', { ...base, heartbeat_freq: 0.1, strict_config: true, quorom: 2 });
      config.refreshSubs();
      assert.equal(component.settings?.heartbeat_freq, 0.25, 'a refused reload changed the timing');
      const refused = rows.filter((r) => r.category === 'error' && r.code === 'config').map((r) => r.msg);
      assert.deepEqual(refused, ['Config reload ignored: MultiServer config: unknown key `quorom` (did you mean `quorum`?) in the MultiServer section (strict_config is on)']);
    } finally {
      await stop(pixl);
    }
  });
});
