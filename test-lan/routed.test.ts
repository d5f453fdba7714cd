/**
 * `npm run test:lan` (root): two subnets joined by a router, all in network namespaces
 * this file creates (tools/netns.ts, RoutedLab):
 *
 *   10.231.1.0/24: alpha, bravo, charlie ── router (ip_forward) ── 10.231.2.0/24: delta, echo
 *
 * - Broadcast stays in its subnet: the same five servers form two clusters (documented).
 * - Unicast crosses the router with one listed peer per server, on the other subnet: one
 *   cluster, first-sorting master, SIGKILL failover within SPEC 4.4's bounds.
 * - The router's leg into 10.231.2.0/24 is cut for longer than unicast remembers an unheard
 *   learned address (three tocks), so the heal proves the servers learn each other again:
 *   without a quorum each side has its own master, with a majority quorum only the bigger
 *   side; after the restore, one master within a tock + tick and every server in every table.
 *
 * Times are the children's precise timestamps (tools/child.ts), never sleeps.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { preciseNow, type ChildReport } from '../tools/child';
import { RoutedLab } from '../tools/netns';
import { ProcessCluster } from '../tools/process-cluster';

const SUBNET_1 = ['alpha', 'bravo', 'charlie'];
const SUBNET_2 = ['delta', 'echo'];
const HOSTS = [...SUBNET_1, ...SUBNET_2];
/**
 * Each server lists one peer only, on the other subnet: everything else is learned across
 * the router. The listings join everyone into one chain (alpha–delta–bravo–echo–charlie),
 * and still do without alpha: servers learn only from servers they are connected to
 * through listings, so listings that form two groups make two clusters.
 */
const LISTS: Record<string, string> = { alpha: 'delta', bravo: 'delta', charlie: 'echo', delta: 'alpha', echo: 'bravo' };
const HEARTBEAT = 0.25;
const CHECK_BEATS = 3;
const WAIT_MS = 15_000;
const tick = HEARTBEAT * 1000;
const tock = tick * CHECK_BEATS;

const made = RoutedLab.create([SUBNET_1, SUBNET_2]);
const skip = 'skip' in made ? `test:lan needs root on Linux with iproute2 (\`ip netns\`): ${made.skip}` : false;
if (skip) console.error(`SKIPPED ${skip}`);

const sideOf = (host: string): string[] => (SUBNET_1.includes(host) ? SUBNET_1 : SUBNET_2);
const sorted = (hosts: string[]): string => [...hosts].sort().join();

/** Ask every live member for its state each tick until `predicate` holds (each answer re-checks it). */
async function pollStates(cluster: ProcessCluster, predicate: () => boolean, what: string): Promise<void> {
  const ask = (): void => {
    for (const host of cluster.live()) cluster.command(host, { cmd: 'state' });
  };
  ask();
  const timer = setInterval(ask, cluster.tickMs);
  try {
    await cluster.waitFor(predicate, WAIT_MS, what);
  } finally {
    clearInterval(timer);
  }
}

describe('two subnets joined by a router, in network namespaces', { skip }, () => {
  if ('skip' in made) return;
  const lab = made;
  const port = (cluster: ProcessCluster): number => cluster.port;
  const at = (cluster: ProcessCluster, host: string): string => `${lab.addressOf(host)}:${port(cluster)}`;
  const newCluster = (multi: Record<string, unknown> = {}): ProcessCluster =>
    new ProcessCluster({ heartbeatFreq: HEARTBEAT, checkBeats: CHECK_BEATS, multi, netnsOf: (host) => lab.netnsOf(host) });
  const unicast = (host: string): Record<string, unknown> => ({ transport: 'unicast', peers: [lab.addressOf(LISTS[host] as string)] });
  const finder =
    (cluster: ProcessCluster) =>
    (host: string, type: ChildReport['type'], after: number, detail?: string): ChildReport | undefined =>
      cluster.reports.find((r) => r.host === host && r.type === type && r.t >= after && (detail === undefined || r.detail === detail));
  /** When every one of `hosts` first reported a table of exactly `hosts` at or after `since`. */
  const fullTablesAt = (cluster: ProcessCluster, hosts: string[], since: number): number =>
    Math.max(
      ...hosts.map(
        (host) => cluster.reports.find((r) => r.host === host && r.t >= since && r.state.servers.join() === sorted(hosts))?.t ?? Infinity,
      ),
    );
  /** Unicast forgets unlisted addresses silent for three tocks: wait until no server sends across but to its listed peer. */
  const forgotten = (cluster: ProcessCluster, hosts: string[]): boolean =>
    hosts.every((host) => {
      const allowed = new Set([...sideOf(host).filter((h) => h !== host), LISTS[host] as string].map((h) => at(cluster, h)));
      const peers = cluster.state(host)?.peers ?? [];
      return peers.every((peer) => allowed.has(peer));
    });
  /** Every server of `hosts` sends to every other (the learned table is whole again). */
  const relearned = (cluster: ProcessCluster, hosts: string[]): boolean =>
    hosts.every((host) => hosts.filter((h) => h !== host).every((h) => cluster.state(host)?.peers.includes(at(cluster, h))));

  after(() => lab.remove());

  describe('broadcast: one cluster per subnet', () => {
    const cluster = newCluster();
    before(async () => {
      await Promise.all(HOSTS.map((host) => cluster.start(host, {}, true)));
      await cluster.release(HOSTS);
    });
    after(() => cluster.stopAll());

    // The same lab carries the unicast clusters below across the router: it routes, broadcast does not cross it.
    test('each subnet elects its own master; no server ever sees a server of the other subnet', async () => {
      const islands = (): boolean =>
        HOSTS.every((host) => {
          const state = cluster.state(host);
          return state?.masterHostname === sideOf(host)[0] && state?.servers.join() === sorted(sideOf(host));
        }) &&
        cluster.state('alpha')?.master === true &&
        cluster.state('delta')?.master === true;
      await cluster.waitFor(islands, WAIT_MS, 'alpha master of 10.231.1.0/24, delta of 10.231.2.0/24');
      // Another tock of heartbeats: any broadcast that crossed the router would have been heard by now.
      const settled = preciseNow();
      await pollStates(
        cluster,
        () => HOSTS.every((h) => cluster.reports.some((r) => r.host === h && r.type === 'state' && r.t > settled + tock)),
        'a tock more',
      );
      assert.ok(islands(), 'the two islands held');
      for (const host of HOSTS) {
        assert.equal(cluster.state(host)?.broadcastIp, lab.broadcastOf(host), `${host} computed its own subnet's broadcast address`);
        const crossed = cluster.reports.find((r) => r.host === host && r.state.servers.some((s) => !sideOf(host).includes(s)));
        assert.equal(crossed, undefined, `${host} saw ${crossed?.state.servers.join()}`);
      }
    });
  });

  describe('unicast, one listed peer per server on the other subnet, no quorum', () => {
    const cluster = newCluster();
    const report = finder(cluster);
    before(async () => {
      await Promise.all(HOSTS.map((host) => cluster.start(host, unicast(host), true)));
    });
    after(async () => {
      lab.restore(2);
      await cluster.stopAll();
    });

    test('cold start: one cluster across the router, alpha master, every table lists all five', async (t) => {
      const released = await cluster.release(HOSTS);
      const { master, at: agreedAt } = await cluster.waitAgreed(WAIT_MS, 'alpha');
      assert.equal(master, 'alpha');
      const lastStart = Math.max(...cluster.reports.filter((r) => r.type === 'ready' && r.t >= released).map((r) => r.t));
      await cluster.waitFor(
        () => HOSTS.every((h) => cluster.state(h)?.servers.join() === sorted(HOSTS)),
        WAIT_MS,
        'every table to list all five',
      );
      const full = fullTablesAt(cluster, HOSTS, released);
      t.diagnostic(
        `routed cold start: all agree on alpha ${Math.round(agreedAt - lastStart)} ms, all tables full ${Math.round(full - lastStart)} ms after the last start` +
          ` (SPEC bound for agreement ${tock + tick} ms)`,
      );
      assert.ok(agreedAt - lastStart <= tock + tick, `cold start took ${agreedAt - lastStart} ms`);
      for (const host of HOSTS) {
        // The addresses in the records are the hosts' own: the datagrams crossed the router, unNATed.
        assert.deepEqual(cluster.state(host)?.serverIps, Object.fromEntries(HOSTS.map((h) => [h, lab.addressOf(h)])), host);
      }
      await pollStates(cluster, () => relearned(cluster, HOSTS), 'every server to send to the four others (one listed, three learned)');
    });

    test('SIGKILL of alpha: bravo master within tock + tick of its last heartbeat, all agree one tick later', async (t) => {
      const killedAt = cluster.kill('alpha', 'SIGKILL');
      const { at: agreedAt } = await cluster.waitAgreed(WAIT_MS, 'bravo');
      const became = report('bravo', 'master', killedAt);
      const lastHeard = report('bravo', 'deleteserver', killedAt, 'alpha')?.lastHeard;
      assert.ok(became && lastHeard !== undefined);
      t.diagnostic(
        `routed crash: bravo master ${Math.round(became.t - lastHeard)} ms, all agree ${Math.round(agreedAt - lastHeard)} ms after alpha's last heartbeat` +
          ` (bounds ${tock + tick} / ${tock + 2 * tick} ms)`,
      );
      assert.ok(became.t - lastHeard <= tock + tick, `failover took ${became.t - lastHeard} ms`);
      assert.ok(agreedAt - lastHeard <= tock + 2 * tick, `agreement took ${agreedAt - lastHeard} ms`);
    });

    test('router cut: each side has its own master; restored, bravo (first in rank) for all within tock + tick, no server left out', async (t) => {
      const left = ['bravo', 'charlie'];
      const right = SUBNET_2;
      const cutAt = preciseNow();
      lab.cut(2);
      await cluster.waitFor(
        () =>
          left.every((h) => cluster.state(h)?.masterHostname === 'bravo' && cluster.state(h)?.servers.join() === left.join()) &&
          right.every((h) => cluster.state(h)?.masterHostname === 'delta' && cluster.state(h)?.servers.join() === right.join()) &&
          cluster.state('bravo')?.master === true &&
          cluster.state('delta')?.master === true,
        WAIT_MS,
        'two sides: bravo over {bravo, charlie}, delta over {delta, echo}',
      );
      const became = report('delta', 'master', cutAt);
      const lastHeard = report('delta', 'deleteserver', cutAt, 'bravo')?.lastHeard;
      assert.ok(became && lastHeard !== undefined);
      t.diagnostic(
        `routed cut: delta master of its side ${Math.round(became.t - lastHeard)} ms after bravo's last heartbeat (bound ${tock + tick} ms)`,
      );
      assert.ok(became.t - lastHeard <= tock + tick, `failover took ${became.t - lastHeard} ms`);
      assert.equal(report('bravo', 'slave', cutAt), undefined, 'bravo stepped down on its side');

      const live = cluster.live();
      await pollStates(cluster, () => forgotten(cluster, live), 'every server to forget the learned addresses across the router');
      t.diagnostic(
        `routed cut: learned addresses across the router forgotten ${Math.round(preciseNow() - cutAt)} ms after the cut (three tocks: ${3 * tock} ms)`,
      );

      const restoredAt = preciseNow();
      lab.restore(2);
      const { master, at: agreedAt } = await cluster.waitAgreed(WAIT_MS, 'bravo');
      assert.equal(master, 'bravo');
      await cluster.waitFor(
        () => live.every((h) => cluster.state(h)?.servers.join() === sorted(live)),
        WAIT_MS,
        'every table to list all four',
      );
      const full = fullTablesAt(cluster, live, restoredAt);
      t.diagnostic(
        `routed heal: all agree on bravo ${Math.round(agreedAt - restoredAt)} ms, all tables full ${Math.round(full - restoredAt)} ms after the restore (bound ${tock + tick} ms)`,
      );
      assert.ok(report('delta', 'slave', restoredAt), 'delta relinquished');
      assert.ok(agreedAt - restoredAt <= tock + tick, `agreement took ${agreedAt - restoredAt} ms`);
      assert.ok(full - restoredAt <= tock + tick, `full tables took ${full - restoredAt} ms`);
      await pollStates(cluster, () => relearned(cluster, live), 'every server to send to every other again');
    });
  });

  describe('unicast with quorum 3 of 5 (a majority): a router cut leaves a master on the bigger side only', () => {
    const cluster = newCluster({ quorum: 3 });
    const report = finder(cluster);
    before(async () => {
      await Promise.all(HOSTS.map((host) => cluster.start(host, unicast(host), true)));
      await cluster.release(HOSTS);
      await cluster.waitAgreed(WAIT_MS, 'alpha');
      await cluster.waitFor(
        () => HOSTS.every((h) => cluster.state(h)?.servers.length === HOSTS.length),
        WAIT_MS,
        'every table to list all five',
      );
    });
    after(async () => {
      lab.restore(2);
      await cluster.stopAll();
    });

    test('cut: alpha keeps its three, {delta, echo} never has a master; restored, alpha for all five within tock + tick', async (t) => {
      const cutAt = preciseNow();
      // Judged by what is received after the cut, not by the children's clocks against ours.
      const receivedBefore = cluster.reports.length;
      lab.cut(2);
      await cluster.waitFor(
        () =>
          SUBNET_1.every((h) => cluster.state(h)?.masterHostname === 'alpha' && cluster.state(h)?.servers.join() === SUBNET_1.join()) &&
          SUBNET_2.every((h) => cluster.state(h)?.servers.join() === SUBNET_2.join() && cluster.state(h)?.master === false),
        WAIT_MS,
        'alpha over {alpha, bravo, charlie}; {delta, echo} alone',
      );
      // The minority has had longer than a lease (tock + tick) to claim by the time the tables are forgotten.
      await pollStates(cluster, () => forgotten(cluster, HOSTS), 'every server to forget the learned addresses across the router');
      const minorityClaims = cluster.reports
        .slice(receivedBefore)
        .filter((r) => SUBNET_2.includes(r.host) && (r.type === 'master' || r.state.master));
      assert.deepEqual(
        minorityClaims.map((r) => `${r.host} ${r.type}`),
        [],
        'the minority side claimed',
      );
      assert.equal(report('alpha', 'slave', cutAt), undefined, 'alpha stepped down with its majority');
      // The minority dropped alpha with its table: the agreement measured after the restore is a new one.
      assert.ok(
        SUBNET_2.every((h) => cluster.state(h)?.masterHostname !== 'alpha'),
        'the minority still names alpha as its master',
      );

      const restoredAt = preciseNow();
      lab.restore(2);
      const { master, at: agreedAt } = await cluster.waitAgreed(WAIT_MS, 'alpha');
      assert.equal(master, 'alpha');
      await cluster.waitFor(
        () => HOSTS.every((h) => cluster.state(h)?.servers.join() === sorted(HOSTS)),
        WAIT_MS,
        'every table to list all five',
      );
      const full = fullTablesAt(cluster, HOSTS, restoredAt);
      t.diagnostic(
        `routed quorum heal: all five agree on alpha ${Math.round(agreedAt - restoredAt)} ms, all tables full ${Math.round(full - restoredAt)} ms after the restore (bound ${tock + tick} ms)`,
      );
      assert.ok(agreedAt - restoredAt <= tock + tick, `agreement took ${agreedAt - restoredAt} ms`);
      assert.ok(full - restoredAt <= tock + tick, `full tables took ${full - restoredAt} ms`);
      assert.equal(
        cluster.reports.filter((r) => r.type === 'master' && r.t >= cutAt).length,
        0,
        'a master was elected: alpha held the role throughout',
      );
      await pollStates(cluster, () => relearned(cluster, HOSTS), 'every server to send to every other again');
    });
  });
});
