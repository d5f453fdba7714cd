/**
 * `npm run demo`: five real pixl-server processes on loopback elect a master, lose it to
 * SIGKILL, take a rejoining server back without handing it the role, and hand off
 * gracefully on SIGTERM, narrating each step with measured times.
 *
 * Each line is stamped with the instant it tells of, and many are composed after the fact
 * (a member's report reaches us later than it happened, a step is summed up once it is over):
 * lines are held and printed in time order once every member has been heard up to that instant.
 */
import { preciseNow, type ChildReport } from './child';
import { ProcessCluster } from './process-cluster';

const HOSTS = ['alpha', 'bravo', 'charlie', 'delta', 'echo'];
/** `--heartbeat S` (default 0.1): the test runs it slower, to stay clear of a busy machine's stalls. */
const heartbeatArg = process.argv.indexOf('--heartbeat');
const HEARTBEAT = heartbeatArg > 0 ? Number(process.argv[heartbeatArg + 1]) : 0.1;
if (!(HEARTBEAT >= 0.01 && HEARTBEAT <= 10))
  throw new Error(`--heartbeat must be a number of seconds from 0.01 to 10, got ${process.argv[heartbeatArg + 1]}`);
const CHECK_BEATS = 3;
const STEP_TIMEOUT_MS = 10_000;

const t0 = preciseNow();
const stamp = (t: number): string => `[${((t - t0) / 1000).toFixed(3).padStart(7)} s]`;
/** Lines composed and not yet printed. */
const pending: Array<{ t: number; text: string }> = [];
const say = (text: string, t = preciseNow()): void => {
  pending.push({ t, text });
};
/** Print, in time order, every pending line up to `until` (ties keep the order they were said in). */
function flush(until = Infinity): void {
  const due = pending.filter((line) => line.t <= until).sort((a, b) => a.t - b.t);
  for (const line of due) {
    pending.splice(pending.indexOf(line), 1);
    console.log(`${stamp(line.t)} ${line.text}`);
  }
}
const ms = (value: number): string => `${Math.round(value)} ms`;

async function demo(): Promise<void> {
  const cluster = new ProcessCluster({ heartbeatFreq: HEARTBEAT, checkBeats: CHECK_BEATS });
  const tick = cluster.tickMs;
  const tock = cluster.tockMs;
  const results: Array<[string, string, string]> = [];

  // Narrate membership and role changes as they happen, from the members' own reports.
  const narrated = new Set<ChildReport>();
  const narrate = (): void => {
    for (const report of cluster.reports) {
      if (narrated.has(report)) continue;
      narrated.add(report);
      if (report.type === 'master') say(`  ${report.host}: became MASTER`, report.t);
      if (report.type === 'deleteserver' && report.host === 'delta') say(`  delta: removed ${report.detail} from its table`, report.t);
    }
  };
  /**
   * Every live member answers a stats request after the reports it sent before it (one IPC
   * channel each, in order): once all have answered, every report up to the moment we asked
   * is here, so the lines up to that moment are complete and can be printed.
   */
  const settle = async (): Promise<void> => {
    const asked = preciseNow();
    await Promise.all(cluster.live().map((host) => cluster.stats(host).catch(() => undefined)));
    narrate();
    flush(asked);
  };

  try {
    console.log(`pixl-server-multi demo: ${HOSTS.length} pixl-server processes on loopback`);
    console.log(`heartbeat_freq ${HEARTBEAT} s, check_beats ${CHECK_BEATS}: tick ${tick} ms, tock ${tock} ms`);
    console.log(`failover bound (SPEC 4.4): tock + tick = ${tock + tick} ms after the master's last heartbeat\n`);

    say(`loading ${HOSTS.join(', ')} (broadcast 127.255.255.255)`);
    await Promise.all(HOSTS.map((host) => cluster.start(host, {}, true)));
    const released = await cluster.release(HOSTS);
    say(`port ${cluster.port}: all ${HOSTS.length} started together; each listens a tock before it may claim`, released);
    const cold = await cluster.waitAgreed(STEP_TIMEOUT_MS, 'alpha');
    say(
      `all ${HOSTS.length} agree: master is ${cold.master} (term ${cluster.state('alpha')?.term}), ${ms(cold.at - released)} after the start command`,
      cold.at,
    );
    await settle();
    results.push(['cold start (all agree, from the start command)', ms(cold.at - released), `bound ${tock + tick} ms from the last start`]);

    await delay(4 * tick);
    const killedAt = cluster.kill('alpha', 'SIGKILL');
    say('SIGKILL alpha (the master): no shutdown notice, the others must notice the silence', killedAt);
    const failover = await cluster.waitAgreed(STEP_TIMEOUT_MS, 'bravo');
    const becameMaster = cluster.reports.find((r) => r.host === 'bravo' && r.type === 'master' && r.t > killedAt);
    const lastHeard = cluster.reports.find((r) => r.type === 'deleteserver' && r.detail === 'alpha' && r.host === 'bravo')?.lastHeard;
    say(`survivors agree on ${failover.master}: ${ms(failover.at - killedAt)} after the kill`, failover.at);
    if (becameMaster) {
      results.push(['crash failover (new master, from SIGKILL)', ms(becameMaster.t - killedAt), `bound ${tock + tick} ms`]);
    }
    if (lastHeard) {
      results.push([
        'crash failover (new master, from last heartbeat)',
        ms((becameMaster?.t ?? failover.at) - lastHeard),
        `bound ${tock + tick} ms`,
      ]);
    }
    results.push(['crash failover (all agree, from SIGKILL)', ms(failover.at - killedAt), `bound ${tock + 2 * tick} ms`]);
    await settle();

    await delay(4 * tick);
    say('restarting alpha: it sorts first, but a joiner must never take over');
    await cluster.start('alpha');
    const readyAt = cluster.reports.filter((r) => r.host === 'alpha' && r.type === 'ready').pop()?.t ?? preciseNow();
    await cluster.waitFor(() => cluster.state('alpha')?.masterHostname === 'bravo', STEP_TIMEOUT_MS, 'alpha to learn the master');
    const learned = cluster.reports.find((r) => r.host === 'alpha' && r.type === 'masterchange' && r.detail === 'bravo');
    const joinMs = (learned?.t ?? preciseNow()) - readyAt;
    say(`alpha learned the master (bravo) ${ms(joinMs)} after its startup: one round trip, no tock of waiting`, learned?.t);
    results.push(['join (joiner knows the master)', ms(joinMs), `bound ${tick} ms`]);
    await delay(3 * tock);
    if (cluster.agreedMaster() !== 'bravo') throw new Error('the joiner took over the master role');
    say(`after ${ms(3 * tock)} bravo is still master: no takeover, no flap (term ${cluster.state('bravo')?.term})`);
    await settle();

    const promotedAt = preciseNow();
    say('charlie.promote(): bravo hands the role over in one round trip', promotedAt);
    cluster.command('charlie', { cmd: 'promote' });
    await cluster.waitFor(
      () => cluster.reports.some((r) => r.host === 'charlie' && r.type === 'promoted' && r.t > promotedAt),
      STEP_TIMEOUT_MS,
      'the promote() promise',
    );
    const promoted = cluster.reports.find((r) => r.host === 'charlie' && r.type === 'promoted' && r.t > promotedAt) as ChildReport;
    if (promoted.detail) throw new Error(`promote ${promoted.detail}`);
    say(`charlie is master (term ${promoted.state.term}): promote() resolved ${ms(promoted.t - promotedAt)} after the call`, promoted.t);
    results.push(['promote() handoff (promise resolved)', ms(promoted.t - promotedAt), 'one round trip']);
    const promotion = await cluster.waitAgreed(STEP_TIMEOUT_MS, 'charlie');
    const overlap = cluster.maxConcurrentMasters(promotedAt);
    say(
      `all agree on charlie ${ms(promotion.at - promotedAt)} after the call; most masters at once during the handoff: ${overlap}`,
      promotion.at,
    );
    if (overlap > 1) throw new Error('two servers were master at once during the handoff');
    await settle();
    await delay(2 * tick);

    const stoppedAt = preciseNow();
    say('SIGTERM charlie (the master): graceful shutdown sends a notice', stoppedAt);
    void cluster.stop('charlie');
    const handoff = await cluster.waitAgreed(STEP_TIMEOUT_MS, 'alpha');
    say(`survivors agree on ${handoff.master}: ${ms(handoff.at - stoppedAt)} after SIGTERM, without waiting a tock`, handoff.at);
    results.push(['graceful handoff (all agree, from SIGTERM)', ms(handoff.at - stoppedAt), 'bound 100 ms']);

    await settle();
    say('shutting everything down');
  } finally {
    narrate();
    flush();
    await cluster.stopAll();
  }

  console.log('\nmeasured on this machine:');
  const width = Math.max(...results.map((r) => r[0].length));
  for (const [what, value, bound] of results) console.log(`  ${what.padEnd(width)}  ${value.padStart(7)}   (${bound})`);
}

function delay(msToWait: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, msToWait));
}

demo().then(
  () => process.exit(0),
  (err: Error) => {
    console.error(`demo failed: ${err.message}`);
    process.exit(1);
  },
);
