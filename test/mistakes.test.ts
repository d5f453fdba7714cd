/**
 * A user's first hour: the plausible mistakes of a new user, each caught and named where the
 * user looks (the log at the default debug_level 1, the terminal), in real pixl-server
 * instances on loopback. The README's Troubleshooting section lists each with its message.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import type { EventEmitter } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import PixlServer = require('pixl-server');
import MultiServer = require('../src/index');
import { assertLoopbackConfig, freeUdpPort } from '../tools/loopback';
import { ProcessCluster } from '../tools/process-cluster';
import { freeTcpPort, loopbackWebConfig } from '../tools/web';
import { start, stop } from './helpers/pixl';

const PACKAGE_ROOT = path.resolve(__dirname, '..', '..');

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
    config: {
      hostname,
      ip: '127.0.0.1',
      foreground: true,
      echo: false,
      log_dir: logDir,
      log_filename: `${hostname}.log`,
      debug_level: 1,
      ...config,
    },
    components: [MultiServer],
  });
  const rows: Row[] = [];
  pixl.once('prestart', () =>
    (pixl.logger as unknown as EventEmitter).on('row', (_line: string, _cols: unknown, args: Record<string, unknown>) =>
      rows.push({
        category: String(args.category ?? ''),
        code: String(args.code ?? ''),
        component: String(args.component ?? ''),
        msg: String(args.msg ?? ''),
      }),
    ),
  );
  return { server: pixl, rows };
}

/** MultiServer's lines at level 1: what a user sees by default. */
const levelOne = (rows: Row[]): string[] =>
  rows.filter((r) => r.component === 'MultiServer' && r.category === 'debug' && r.code === '1').map((r) => r.msg);

describe('config mistakes are named at level 1, with the key that was meant', () => {
  test('a misspelt key in the section: the line names it and the key meant, and the server runs on', async () => {
    const port = await freeUdpPort();
    const { server: pixl, rows } = server('speller', {
      MultiServer: { comm_port: port, broadcast_ip: '127.255.255.255', heartbeat_frequency: 1, coordinator: null },
    });
    await start(pixl);
    try {
      assert.deepEqual(levelOne(rows), [
        'MultiServer config: unknown key `heartbeat_frequency` (did you mean `heartbeat_freq`?) in the MultiServer section; it is ignored',
      ]);
      assert.equal((pixl.MultiServer as MultiServer).settings?.heartbeat_freq, 20, 'the misspelt key was read after all');
    } finally {
      await stop(pixl);
    }
  });

  test('a section name in the wrong case, and a key of the section at the top level: each named with where it belongs', async () => {
    // A real MultiServer section keeps this test on loopback; without one the defaults would
    // broadcast on the LAN (what the message then says is checked in config.test.ts).
    const port = await freeUdpPort();
    const { server: pixl, rows } = server('sectionless', {
      multiserver: { heartbeat_freq: 1 },
      heartbeat_freq: 1,
      MultiServer: { comm_port: port, broadcast_ip: '127.255.255.255' },
    });
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
    const { server: pixl } = server('strict', {
      MultiServer: { comm_port: port, broadcast_ip: '127.255.255.255', strict_config: true, heartbeat_frequency: 1 },
    });
    // pixl-server initialises components inside startup(): a config error throws from there,
    // before any daemon fork, so it lands on the terminal as an uncaught exception would.
    assert.throws(
      () => pixl.startup(),
      (err: unknown) =>
        err instanceof MultiServer.ConfigError &&
        err.key === 'heartbeat_frequency' &&
        /did you mean `heartbeat_freq`\?.*strict_config is on/.test(err.message),
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
      assert.deepEqual(levelOne(rows), [
        'MultiServer config: unknown key `check_beat` (did you mean `check_beats`?) in the MultiServer section; it is ignored',
      ]);
      assert.equal(component.settings?.heartbeat_freq, 0.25, 'the valid part of the reload applies');
      config.set('MultiServer', { ...base, heartbeat_freq: 0.1, strict_config: true, quorom: 2 });
      config.refreshSubs();
      assert.equal(component.settings?.heartbeat_freq, 0.25, 'a refused reload changed the timing');
      const refused = rows.filter((r) => r.category === 'error' && r.code === 'config').map((r) => r.msg);
      assert.deepEqual(refused, [
        'Config reload ignored: MultiServer config: unknown key `quorom` (did you mean `quorum`?) in the MultiServer section (strict_config is on)',
      ]);
    } finally {
      await stop(pixl);
    }
  });
});

/** One raw HTTP/1.1 GET (any request-target, as a browser, a scanner or curl --path-as-is sends it): the status code, or 0 if the connection closed unanswered. */
function rawGet(port: number, target: string): Promise<number> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    socket.setTimeout(10_000, () => socket.destroy());
    socket.on('connect', () => socket.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`));
    socket.on('data', (chunk) => (text += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)));
  });
}

/** Paths no route serves: what browsers, scanners and typos send. The generator covers the class; the list the ones seen. */
function strayPaths(): string[] {
  const seen = [
    '/favicon.ico',
    '/',
    '/../etc/passwd',
    '/%2e%2e/%2e%2e/etc/passwd',
    '/..%2f..%2fetc%2fpasswd',
    '//',
    '/cluster/../../x',
    '/robots.txt',
    '/index.html',
    '/?x=1',
    '/%00',
    '/a%ZZ',
    '/' + 'a'.repeat(4000),
    '/.git/config',
    '/api/cluster',
    '/health/',
    '/HEALTH',
  ];
  let seed = 23;
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const pieces = [
    '..',
    '.',
    '%2e',
    '%2f',
    '%5c',
    '\\',
    'etc',
    'passwd',
    '%00',
    '~',
    'index.html',
    'a b',
    '%',
    '?',
    '#',
    ';',
    'é',
    '%C0%AF',
    '*',
    '',
  ];
  for (let i = 0; i < 60; i++) {
    const parts: string[] = [];
    for (let j = random(6); j >= 0; j--) parts.push(pieces[random(pieces.length)] as string);
    seen.push('/' + parts.join('/').replace(/ /g, '%20').replace(/é/g, '%C3%A9'));
  }
  return seen;
}

describe('HTTP routes on and pixl-server-web without http_htdocs_dir', () => {
  const cluster = new ProcessCluster({
    heartbeatFreq: 0.2,
    checkBeats: 3,
    debugLevel: 1,
    multi: { http_health_uri: '/health', http_ui_uri: '/cluster' },
  });
  let port = 0;
  before(async () => {
    port = await freeTcpPort();
    // pixl-server-web's config as a newcomer writes it: a port, and no htdocs directory.
    await cluster.start('web01', {}, false, { http_port: port, http_bind_address: '127.0.0.1' });
    await cluster.waitAgreed(15_000, 'web01');
  });
  after(() => cluster.stopAll());

  test('startup says so at level 1, naming the key', () => {
    const log = readFileSync(path.join(cluster.logDir, 'web01.log'), 'utf8');
    assert.match(
      log,
      /\[MultiServer\]\[debug\]\[1\]\[WebServer config: `http_htdocs_dir` is unset, and pixl-server-web would crash the process on a request no handler takes \(`GET \/favicon\.ico`\): MultiServer answers those 404/,
    );
  });

  test('no request for a path no route serves takes the server down: each is answered, the process lives, the routes still answer', async () => {
    const paths = strayPaths();
    const answers = await Promise.all(paths.map((target) => rawGet(port, target)));
    const unanswered = paths.filter((_, i) => answers[i] === 0);
    assert.deepEqual(unanswered, [], 'requests left without an answer');
    for (const [i, target] of paths.entries()) assert.ok((answers[i] as number) >= 400, `${target} answered ${answers[i]}`);
    assert.equal(answers[0], 404, '/favicon.ico');
    assert.deepEqual(cluster.live(), ['web01'], 'the server process died');
    assert.equal(await rawGet(port, '/health'), 200);
    assert.equal(await rawGet(port, '/cluster'), 200);
  });
});

describe('with http_htdocs_dir set, pixl-server-web serves it as before', () => {
  test('a file is served, a missing one and one outside are 404, and nothing is logged about htdocs', async () => {
    const htdocs = mkdtempSync(path.join(os.tmpdir(), 'psm-htdocs-'));
    writeFileSync(path.join(htdocs, 'hello.txt'), 'hello\n');
    const cluster = new ProcessCluster({ heartbeatFreq: 0.2, checkBeats: 3, debugLevel: 1, multi: { http_health_uri: '/health' } });
    try {
      const port = await freeTcpPort();
      await cluster.start('web02', {}, false, loopbackWebConfig(port, htdocs));
      assert.equal(await rawGet(port, '/hello.txt'), 200);
      assert.equal(await rawGet(port, '/favicon.ico'), 404);
      assert.equal(await rawGet(port, '/../etc/passwd'), 404);
      assert.deepEqual(cluster.live(), ['web02']);
      const log = path.join(cluster.logDir, 'web02.log');
      assert.doesNotMatch(existsSync(log) ? readFileSync(log, 'utf8') : '', /http_htdocs_dir/);
    } finally {
      await cluster.stopAll();
      rmSync(htdocs, { recursive: true, force: true });
    }
  });
});

describe('another component failing at startup', () => {
  test('an HTTP port in use: exit code 1, and the reason on stderr, with the echo the README suggests', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', () => resolve()));
    const held = (holder.address() as net.AddressInfo).port;
    const udpPort = await freeUdpPort();
    const section = { comm_port: udpPort, broadcast_ip: '127.255.255.255', http_health_uri: '/health' };
    assertLoopbackConfig(section);
    const app = `
      const PixlServer = require('pixl-server');
      new PixlServer({ __name: 'App', __version: '1.0', config: {
        hostname: 'web03', foreground: true, echo: 'MultiServer', log_dir: ${JSON.stringify(logDir)}, log_filename: 'web03.log', debug_level: 4,
        WebServer: { http_port: ${held}, http_bind_address: '127.0.0.1' },
        MultiServer: ${JSON.stringify(section)} },
        components: [require(${JSON.stringify(PACKAGE_ROOT)}), require('pixl-server-web')] }).startup();`;
    try {
      const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        execFile(process.execPath, ['-e', app], { cwd: PACKAGE_ROOT, timeout: 30_000 }, (err, _stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stderr }),
        );
      });
      assert.equal(result.code, 1);
      assert.match(
        result.stderr,
        new RegExp(
          `^pixl-server-multi: the server could not start: .*EADDRINUSE.*127\\.0\\.0\\.1:${held}\\. pixl-server exits with code 1; its log: .*web03\\.log\\n$`,
        ),
      );
    } finally {
      holder.close();
    }
  });
});
