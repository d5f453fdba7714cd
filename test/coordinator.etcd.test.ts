/**
 * The coordinator (etcd) mode against a real three-member etcd cluster (Debian's
 * `etcd-server`, on 127.0.0.1 ports, in a temporary directory removed after): each server
 * is a real process running the lease-election machine with the etcd adapter, so kills and
 * freezes are real signals. Skipped, with the package named, where etcd is not installed.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { EtcdCluster, etcdUnavailable, ETCD_PACKAGE } from '../tools/etcd-cluster';
import { LeaseProcessCluster } from '../tools/process-cluster';
import { fencedWrite, type LeaseChildConfig } from '../tools/lease-child';
import { pause } from './helpers/wait';

const unavailable = etcdUnavailable();
const TICK_MS = 250;
const CHECK_BEATS = 4; // tock 1 s
const TTL_S = 2; // the least the test etcd's timings allow (election timeout 250 ms)
/** etcd's leader checks for expired leases every 500 ms. */
const ETCD_EXPIRY_SWEEP_MS = 500;

let etcd: EtcdCluster;
let prefixes = 0;

function wall(): number {
  return performance.timeOrigin + performance.now();
}

function base(): Omit<LeaseChildConfig, 'hostname'> {
  // listenMs: on a loaded machine, servers started together take longer than a tick to make their first read.
  return {
    hosts: etcd.endpoints,
    prefix: `/psm-test-${process.pid}/${++prefixes}/`,
    tickMs: TICK_MS,
    checkBeats: CHECK_BEATS,
    ttlSeconds: TTL_S,
    workMs: 50,
    listenMs: 1500,
  };
}

async function withCluster(
  hosts: Array<[string, Partial<LeaseChildConfig>?]>,
  body: (cluster: LeaseProcessCluster, prefix: string) => Promise<void>,
): Promise<void> {
  const config = base();
  const cluster = new LeaseProcessCluster(config);
  try {
    // Loaded first, then started together: rank decides, not who loaded gRPC fastest.
    await Promise.all(hosts.map(([host, extra]) => cluster.add(host, extra ?? {}, true)));
    await cluster.start(hosts.map(([host]) => host));
    await body(cluster, config.prefix);
  } finally {
    await cluster.close();
  }
}

function client(): import('etcd3').Etcd3 {
  const { Etcd3 } = require('etcd3') as typeof import('etcd3');
  return new Etcd3({ hosts: etcd.endpoints, dialTimeout: 2000 });
}

describe('coordinator: etcd', { skip: unavailable ? `real etcd needed: ${unavailable} (Debian package ${ETCD_PACKAGE})` : false }, () => {
  before(async () => {
    etcd = await EtcdCluster.start();
  });
  after(async () => {
    await etcd?.close();
  });

  test("elects the top-ranked server; the term is in etcd (the fence key); a kill fails over within TTL + etcd's expiry sweep; the deposed term no longer fences", async () => {
    await withCluster([['alpha'], ['bravo', { priority: 1 }], ['charlie']], async (cluster, prefix) => {
      assert.equal(await cluster.agreed(5000), 'bravo');
      const kv = client();
      try {
        const created = Number(await kv.get(`${prefix}term`).string());
        assert.ok(created > 0);
        for (const member of cluster.members.values()) assert.equal(member.term, created, `${member.host}'s term`);
        assert.equal(await fencedWrite(kv, `${prefix}term`, created, `${prefix}jobs/1`, 'from bravo'), true);
        const killedAt = wall();
        await cluster.kill('bravo');
        assert.equal(await cluster.agreed(5000), 'alpha');
        const failoverMs = wall() - killedAt;
        console.log(
          `# etcd: master killed → new master agreed in ${failoverMs.toFixed(0)} ms (TTL ${TTL_S * 1000} ms + expiry sweep ${ETCD_EXPIRY_SWEEP_MS} ms)`,
        );
        assert.ok(failoverMs <= TTL_S * 1000 + ETCD_EXPIRY_SWEEP_MS + 400, `${failoverMs} ms`);
        assert.ok((cluster.members.get('alpha')?.term ?? 0) > created);
        assert.equal(await fencedWrite(kv, `${prefix}term`, created, `${prefix}jobs/2`, 'from the deposed bravo'), false);
        assert.equal(await kv.get(`${prefix}jobs/2`).string(), null);
      } finally {
        kv.close();
      }
    });
  });

  test('a master frozen (SIGSTOP) past its TTL emits slave first when resumed; none of its fenced writes succeed after the next master is elected', async () => {
    await withCluster([['alpha'], ['bravo'], ['charlie']], async (cluster, prefix) => {
      assert.equal(await cluster.agreed(5000), 'alpha');
      await cluster.waitFor(() => cluster.reports.some((r) => r.kind === 'work' && r.host === 'alpha' && r.ok), 10_000, 'alpha working');
      const oldTerm = cluster.members.get('alpha')?.term ?? 0;
      cluster.signal('alpha', 'SIGSTOP');
      await cluster.waitFor(() => cluster.members.get('bravo')?.master === true, 5000, 'bravo master while alpha is frozen');
      const electedAt = wall();
      await pause(300); // the stall itself: frozen well past its TTL either way
      const resumedAt = wall();
      cluster.signal('alpha', 'SIGCONT');
      await cluster.waitFor(
        () => cluster.reports.some((r) => r.kind === 'event' && r.host === 'alpha' && r.t >= resumedAt && r.event.type === 'slave'),
        10_000,
        'alpha slave after resume',
      );
      // A window for anything else alpha does on waking to be reported: only then is "slave first" checked.
      await pause(300);
      const after = cluster.reports.filter(
        (r) => r.host === 'alpha' && r.t >= resumedAt && (r.kind === 'work' || (r.kind === 'event' && r.event.type !== 'masterchange')),
      );
      const first = after[0];
      assert.ok(first && first.kind === 'event' && first.event.type === 'slave', `first after resume: ${JSON.stringify(first)}`);
      const late = cluster.reports.filter((r) => r.kind === 'work' && r.host === 'alpha' && r.ok && r.t > electedAt);
      assert.deepEqual(late, [], 'a write of the frozen master succeeded after bravo was elected');
      const kv = client();
      try {
        assert.equal(await fencedWrite(kv, `${prefix}term`, oldTerm, `${prefix}jobs/x`, 'stale'), false);
      } finally {
        kv.close();
      }
      assert.equal(await cluster.agreed(10_000), 'bravo');
    });
  });

  test('graceful shutdown, stepDown() and promote() hand over in milliseconds', async () => {
    await withCluster([['alpha'], ['bravo'], ['charlie'], ['delta']], async (cluster) => {
      assert.equal(await cluster.agreed(5000), 'alpha');
      let t = wall();
      await cluster.shutdown('alpha');
      await cluster.agreed(10_000, 'bravo');
      const shutdownMs = wall() - t;
      t = wall();
      cluster.command('bravo', { cmd: 'stepDown' });
      await cluster.agreed(10_000, 'charlie');
      const stepDownMs = wall() - t;
      t = wall();
      cluster.command('delta', { cmd: 'promote' });
      await cluster.agreed(10_000, 'delta');
      const promoteMs = wall() - t;
      console.log(
        `# etcd: graceful shutdown ${shutdownMs.toFixed(0)} ms, stepDown ${stepDownMs.toFixed(0)} ms, promote ${promoteMs.toFixed(0)} ms`,
      );
      // Milliseconds, not a TTL (a busy machine slows etcd too; the bench measures them).
      for (const ms of [shutdownMs, stepDownMs, promoteMs]) assert.ok(ms < 2000, `${ms} ms`);
    });
  });

  test('the etcd leader member killed: the master stays, or the next one never overlaps it', async () => {
    await withCluster([['alpha'], ['bravo'], ['charlie']], async (cluster) => {
      assert.equal(await cluster.agreed(5000), 'alpha');
      const leader = await etcd.leader();
      await etcd.kill(leader);
      try {
        // The window without a leader member is the point: no two masterships may overlap in it.
        await pause(3000);
        await cluster.agreed(5000);
        const spans = cluster.masterships(wall());
        for (const a of spans)
          for (const b of spans)
            if (a !== b && a.host !== b.host)
              assert.ok(a.to <= b.from || b.to <= a.from, `overlap: ${JSON.stringify(a)} ${JSON.stringify(b)}`);
        console.log(`# etcd: leader ${leader} killed → masterships ${spans.map((s) => `${s.host}@${s.term}`).join(', ')}`);
      } finally {
        await etcd.restart(leader);
        await etcd.waitHealthy(20_000);
      }
    });
  });

  test('all of etcd down: every server is slave within a TTL; one master again within a tock of its return', async () => {
    await withCluster([['alpha'], ['bravo'], ['charlie']], async (cluster) => {
      assert.equal(await cluster.agreed(5000), 'alpha');
      const downAt = wall();
      await etcd.stopAll();
      let slaveMs = NaN;
      try {
        await cluster.waitFor(() => [...cluster.members.values()].every((m) => !m.master), TTL_S * 1000 + 1000, 'no master');
        slaveMs = wall() - downAt;
        assert.ok(slaveMs <= TTL_S * 1000, `last master stepped down ${slaveMs.toFixed(0)} ms into the outage`);
        // A window in which nobody may become master while etcd is down.
        await pause(1500);
        assert.ok([...cluster.members.values()].every((m) => !m.master && m.masterHostname === ''));
      } finally {
        await etcd.startAll();
      }
      const backAt = wall();
      await cluster.agreed(TICK_MS * CHECK_BEATS + 2000);
      const backMs = wall() - backAt;
      console.log(
        `# etcd: all down → every server slave ${slaveMs.toFixed(0)} ms into the outage; master again ${backMs.toFixed(0)} ms after etcd answered`,
      );
      assert.ok(backMs <= TICK_MS * CHECK_BEATS, `${backMs.toFixed(0)} ms (a tock is ${TICK_MS * CHECK_BEATS} ms)`);
    });
  });
});
