/**
 * The component with real sockets on loopback (broadcast 127.255.255.255, a free port;
 * nothing leaves the machine): the 'error' event for a duplicate hostname, counting and
 * rate-limited logging of unauthenticated datagrams, and a key rotation by config reload.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import MultiServer = require('../src/index');
import { assertLoopbackConfig, freeUdpPort } from '../tools/loopback';
import { stop } from './helpers/pixl';
import { waitFor } from './helpers/wait';

const BROADCAST = '127.255.255.255';

class FakeConfig extends EventEmitter {
  constructor(public data: Record<string, unknown>) {
    super();
  }
  get(key?: string): unknown {
    return key === undefined ? this.data : this.data[key];
  }
  set(key: string, value: unknown): void {
    this.data[key] = value;
  }
  /** What pixl-server does on a config file change. */
  reload(data: Record<string, unknown>): void {
    this.data = data;
    this.emit('reload');
  }
}

interface Harness {
  multi: MultiServer;
  config: FakeConfig;
  logs: string[];
  errors: string[];
}

/** A MultiServer attached to a minimal stand-in for pixl-server, logs captured. */
function harness(hostname: string, section: Record<string, unknown>): Harness {
  assertLoopbackConfig(section);
  const logs: string[] = [];
  const errors: string[] = [];
  const server = Object.assign(new EventEmitter(), {
    hostname,
    ip: '127.0.0.1',
    config: new FakeConfig({}),
    logger: {
      debug: (level: number, msg: string) => logs.push(`${level} ${msg}`),
      error: (code: string, msg: string) => errors.push(`${code} ${msg}`),
      get: () => 10,
      set: () => undefined,
    },
    shutdown: () => undefined,
  });
  const config = new FakeConfig({ ...section });
  const multi = new MultiServer();
  multi.init(server as unknown as Parameters<MultiServer['init']>[0], config as unknown as Parameters<MultiServer['init']>[1]);
  return { multi, config, logs, errors };
}

function start(h: Harness): Promise<void> {
  return new Promise((resolve, reject) => h.multi.startup((err) => (err ? reject(err) : resolve())));
}

async function sendRaw(port: number, datagrams: Buffer[]): Promise<void> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  for (const datagram of datagrams) {
    await new Promise<void>((resolve, reject) => socket.send(datagram, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
  }
  await new Promise<void>((resolve) => socket.close(() => resolve()));
}

const FAST = { heartbeat_freq: 0.1, check_beats: 3, broadcast_ip: BROADCAST };

describe('component security (loopback sockets)', () => {
  test('duplicate hostname: an error event naming both processes where someone listens, no throw where nobody does', async () => {
    const port = await freeUdpPort();
    const section = { ...FAST, comm_port: port, secret_key: 'component-test secret, long enough' };
    const listening = harness('dup-host', section);
    const silent = harness('dup-host', section);
    const seen: Error[] = [];
    listening.multi.on('error', (err) => seen.push(err));
    await start(listening);
    await start(silent);
    try {
      await waitFor(() => seen.length > 0, 'the duplicate error', 5000);
      const err = seen[0] as InstanceType<typeof MultiServer.DuplicateHostnameError>;
      assert.ok(err instanceof MultiServer.DuplicateHostnameError);
      assert.equal(err.hostname, 'dup-host');
      // Both in this test process: one pid, told apart by instance, and the listener's own marked.
      assert.match(
        err.message,
        new RegExp(
          `live processes 127\\.0\\.0\\.1 pid ${process.pid} \\(instance [0-9a-f]{16}(, this process)?\\) and 127\\.0\\.0\\.1 pid ${process.pid} \\(instance [0-9a-f]{16}(, this process)?\\)`,
        ),
      );
      assert.equal([err.keeper.self, err.yielder.self].filter(Boolean).length, 1, 'exactly one of them is the listener');
      assert.equal(err.keeper.pid, process.pid);
      const iids = [listening.multi.core?.instanceId, silent.multi.core?.instanceId].sort();
      assert.deepEqual([err.keeper.iid, err.yielder.iid].sort(), iids);
      for (const h of [listening, silent]) assert.ok(h.logs.some((line) => line.startsWith('1 DUPLICATE HOSTNAME')));
      // (That they never both hold master is checked on the simulator, where time is exact.)
      await waitFor(() => listening.multi.master !== silent.multi.master, 'exactly one of them to be master', 5000);
    } finally {
      await stop(silent.multi);
      await stop(listening.multi);
    }
  });

  test('unauthenticated datagrams: all dropped and counted, logged once per sender per interval', async () => {
    const port = await freeUdpPort();
    const h = harness('alpha', { ...FAST, comm_port: port, secret_key: 'component-test secret, long enough' });
    await start(h);
    try {
      const forged = Buffer.from('{"hostname":"zz","ip":"","master":1,"eligible":1,"uptime":1,"data":{},"action":"heartbeat"}\n');
      await sendRaw(port, new Array(50).fill(forged));
      await waitFor(() => (h.multi.stats.dropped.unauthenticated ?? 0) === 50, '50 drops', 5000);
      assert.equal(h.logs.filter((line) => line.includes('Dropped datagram from 127.0.0.1')).length, 1);
      assert.equal(h.multi.servers.zz, undefined);
    } finally {
      await stop(h.multi);
    }
  });

  test('key rotation by config reload: old-key packets are counted until every server signs with the new key', async () => {
    const port = await freeUdpPort();
    const OLD = 'rotation test: the old key, long enough';
    const NEW = 'rotation test: the new key, long enough';
    const a = harness('alpha', { ...FAST, comm_port: port, secret_key: OLD });
    const b = harness('bravo', { ...FAST, comm_port: port, secret_key: OLD });
    await start(a);
    await start(b);
    try {
      await waitFor(() => a.multi.masterHostname === 'alpha' && b.multi.masterHostname === 'alpha', 'a master', 5000);
      /** Wait until both have heard a few packets sent after the last reload. */
      const traffic = async (): Promise<void> => {
        const [inA, inB] = [a.multi.stats.packetsIn, b.multi.stats.packetsIn];
        await waitFor(() => a.multi.stats.packetsIn > inA + 4 && b.multi.stats.packetsIn > inB + 4, 'traffic', 5000);
      };
      // The README's three steps: everyone accepts NEW; then NEW signs; then OLD goes.
      b.config.reload({ ...b.config.data, secret_key: [OLD, NEW] });
      a.config.reload({ ...a.config.data, secret_key: [OLD, NEW] });
      await traffic();
      a.config.reload({ ...a.config.data, secret_key: [NEW, OLD] });
      await waitFor(() => b.multi.stats.oldKeyPackets > 0, 'b to verify a by its second key', 5000);
      b.config.reload({ ...b.config.data, secret_key: [NEW, OLD] });
      await traffic();
      b.config.reload({ ...b.config.data, secret_key: [NEW] });
      a.config.reload({ ...a.config.data, secret_key: [NEW] });
      await traffic();
      await waitFor(() => a.multi.masterHostname === 'alpha' && b.multi.masterHostname === 'alpha', 'alpha still master', 5000);
      assert.equal(a.multi.stats.elections, 1, 'alpha lost and regained master during the rotation');
      assert.equal(a.multi.stats.dropped['unknown-key'] ?? 0, 0);
      assert.equal(b.multi.stats.dropped['unknown-key'] ?? 0, 0);
      assert.ok(
        a.errors.every((line) => !/secret_key/.test(line)),
        a.errors.join('\n'),
      );
    } finally {
      await stop(b.multi);
      await stop(a.multi);
    }
  });
});
