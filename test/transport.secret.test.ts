/**
 * The unicast transport in an authenticated cluster, with separate processes on loopback
 * (one 127.0.0.x per server): a server admits an instance it does not know only after a
 * challenge reaches it, and unicast sends only to addresses it has learned, so this checks
 * that the two together still let a cold start and a joiner that lists a single peer find
 * everyone, and that failover works. Every wait is "until observed, or fail at a deadline".
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ProcessCluster } from '../tools/process-cluster';
import { freeUdpPort } from '../tools/loopback';
import { pauseUntil } from './helpers/wait';

const WAIT_MS = 15_000;
const SECRET = 'transport-secret test key, 32 chars+';

describe('unicast with a secret_key, IPv4, one loopback address per server', () => {
  // A tock of 750 ms: about admission and addresses, not timing (see transport.socket.test.ts).
  const cluster = new ProcessCluster({ heartbeatFreq: 0.25, checkBeats: 3, multi: { transport: 'unicast', secret_key: SECRET } });
  const ip: Record<string, string> = { alpha: '127.0.0.15', bravo: '127.0.0.12', charlie: '127.0.0.13', delta: '127.0.0.14' };
  let port = 0;
  before(async () => {
    port = await freeUdpPort();
    // bravo lists nobody; charlie and delta list only bravo, and learn each other through it.
    await Promise.all([
      cluster.start('bravo', { comm_port: port, bind_ip: ip.bravo }, true),
      cluster.start('charlie', { comm_port: port, bind_ip: ip.charlie, peers: [ip.bravo] }, true),
      cluster.start('delta', { comm_port: port, bind_ip: ip.delta, peers: [ip.bravo] }, true),
    ]);
    await cluster.release(['bravo', 'charlie', 'delta']);
  });
  after(() => cluster.stopAll());

  let master = '';

  test('a cold start through one listed peer: everyone admits everyone, one master', async () => {
    const three = ['bravo', 'charlie', 'delta'];
    await cluster.waitFor(
      () => three.every((host) => cluster.state(host)?.servers.join() === three.join()),
      WAIT_MS,
      'every server to know all',
    );
    master = (await cluster.waitAgreed(WAIT_MS)).master;
  });

  test('a joiner that lists one peer learns the master and is admitted by all, without taking over', async () => {
    const mastersBefore = cluster.reports.filter((r) => r.type === 'master').length;
    await cluster.start('alpha', { comm_port: port, bind_ip: ip.alpha, peers: [ip.charlie as string] });
    const joinedAt = Date.now();
    await cluster.waitFor(() => cluster.state('alpha')?.masterHostname === master, WAIT_MS, `alpha to learn the master, ${master}`);
    const four = ['alpha', 'bravo', 'charlie', 'delta'];
    await cluster.waitFor(
      () => four.every((host) => cluster.state(host)?.servers.join() === four.join()),
      WAIT_MS,
      'every server to know all four',
    );
    // A joiner that wrongly claimed would do so when its first tock of listening ends: a window
    // of two tocks from its start, in which no master may be elected.
    await pauseUntil(joinedAt + 2 * cluster.tockMs);
    await cluster.waitAgreed(WAIT_MS, master);
    assert.equal(cluster.reports.filter((r) => r.type === 'master').length, mastersBefore, 'a master was elected while one was running');
  });

  test('SIGKILL of the master: the first-sorting survivor takes over', async () => {
    cluster.kill(master, 'SIGKILL');
    await cluster.waitAgreed(WAIT_MS, 'alpha');
  });
});
