/**
 * Two live processes announcing one hostname, with and without a secret: detected by both
 * and by every other server, reported naming both addresses, one keeper everyone follows,
 * and never both holding master. A restart is not a duplicate.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SimCluster, addressOf, type SimClusterOptions } from '../sim/cluster';
import { outranks } from '../src/core/election';
import { CHILD_SCRIPT, type ChildConfig } from '../tools/child';
import { assertLoopbackConfig, freeUdpPort } from '../tools/loopback';
import { waitFor } from './helpers/wait';

const TICK = 1000;
const TOCK = 3000;
const MODES: Array<[string, SimClusterOptions]> = [
  ['without a secret', {}],
  ['with a secret', { secret: 'duplicate-suite cluster secret!!' }],
];

function cluster(options: SimClusterOptions): SimCluster {
  return new SimCluster({ tickMs: TICK, checkBeats: 3, latencyMs: 1, jitterMs: 3, ...options });
}

/** Run `ms` in 10 ms steps; fail if both processes named `a` (nodes a, a2) are ever master together. */
function watch(sim: SimCluster, ms: number, twins = ['a', 'a2']): void {
  for (let t = 0; t < ms; t += 10) {
    sim.runFor(10);
    const masters = sim.masters();
    assert.ok(!twins.every((twin) => masters.includes(twin)), `both ${twins.join(' and ')} are master at ${sim.now}`);
    assert.ok(masters.length <= 1 || sim.now < TOCK, `masters ${masters.join(',')} at ${sim.now}`);
  }
}

function duplicateReports(sim: SimCluster, since: number): Array<{ host: string; keeper: string; yielder: string }> {
  return sim.events
    .filter((e) => e.time >= since && e.event.type === 'duplicate')
    .map((e) => {
      const event = e.event as Extract<typeof e.event, { type: 'duplicate' }>;
      return { host: e.host, keeper: event.keeper.iid, yielder: event.yielder.iid };
    });
}

for (const [mode, options] of MODES) {
  describe(`duplicate hostnames ${mode}`, () => {
    test('a second process named like the running master: both and every peer report it; the master keeps the name and the role', () => {
      const sim = cluster(options);
      for (const host of ['a', 'b', 'c']) sim.add(host);
      assert.notEqual(
        sim.runUntilTrue(() => sim.agreedMaster() === 'a', 3 * TOCK),
        null,
      );
      sim.runFor(777);
      const since = sim.now;
      sim.add('a2', { hostname: 'a' });
      watch(sim, 10 * TICK);
      const keeper = sim.node('a').core.instanceId;
      const yielder = sim.node('a2').core.instanceId;
      const reports = duplicateReports(sim, since);
      assert.deepEqual([...new Set(reports.map((r) => r.host))].sort(), ['a', 'a2', 'b', 'c'], 'not reported everywhere');
      for (const report of reports)
        assert.deepEqual([report.keeper, report.yielder], [keeper, yielder], `${report.host} disagrees on the keeper`);
      // The line names both addresses (third parties know both from the packets).
      const third = sim.events.find((e) => e.host === 'b' && e.event.type === 'duplicate')?.event as Extract<
        (typeof sim.events)[0]['event'],
        { type: 'duplicate' }
      >;
      assert.deepEqual([third.keeper.address, third.yielder.address], [addressOf('a'), addressOf('a2')]);
      assert.deepEqual(sim.masters(), ['a']);
      for (const host of ['b', 'c']) {
        assert.equal(sim.node(host).core.instanceOf('a'), keeper, `${host} follows the newcomer`);
        assert.equal(sim.node(host).core.masterHostname, 'a');
      }
      assert.equal(sim.node('a2').core.yieldsHostname({ mono: sim.now, wall: 0 }), true);
      assert.deepEqual(
        sim.eventsOf('master').map((e) => e.host),
        ['a'],
        'the role moved',
      );
    });

    test('both start together and neither is master: the lower instance id keeps the name; one master in the cluster', () => {
      const sim = cluster(options);
      sim.add('a');
      sim.add('a2', { hostname: 'a' });
      sim.add('b');
      watch(sim, 15 * TICK);
      const [low, high] = ['a', 'a2'].sort((x, y) => (sim.node(x).core.instanceId < sim.node(y).core.instanceId ? -1 : 1)) as [
        string,
        string,
      ];
      assert.deepEqual(sim.masters(), [low]);
      assert.equal(sim.node(high).core.master, false);
      assert.equal(sim.node('b').core.instanceOf('a'), sim.node(low).core.instanceId);
      assert.equal(sim.node('b').core.masterHostname, 'a');
    });

    test('both masters after a partition heals: one yields within a tock, never both again', () => {
      const sim = cluster(options);
      sim.add('a');
      sim.add('a2', { hostname: 'a' });
      sim.add('b');
      sim.partition([['a', 'b'], ['a2']]);
      sim.runFor(3 * TOCK);
      assert.deepEqual(sim.masters().sort(), ['a', 'a2']);
      const healedAt = sim.now;
      sim.heal();
      const resolved = sim.runUntilTrue(() => sim.masters().length === 1, TOCK);
      assert.notEqual(resolved, null, 'still two masters a tock after the heal');
      assert.ok((resolved as number) - healedAt <= TOCK);
      watch(sim, 10 * TICK);
      assert.equal(sim.masters().length, 1);
      const winner = sim.masters()[0] as string;
      const other = winner === 'a' ? 'a2' : 'a';
      assert.ok(
        outranks(true, sim.node(winner).core.instanceId, true, sim.node(other).core.instanceId),
        'the higher instance id kept master',
      );
    });

    test('when the keeper shuts down, the other process takes the name over without a removal, and may be master', () => {
      const sim = cluster(options);
      for (const host of ['a', 'b']) sim.add(host);
      assert.notEqual(
        sim.runUntilTrue(() => sim.agreedMaster() === 'a', 3 * TOCK),
        null,
      );
      sim.add('a2', { hostname: 'a' });
      watch(sim, 5 * TICK);
      sim.shutdown('a');
      const remaining = sim.node('a2').core.instanceId;
      const takeover = sim.runUntilTrue(
        // (agreedMaster() looks the holder up by hostname, which names the stopped node here)
        () => sim.node('a2').core.master && sim.node('b').core.instanceOf('a') === remaining && sim.node('b').core.masterHostname === 'a',
        2 * TOCK,
      );
      assert.notEqual(takeover, null, 'the remaining process never became the agreed master');
      assert.equal(sim.eventsOf('deleteserver', 'b').length, 0, 'the row went away and came back');
      watch(sim, 5 * TICK);
      assert.deepEqual(sim.masters(), ['a2']);
    });

    test('a namesake of a slave that goes silent is forgotten a tock later (found by the fuzzer: it used to spin the timer)', () => {
      const sim = cluster(options);
      for (const host of ['a', 'b']) sim.add(host);
      assert.notEqual(
        sim.runUntilTrue(() => sim.agreedMaster() === 'a', 3 * TOCK),
        null,
      );
      sim.add('b2', { hostname: 'b' });
      sim.runFor(3 * TICK);
      assert.ok(sim.eventsOf('duplicate', 'b').length > 0);
      sim.crash('b2');
      assert.doesNotThrow(() => sim.runFor(3 * TOCK), 'the simulation got stuck');
      const b = sim.node('b').core;
      assert.equal(b.yieldsHostname({ mono: sim.now, wall: 0 }), false);
      assert.equal(sim.agreedMaster(), 'a');
    });

    test('a restart is not a duplicate: crash or graceful, with packets still in flight', () => {
      for (const graceful of [false, true]) {
        const sim = cluster({ ...options, jitterMs: 20 });
        for (const host of ['a', 'b', 'c']) sim.add(host);
        assert.notEqual(
          sim.runUntilTrue(() => sim.agreedMaster() === 'a', 3 * TOCK),
          null,
        );
        for (let i = 0; i < 5; i++) {
          sim.runFor(1234);
          if (graceful) sim.shutdown('b');
          sim.restart('b');
        }
        sim.runFor(5 * TOCK);
        assert.equal(sim.eventsOf('duplicate').length, 0, `graceful=${graceful}`);
        assert.equal(sim.agreedMaster(), 'a');
      }
    });
  });
}

test('the tie-break: a master claim first, then the lower instance id; an original server (no id) wins a tie', () => {
  assert.equal(outranks(true, 'ff', false, '00'), true);
  assert.equal(outranks(false, '00', true, 'ff'), false);
  assert.equal(outranks(false, '00', false, 'ff'), true);
  assert.equal(outranks(true, 'ff', true, '00'), false);
  assert.equal(outranks(false, '', false, '00'), true);
});

describe('two real processes with one hostname on one host', () => {
  test('every DUPLICATE HOSTNAME line names each process by pid and instance, and marks the one writing it', async () => {
    const port = await freeUdpPort();
    const logDir = mkdtempSync(path.join(os.tmpdir(), 'psm-twins-'));
    const children: ChildProcess[] = [];
    const spawn = (hostname: string): ChildProcess => {
      // debug_level 2: the duplicate line (level 1) and this process's own startup line (level 2).
      const config: ChildConfig = {
        hostname,
        port,
        broadcastIp: '127.255.255.255',
        heartbeatFreq: 0.1,
        checkBeats: 3,
        logDir,
        debugLevel: 2,
      };
      assertLoopbackConfig({ broadcast_ip: config.broadcastIp });
      const child = fork(CHILD_SCRIPT, [], {
        env: { ...process.env, PSM_CHILD: JSON.stringify(config) },
        stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
      });
      children.push(child);
      return child;
    };
    /** pixl-server's columns: [epoch][date][hostname][pid][component][category][code][msg][data]. */
    const rows = (hostname: string): Array<{ pid: number; msg: string }> => {
      const file = path.join(logDir, `${hostname}.log`);
      if (!existsSync(file)) return [];
      return readFileSync(file, 'utf8')
        .split('\n')
        .map((line) => /^\[[^\]]*\]\[[^\]]*\]\[[^\]]*\]\[(\d+)\]\[MultiServer\]\[[^\]]*\]\[[^\]]*\]\[(.*)\]\[[^\]]*\]$/.exec(line))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => ({ pid: Number(m[1]), msg: m[2] as string }));
    };
    try {
      const [first, second] = [spawn('twin'), spawn('twin')];
      spawn('watcher');
      const pids = [first.pid as number, second.pid as number];
      const duplicateLines = (hostname: string): Array<{ pid: number; msg: string }> =>
        rows(hostname).filter((r) => r.msg.startsWith('DUPLICATE HOSTNAME'));
      // Both twins write one log file (one hostname): each must have written its own line.
      await waitFor(
        () => pids.every((pid) => duplicateLines('twin').some((r) => r.pid === pid)) && duplicateLines('watcher').length > 0,
        () => `duplicate lines: twin ${JSON.stringify(rows('twin'))}, watcher ${JSON.stringify(rows('watcher'))}`,
        20_000,
        100,
      );
      const instanceOf = new Map<number, string>();
      for (const row of rows('twin')) {
        const started = /^This process: pid (\d+), instance ([0-9a-f]{16}), hostname twin$/.exec(row.msg);
        if (started) instanceOf.set(Number(started[1]), started[2] as string);
      }
      assert.deepEqual([...instanceOf.keys()].sort(), [...pids].sort(), 'each twin logs its pid and instance at startup');
      const named = (pid: number, self: boolean): string =>
        `127.0.0.1 pid ${pid} (instance ${instanceOf.get(pid)}${self ? ', this process' : ''})`;
      for (const pid of pids) {
        const own = duplicateLines('twin').find((r) => r.pid === pid) as { msg: string };
        const other = pids.find((p) => p !== pid) as number;
        assert.ok(own.msg.includes(named(pid, true)) && own.msg.includes(named(other, false)), own.msg);
      }
      const third = (duplicateLines('watcher')[0] as { msg: string }).msg;
      for (const pid of pids) assert.ok(third.includes(named(pid, false)), third);
      assert.match(
        third,
        /^DUPLICATE HOSTNAME: two live processes announce twin: .* keeps the name, .* never claims master until it stops$/,
      );
    } finally {
      for (const child of children) child.kill('SIGKILL');
      rmSync(logDir, { recursive: true, force: true });
    }
  });
});
