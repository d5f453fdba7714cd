/**
 * `npm run test:lan` (root): the coordinator (etcd) mode across two subnets joined by a router,
 * all in network namespaces this file creates (tools/netns.ts, RoutedLab):
 *
 *   10.231.1.0/24: etcd (3 members), alpha, charlie, echo ── router ── 10.231.2.0/24: bravo, delta
 *
 * The three etcd members share one namespace on subnet 1, as etcd in one site: a cut of the
 * router then has one answer (the side with etcd keeps a master, the other has none), and the
 * test exercises our component across the router, not etcd's raft (members spread 2 + 1
 * over the subnets would end the same way: the side holding two of them keeps etcd).
 *
 * Ranks alternate between the subnets (alpha 1, bravo 2, charlie 1, delta 2, echo 1), so
 * each failover moves the master to the other subnet:
 * - cold start: alpha by rank, agreed by all five, every table lists all five at the
 *   addresses they registered, one term;
 * - messages (`send`, `request`) by UDP unicast across the router, to registered addresses;
 * - SIGKILL of alpha: bravo, on subnet 2, within TTL + etcd's 500 ms sweep + a tick;
 * - the router's leg into subnet 2 cut: bravo and delta lose etcd and stop naming a master
 *   within a TTL, bravo steps down before charlie is elected; restored, charlie for all.
 *
 * Times are the children's precise timestamps (tools/child.ts), never sleeps.
 * Skipped without root, `ip netns`, or Debian's etcd-server.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { preciseNow, type ChildReport } from '../tools/child';
import { EtcdCluster, etcdUnavailable, ETCD_PACKAGE } from '../tools/etcd-cluster';
import { RoutedLab } from '../tools/netns';
import { ProcessCluster } from '../tools/process-cluster';

const SUBNET_1 = ['alpha', 'charlie', 'echo'];
const SUBNET_2 = ['bravo', 'delta'];
const APPS = [...SUBNET_1, ...SUBNET_2].sort();
/**
 * A tick of 1 s: servers that start within a tick elect by rank, and a pixl-server process
 * takes a varying few hundred ms to load etcd3 and gRPC on a busy machine. The TTL is 1 s
 * (etcd's minimum with the lab's 500 ms election timeout), so failover does not wait on the tick.
 */
const HEARTBEAT = 1;
const CHECK_BEATS = 2;
const TTL_S = 2; // the least the test etcd's timings allow (tools/etcd-cluster.ts: election timeout 250 ms)
const TTL_MS = TTL_S * 1000;
/** etcd's leader revokes expired leases every 500 ms. */
const ETCD_EXPIRY_SWEEP_MS = 500;
const TICK_MS = HEARTBEAT * 1000;
const FAILOVER_BOUND_MS = TTL_MS + ETCD_EXPIRY_SWEEP_MS + TICK_MS;
const WAIT_MS = 15_000;

const missing = etcdUnavailable();
const made = missing ? { skip: `${missing} (Debian package ${ETCD_PACKAGE})` } : RoutedLab.create([['etcd', ...SUBNET_1], SUBNET_2]);
const skip = 'skip' in made ? `the routed etcd lab needs root, \`ip netns\` and etcd: ${made.skip}` : false;
if (skip) console.error(`SKIPPED ${skip}`);

const sameList = (hosts: readonly string[]): string => [...hosts].sort().join();

describe('coordinator (etcd) across two subnets joined by a router', { skip }, () => {
  if ('skip' in made) return;
  const lab = made;
  let etcd: EtcdCluster | null = null;
  let cluster: ProcessCluster | null = null;
  const running = (): ProcessCluster => cluster as ProcessCluster;
  const report = (
    host: string,
    type: ChildReport['type'] | undefined,
    after: number,
    match: (r: ChildReport) => boolean = () => true,
  ): ChildReport | undefined =>
    running().reports.find((r) => r.host === host && (type === undefined || r.type === type) && r.t >= after && match(r));

  /** Ask every live member for its state each tick until `predicate` holds (each answer re-checks it). */
  async function pollStates(predicate: () => boolean, what: string): Promise<void> {
    const c = running();
    const ask = (): void => {
      for (const host of c.live()) c.command(host, { cmd: 'state' });
    };
    ask();
    const timer = setInterval(ask, 100);
    try {
      await c.waitFor(predicate, WAIT_MS, what);
    } finally {
      clearInterval(timer);
    }
  }

  /** Every one of `hosts` lists exactly `hosts` and holds the same term, above `above`. */
  const settled = (hosts: string[], above = 0): boolean => {
    const term = running().state(hosts[0] as string)?.term ?? 0;
    return term > above && hosts.every((h) => running().state(h)?.servers.join() === sameList(hosts) && running().state(h)?.term === term);
  };

  before(async () => {
    etcd = await EtcdCluster.start({ netns: lab.netnsOf('etcd'), ip: lab.addressOf('etcd') });
    cluster = new ProcessCluster({
      heartbeatFreq: HEARTBEAT,
      checkBeats: CHECK_BEATS,
      netnsOf: (host) => lab.netnsOf(host),
      multi: { coordinator: { type: 'etcd', hosts: etcd.endpoints, ttl: TTL_S, election_timeout_ms: etcd.electionMs } },
    });
    // bind_ip: each server registers its own subnet's address in etcd, and its message socket listens there only.
    await Promise.all(APPS.map((host) => running().start(host, { bind_ip: lab.addressOf(host) }, true)));
  });

  after(async () => {
    try {
      lab.restore(2);
      await cluster?.stopAll();
      await etcd?.close();
    } finally {
      lab.remove();
    }
  });

  test('cold start across the router: alpha master by rank, agreed by all five, every table lists all five at their subnet addresses, one term', async (t) => {
    const c = running();
    const released = await c.release(APPS);
    const { master, at: agreedAt } = await c.waitAgreed(WAIT_MS);
    assert.equal(master, 'alpha');
    await pollStates(() => settled(APPS), 'every table to list all five, with one term');
    const lastStart = Math.max(...c.reports.filter((r) => r.type === 'ready' && r.t >= released).map((r) => r.t));
    t.diagnostic(
      `routed etcd cold start: all five agree on alpha ${Math.round(agreedAt - lastStart)} ms after the last start, term ${c.state('alpha')?.term}`,
    );
    for (const host of APPS) {
      // The records are the ones registered in etcd: each server's own address on its own subnet.
      assert.deepEqual(c.state(host)?.serverIps, Object.fromEntries(APPS.map((h) => [h, lab.addressOf(h)])), host);
    }
    assert.deepEqual(
      APPS.filter((h) => c.state(h)?.master),
      ['alpha'],
    );
  });

  test('messages cross the router by UDP to the registered address: send 1 → 2, request 1 → 2 (the reply crosses back), send to the master 2 → 1', async (t) => {
    const c = running();
    // The receivers' sockets are bound to their own address only (bind_ip), in another subnet's
    // namespace: a datagram that arrives was sent to the registered address, through the router.
    const sentAt = await c.send('alpha', 'bravo', 'lan.note', { n: 1 });
    await c.waitFor(
      () => report('bravo', 'message', 0, (r) => r.message?.from === 'alpha') !== undefined,
      5000,
      "bravo to receive alpha's note",
    );
    const note = report('bravo', 'message', 0, (r) => r.message?.from === 'alpha') as ChildReport;
    assert.deepEqual(note.message, { type: 'lan.note', payload: { n: 1 }, from: 'alpha', request: false });

    const { answer, askedAt, answeredAt } = await c.request('charlie', 'delta', 'lan.ping', { n: 2 });
    assert.deepEqual(answer, { by: 'delta', got: { n: 2 } });

    const toMasterAt = await c.send('delta', 'master', 'lan.up', { n: 3 });
    await c.waitFor(
      () => report('alpha', 'message', 0, (r) => r.message?.from === 'delta') !== undefined,
      5000,
      "alpha (the master) to receive delta's message",
    );
    const up = report('alpha', 'message', 0, (r) => r.message?.from === 'delta') as ChildReport;
    assert.deepEqual(up.message, { type: 'lan.up', payload: { n: 3 }, from: 'delta', request: false });
    t.diagnostic(
      `routed etcd messages: alpha→bravo delivered ${(note.t - sentAt).toFixed(1)} ms after send() returned, charlie→delta request answered in ${(answeredAt - askedAt).toFixed(1)} ms (IPC included), delta→master ${(up.t - toMasterAt).toFixed(1)} ms`,
    );
  });

  test("SIGKILL of the master: bravo, on the other subnet, master within TTL + etcd's sweep + a tick; all agree on a higher term", async (t) => {
    const c = running();
    const term = c.state('alpha')?.term ?? 0;
    const killedAt = c.kill('alpha', 'SIGKILL');
    const { master, at: agreedAt } = await c.waitAgreed(WAIT_MS);
    assert.equal(master, 'bravo', 'the next in rank');
    // The state that shows agreement may arrive with 'masterchange', just before bravo's 'master' report.
    await c.waitFor(() => report('bravo', 'master', killedAt) !== undefined, WAIT_MS, "bravo's master event");
    const became = report('bravo', 'master', killedAt);
    assert.ok(became);
    t.diagnostic(
      `routed etcd crash: bravo master ${Math.round(became.t - killedAt)} ms, all four agree ${Math.round(agreedAt - killedAt)} ms after the SIGKILL (bound TTL + sweep + tick = ${FAILOVER_BOUND_MS} ms)`,
    );
    assert.ok(agreedAt - killedAt <= FAILOVER_BOUND_MS, `failover took ${agreedAt - killedAt} ms`);
    const live = c.live();
    await pollStates(() => settled(live, term), 'every table to drop alpha, with one term above the last');
    assert.deepEqual(
      live.filter((h) => c.state(h)?.master),
      ['bravo'],
    );
  });

  test('router cut: the side without etcd names no master within a TTL, bravo stepping down before charlie is elected; restored, charlie for all', async (t) => {
    const c = running();
    const term = c.state('bravo')?.term ?? 0;
    const withEtcd = ['charlie', 'echo'];
    const cutAt = preciseNow();
    // What follows the cut is what is received after it: a child's clock may stamp bravo's
    // `master` from the test before (awaited there) a hair after ours says the cut began.
    const receivedBefore = c.reports.length;
    lab.cut(2);
    await c.waitFor(
      () =>
        SUBNET_2.every((h) => c.state(h)?.masterHostname === '' && c.state(h)?.master === false) &&
        withEtcd.every((h) => c.state(h)?.masterHostname === 'charlie' && c.state(h)?.servers.join() === withEtcd.join()) &&
        c.state('charlie')?.master === true &&
        // The events themselves, which may come a report after the states that show them.
        report('bravo', 'slave', cutAt) !== undefined &&
        report('charlie', 'master', cutAt) !== undefined,
      WAIT_MS,
      'bravo and delta without a master; charlie master of {charlie, echo}',
    );
    const stepped = report('bravo', 'slave', cutAt);
    const lost = SUBNET_2.map((h) => report(h, 'masterchange', cutAt, (r) => r.detail === ''));
    const elected = report('charlie', 'master', cutAt);
    assert.ok(stepped && elected && lost.every((r) => r !== undefined));
    const lostMs = lost.map((r) => Math.round((r as ChildReport).t - cutAt));
    t.diagnostic(
      `routed etcd cut: bravo slave ${Math.round(stepped.t - cutAt)} ms, bravo/delta name no master ${lostMs.join('/')} ms, charlie master ${Math.round(elected.t - cutAt)} ms after the cut` +
        ` (bounds: TTL ${TTL_MS} ms; TTL + sweep + tick ${FAILOVER_BOUND_MS} ms)`,
    );
    // A master acts only while its lease cannot have expired in etcd: it must be gone before etcd could give the role away.
    assert.ok(stepped.t - cutAt <= TTL_MS, `bravo stepped down ${stepped.t - cutAt} ms after the cut`);
    assert.ok(
      lostMs.every((ms) => ms <= TTL_MS),
      `bravo/delta still named a master ${lostMs.join('/')} ms after the cut`,
    );
    assert.ok(stepped.t < elected.t, 'bravo stepped down before charlie was elected');
    assert.ok(elected.t - cutAt <= FAILOVER_BOUND_MS, `charlie elected ${elected.t - cutAt} ms after the cut`);
    const afterCut = c.reports.slice(receivedBefore).filter((r) => SUBNET_2.includes(r.host));
    const claims = afterCut.filter((r) => r.type === 'master' || (r.state.master && r.t > stepped.t));
    assert.deepEqual(
      claims.map((r) => `${r.host} ${r.type}`),
      [],
      `a server without etcd claimed (role events received after the cut: ${afterCut
        .filter((r) => r.type === 'master' || r.type === 'slave' || r.type === 'masterchange')
        .map((r) => `${r.host} ${r.type} ${Math.round(r.t - cutAt)} ms`)
        .join(', ')})`,
    );

    const restoredAt = preciseNow();
    lab.restore(2);
    const live = c.live();
    const { at: agreedAt } = await c.waitAgreed(WAIT_MS, 'charlie');
    await pollStates(() => settled(live, term), "every table to list all four again, with charlie's term");
    const finalTerm = c.state('charlie')?.term;
    // When each server first reported the whole table with the final term (events report at once; polls every 100 ms).
    const healed = Math.max(
      ...live.map(
        (h) =>
          report(h, undefined, restoredAt, (r) => r.state.servers.join() === sameList(live) && r.state.term === finalTerm)?.t ?? Infinity,
      ),
    );
    t.diagnostic(
      `routed etcd heal: all four agree on charlie ${Math.round(agreedAt - restoredAt)} ms, every table full with one term ${Math.round(healed - restoredAt)} ms after the restore`,
    );
    assert.deepEqual(
      live.filter((h) => c.state(h)?.master),
      ['charlie'],
    );
    assert.deepEqual(
      c.reports.filter((r) => r.type === 'master' && r.t >= restoredAt).map((r) => r.host),
      [],
      'charlie kept the role: nobody was elected after the restore',
    );
  });
});
