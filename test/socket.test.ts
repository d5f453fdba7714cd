/**
 * Separate pixl-server processes on loopback (broadcast 127.255.255.255, heartbeat
 * 0.1 s): the wiring works end to end. Every wait is "until observed, or fail at a
 * generous deadline"; speed is measured by `npm run bench`, not asserted here.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ProcessCluster } from '../tools/process-cluster';
import { pauseUntil } from './helpers/wait';

const WAIT_MS = 15_000;

describe('a four-process cluster', () => {
  // A tock of 500 ms: process start-up skew on a loaded 2-core machine stays well inside it.
  const cluster = new ProcessCluster({ heartbeatFreq: 0.1, checkBeats: 5 });
  const hosts = ['bravo', 'charlie', 'delta', 'echo'];
  before(async () => {
    await Promise.all(hosts.map((host) => cluster.start(host, {}, true)));
    await cluster.release(hosts);
  });
  after(() => cluster.stopAll());

  test('elects the first-sorting server, agreed by all', async () => {
    const { master } = await cluster.waitAgreed(WAIT_MS);
    assert.equal(master, 'bravo');
    for (const host of cluster.live()) assert.deepEqual(cluster.state(host)?.servers, ['bravo', 'charlie', 'delta', 'echo']);
  });

  test('a joiner that sorts first learns the master and does not take over', async () => {
    await cluster.start('alpha');
    const joinedAt = Date.now();
    await cluster.waitFor(() => cluster.state('alpha')?.masterHostname === 'bravo', WAIT_MS, 'alpha to learn the master');
    // A joiner that wrongly claimed would do so when its first tock of listening ends: a window
    // of two tocks from its start, in which no master may be elected.
    await pauseUntil(joinedAt + 2 * cluster.tockMs);
    await cluster.waitAgreed(WAIT_MS, 'bravo');
    assert.deepEqual(
      cluster.reports.filter((r) => r.type === 'master').map((r) => r.host),
      ['bravo'],
    );
  });

  test('SIGKILL of the master: the first-sorting survivor takes over, the dead one is removed', async () => {
    cluster.kill('bravo', 'SIGKILL');
    const { master } = await cluster.waitAgreed(WAIT_MS, 'alpha');
    assert.equal(master, 'alpha');
    await cluster.waitFor(
      () => cluster.live().every((host) => !cluster.state(host)?.servers.includes('bravo')),
      WAIT_MS,
      'bravo to be removed everywhere',
    );
  });

  test('SIGTERM of the master: a graceful handoff to the next one', async () => {
    const exitCode = await cluster.stop('alpha');
    assert.equal(exitCode, 0);
    const { master } = await cluster.waitAgreed(WAIT_MS, 'charlie');
    assert.equal(master, 'charlie');
    await cluster.waitFor(
      () => cluster.live().every((host) => !cluster.state(host)?.servers.includes('alpha')),
      WAIT_MS,
      'alpha to be removed everywhere',
    );
  });

  test('each process opened exactly one UDP socket in its life', async () => {
    for (const host of cluster.live()) cluster.command(host, { cmd: 'state' });
    await cluster.waitFor(
      () => cluster.live().every((host) => cluster.reports.some((r) => r.host === host && r.type === 'state')),
      WAIT_MS,
      'state reports',
    );
    for (const host of cluster.live()) assert.equal(cluster.state(host)?.socketsOpened, 1, host);
  });
});
