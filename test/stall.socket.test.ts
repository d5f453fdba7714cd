/**
 * A real process that stops (SIGSTOP: a paused VM, a long GC) and resumes, on loopback: the
 * component still hands the core what it needs to notice the stall, although an idle server
 * no longer passes its own looped-back heartbeats to the core. Exact stall behaviour is
 * tested in the simulator (test/fencing.test.ts); this is the wiring. Every wait is "until
 * observed, or fail at a generous deadline".
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ProcessCluster } from '../tools/process-cluster';

const WAIT_MS = 15_000;

describe('a master stopped for longer than its peers wait, then resumed', () => {
  const cluster = new ProcessCluster({ heartbeatFreq: 0.1, checkBeats: 3 });
  const hosts = ['alpha', 'bravo', 'charlie'];
  before(async () => {
    await Promise.all(hosts.map((host) => cluster.start(host, {}, true)));
    await cluster.release(hosts);
    await cluster.waitAgreed(WAIT_MS, 'alpha');
  });
  after(() => cluster.stopAll());

  test('notices the stall on waking, and the cluster agrees on one master again', async () => {
    cluster.kill('alpha', 'SIGSTOP');
    // bravo takes over once alpha has been silent a tock and a quarter tick.
    await cluster.waitFor(
      () => cluster.state('bravo')?.master === true && cluster.state('charlie')?.masterHostname === 'bravo',
      WAIT_MS,
      'bravo to take over',
    );
    const resumedAt = Date.now();
    cluster.kill('alpha', 'SIGCONT');
    await cluster.waitFor(
      () => {
        const master = cluster.agreedMaster();
        return master !== null && cluster.reports.some((r) => r.host === 'alpha' && r.t >= resumedAt);
      },
      WAIT_MS,
      'all three to agree on one master after alpha woke',
    );
    const log = readFileSync(path.join(cluster.logDir, 'alpha.log'), 'utf8');
    assert.match(log, /Event loop stalled: woke \d+ ms late/);
    assert.equal(cluster.live().filter((host) => cluster.state(host)?.master).length, 1);
  });
});
