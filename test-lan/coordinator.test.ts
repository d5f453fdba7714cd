/**
 * `npm run test:lan` (root): the coordinator (etcd) mode with one app server cut off from
 * etcd. A three-member etcd runs in one lab namespace, three pixl-server processes in three
 * others, all on the lab bridge (10.213.0.0/24); unplugging a server's port cuts it off
 * from etcd (and from the others). It steps down; the others are unaffected. Skipped without
 * root, `ip netns`, or Debian's etcd-server.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { NetnsLab } from '../tools/netns';
import { ProcessCluster } from '../tools/process-cluster';
import { EtcdCluster, etcdUnavailable, ETCD_PACKAGE } from '../tools/etcd-cluster';
import { preciseNow } from '../tools/child';

const APPS = ['alpha', 'bravo', 'charlie'];
const TTL_S = 2; // the least the test etcd's timings allow (tools/etcd-cluster.ts: election timeout 250 ms)
const HEARTBEAT = 0.5;
const CHECK_BEATS = 2;
const WAIT_MS = 15_000;

const missing = etcdUnavailable();
const made = missing ? { skip: `${missing} (Debian package ${ETCD_PACKAGE})` } : NetnsLab.create(['etcd', ...APPS]);
const skip = 'skip' in made ? `the coordinator lab needs root, \`ip netns\` and etcd: ${made.skip}` : false;
if (skip) console.error(`SKIPPED ${skip}`);

describe('coordinator: one app server cut off from etcd', { skip }, () => {
  if ('skip' in made) return;
  const lab = made;
  let etcd: EtcdCluster | null = null;
  let cluster: ProcessCluster | null = null;
  const running = (): ProcessCluster => cluster as ProcessCluster;

  before(async () => {
    etcd = await EtcdCluster.start({ netns: lab.netnsOf('etcd'), ip: lab.addressOf('etcd') });
    cluster = new ProcessCluster({
      heartbeatFreq: HEARTBEAT,
      checkBeats: CHECK_BEATS,
      netnsOf: (host) => lab.netnsOf(host),
      multi: { coordinator: { type: 'etcd', hosts: etcd.endpoints, ttl: TTL_S, election_timeout_ms: etcd.electionMs } },
    });
    await Promise.all(APPS.map((host) => running().start(host, { bind_ip: lab.addressOf(host) }, true)));
    await running().release(APPS);
  });

  after(async () => {
    try {
      await cluster?.stopAll();
      await etcd?.close();
    } finally {
      lab.remove();
    }
  });

  test('a slave cut off stops naming a master within a TTL; the master and the other slave see no change', async () => {
    const c = running();
    assert.equal((await c.waitAgreed(WAIT_MS)).master, 'alpha');
    const cutAt = preciseNow();
    // Judged by what is received after the cut, not by the children's clocks against ours.
    const receivedBefore = c.reports.length;
    lab.detach('charlie');
    await c.waitFor(() => c.state('charlie')?.masterHostname === '', TTL_S * 1000 + 1000, 'charlie to stop naming a master');
    assert.ok(preciseNow() - cutAt <= TTL_S * 1000 + 1000);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const changes = c.reports
      .slice(receivedBefore)
      .filter((r) => (r.host === 'alpha' || r.host === 'bravo') && ['master', 'slave', 'masterchange'].includes(r.type));
    assert.deepEqual(changes, []);
    assert.equal(c.state('alpha')?.master, true);
    lab.attach('charlie');
    await c.waitAgreed(WAIT_MS, 'alpha');
  });

  test('the master cut off steps down before the next master is elected, and rejoins as a slave', async () => {
    const c = running();
    await c.waitAgreed(WAIT_MS, 'alpha');
    const cutAt = preciseNow();
    lab.detach('alpha');
    await c.waitFor(() => c.state('bravo')?.master === true && c.state('charlie')?.masterHostname === 'bravo', WAIT_MS, 'bravo master');
    await c.waitFor(() => c.reports.some((r) => r.host === 'alpha' && r.type === 'slave' && r.t >= cutAt), WAIT_MS, 'alpha slave');
    const stepped = c.reports.find((r) => r.host === 'alpha' && r.type === 'slave' && r.t >= cutAt);
    const elected = c.reports.find((r) => r.host === 'bravo' && r.type === 'master' && r.t >= cutAt);
    assert.ok(
      stepped && elected && stepped.t < elected.t,
      `alpha stepped down at +${stepped && (stepped.t - cutAt).toFixed(0)} ms, bravo master at +${elected && (elected.t - cutAt).toFixed(0)} ms`,
    );
    console.log(
      `# coordinator lab: master cut off → stepped down after ${(stepped.t - cutAt).toFixed(0)} ms, next master after ${(elected.t - cutAt).toFixed(0)} ms (TTL ${TTL_S * 1000} ms)`,
    );
    lab.attach('alpha');
    await c.waitAgreed(WAIT_MS, 'bravo');
  });
});
