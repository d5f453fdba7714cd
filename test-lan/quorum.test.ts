/**
 * `npm run test:lan` (root): quorum across a real partition. Five servers in their own
 * network namespaces with `quorum: 3`; the master and one other are unplugged from the
 * bridge (each becomes an island of one). The minority never keeps or gains a master past
 * one tock; the majority elects one; after the heal there is one master within a tock.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { preciseNow, type ChildReport } from '../tools/child';
import { NetnsLab } from '../tools/netns';
import { ProcessCluster } from '../tools/process-cluster';

const HOSTS = ['alpha', 'bravo', 'charlie', 'delta', 'echo'];
const HEARTBEAT = 0.2;
const CHECK_BEATS = 3;
const WAIT_MS = 15_000;

const made = NetnsLab.create(HOSTS);
const skip = 'skip' in made ? `test:lan needs root on Linux with iproute2 (\`ip netns\`): ${made.skip}` : false;
if (skip) console.error(`SKIPPED ${skip}`);

describe('quorum 3 of 5 across a partition in network namespaces', { skip }, () => {
  if ('skip' in made) return;
  const lab = made;
  const cluster = new ProcessCluster({
    heartbeatFreq: HEARTBEAT,
    checkBeats: CHECK_BEATS,
    multi: { quorum: 3 },
    netnsOf: (host) => lab.netnsOf(host),
  });
  const tick = HEARTBEAT * 1000;
  const tock = tick * CHECK_BEATS;
  const report = (host: string, type: ChildReport['type'], after: number): ChildReport | undefined =>
    cluster.reports.find((r) => r.host === host && r.type === type && r.t >= after);

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

  test('the minority {alpha}, {bravo} has no master one tock after the split; the majority elects charlie', async (t) => {
    const cutAt = preciseNow();
    lab.detach('alpha');
    lab.detach('bravo');
    const majority = ['charlie', 'delta', 'echo'];
    await cluster.waitFor(
      () => majority.every((h) => cluster.state(h)?.masterHostname === 'charlie') && cluster.state('charlie')?.master === true,
      WAIT_MS,
      'the majority to agree on charlie',
    );
    const steppedDown = report('alpha', 'slave', cutAt);
    assert.ok(steppedDown, 'alpha never stepped down');
    t.diagnostic(
      `quorum: alpha (old master, now alone) stepped down ${Math.round(steppedDown.t - cutAt)} ms after the cut (bound: one tock, ${tock} ms, after its last heartbeat from the majority)`,
    );
    assert.ok(steppedDown.t - cutAt <= tock + tick, `alpha stepped down ${steppedDown.t - cutAt} ms after the cut`);
    const became = report('charlie', 'master', cutAt);
    assert.ok(became);
    t.diagnostic(
      `quorum: charlie master ${Math.round(became.t - cutAt)} ms after the cut; alpha had stepped down ${Math.round(became.t - steppedDown.t)} ms before`,
    );
    // The lease: the majority waits tock + tick after alpha's last heartbeat, which came
    // before the cut; alpha steps down a tock after its last heartbeat from the majority,
    // which came less than a tick after alpha's. A tick more covers timer lateness on a
    // loaded machine: the bound is that failover happens, not its exact instant.
    assert.ok(became.t > steppedDown.t, 'the majority elected a master while the old one still held the role');
    assert.ok(became.t - cutAt <= tock + 2 * tick, `charlie became master ${became.t - cutAt} ms after the cut`);
    // Two more tocks: neither island ever claims.
    await new Promise((resolve) => setTimeout(resolve, 2 * tock));
    for (const host of ['alpha', 'bravo']) {
      cluster.command(host, { cmd: 'state' });
    }
    await cluster.waitFor(
      () => ['alpha', 'bravo'].every((h) => cluster.reports.some((r) => r.host === h && r.type === 'state' && r.t > cutAt + 2 * tock)),
      WAIT_MS,
    );
    assert.equal(cluster.state('alpha')?.master, false);
    assert.equal(cluster.state('bravo')?.master, false);
    assert.equal(report('bravo', 'master', cutAt), undefined, 'bravo claimed alone');
    assert.equal(
      cluster.reports.filter((r) => r.type === 'master' && r.t > steppedDown.t && ['alpha', 'bravo'].includes(r.host)).length,
      0,
    );
  });

  test('heal: one master, agreed by all five within a tock', async (t) => {
    const healedAt = preciseNow();
    lab.attach('alpha');
    lab.attach('bravo');
    const { master, at } = await cluster.waitAgreed(WAIT_MS, 'charlie');
    assert.equal(master, 'charlie');
    t.diagnostic(`quorum heal: all five agree on charlie ${Math.round(at - healedAt)} ms after the heal (bound ${tock} ms)`);
    assert.ok(at - healedAt <= tock, `agreement took ${at - healedAt} ms`);
  });
});
