/**
 * `npm run bench`: how fast a dead master is replaced and what an idle cluster costs,
 * measured on real pixl-server processes on loopback (one per hostname, one shared port,
 * broadcast 127.255.255.255), plus codec throughput and the cost of a flood of forged packets
 * (tools/bench-flood.ts).
 *
 * Every time is compared with its SPEC section 4 bound as a ratio (measured / bound), so
 * the verdict does not depend on machine speed: a slow machine shifts nothing, since the
 * bounds scale with the heartbeat. Exit code 1 when a bound is exceeded, 2 on an error.
 *
 *   npm run bench -- --nodes 3,5 --heartbeat 0.5 --check-beats 3 --repeat 5 --json bench.json
 *   npm run bench -- --short          (CI: N = 3, heartbeat 0.25 s)
 */
import { writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { benchCodec, type CodecResult } from './bench-codec';
import { floodRates, floodTables, packetCosts } from './bench-flood';
import { preciseNow, type ChildReport, type ChildStats } from './child';
import { ProcessCluster } from './process-cluster';
import { EtcdCluster, etcdUnavailable } from './etcd-cluster';

const HOSTNAMES = [
  'alpha',
  'bravo',
  'charlie',
  'delta',
  'echo',
  'foxtrot',
  'golf',
  'hotel',
  'india',
  'juliett',
  'kilo',
  'lima',
  'mike',
  'november',
  'oscar',
  'papa',
  'quebec',
  'romeo',
  'sierra',
  'tango',
  'uniform',
  'victor',
  'whiskey',
  'xray',
  'yankee',
  'zulu',
];
const STALL_RESOLUTION_MS = 10;
/** Generous: a step that has not happened after this is broken, not slow. */
const stepTimeout = (tockMs: number): number => Math.max(10_000, 10 * tockMs);

interface Options {
  nodes: number[];
  heartbeat: number;
  checkBeats: number;
  repeat: number;
  idleSeconds: number;
  codecSeconds: number;
  json: string | null;
  short: boolean;
}

const USAGE = `usage: npm run bench -- [options]
  --nodes 3,5          cluster sizes (default 3,5; --short: 3)
  --heartbeat 0.5      heartbeat_freq in seconds, one tick (default 0.5; --short: 0.25)
  --check-beats 3      check_beats, ticks per tock (default 3)
  --repeat 5           repetitions per scenario and size (default 5; --short: 3)
  --idle S             seconds of idle measurement per size (default max(10, 20 ticks); --short: 1)
  --codec S            seconds per codec measurement (default 1; --short: 0.2)
  --json FILE          write the results as JSON (default bench.json; --json '' for none)
  --short              the quick CI run; explicit options still win
exit code: 0 all within bounds, 1 a bound exceeded, 2 an error`;

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      nodes: { type: 'string' },
      heartbeat: { type: 'string' },
      'check-beats': { type: 'string' },
      repeat: { type: 'string' },
      idle: { type: 'string' },
      codec: { type: 'string' },
      json: { type: 'string' },
      short: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const short = values.short === true;
  const number = (name: string, raw: string | undefined, fallback: number, ok: (n: number) => boolean): number => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || !ok(n)) throw new Error(`--${name}: invalid value ${JSON.stringify(raw)}\n${USAGE}`);
    return n;
  };
  const heartbeat = number('heartbeat', values.heartbeat, short ? 0.25 : 0.5, (n) => n >= 0.01 && n <= 60);
  const nodes = (values.nodes ?? (short ? '3' : '3,5'))
    .split(',')
    .map((part) => number('nodes', part.trim(), 0, (n) => Number.isInteger(n) && n >= 2 && n <= HOSTNAMES.length));
  return {
    nodes,
    heartbeat,
    checkBeats: number('check-beats', values['check-beats'], 3, (n) => Number.isInteger(n) && n >= 1 && n <= 100),
    repeat: number('repeat', values.repeat, short ? 3 : 5, (n) => Number.isInteger(n) && n >= 1),
    idleSeconds: number('idle', values.idle, short ? 1 : Math.max(10, 20 * heartbeat), (n) => n > 0),
    codecSeconds: number('codec', values.codec, short ? 0.2 : 1, (n) => n > 0),
    json: values.json === undefined ? 'bench.json' : values.json || null,
    short,
  };
}

// ---- statistics -----------------------------------------------------------------------

interface Summary {
  n: number;
  min: number;
  median: number;
  max: number;
}

function summarize(values: number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) return { n: 0, min: NaN, median: NaN, max: NaN };
  const mid = Math.floor(n / 2);
  const median = n % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return { n, min: sorted[0] as number, median, max: sorted[n - 1] as number };
}

// ---- the scenarios ----------------------------------------------------------------------

type ScenarioKey =
  | 'coldStart'
  | 'crashMasterFromSignal'
  | 'crashMasterFromLastHeartbeat'
  | 'crashAgreedFromSignal'
  | 'crashAgreedFromLastHeartbeat'
  | 'gracefulAgreed'
  | 'join';

interface ScenarioSpec {
  label: string;
  boundLabel: string;
  bound: (tick: number, tock: number) => number;
}

/** SPEC section 4; "from the signal" uses the same bound, since the last heartbeat precedes it. */
const SCENARIOS: Record<ScenarioKey, ScenarioSpec> = {
  coldStart: { label: 'cold start: all agree, from last start', boundLabel: 'tock+tick', bound: (tick, tock) => tock + tick },
  crashMasterFromSignal: { label: 'crash: new master, from SIGKILL', boundLabel: 'tock+tick', bound: (tick, tock) => tock + tick },
  crashMasterFromLastHeartbeat: {
    label: 'crash: new master, from last heartbeat',
    boundLabel: 'tock+tick',
    bound: (tick, tock) => tock + tick,
  },
  crashAgreedFromSignal: { label: 'crash: all agree, from SIGKILL', boundLabel: 'tock+2 tick', bound: (tick, tock) => tock + 2 * tick },
  crashAgreedFromLastHeartbeat: {
    label: 'crash: all agree, from last heartbeat',
    boundLabel: 'tock+2 tick',
    bound: (tick, tock) => tock + 2 * tick,
  },
  gracefulAgreed: { label: 'graceful (SIGTERM): all agree', boundLabel: '100 ms', bound: () => 100 },
  join: { label: 'join: joiner knows the master', boundLabel: 'tick', bound: (tick) => tick },
};

interface ScenarioResult extends Summary {
  samples: number[];
  bound: number;
  /** max / bound: above 1 is a SPEC violation. */
  ratio: number;
}

interface IdleServer {
  host: string;
  cpuPercent: number;
  rssMB: number;
  datagramsInPerS: number;
  datagramsOutPerS: number;
  bytesInPerS: number;
  bytesOutPerS: number;
  socketsOpened: number;
}

interface IdleResult {
  seconds: number;
  servers: IdleServer[];
  /** pixl-server alone, no MultiServer, measured over the same window. */
  baseline: IdleServer;
  /**
   * The floor (tools/floor-component.ts: one JSON heartbeat a tick, every datagram parsed, one
   * timer), as many servers as ours on a port of their own, same window. Its packet figures
   * are not counted (zero). Absent for the etcd mode.
   */
  floor?: IdleServer[];
}

/** The same figures with `coordinator` (etcd) set: its own contract, and the UDP mode's SPEC bound beside it. */
type EtcdKey = 'crashMasterFromSignal' | 'crashAgreedFromSignal' | 'gracefulAgreed' | 'join';
const ETCD_SCENARIOS: Record<
  EtcdKey,
  { label: string; boundLabel: string; bound: (tick: number, ttl: number) => number; spec: ScenarioKey }
> = {
  crashMasterFromSignal: {
    label: 'crash: new master, from SIGKILL',
    boundLabel: 'TTL+sweep+tick',
    bound: (tick, ttl) => ttl + ETCD_EXPIRY_SWEEP_MS + tick,
    spec: 'crashMasterFromSignal',
  },
  crashAgreedFromSignal: {
    label: 'crash: all agree, from SIGKILL',
    boundLabel: 'TTL+sweep+tick',
    bound: (tick, ttl) => ttl + ETCD_EXPIRY_SWEEP_MS + tick,
    spec: 'crashAgreedFromSignal',
  },
  // A resign is three writes that etcd commits on a quorum of its members (each an fsync):
  // milliseconds, but on a loaded machine more than the 100 ms of the UDP mode's notice.
  gracefulAgreed: {
    label: 'graceful (SIGTERM): all agree',
    boundLabel: 'max(100 ms, tick)',
    bound: (tick) => Math.max(100, tick),
    spec: 'gracefulAgreed',
  },
  join: { label: 'join: joiner knows the master', boundLabel: 'tick', bound: (tick) => tick, spec: 'join' },
};
/** etcd's leader looks for expired leases every 500 ms. */
const ETCD_EXPIRY_SWEEP_MS = 500;
/** The lease TTL the etcd runs use: etcd's minimum with the test cluster's 500 ms election timeout. */
const ETCD_TTL_S = 2; // the least tools/etcd-cluster.ts's timings allow (election timeout 250 ms)

interface EtcdScenarioResult extends ScenarioResult {
  /** The UDP mode's SPEC bound for the same figure, and max / that bound (for comparison; not a verdict). */
  specBound: number;
  specRatio: number;
}

interface EtcdSizeResult {
  ttlMs: number;
  scenarios: Record<EtcdKey, EtcdScenarioResult>;
  idle: IdleResult;
}

interface SizeResult {
  nodes: number;
  /** The same cluster size with `coordinator` set (absent when etcd is not installed). */
  etcd?: EtcdSizeResult;
  scenarios: Record<ScenarioKey, ScenarioResult>;
  /** Cold start: from the first member's startup to the last's, after the common release. */
  startSpread: Summary & { samples: number[] };
  /** Longest event-loop delay of the bench process in each repetition, ms. */
  stall: Summary & { samples: number[] };
  idle: IdleResult;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function reportsOf(cluster: ProcessCluster, host: string, type: ChildReport['type'], after: number): ChildReport[] {
  return cluster.reports.filter((r) => r.host === host && r.type === type && r.t >= after);
}

/** Wait until every live member lists exactly the live members, and they agree on a master. */
async function settled(cluster: ProcessCluster, timeoutMs: number): Promise<string> {
  await cluster.waitFor(
    () => {
      const live = cluster.live().sort();
      return cluster.agreedMaster() !== null && live.every((host) => cluster.state(host)?.servers.join() === live.join());
    },
    timeoutMs,
    'every member to list every live member, all agreed',
  );
  return cluster.agreedMaster() as string;
}

/** Start a member that joins a running cluster; returns ms from its startup to knowing the master. */
async function join(cluster: ProcessCluster, host: string, master: string, timeoutMs: number): Promise<number> {
  const before = preciseNow();
  await cluster.start(host);
  await cluster.waitFor(() => cluster.state(host)?.masterHostname === master, timeoutMs, `${host} to learn the master`);
  const ready = reportsOf(cluster, host, 'ready', before)[0];
  const learned = cluster.reports.find((r) => r.host === host && r.t >= before && r.state.masterHostname === master);
  if (!ready || !learned) throw new Error(`${host}: no ready or learn report`);
  return learned.t - ready.t;
}

type Snapshot = { t: number; stats: ChildStats };

function rates(host: string, a: Snapshot, b: Snapshot): IdleServer {
  const wallS = (b.t - a.t) / 1000;
  const cpuUs = b.stats.cpuUserUs + b.stats.cpuSystemUs - a.stats.cpuUserUs - a.stats.cpuSystemUs;
  return {
    host,
    cpuPercent: (cpuUs / 1e6 / wallS) * 100,
    rssMB: b.stats.rssBytes / 1024 / 1024,
    datagramsInPerS: (b.stats.packetsIn - a.stats.packetsIn) / wallS,
    datagramsOutPerS: (b.stats.packetsOut - a.stats.packetsOut) / wallS,
    bytesInPerS: (b.stats.bytesIn - a.stats.bytesIn) / wallS,
    bytesOutPerS: (b.stats.bytesOut - a.stats.bytesOut) / wallS,
    socketsOpened: b.stats.socketsOpened,
  };
}

/**
 * Resource use of every member over the same window, and beside them of a pixl-server process
 * without the component (the difference is what MultiServer itself costs) and, with `floor`
 * timing, of a cluster of the floor component of the same size (what any heartbeat component
 * cannot avoid costing). Load on the machine during the window weighs on all of them alike.
 */
async function idle(
  cluster: ProcessCluster,
  hosts: string[],
  seconds: number,
  floorTiming?: { heartbeatFreq: number; checkBeats: number },
): Promise<IdleResult> {
  const bare = new ProcessCluster({ heartbeatFreq: 1, checkBeats: 1, bare: true });
  const floor = floorTiming ? new ProcessCluster({ ...floorTiming, floor: true }) : null;
  try {
    await Promise.all([bare.start('baseline'), ...(floor ? hosts.map((host) => floor.start(host)) : [])]);
    if (floor) {
      // Like ours, past its start: every member has heard every other, and a tock more.
      await floorHeardAll(floor, hosts, stepTimeout(floor.tockMs));
      await delay(floor.tockMs);
    }
    const floorHosts = floor ? hosts : [];
    const snapshot = (): Promise<Snapshot[]> =>
      Promise.all([
        ...hosts.map((host) => cluster.stats(host)),
        ...floorHosts.map((host) => (floor as ProcessCluster).stats(host)),
        bare.stats('baseline'),
      ]);
    const first = await snapshot();
    await delay(seconds * 1000);
    const second = await snapshot();
    const all = [...hosts, ...floorHosts.map((host) => `floor ${host}`), 'baseline'].map((host, i) =>
      rates(host, first[i] as Snapshot, second[i] as Snapshot),
    );
    const result: IdleResult = { seconds, servers: all.slice(0, hosts.length), baseline: all[all.length - 1] as IdleServer };
    if (floor) result.floor = all.slice(hosts.length, -1);
    return result;
  } finally {
    await Promise.all([bare.stopAll(), floor?.stopAll()]);
  }
}

/** The floor's members report no events: ask each for its table until all list every member. */
async function floorHeardAll(floor: ProcessCluster, hosts: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const asked = floor.reports.length;
    for (const host of hosts) floor.command(host, { cmd: 'state' });
    await floor.waitFor(() => floor.reports.length >= asked + hosts.length, timeoutMs, 'the floor members to report');
    if (hosts.every((host) => floor.state(host)?.servers.length === hosts.length)) return;
    if (Date.now() > deadline) throw new Error(`the floor's members did not all hear each other within ${timeoutMs} ms`);
    await delay(floor.tickMs);
  }
}

/**
 * One repetition on a fresh cluster: cold start; (idle, first repetition only); SIGKILL of
 * the master at a random phase of its heartbeat; the killed server rejoins; SIGTERM of the
 * new master; that one rejoins too.
 */
async function repetition(
  options: Options,
  nodes: number,
  samples: Record<ScenarioKey, number[]>,
  measureIdle: boolean,
  noise: { startSpreads: number[]; stallsMs: number[] },
): Promise<IdleResult | null> {
  const cluster = new ProcessCluster({ heartbeatFreq: options.heartbeat, checkBeats: options.checkBeats });
  const tick = cluster.tickMs;
  const tock = cluster.tockMs;
  const timeout = stepTimeout(tock);
  const hosts = HOSTNAMES.slice(0, nodes);
  let idleResult: IdleResult | null = null;
  let phase = 'cold start';
  // How late this process's own timers fire: when the machine is busy, members' timers
  // are late too, and that shows up in the figures as if the election were slow.
  const stall = monitorEventLoopDelay({ resolution: STALL_RESOLUTION_MS });
  stall.enable();
  try {
    // Cold start: processes load first and start together, so no one is a joiner.
    await Promise.all(hosts.map((host) => cluster.start(host, {}, true)));
    const released = await cluster.release(hosts);
    const cold = await cluster.waitAgreed(timeout, hosts[0]);
    const starts = cluster.reports.filter((r) => r.type === 'ready' && r.t >= released).map((r) => r.t);
    const lastStart = Math.max(...starts);
    samples.coldStart.push(cold.at - lastStart);
    // Measured "from the last start" (SPEC 4.2); a late starter is a joiner in all but name.
    noise.startSpreads.push(lastStart - Math.min(...starts));
    await settled(cluster, timeout);

    if (measureIdle) {
      // Past start-up work (JIT, first log writes) before counting.
      await delay(tock);
      idleResult = await idle(cluster, hosts, options.idleSeconds, { heartbeatFreq: options.heartbeat, checkBeats: options.checkBeats });
    }

    phase = 'crash failover';
    // Crash: a random phase within the heartbeat period, so "from SIGKILL" samples it.
    const master = await settled(cluster, timeout);
    await delay(Math.random() * tick);
    const killedAt = cluster.kill(master, 'SIGKILL');
    const successor = cluster.live().sort()[0] as string;
    const failover = await cluster.waitAgreed(timeout, successor);
    const became = reportsOf(cluster, successor, 'master', killedAt)[0];
    const removal = reportsOf(cluster, successor, 'deleteserver', killedAt).find((r) => r.detail === master);
    if (!became || removal?.lastHeard === undefined) throw new Error(`crash: no master or deleteserver report from ${successor}`);
    samples.crashMasterFromSignal.push(became.t - killedAt);
    samples.crashMasterFromLastHeartbeat.push(became.t - removal.lastHeard);
    samples.crashAgreedFromSignal.push(failover.at - killedAt);
    samples.crashAgreedFromLastHeartbeat.push(failover.at - removal.lastHeard);

    phase = 'join after crash';
    samples.join.push(await join(cluster, master, successor, timeout));
    await settled(cluster, timeout);
    // The joiner listens a tock before it may ever claim (SPEC 4.3); the graceful handoff
    // below starts from a cluster past that, as a stable cluster is.
    await delay(tock + tick);

    phase = 'graceful handoff';
    // Graceful: the master leaves with a notice; the first-sorting survivor takes over.
    const leaving = await settled(cluster, timeout);
    const heir = cluster
      .live()
      .filter((h) => h !== leaving)
      .sort()[0] as string;
    const stoppedAt = preciseNow();
    const exited = cluster.stop(leaving);
    const handoff = await cluster.waitAgreed(timeout, heir);
    await exited;
    samples.gracefulAgreed.push(handoff.at - stoppedAt);

    phase = 'join after handoff';
    samples.join.push(await join(cluster, leaving, heir, timeout));
    await settled(cluster, timeout);
  } catch (err) {
    const states = hosts.map((host) => `${host}: ${JSON.stringify(cluster.state(host))}`).join('\n    ');
    throw new Error(`N=${nodes}, ${phase}: ${(err as Error).message}\n    ${states}`);
  } finally {
    stall.disable();
    // The histogram holds whole intervals between its timer's runs; lateness is the excess.
    noise.stallsMs.push(Math.max(0, stall.max / 1e6 - STALL_RESOLUTION_MS));
    await cluster.stopAll();
  }
  return idleResult;
}

/**
 * One repetition in coordinator mode, on a fresh cluster of processes against the real etcd:
 * cold start; (idle, first repetition only); SIGKILL of the master at a random phase; the
 * killed server rejoins; SIGTERM of the master (a graceful handoff).
 */
async function etcdRepetition(
  options: Options,
  nodes: number,
  etcd: EtcdCluster,
  samples: Record<EtcdKey, number[]>,
  measureIdle: boolean,
  run: number,
): Promise<IdleResult | null> {
  const coordinator = {
    type: 'etcd',
    hosts: etcd.endpoints,
    ttl: ETCD_TTL_S,
    election_timeout_ms: etcd.electionMs,
    prefix: `/psm-bench-${process.pid}/${nodes}-${run}/`,
  };
  const cluster = new ProcessCluster({ heartbeatFreq: options.heartbeat, checkBeats: options.checkBeats, multi: { coordinator } });
  const tick = cluster.tickMs;
  const timeout = stepTimeout(cluster.tockMs);
  const hosts = HOSTNAMES.slice(0, nodes);
  // Message sockets are unicast, bound exclusively: one loopback address per member.
  const bind = (host: string): Record<string, unknown> => ({ bind_ip: `127.0.0.${hosts.indexOf(host) + 2}` });
  let idleResult: IdleResult | null = null;
  let phase = 'cold start';
  try {
    await Promise.all(hosts.map((host) => cluster.start(host, bind(host), true)));
    await cluster.release(hosts);
    await cluster.waitAgreed(timeout);
    await settled(cluster, timeout);
    if (measureIdle) {
      await delay(cluster.tockMs);
      idleResult = await idle(cluster, hosts, options.idleSeconds, { heartbeatFreq: options.heartbeat, checkBeats: options.checkBeats });
    }

    phase = 'crash failover';
    const master = await settled(cluster, timeout);
    await delay(Math.random() * ETCD_TTL_S * 1000);
    const killedAt = cluster.kill(master, 'SIGKILL');
    const successor = cluster.live().sort()[0] as string;
    const failover = await cluster.waitAgreed(timeout, successor);
    // The others learn from etcd's watch as fast as the new master learns of its win: its
    // `master` report may come just after the agreement was seen.
    await cluster.waitFor(() => reportsOf(cluster, successor, 'master', killedAt).length > 0, timeout, `${successor}'s master report`);
    const became = reportsOf(cluster, successor, 'master', killedAt)[0];
    if (!became) throw new Error(`crash: no master report from ${successor}`);
    samples.crashMasterFromSignal.push(became.t - killedAt);
    samples.crashAgreedFromSignal.push(failover.at - killedAt);

    phase = 'join after crash';
    const before = preciseNow();
    await cluster.start(master, bind(master));
    await cluster.waitFor(() => cluster.state(master)?.masterHostname === successor, timeout, `${master} to learn the master`);
    const ready = reportsOf(cluster, master, 'ready', before)[0];
    const learned = cluster.reports.find((r) => r.host === master && r.t >= before && r.state.masterHostname === successor);
    if (!ready || !learned) throw new Error(`${master}: no ready or learn report`);
    samples.join.push(learned.t - ready.t);
    await settled(cluster, timeout);

    phase = 'graceful handoff';
    const leaving = await settled(cluster, timeout);
    const heir = cluster
      .live()
      .filter((h) => h !== leaving)
      .sort()[0] as string;
    const stoppedAt = preciseNow();
    const exited = cluster.stop(leaving);
    const handoff = await cluster.waitAgreed(timeout, heir);
    await exited;
    samples.gracefulAgreed.push(handoff.at - stoppedAt);
    void tick;
  } catch (err) {
    const states = hosts.map((host) => `${host}: ${JSON.stringify(cluster.state(host))}`).join('\n    ');
    throw new Error(`etcd mode, N=${nodes}, ${phase}: ${(err as Error).message}\n    ${states}`);
  } finally {
    await cluster.stopAll();
  }
  return idleResult;
}

async function benchEtcd(options: Options, nodes: number, etcd: EtcdCluster): Promise<EtcdSizeResult> {
  const tick = options.heartbeat * 1000;
  const tock = tick * options.checkBeats;
  const ttl = ETCD_TTL_S * 1000;
  const samples = Object.fromEntries(Object.keys(ETCD_SCENARIOS).map((key) => [key, [] as number[]])) as Record<EtcdKey, number[]>;
  let idleResult: IdleResult | null = null;
  for (let r = 0; r < options.repeat; r++) {
    process.stderr.write(`  N = ${nodes}, etcd: repetition ${r + 1}/${options.repeat}\n`);
    idleResult = (await etcdRepetition(options, nodes, etcd, samples, r === 0, r)) ?? idleResult;
  }
  if (!idleResult) throw new Error('no idle measurement (etcd)');
  const scenarios = {} as Record<EtcdKey, EtcdScenarioResult>;
  for (const key of Object.keys(ETCD_SCENARIOS) as EtcdKey[]) {
    const spec = ETCD_SCENARIOS[key];
    const bound = spec.bound(tick, ttl);
    const specBound = SCENARIOS[spec.spec].bound(tick, tock);
    const summary = summarize(samples[key]);
    scenarios[key] = {
      ...summary,
      samples: samples[key].map(round1),
      bound,
      ratio: summary.max / bound,
      specBound,
      specRatio: summary.max / specBound,
    };
  }
  return { ttlMs: ttl, scenarios, idle: idleResult };
}

async function benchSize(options: Options, nodes: number): Promise<SizeResult> {
  const tick = options.heartbeat * 1000;
  const tock = tick * options.checkBeats;
  const samples = Object.fromEntries(Object.keys(SCENARIOS).map((key) => [key, [] as number[]])) as Record<ScenarioKey, number[]>;
  let idleResult: IdleResult | null = null;
  const noise = { startSpreads: [] as number[], stallsMs: [] as number[] };
  for (let r = 0; r < options.repeat; r++) {
    process.stderr.write(`  N = ${nodes}: repetition ${r + 1}/${options.repeat}\n`);
    idleResult = (await repetition(options, nodes, samples, r === 0, noise)) ?? idleResult;
  }
  if (!idleResult) throw new Error('no idle measurement');
  const scenarios = {} as Record<ScenarioKey, ScenarioResult>;
  for (const key of Object.keys(SCENARIOS) as ScenarioKey[]) {
    const bound = SCENARIOS[key].bound(tick, tock);
    const summary = summarize(samples[key]);
    scenarios[key] = { ...summary, samples: samples[key].map(round1), bound, ratio: summary.max / bound };
  }
  return {
    nodes,
    scenarios,
    startSpread: { ...summarize(noise.startSpreads), samples: noise.startSpreads.map(round1) },
    stall: { ...summarize(noise.stallsMs), samples: noise.stallsMs.map(round1) },
    idle: idleResult,
  };
}

// ---- output -----------------------------------------------------------------------------

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}

function table(rows: string[][], alignLeft = 1): string {
  const widths = rows[0]?.map((_, col) => Math.max(...rows.map((row) => (row[col] ?? '').length))) ?? [];
  return rows
    .map((row) =>
      row
        .map((cell, col) => (col < alignLeft ? cell.padEnd(widths[col] ?? 0) : cell.padStart(widths[col] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function machine(): Record<string, string | number> {
  const load = os.loadavg()[0] ?? 0;
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cpus: cpus.length,
    memoryGB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    // Other work on the machine shows up as scheduling delay in the figures.
    loadAverage1m: Math.round(load * 100) / 100,
  };
}

function renderSize(result: SizeResult, options: Options): string {
  const tick = options.heartbeat * 1000;
  const ms = (v: number): string => (Number.isFinite(v) ? v.toFixed(v < 10 ? 1 : 0) : '-');
  const tk = (v: number): string => (Number.isFinite(v) ? (v / tick).toFixed(2) : '-');
  const rows: string[][] = [['scenario', 'n', 'min ms', 'median', 'max', 'min tick', 'median', 'max', 'bound', 'max/bound']];
  for (const key of Object.keys(SCENARIOS) as ScenarioKey[]) {
    const s = result.scenarios[key];
    const spec = SCENARIOS[key];
    const verdict = s.ratio <= 1 ? '' : '  EXCEEDED';
    rows.push([
      spec.label,
      String(s.n),
      ms(s.min),
      ms(s.median),
      ms(s.max),
      tk(s.min),
      tk(s.median),
      tk(s.max),
      `${spec.boundLabel} = ${ms(s.bound)} ms`,
      s.ratio.toFixed(2) + verdict,
    ]);
  }
  const floor = result.idle.floor ?? [];
  const idleRows: string[][] = [['idle, per server', 'min', 'median', 'max', 'floor (median)', 'pixl-server alone']];
  const idleMetric = (label: string, pick: (s: IdleServer) => number, digits: number, floorCounted = true): void => {
    const sum = summarize(result.idle.servers.map(pick));
    const floorMedian = floorCounted && floor.length > 0 ? summarize(floor.map(pick)).median.toFixed(digits) : '-';
    idleRows.push([
      label,
      sum.min.toFixed(digits),
      sum.median.toFixed(digits),
      sum.max.toFixed(digits),
      floorMedian,
      pick(result.idle.baseline).toFixed(digits),
    ]);
  };
  idleMetric('CPU %', (s) => s.cpuPercent, 2);
  idleMetric('RSS MB', (s) => s.rssMB, 1);
  idleMetric('datagrams in /s', (s) => s.datagramsInPerS, 2, false);
  idleMetric('datagrams out /s', (s) => s.datagramsOutPerS, 2, false);
  idleMetric('bytes in /s', (s) => s.bytesInPerS, 0, false);
  idleMetric('bytes out /s', (s) => s.bytesOutPerS, 0, false);
  idleMetric('sockets opened', (s) => s.socketsOpened, 0, false);
  const overFloor =
    floor.length > 0
      ? `CPU over the floor (medians, same window): ${signed(summarize(result.idle.servers.map((s) => s.cpuPercent)).median - summarize(floor.map((s) => s.cpuPercent)).median)} points; ` +
        `the floor over pixl-server alone: ${signed(summarize(floor.map((s) => s.cpuPercent)).median - result.idle.baseline.cpuPercent)}`
      : '';
  return [
    `N = ${result.nodes}: heartbeat_freq ${options.heartbeat} s, check_beats ${options.checkBeats} ` +
      `(tick ${tick} ms, tock ${tick * options.checkBeats} ms), ${options.repeat} repetitions`,
    table(rows),
    `cold starts: the members' startups spread over ${ms(result.startSpread.min)} / ${ms(result.startSpread.median)} / ` +
      `${ms(result.startSpread.max)} ms (min / median / max) after one release`,
    `scheduling noise: the bench process's timers fired up to ${ms(result.stall.min)} / ${ms(result.stall.median)} / ` +
      `${ms(result.stall.max)} ms late (worst per repetition; min / median / max)`,
    '',
    `idle for ${result.idle.seconds} s, whole process, same window: "floor" is a cluster of as many servers of the minimal ` +
      'heartbeat component (tools/floor-component.ts; its packets are not counted), "pixl-server alone" one without MultiServer:',
    table(idleRows),
    ...(overFloor ? [overFloor] : []),
  ].join('\n');
}

function signed(value: number): string {
  return `${value >= 0 ? '+' : ''}${value.toFixed(2)}`;
}

function renderEtcd(nodes: number, result: EtcdSizeResult, options: Options): string {
  const tick = options.heartbeat * 1000;
  const ms = (v: number): string => (Number.isFinite(v) ? v.toFixed(v < 10 ? 1 : 0) : '-');
  const rows: string[][] = [['scenario (etcd)', 'n', 'min ms', 'median', 'max', 'bound', 'max/bound', 'UDP SPEC bound', 'max/SPEC']];
  for (const key of Object.keys(ETCD_SCENARIOS) as EtcdKey[]) {
    const s = result.scenarios[key];
    const spec = ETCD_SCENARIOS[key];
    rows.push([
      spec.label,
      String(s.n),
      ms(s.min),
      ms(s.median),
      ms(s.max),
      `${spec.boundLabel} = ${ms(s.bound)} ms`,
      s.ratio.toFixed(2) + (s.ratio <= 1 ? '' : '  EXCEEDED'),
      `${SCENARIOS[spec.spec].boundLabel} = ${ms(s.specBound)} ms`,
      s.specRatio.toFixed(2),
    ]);
  }
  const idleRows: string[][] = [['idle, per server (etcd)', 'min', 'median', 'max']];
  const idleMetric = (label: string, pick: (s: IdleServer) => number, digits: number): void => {
    const sum = summarize(result.idle.servers.map(pick));
    idleRows.push([label, sum.min.toFixed(digits), sum.median.toFixed(digits), sum.max.toFixed(digits)]);
  };
  idleMetric('CPU %', (s) => s.cpuPercent, 2);
  idleMetric('RSS MB', (s) => s.rssMB, 1);
  idleMetric('UDP datagrams out /s', (s) => s.datagramsOutPerS, 2);
  return [
    `N = ${nodes}, coordinator etcd (3 members on loopback): TTL ${result.ttlMs} ms, same heartbeat_freq ${options.heartbeat} s (tick ${tick} ms)`,
    table(rows),
    '',
    `idle for ${result.idle.seconds} s (keep-alives every TTL/3 go to etcd, not counted as datagrams):`,
    table(idleRows),
  ].join('\n');
}

function renderCodec(results: CodecResult[]): string {
  const rows: string[][] = [['codec (one core, fastest of 5 slices)', 'per second', 'µs each', 'avg bytes']];
  for (const r of results) {
    rows.push([
      r.name + (r.note ? ' *' : ''),
      Math.round(r.perSecond).toLocaleString('en-US'),
      r.microsPerOp.toFixed(2),
      r.avgBytes.toFixed(0),
    ]);
  }
  const notes = [...new Set(results.map((r) => r.note).filter(Boolean))].map((note) => `* ${note}`);
  return [table(rows), ...notes].join('\n');
}

// ---- main -------------------------------------------------------------------------------

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const started = new Date();
  const info = machine();
  console.log(
    `pixl-server-multi bench${options.short ? ' (short)' : ''}: separate pixl-server processes on loopback, broadcast 127.255.255.255`,
  );
  console.log(
    `machine: ${info.cpu}, ${info.cpus} CPUs, ${info.memoryGB} GB, node ${info.node}, ${info.os}, load average ${info.loadAverage1m}\n`,
  );

  // The coordinator (etcd) mode, measured in the same run when etcd is installed.
  const etcdMissing = etcdUnavailable();
  const etcd = etcdMissing ? null : await EtcdCluster.start();
  if (etcdMissing) console.log(`etcd mode not measured: ${etcdMissing}\n`);
  const sizes: SizeResult[] = [];
  try {
    for (const nodes of options.nodes) {
      const result = await benchSize(options, nodes);
      sizes.push(result);
      console.log(renderSize(result, options) + '\n');
      if (etcd) {
        result.etcd = await benchEtcd(options, nodes, etcd);
        console.log(renderEtcd(nodes, result.etcd, options) + '\n');
      }
    }
  } finally {
    await etcd?.close();
  }
  const codec = benchCodec(options.codecSeconds);
  console.log(renderCodec(codec) + '\n');
  // The flood: cost per forged packet in process (quick), and in the full run the rates a
  // cluster withstands at tick 1 s and 0.2 s (a minute of both cores).
  const packetCostsResult = packetCosts(options.codecSeconds);
  const floodRatesResult = options.short
    ? []
    : [...(await floodRates(1000, [10_000, 30_000, 100_000], 3)), ...(await floodRates(200, [10_000, 30_000, 100_000], 2))];
  console.log(floodTables(packetCostsResult, floodRatesResult) + '\n');
  const loadAtEnd = Math.round((os.loadavg()[0] ?? 0) * 100) / 100;
  console.log(`load average at the end: ${loadAtEnd}`);

  const exceeded: string[] = [];
  for (const size of sizes) {
    for (const key of Object.keys(SCENARIOS) as ScenarioKey[]) {
      const s = size.scenarios[key];
      // NaN (no sample) fails too: a scenario that measured nothing proves nothing.
      if (!(s.ratio <= 1))
        exceeded.push(`N=${size.nodes} ${SCENARIOS[key].label}: max ${round1(s.max)} ms > ${SCENARIOS[key].boundLabel} = ${s.bound} ms`);
    }
    for (const server of size.idle.servers) {
      // The baseline opens none; every member exactly one (SPEC 5).
      if (server.socketsOpened !== 1) exceeded.push(`N=${size.nodes} ${server.host} opened ${server.socketsOpened} UDP sockets, not 1`);
    }
    if (size.etcd) {
      for (const key of Object.keys(ETCD_SCENARIOS) as EtcdKey[]) {
        const s = size.etcd.scenarios[key];
        if (!(s.ratio <= 1))
          exceeded.push(
            `N=${size.nodes} etcd ${ETCD_SCENARIOS[key].label}: max ${round1(s.max)} ms > ${ETCD_SCENARIOS[key].boundLabel} = ${s.bound} ms`,
          );
      }
      for (const server of size.etcd.idle.servers) {
        if (server.socketsOpened !== 1)
          exceeded.push(`N=${size.nodes} etcd ${server.host} opened ${server.socketsOpened} UDP sockets, not 1`);
      }
    }
  }
  if (options.json) {
    const json = {
      date: started.toISOString(),
      command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
      machine: { ...info, loadAverage1mAtEnd: loadAtEnd },
      options,
      tickMs: options.heartbeat * 1000,
      tockMs: options.heartbeat * 1000 * options.checkBeats,
      sizes,
      codec,
      flood: { packetCosts: packetCostsResult, rates: floodRatesResult },
      bounds: { ok: exceeded.length === 0, exceeded },
    };
    writeFileSync(options.json, JSON.stringify(json, null, 2) + '\n');
    console.log(`results written to ${options.json}`);
  }
  if (exceeded.length > 0) {
    const worstStall = Math.max(...sizes.map((size) => size.stall.max));
    console.log(`\nSPEC bounds exceeded:\n  ${exceeded.join('\n  ')}`);
    console.log(
      `(the bench process's own timers fired up to ${Math.round(worstStall)} ms late; load average ${info.loadAverage1m} at the start, ` +
        `${loadAtEnd} at the end, on ${info.cpus} CPUs: an excess of that order may be the machine, not the election)`,
    );
    return 1;
  }
  console.log('all figures within their SPEC bounds (max/bound <= 1)');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(`bench failed: ${err.message}`);
    process.exit(2);
  },
);
