/**
 * The component shell inside real pixl-server instances, in this process, on loopback
 * (broadcast 127.255.255.255, a free port per test): drop-in loading, events on the
 * component and the server, data, eligibility, reload, config errors, hostile packets.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as dgram from 'node:dgram';
import type PixlServer = require('pixl-server');
import type MultiServer = require('../src/index');
import { freeUdpPort } from '../tools/loopback';
import { BROADCAST, logFolder, makeServer as makeTestServer, multi, PACKAGE_ROOT, start, stop, until } from './helpers/pixl';
import { waitFor } from './helpers/wait';
import type { JsonValue } from '../src/protocol/messages';
import { nextTerm, slotOf, termSlot } from '../src/protocol/terms';

const folder = logFolder('psm-component-');
const logDir = folder.dir;
after(folder.remove);

function makeServer(hostname: string, port: number, multi: Record<string, unknown> = {}): PixlServer {
  return makeTestServer(hostname, port, logDir, multi);
}

function udpHandles(): number {
  return process.getActiveResourcesInfo().filter((name) => name === 'UDPWrap').length;
}

describe('drop-in loading', () => {
  test("require('pixl-server-multi') is the component class, named MultiServer", () => {
    const loaded = require(PACKAGE_ROOT) as typeof MultiServer;
    assert.equal(typeof loaded, 'function');
    const server = makeServer('loader', 3014);
    assert.ok(server.MultiServer instanceof loaded);
    assert.equal(multi(server).__name, 'MultiServer');
    assert.equal(multi(server).masterHostname, '');
    assert.equal(multi(server).master, false);
    assert.equal(multi(server).slave, false);
    assert.equal(multi(server).eligible, true);
    assert.deepEqual(Object.keys(multi(server).servers), []);
  });

  test('ESM: import MultiServer from "pixl-server-multi" gives the same class', () => {
    const script = `import MultiServer from 'pixl-server-multi'; import { createRequire } from 'node:module';
      const required = createRequire(import.meta.url)('pixl-server-multi');
      process.stdout.write(String(MultiServer === required && typeof MultiServer === 'function'));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: PACKAGE_ROOT, encoding: 'utf8' });
    assert.equal(out, 'true');
  });
});

describe('bad config fails startup', () => {
  test('the error names the key and the value, and nothing is left bound', () => {
    const before = udpHandles();
    const server = makeServer('badconfig', 3014, { heartbeat_freq: -1 });
    assert.throws(
      () => server.startup(),
      (err: Error) => /`heartbeat_freq`/.test(err.message) && /`-1`/.test(err.message),
    );
    assert.equal(udpHandles(), before);
    const other = makeServer('badport', 3014, { comm_port: 99999 });
    assert.throws(() => other.startup(), /`comm_port`.*`99999`/);
    assert.equal(udpHandles(), before);
  });
});

describe('a live pair on loopback', () => {
  test('elects, emits on the component and the server, shares data and hands off', async () => {
    const port = await freeUdpPort();
    // A tick of 0.25 s: at 0.05 s a loaded machine's event-loop delays read as stalls, and a
    // master that notices a stall gives the role up and takes it again (more events than asserted).
    const a = makeServer('alpha', port, { heartbeat_freq: 0.25 });
    const b = makeServer('bravo', port, { heartbeat_freq: 0.25 });
    const seen: string[] = [];
    for (const server of [a, b]) {
      for (const name of ['master', 'slave'] as const) {
        server.on(name, () => seen.push(`server:${server.hostname}:${name}`));
        multi(server).on(name, () => seen.push(`component:${server.hostname}:${name}`));
      }
    }
    const added: string[] = [];
    a.on('addserver', (record: { hostname: string }) => added.push(record.hostname));
    // A closed socket leaves the active-handle list a loop turn or two after its close callback.
    await waitFor(() => udpHandles() === 0, 'no UDP sockets open before the test');
    await start(b);
    await start(a);
    try {
      assert.equal(udpHandles(), 2, 'one socket per server');
      await until(() => multi(a).master && multi(b).masterHostname === 'alpha', 'alpha to be master', [a, b]);
      assert.deepEqual(seen.sort(), ['component:alpha:master', 'component:bravo:slave', 'server:alpha:master', 'server:bravo:slave']);
      assert.deepEqual(added, ['bravo']);

      const servers = multi(a).servers;
      assert.equal(Object.getPrototypeOf(servers), null);
      assert.deepEqual(Object.keys(servers).sort(), ['alpha', 'bravo']);
      const keys: string[] = [];
      for (const key in servers) keys.push(key);
      assert.deepEqual(keys.sort(), ['alpha', 'bravo']);
      assert.equal(servers.alpha?.self, true);
      assert.equal(servers.bravo?.self, false);
      assert.equal(servers.bravo?.ip, '127.0.0.1');

      multi(b).data.jobs = 7;
      await until(() => multi(a).servers.bravo?.data.jobs === 7, 'bravo data at alpha', [a, b]);
      multi(b).data = { replaced: true };
      await until(() => multi(a).servers.bravo?.data.replaced === true, 'replaced data at alpha', [a, b]);

      multi(a).eligible = false;
      assert.equal(multi(a).master, false, 'an ineligible master steps down at once');
      await until(() => multi(b).master && multi(a).masterHostname === 'bravo', 'bravo to take over', [a, b]);
      assert.equal(multi(a).servers.alpha?.eligible, false);
    } finally {
      await stop(a);
      await stop(b);
    }
    await waitFor(() => udpHandles() === 0, 'both sockets to close on shutdown');
  });

  test('promote() and stepDown() move the role over the wire and settle their promises', async () => {
    const port = await freeUdpPort();
    const a = makeServer('alpha', port);
    const b = makeServer('bravo', port);
    await start(a);
    await start(b);
    try {
      await until(() => multi(a).master && multi(b).masterHostname === 'alpha', 'alpha to be master', [a, b]);
      const firstTerm = multi(a).term;
      const terms: number[] = [];
      b.on('master', (term: number) => terms.push(term));
      await multi(b).promote();
      assert.equal(multi(b).master, true);
      // The next term in bravo's own slot: a term belongs to one claimant (protocol/terms.ts).
      assert.deepEqual(terms, [nextTerm(firstTerm, termSlot('bravo'))]);
      await until(() => multi(a).masterHostname === 'bravo', 'alpha to follow bravo', [a, b]);
      assert.equal(multi(a).master, false);
      await assert.rejects(multi(a).stepDown(), /not master/);
      await multi(b).stepDown();
      await until(() => multi(a).master, 'alpha to take the role back', [a, b]);
      assert.ok(multi(a).term > (terms[0] as number));
      assert.equal(slotOf(multi(a).term), termSlot('alpha'));
    } finally {
      await stop(a);
      await stop(b);
    }
  });

  test('messages, request/reply, key split and checkpoints over the wire', async () => {
    const port = await freeUdpPort();
    const a = makeServer('alpha', port);
    const b = makeServer('bravo', port);
    await start(a);
    await start(b);
    try {
      await until(() => multi(a).master && multi(b).masterHostname === 'alpha', 'alpha to be master', [a, b]);
      await until(() => multi(b).members.length === 2 && multi(a).members.length === 2, 'both to see both members', [a, b]);

      const received: unknown[] = [];
      a.on('message', (type: string, payload: unknown, from: string) => received.push([type, payload, from]));
      multi(b).send('master', 'job.done', { id: 42 });
      await until(() => received.length === 1, 'the message to arrive', [a, b]);
      assert.deepEqual(received, [['job.done', { id: 42 }, 'bravo']]);

      multi(a).on('message', (type: string, payload: unknown, _from: string, reply?: (p: JsonValue) => void) => {
        if (type === 'add') reply?.((payload as number[]).reduce((x, y) => x + y, 0));
      });
      assert.equal(await multi(b).request('alpha', 'add', [1, 2, 3]), 6);
      await assert.rejects(multi(b).request('alpha', 'nobody-answers', null, { timeoutMs: 100 }), /timed out/);
      assert.throws(() => multi(b).send('nowhere', 'x', 1), /unknown server/);
      assert.throws(() => multi(b).send('alpha', 'bad type!', 1), /message type/);
      assert.throws(() => multi(b).send('alpha', 'big', 'x'.repeat(40_000)), RangeError);

      // Both servers assign every key the same way, and each key to exactly one of them.
      for (const key of ['k1', 'k2', 'k3', 'k4', 'k5', 'k6']) {
        assert.equal(multi(a).masterFor(key), multi(b).masterFor(key));
        assert.notEqual(multi(a).isMasterFor(key), multi(b).isMasterFor(key));
      }
      assert.equal(
        multi(a).doIfMaster(() => undefined),
        true,
      );
      assert.equal(
        multi(b).doIfMaster(() => undefined),
        false,
      );

      assert.throws(() => multi(b).setCheckpoint({ n: 1 }), /only the master/);
      assert.throws(() => multi(a).setCheckpoint({ blob: 'x'.repeat(5000) }), RangeError);
      void multi(a).setCheckpoint({ nextJob: 17 });
      await until(() => JSON.stringify(multi(b).checkpoint) === '{"nextJob":17}', 'the checkpoint to reach bravo', [a, b]);
      const inherited: unknown[] = [];
      b.on('master', (_term: number, checkpoint: unknown) => inherited.push(checkpoint));
      await stop(a);
      await until(() => multi(b).master, 'bravo to take over', [b]);
      assert.deepEqual(inherited, [{ nextJob: 17 }]);
    } finally {
      if (!a.shut) await stop(a);
      await stop(b);
    }
  });

  test('a config reload applies new timings without a restart, and a bad reload is ignored', async () => {
    const port = await freeUdpPort();
    const server = makeServer('solo', port, { heartbeat_freq: 0.2 });
    await start(server);
    try {
      const component = multi(server);
      assert.equal(component.core?.tickMs, 200);
      const config = server.config as unknown as { set(key: string, value: unknown): void; refreshSubs(): void; emit(name: string): void };
      config.set('MultiServer', { comm_port: port, heartbeat_freq: 0.05, check_beats: 2, broadcast_ip: BROADCAST });
      config.refreshSubs();
      assert.equal(component.core?.tickMs, 50);
      assert.equal(component.core?.tockMs, 100);
      config.set('MultiServer', { comm_port: port, heartbeat_freq: 'fast', broadcast_ip: BROADCAST });
      config.refreshSubs();
      assert.equal(component.core?.tickMs, 50, 'a bad reload changed the timing');
      await until(() => component.master, 'solo to become master', [server]);
    } finally {
      await stop(server);
    }
  });

  test('hostile datagrams are dropped and counted, never thrown, and change nothing', async () => {
    const port = await freeUdpPort();
    const server = makeServer('target', port);
    await start(server);
    const attacker = dgram.createSocket('udp4');
    try {
      await until(() => multi(server).master, 'target to become master', [server]);
      const hostile = [
        'garbage',
        '{"action":"heartbeat","hostname":"__proto__","ip":"","master":1,"eligible":1,"uptime":1,"data":{}}',
        '{"action":"heartbeat","hostname":"x","ip":"","master":1,"eligible":1,"uptime":1,"data":{"__proto__":{"p":1}}}',
        '{"action":"shutdown","hostname":"target"}',
        '{"action":"heartbeat","hostname":{"a":1}}',
        '{' + '"a":['.repeat(5000),
      ];
      const before = multi(server).stats.packetsIn;
      for (const text of hostile) {
        await new Promise<void>((resolve) => attacker.send(Buffer.from(text), port, '127.0.0.1', () => resolve()));
      }
      await until(() => multi(server).stats.packetsIn >= before + hostile.length, 'the datagrams to arrive', [server]);
      const dropped = multi(server).stats.dropped;
      assert.equal((dropped['not-json'] ?? 0) + (dropped['bad-field'] ?? 0) + (dropped['special-key'] ?? 0), hostile.length - 1);
      assert.deepEqual(Object.keys(multi(server).servers), ['target']);
      assert.equal(multi(server).master, true, 'a forged shutdown notice for ourselves changed our role');
      assert.equal(({} as Record<string, unknown>).p, undefined);
    } finally {
      attacker.close();
      await stop(server);
    }
  });
});
