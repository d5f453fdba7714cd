/**
 * `npm run test:lan` (root): a non-transitive cut made by the kernel. Three servers in their own
 * network namespaces on one bridge; the bridge forwards nothing between alpha's and
 * bravo's ports (both isolated), both still reach charlie. The master (alpha) keeps its role and
 * its term through the cut, bravo names it on charlie's word, the heal changes nothing; then
 * alpha is killed inside the cut and bravo, which cannot hear it, takes over.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { preciseNow } from '../tools/child';
import { NetnsLab } from '../tools/netns';
import { ProcessCluster } from '../tools/process-cluster';

const HOSTS = ['alpha', 'bravo', 'charlie'];
const HEARTBEAT = 0.25;
const CHECK_BEATS = 3;
const WAIT_MS = 15_000;

const made = NetnsLab.create(HOSTS);
const skip = 'skip' in made ? `test:lan needs root on Linux with iproute2 (\`ip netns\`): ${made.skip}` : false;
if (skip) console.error(`SKIPPED ${skip}`);

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('a non-transitive cut by the kernel: the bridge isolates alpha and bravo from each other, both reach charlie', { skip }, () => {
  if ('skip' in made) return;
  const lab = made;
  const cluster = new ProcessCluster({ heartbeatFreq: HEARTBEAT, checkBeats: CHECK_BEATS, netnsOf: (host) => lab.netnsOf(host) });
  const tock = HEARTBEAT * 1000 * CHECK_BEATS;

  before(async () => {
    await Promise.all(HOSTS.map((host) => cluster.start(host, {}, true)));
    await cluster.release(HOSTS);
    await cluster.waitAgreed(WAIT_MS, 'alpha');
  });

  after(async () => {
    try {
      await cluster.stopAll();
    } finally {
      lab.remove();
    }
  });

  test('the master keeps its role and term, bravo names it on the word of charlie, and the heal changes nothing', async () => {
    const term = cluster.state('alpha')?.term as number;
    const since = preciseNow();
    lab.isolate(['alpha', 'bravo']);
    await cluster.waitFor(
      () => cluster.reports.some((r) => r.t >= since && r.host === 'alpha' && r.type === 'deleteserver' && r.detail === 'bravo'),
      WAIT_MS,
      'alpha to stop hearing bravo',
    );
    await pause(4 * tock);
    for (const host of HOSTS) cluster.command(host, { cmd: 'state' });
    await cluster.waitFor(
      () => HOSTS.every((host) => cluster.reports.some((r) => r.t >= since && r.host === host && r.type === 'state')),
      WAIT_MS,
      'state reports',
    );
    const changes = cluster.reports
      .filter((r) => r.t >= since && (r.type === 'master' || r.type === 'slave' || r.type === 'deleteserver'))
      .map((r) => `${r.host} ${r.type} ${r.detail ?? ''}`.trim());
    assert.deepEqual(changes, ['alpha deleteserver bravo']);
    assert.equal(cluster.agreedMaster(), 'alpha');
    assert.equal(cluster.state('bravo')?.masterHostname, 'alpha');
    assert.equal(cluster.state('alpha')?.term, term);
    const healed = preciseNow();
    lab.isolate(['alpha', 'bravo'], false);
    await cluster.waitFor(() => cluster.state('alpha')?.servers.includes('bravo') === true, WAIT_MS, 'alpha to hear bravo again');
    await pause(2 * tock);
    assert.deepEqual(
      cluster.reports.filter((r) => r.t >= healed && (r.type === 'master' || r.type === 'slave')).map((r) => r.host),
      [],
    );
    assert.equal(cluster.agreedMaster(), 'alpha');
  });

  test('alpha is killed inside the cut: bravo, which cannot hear it, takes over', async (t) => {
    lab.isolate(['alpha', 'bravo']);
    await pause(2 * tock);
    const killedAt = cluster.kill('alpha', 'SIGKILL');
    await cluster.waitAgreed(WAIT_MS, 'bravo');
    const became = cluster.reports.find((r) => r.t >= killedAt && r.host === 'bravo' && r.type === 'master');
    assert.ok(became);
    t.diagnostic(`bravo master ${Math.round(became.t - killedAt)} ms after the SIGKILL (tock ${tock} ms)`);
    assert.deepEqual(
      cluster.reports.filter((r) => r.t >= killedAt && r.type === 'master').map((r) => r.host),
      ['bravo'],
    );
  });
});
