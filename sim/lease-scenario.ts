/**
 * Fault scenarios for the coordinator (etcd) mode: a seed gives a cluster of lease-election
 * machines, a store with delays, and a fault window (store outages, one server's link to
 * the store cut, crashes, restarts, freezes, graceful shutdowns, eligibility flips, handoffs,
 * a slow store); then quiet, the cluster must converge and stay stable; then a probe
 * (crash, graceful shutdown, freeze, stepDown, promote or a join) with its own bound.
 *
 * Invariants (checked after every simulation step; the first broken one stops the run):
 *  - single-master-in-store-truth: a server that believes it is master (and is not frozen)
 *    holds the election key in the store, under its own lease, with its term as the key's
 *    create revision, and that lease has not reached its expiry in store time. So no two
 *    servers are ever master at one instant, whatever the delays and faults;
 *  - terms-increase: every `master` event carries a term above every earlier one (unique);
 *  - ineligible-never-master;
 *  - no-master-while-store-down: once the store has been down for a TTL, nobody is master;
 *  - resume-slave-first: a master frozen past its lease emits `slave` before any other event
 *    when it resumes, and a write fenced with its old term then fails in the store;
 *  - converges: after the faults stop, one master agreed by every live server (when one is
 *    eligible) within TTL + expiry sweep + tick + the store-op timeouts + round trips, and
 *    no master/slave/masterchange event from then on while nothing happens (stable);
 *  - probe bounds: master crash → new master within TTL + expiry sweep + round trips;
 *    graceful shutdown, stepDown(), promote() → new master within a few round trips (the
 *    requested one, term raised, both ends told); a joiner learns the master within a few
 *    round trips and never takes over;
 *  - cold-start-rank: with no faults and every start within half a tick, the eligible
 *    server that ranks first becomes master.
 */
import { LeaseSimCluster, type LeaseEventRecord, type LeaseNode } from './lease-cluster';
import { Random } from './random';
import { safetyMarginMs } from '../src/coordinator/lease-election';
import { ELECTION_SLACK_MS, minimumTtlSeconds } from '../src/coordinator/timing';
import type { StoreSnapshot } from './lease-store';

export const LEASE_KINDS = [
  'none',
  'crash',
  'restart',
  'shutdown',
  'freeze',
  'outage',
  'cut',
  'slow',
  'eligibility',
  'handoff',
  'leader',
  'stall',
  'restore',
  'wipe',
  'mixed',
] as const;
export type LeaseKind = (typeof LEASE_KINDS)[number];
export const LEASE_SIZES = [2, 3, 5, 7] as const;
export const LEASE_PROBES = ['none', 'crash', 'graceful', 'freeze', 'stepdown', 'promote', 'join'] as const;
export type LeaseProbe = (typeof LEASE_PROBES)[number];

export type LeaseInvariant =
  | 'no-exception'
  | 'single-master-in-store-truth'
  | 'terms-increase'
  | 'ineligible-never-master'
  | 'no-master-while-store-down'
  | 'resume-slave-first'
  | 'converges'
  | 'stable-no-flap'
  | 'cold-start-rank'
  | 'probe-bound'
  | 'leader-change-no-flap'
  | 'checkpoint-kept';

export class LeaseViolation extends Error {
  constructor(
    readonly invariant: LeaseInvariant,
    readonly time: number,
    readonly detail: string,
  ) {
    super(`${invariant} at ${time.toFixed(1)} ms: ${detail}`);
    this.name = 'LeaseViolation';
  }
}

export interface LeaseHost {
  name: string;
  eligible: boolean;
  priority: number;
  /** ms */
  startAt: number;
}

export type LeaseFault =
  | { type: 'crash'; at: number; host: number; restartAfter: number | null }
  | { type: 'shutdown'; at: number; host: number; restartAfter: number | null }
  | { type: 'freeze'; at: number; host: number | 'master'; ms: number }
  | { type: 'outage'; at: number; until: number }
  | { type: 'cut'; at: number; until: number; host: number | 'master' }
  | { type: 'slow'; at: number; until: number; extraMs: number }
  | { type: 'eligible'; at: number; host: number; eligible: boolean }
  | { type: 'stepdown'; at: number }
  | { type: 'promote'; at: number; host: number }
  /** An etcd leader election: no leader for `ms`. */
  | { type: 'leader'; at: number; ms: number }
  /** The store answers nothing for `ms`. */
  | { type: 'stall'; at: number; ms: number }
  /** A snapshot at `snapAt`, the master steps down halfway (terms move on), restored at `at`. */
  | { type: 'restore'; at: number; snapAt: number }
  | { type: 'wipe'; at: number };

export interface LeaseScenario {
  seed: number;
  kind: LeaseKind;
  tickMs: number;
  checkBeats: number;
  ttlSeconds: number;
  minDelayMs: number;
  maxDelayMs: number;
  expirySweepMs: number;
  /** The store's election timeout (its leader elections last up to twice it and a vote): the longest the TTL allows. */
  electionMs: number;
  hosts: LeaseHost[];
  faults: LeaseFault[];
  /** End of the fault window, ms. */
  quietAt: number;
  probe: LeaseProbe;
  stableTicks: number;
}

export interface LeaseRunResult {
  scenario: LeaseScenario;
  violation: LeaseViolation | null;
  /** ms from quiet to agreement. */
  convergenceMs: number | null;
  /** ms the probe took (to the new master, or to learn it for a join), null if none. */
  probeMs: number | null;
  timeline: string[];
}

/** The (kind, size) a seed stands for: every kind at every size in turn. */
export function leaseSeedShape(seed: number): { kind: LeaseKind; n: number } {
  const kind = LEASE_KINDS[seed % LEASE_KINDS.length] as LeaseKind;
  const n = LEASE_SIZES[Math.floor(seed / LEASE_KINDS.length) % LEASE_SIZES.length] as number;
  return { kind, n };
}

export function leaseScenarioFromSeed(seed: number, options: { kind?: LeaseKind; n?: number } = {}): LeaseScenario {
  const shape = leaseSeedShape(seed);
  const kind = options.kind ?? shape.kind;
  const n = options.n ?? shape.n;
  const random = new Random(seed * 7919 + 17);
  const tickMs = random.pick([100, 200, 500, 1000]);
  const checkBeats = random.int(2, 4);
  const tockMs = tickMs * checkBeats;
  // The default TTL: one tock, in whole seconds, at least 1 (sometimes a longer one is configured).
  const ttlSeconds = Math.max(1, Math.ceil(tockMs / 1000)) + (random.chance(0.2) ? 1 : 0);
  const ttlMs = ttlSeconds * 1000;
  const maxDelayMs = random.pick([1, 5, 20, 50]);
  const minDelayMs = maxDelayMs * random.next() * 0.5;
  const expirySweepMs = random.chance(0.5) ? 500 : 0;
  // The slowest etcd elections this TTL outlasts (the timing rule, src/coordinator/timing.ts).
  let electionMs = 25;
  while (minimumTtlSeconds(electionMs + 25) <= ttlSeconds) electionMs += 25;
  const names = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel'];
  const hosts: LeaseHost[] = [];
  const together = kind === 'none' || random.chance(0.6);
  for (let i = 0; i < n; i++) {
    hosts.push({
      name: names[i] as string,
      eligible: kind === 'eligibility' ? random.chance(0.7) : random.chance(0.9) || i === 0,
      priority: random.chance(0.2) ? random.int(1, 3) : 0,
      startAt: together ? random.next() * (tickMs / 2) : random.next() * 2 * tockMs,
    });
  }
  if (!hosts.some((host) => host.eligible)) (hosts[0] as LeaseHost).eligible = true;
  const faults: LeaseFault[] = [];
  const window = Math.max(...hosts.map((h) => h.startAt)) + random.int(2, 6) * Math.max(ttlMs, tockMs);
  const when = (): number => tockMs + random.next() * (window - tockMs);
  const hostIndex = (): number => random.int(0, n - 1);
  const add = (k: LeaseKind): void => {
    switch (k) {
      case 'crash': {
        const at = when();
        faults.push({ type: 'crash', at, host: hostIndex(), restartAfter: random.chance(0.5) ? random.next() * ttlMs : null });
        break;
      }
      case 'restart': {
        const at = when();
        faults.push({ type: 'crash', at, host: hostIndex(), restartAfter: random.next() * ttlMs * 2 });
        break;
      }
      case 'shutdown': {
        const at = when();
        faults.push({ type: 'shutdown', at, host: hostIndex(), restartAfter: random.chance(0.5) ? random.next() * tockMs : null });
        break;
      }
      case 'freeze': {
        const at = when();
        faults.push({
          type: 'freeze',
          at,
          host: random.chance(0.6) ? 'master' : hostIndex(),
          ms: random.pick([0.3, 0.8, 1.2, 2.5]) * ttlMs,
        });
        break;
      }
      case 'outage': {
        const at = when();
        faults.push({ type: 'outage', at, until: at + random.pick([0.2, 0.7, 1.5, 3]) * ttlMs });
        break;
      }
      case 'cut': {
        const at = when();
        faults.push({ type: 'cut', at, until: at + random.pick([0.3, 0.9, 2]) * ttlMs, host: random.chance(0.6) ? 'master' : hostIndex() });
        break;
      }
      case 'slow': {
        const at = when();
        faults.push({ type: 'slow', at, until: at + random.next() * 2 * ttlMs, extraMs: random.pick([50, 200, ttlMs / 4]) });
        break;
      }
      case 'eligibility': {
        faults.push({ type: 'eligible', at: when(), host: hostIndex(), eligible: random.chance(0.5) });
        break;
      }
      case 'handoff': {
        if (random.chance(0.5)) faults.push({ type: 'stepdown', at: when() });
        else faults.push({ type: 'promote', at: when(), host: hostIndex() });
        break;
      }
      case 'leader': {
        // Up to two election timeouts and a vote: what etcd takes, at most, to elect its next leader.
        // One election at a time, a TTL apart (back to back they would be one longer election).
        const ms = electionMs + random.next() * (electionMs + ELECTION_SLACK_MS);
        const previous = faults
          .filter((f): f is Extract<LeaseFault, { type: 'leader' }> => f.type === 'leader')
          .sort((a, b) => a.at - b.at);
        let at = when();
        for (const other of previous)
          if (at < other.at + other.ms + ttlMs && at + ms + ttlMs > other.at) at = other.at + other.ms + ttlMs + random.next() * tockMs;
        faults.push({ type: 'leader', at, ms });
        break;
      }
      case 'stall': {
        faults.push({ type: 'stall', at: when(), ms: random.pick([0.2, 0.5, 1.5]) * ttlMs });
        break;
      }
      case 'restore': {
        const snapAt = when();
        faults.push({ type: 'restore', snapAt, at: snapAt + random.int(1, 3) * Math.max(ttlMs, tockMs) });
        break;
      }
      case 'wipe': {
        faults.push({ type: 'wipe', at: when() });
        break;
      }
      default:
        break;
    }
  };
  if (kind === 'mixed') {
    const pool: LeaseKind[] = [
      'crash',
      'restart',
      'shutdown',
      'freeze',
      'outage',
      'cut',
      'slow',
      'eligibility',
      'handoff',
      'leader',
      'stall',
      'restore',
      'wipe',
    ];
    const count = random.int(2, 6);
    for (let i = 0; i < count; i++) add(random.pick(pool));
  } else if (kind !== 'none') {
    const count = random.int(1, 3);
    for (let i = 0; i < count; i++) add(kind);
  }
  faults.sort((a, b) => a.at - b.at);
  let quietAt = kind === 'none' ? Math.max(...hosts.map((h) => h.startAt)) : window;
  // A command's consequences outlast it: a handoff takes a few round trips (slower while the
  // store is slow), and one whose target does not claim ends a tock later in an election.
  const slowest = Math.max(0, ...faults.map((f) => (f.type === 'slow' ? f.extraMs : 0)));
  for (const fault of faults) {
    if (fault.type === 'stepdown' || fault.type === 'promote' || fault.type === 'eligible')
      quietAt = Math.max(quietAt, fault.at + Math.max(tockMs, ttlMs) + 10 * (maxDelayMs + slowest));
    if ('until' in fault) quietAt = Math.max(quietAt, fault.until);
    if (fault.type === 'freeze' || fault.type === 'leader' || fault.type === 'stall') quietAt = Math.max(quietAt, fault.at + fault.ms);
    // Everyone hears of a rewrite (its watch breaks) and reads again well within a TTL or a tock.
    if (fault.type === 'restore' || fault.type === 'wipe') quietAt = Math.max(quietAt, fault.at + Math.max(tockMs, ttlMs));
    if ((fault.type === 'crash' || fault.type === 'shutdown') && fault.restartAfter !== null)
      quietAt = Math.max(quietAt, fault.at + fault.restartAfter);
  }
  return {
    seed,
    kind,
    tickMs,
    checkBeats,
    ttlSeconds,
    minDelayMs,
    maxDelayMs,
    expirySweepMs,
    electionMs,
    hosts,
    faults,
    quietAt,
    probe: random.pick(LEASE_PROBES),
    stableTicks: random.int(5, 15),
  };
}

/** Play one scenario under the invariants. */
export function runLeaseScenario(
  scenario: LeaseScenario,
  options: { trace?: boolean; traceLevel?: number; earlyExpiryMs?: number } = {},
): LeaseRunResult {
  const sim = new LeaseSimCluster({
    seed: scenario.seed,
    tickMs: scenario.tickMs,
    checkBeats: scenario.checkBeats,
    ttlSeconds: scenario.ttlSeconds,
    minDelayMs: scenario.minDelayMs,
    maxDelayMs: scenario.maxDelayMs,
    expirySweepMs: scenario.expirySweepMs,
    trace: options.trace ?? false,
    traceLevel: options.traceLevel ?? 5,
    earlyExpiryMs: options.earlyExpiryMs ?? 0,
  });
  const checker = new LeaseChecker(sim);
  const result: LeaseRunResult = { scenario, violation: null, convergenceMs: null, probeMs: null, timeline: sim.timeline };
  try {
    play(sim, checker, scenario, result);
  } catch (err) {
    if (err instanceof LeaseViolation) result.violation = err;
    else result.violation = new LeaseViolation('no-exception', sim.now, err instanceof Error ? (err.stack ?? err.message) : String(err));
  }
  return result;
}

function play(sim: LeaseSimCluster, checker: LeaseChecker, scenario: LeaseScenario, result: LeaseRunResult): void {
  const name = (index: number): string => (scenario.hosts[index] as LeaseHost).name;
  const snapshots = new Map<LeaseFault, StoreSnapshot>();
  for (const host of scenario.hosts) sim.add(host.name, { eligible: host.eligible, priority: host.priority, at: host.startAt });
  const masterOr = (target: number | 'master'): string => (target === 'master' ? (sim.masters()[0]?.id ?? name(0)) : name(target));
  for (const fault of scenario.faults) {
    sim.at(fault.at, () => {
      switch (fault.type) {
        case 'crash':
        case 'shutdown': {
          const host = name(fault.host);
          if (fault.type === 'crash') sim.crash(host);
          else sim.shutdown(host);
          if (fault.restartAfter !== null) sim.restart(host, fault.restartAfter);
          break;
        }
        case 'freeze':
          sim.freeze(masterOr(fault.host), fault.ms);
          break;
        case 'outage':
          sim.storeDown();
          sim.at(fault.until, () => sim.storeUp());
          break;
        case 'cut': {
          const host = masterOr(fault.host);
          sim.cutLink(host);
          sim.at(fault.until, () => sim.healLink(host));
          break;
        }
        case 'slow':
          sim.store.extraDelayMs = fault.extraMs;
          sim.note('*', `STORE SLOW +${fault.extraMs} ms`);
          sim.at(fault.until, () => {
            sim.store.extraDelayMs = 0;
            sim.note('*', 'STORE FAST');
          });
          break;
        case 'eligible':
          sim.setEligible(name(fault.host), fault.eligible);
          break;
        case 'stepdown': {
          const master = sim.masters()[0];
          if (master) sim.stepDown(master.id);
          break;
        }
        case 'promote':
          sim.promote(name(fault.host));
          break;
        case 'leader':
          sim.storeLeaderless(fault.ms);
          break;
        case 'stall':
          sim.storeStall(fault.ms);
          break;
        case 'restore':
          sim.note('*', 'STORE RESTORED from the snapshot');
          checker.rewritten();
          sim.store.restore(snapshots.get(fault) as StoreSnapshot);
          break;
        case 'wipe':
          sim.note('*', 'STORE WIPED');
          checker.rewritten();
          sim.store.wipe();
          break;
      }
    });
    if (fault.type === 'restore') {
      sim.at(fault.snapAt, () => {
        sim.note('*', 'STORE SNAPSHOT saved');
        snapshots.set(fault, sim.store.snapshot());
      });
      // Terms move on between the snapshot and the restore: the restore takes them back.
      sim.at((fault.snapAt + fault.at) / 2, () => {
        const master = sim.masters()[0];
        if (master) sim.stepDown(master.id);
      });
    }
  }
  // The app's work: a checkpoint from the master every tick, each acknowledged (or not) by the store.
  let ticket = 0;
  const writeCheckpoint = (): void => {
    const master = sim.masters().find((node) => node.frozenUntil <= sim.now);
    if (master) {
      ticket++;
      if (sim.setCheckpoint(master.id, { n: ticket }, ticket)) checker.checkpointSent(ticket);
    }
    sim.at(sim.now + scenario.tickMs, writeCheckpoint);
  };
  sim.at(scenario.tickMs, writeCheckpoint);
  // A leader election alone must change nothing: no master, slave or masterchange anywhere.
  const firstLeader = scenario.kind === 'leader' ? scenario.faults[0] : undefined;
  if (firstLeader) {
    sim.at(firstLeader.at - 0.001, () => {
      if (sim.agreedMaster() === null) return;
      // Servers that follow the master now (a joiner starting meanwhile learns it: that is no change).
      for (const node of sim.live()) if (node.machine.connected) checker.noFlap.add(node.machine);
      checker.noFlapUntil = scenario.quietAt;
    });
  }

  // Cold start with no faults: the first master is the eligible server that ranks first.
  const startSpread = Math.max(...scenario.hosts.map((h) => h.startAt)) - Math.min(...scenario.hosts.map((h) => h.startAt));
  // "Together": every server has started and registered (a grant and a put: 4 one-way delays) within half a tick.
  if (scenario.faults.length === 0 && startSpread + 4 * scenario.maxDelayMs <= scenario.tickMs / 2) {
    const best = [...scenario.hosts]
      .filter((h) => h.eligible)
      .sort((a, b) => b.priority - a.priority || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))[0] as LeaseHost;
    checker.expectFirstMaster = best.name;
  }

  sim.runUntil(scenario.quietAt);
  // Faults are over (frozen servers resume by quietAt; crashed ones stay dead unless restarted).
  const ttlMs = scenario.ttlSeconds * 1000;
  const opTimeout = Math.max(50, ttlMs / 2);
  const retry = Math.max(50, Math.min(ttlMs / 6, 1000));
  const roundTrips = 24 * scenario.maxDelayMs;
  const bound = ttlMs + scenario.expirySweepMs + scenario.tickMs + 2 * (opTimeout + retry) + roundTrips;
  const quiet = sim.now;
  const converged = converge(sim, checker, bound, quiet, 'converges', `after the faults stopped at ${quiet.toFixed(1)} ms`);
  result.convergenceMs = converged === null ? null : converged - quiet;
  stable(sim, checker, scenario.stableTicks * scenario.tickMs);

  // The probe.
  const live = sim.live();
  const master = sim.masters()[0];
  const eligibleOthers = live.filter((node) => node !== master && node.machine.eligible);
  const rt = 2 * scenario.maxDelayMs;
  const probeStart = sim.now;
  const oldTerm = master?.machine.term ?? 0;
  switch (scenario.probe) {
    case 'crash': {
      if (!master || eligibleOthers.length === 0) break;
      sim.crash(master.id);
      const limit = ttlMs + scenario.expirySweepMs + 6 * rt + 1;
      const at = sim.runUntilTrue(() => sim.agreedMaster() !== null, limit);
      if (at === null)
        throw new LeaseViolation(
          'probe-bound',
          sim.now,
          `no agreed master within ${limit} ms of the master's crash (TTL + sweep + round trips)`,
        );
      result.probeMs = at - probeStart;
      break;
    }
    case 'graceful': {
      if (!master || eligibleOthers.length === 0) break;
      sim.shutdown(master.id);
      const limit = 8 * rt + 1;
      const at = sim.runUntilTrue(() => sim.agreedMaster() !== null, limit);
      if (at === null)
        throw new LeaseViolation('probe-bound', sim.now, `no agreed master within ${limit} ms of the master's graceful shutdown`);
      result.probeMs = at - probeStart;
      break;
    }
    case 'freeze': {
      if (!master) break;
      sim.freeze(master.id, ttlMs * 1.5);
      checker.watchResume(master, oldTerm, probeStart + ttlMs * 1.5);
      sim.runFor(ttlMs * 1.5 + 1);
      break;
    }
    case 'stepdown':
    case 'promote': {
      if (!master || eligibleOthers.length === 0) break;
      const target = scenario.probe === 'promote' ? (eligibleOthers[eligibleOthers.length - 1] as LeaseNode) : null;
      if (target) sim.promote(target.id);
      else sim.stepDown(master.id);
      const limit = 8 * rt + 1;
      const want = (): boolean => {
        const agreed = sim.agreedMaster();
        return agreed !== null && agreed !== master.id && (target === null || agreed === target.id);
      };
      const at = sim.runUntilTrue(want, limit);
      if (at === null) throw new LeaseViolation('probe-bound', sim.now, `${scenario.probe}: no handoff within ${limit} ms`);
      result.probeMs = at - probeStart;
      const agreed = sim.node(sim.agreedMaster() as string);
      if (agreed.machine.term <= oldTerm)
        throw new LeaseViolation('probe-bound', sim.now, `${scenario.probe}: term ${agreed.machine.term} not above ${oldTerm}`);
      sim.runFor(rt + 1);
      const outcome =
        scenario.probe === 'promote'
          ? (target as LeaseNode).events.filter((r) => r.event.type === 'promote')
          : master.events.filter((r) => r.event.type === 'stepdown');
      const last = outcome[outcome.length - 1]?.event;
      if (!last || !('ok' in last) || !last.ok || (outcome[outcome.length - 1] as LeaseEventRecord).time < probeStart) {
        throw new LeaseViolation('probe-bound', sim.now, `${scenario.probe}: the requester was not told of success`);
      }
      break;
    }
    case 'join': {
      if (!master) break;
      const joiner = sim.add('aardvark', {}); // sorts first: it must still not take over
      checker.joiner = joiner;
      const limit = 6 * rt + 1;
      const at = sim.runUntilTrue(() => joiner.alive && joiner.machine.masterHostname === master.id, limit);
      if (at === null) throw new LeaseViolation('probe-bound', sim.now, `the joiner did not learn the master within ${limit} ms`);
      result.probeMs = at - probeStart;
      break;
    }
    case 'none':
      break;
  }
  if (scenario.probe !== 'none') {
    converge(
      sim,
      checker,
      ttlMs + scenario.expirySweepMs + scenario.tickMs + 2 * (opTimeout + retry) + roundTrips,
      sim.now,
      'converges',
      `after the ${scenario.probe} probe`,
    );
    stable(sim, checker, scenario.stableTicks * scenario.tickMs);
  }
}

/**
 * Wait for agreement (one master if any live server is eligible, else none) among fresh
 * servers; returns when. Fresh: connected, with a keep-alive sent after `since` acknowledged.
 * Until then a server may still act on what the faults left behind (a deadline computed from a
 * keep-alive that the slow store answered late, a freeze that ended at `since`), which may
 * change its view once more; the stable phase starts after that.
 */
function converge(
  sim: LeaseSimCluster,
  checker: LeaseChecker,
  bound: number,
  since: number,
  invariant: LeaseInvariant,
  why: string,
): number | null {
  const expectMaster = sim.live().some((node) => node.machine.eligible);
  const fresh = (node: LeaseNode): boolean =>
    node.machine.connected && node.machine.leaseValidUntil >= since + node.machine.ttlMs - safetyMarginMs(node.machine.ttlMs);
  // Every live server's members are the live servers: a crashed one's record is gone with its lease
  // (until then a stepDown may name it, and a probe would measure the wait for etcd's expiry).
  const liveEligible = (): string =>
    sim
      .live()
      .filter((node) => node.machine.eligible)
      .map((node) => node.id)
      .sort()
      .join();
  const agreed = (): boolean => {
    if (!sim.live().every(fresh)) return false;
    const members = liveEligible();
    if (!sim.live().every((node) => node.machine.eligibleMembers().join() === members)) return false;
    if (expectMaster) {
      // The same master process for all: its hostname and its term (a restarted namesake's old key may linger).
      const master = sim.agreedMaster();
      if (master === null) return false;
      const term = sim.node(master).machine.heldTerm;
      return sim.live().every((node) => node.machine.masterTerm === term);
    }
    return sim.live().every((node) => !node.machine.master && node.machine.masterHostname === '');
  };
  const at = sim.runUntilTrue(agreed, bound);
  if (at === null) {
    const views = sim
      .live()
      .map(
        (n) =>
          `${n.id}:${n.machine.master ? 'M' : n.machine.slave ? 's' : '-'}${n.machine.connected ? '' : '(unconnected)'}→${n.machine.masterHostname || "''"}`,
      );
    throw new LeaseViolation(invariant, sim.now, `not agreed within ${bound.toFixed(0)} ms ${why}: ${views.join(' ')}`);
  }
  checker.stableSince = null;
  return at;
}

function stable(sim: LeaseSimCluster, checker: LeaseChecker, ms: number): void {
  checker.stableSince = sim.now;
  sim.runFor(ms);
  checker.stableSince = null;
}

class LeaseChecker {
  expectFirstMaster: string | null = null;
  /** Set while the cluster must stay as it is. */
  stableSince: number | null = null;
  joiner: LeaseNode | null = null;
  /** Until then (a leader election alone), no role event may happen on these processes. */
  noFlapUntil: number | null = null;
  readonly noFlap = new Set<LeaseNode['machine']>();
  #sim: LeaseSimCluster;
  #highestTerm = 0;
  /** A term was granted twice (the store forgot it, and no one who knew it was back): checkpoint order means nothing after. */
  #termReused = false;
  /** The highest checkpoint (its `n`) the store acknowledged, when it was sent, and when acknowledged. */
  #acked = { n: 0, sentAt: -Infinity, at: -Infinity };
  #sentAt = new Map<number, number>();
  /** When the store's history was last rewritten (restore, wipe), what each live process knew then, and until when it could act on its lease. */
  #rewrite: {
    at: number;
    known: Map<LeaseNode['machine'], number>;
    validUntil: Map<LeaseNode['machine'], number>;
    terms: Map<LeaseNode['machine'], number>;
  } | null = null;
  /** The machine (process) that last became master. */
  #lastMaster: LeaseNode['machine'] | null = null;
  #resume: { node: LeaseNode; term: number; at: number; seen: boolean } | null = null;

  constructor(sim: LeaseSimCluster) {
    this.#sim = sim;
    sim.observer = {
      onEvent: (record, node) => this.#onEvent(record, node),
      afterStep: () => this.#afterStep(),
    };
  }

  watchResume(node: LeaseNode, term: number, at: number): void {
    this.#resume = { node, term, at, seen: false };
  }

  /** The outcome arrives as a `checkpoint` event (ticket = n). */
  /**
   * The store was rewritten after `term` was granted, and no process that knew it has read the
   * store since: nothing anywhere can carry it back (SPEC 15.4's limit; docs/ETCD.md, after a
   * restore or a wipe).
   */
  #termsForgotten(term: number): boolean {
    const rewrite = this.#rewrite;
    if (!rewrite) return false;
    for (const [machine, known] of rewrite.terms) {
      const node = [...this.#sim.nodes.values()].find((n) => n.machine === machine);
      if (known >= term && node?.alive && machine.lastReadAt > rewrite.at) return false;
    }
    return true;
  }

  checkpointSent(ticket: number): void {
    this.#sentAt.set(ticket, this.#sim.now);
  }

  /** The store is about to be restored or wiped: what each process knows now is all that survives outside it. */
  rewritten(): void {
    const known = new Map<LeaseNode['machine'], number>();
    const validUntil = new Map<LeaseNode['machine'], number>();
    const terms = new Map<LeaseNode['machine'], number>();
    for (const node of this.#sim.live()) {
      known.set(node.machine, checkpointN(node.machine.checkpoint));
      validUntil.set(node.machine, node.machine.leaseValidUntil);
      terms.set(node.machine, node.machine.term);
    }
    this.#rewrite = { at: this.#sim.now, known, validUntil, terms };
  }

  #fail(invariant: LeaseInvariant, detail: string): never {
    throw new LeaseViolation(invariant, this.#sim.now, detail);
  }

  #onEvent(record: LeaseEventRecord, node: LeaseNode): void {
    const event = record.event;
    const resume = this.#resume;
    // masterchange to '' comes just before slave (as in the UDP core): it says "no master known".
    const neutral = event.type === 'members' || (event.type === 'masterchange' && event.hostname === '');
    if (resume && resume.node === node && !resume.seen && this.#sim.now >= resume.at && !neutral) {
      resume.seen = true;
      if (event.type !== 'slave')
        this.#fail('resume-slave-first', `${node.id} resumed from a freeze past its lease and emitted ${event.type} before slave`);
    }
    if (
      this.noFlapUntil !== null &&
      this.#sim.now <= this.noFlapUntil &&
      this.noFlap.has(node.machine) &&
      (event.type === 'master' || event.type === 'slave' || event.type === 'masterchange')
    ) {
      this.#fail('leader-change-no-flap', `${node.id} emitted ${event.type} during an etcd leader election alone`);
    }
    if (event.type === 'checkpoint' && event.ok && event.ticket > this.#acked.n)
      this.#acked = { n: event.ticket, sentAt: this.#sentAt.get(event.ticket) ?? -Infinity, at: this.#sim.now };
    if (event.type === 'master') {
      // No acknowledged checkpoint lost: the next master resumes from it (or a newer one), unless the
      // store lost it (a restore or wipe since) and this process did not know it when that happened.
      const acked = this.#acked;
      const rewrite = this.#rewrite;
      // (Stored before the rewrite if sent before it, whenever the acknowledgement arrived.)
      const exempt =
        this.#termReused || (rewrite !== null && rewrite.at > acked.sentAt && (rewrite.known.get(node.machine) ?? 0) < acked.n);
      const got = checkpointN(event.checkpoint);
      if (!exempt && got < acked.n)
        this.#fail(
          'checkpoint-kept',
          `${node.id} became master with checkpoint ${got}, but checkpoint ${acked.n} was acknowledged at ${acked.at.toFixed(1)} ms`,
        );
    }
    if (event.type === 'master') {
      // A master whose lease lapsed here but not in the store takes its role back with the same
      // term: the same tenure, nobody else master in between (single-master checks the store).
      const resumed = event.term === this.#highestTerm && this.#lastMaster === node.machine;
      if (event.term < this.#highestTerm || (event.term === this.#highestTerm && !resumed)) {
        if (!this.#termsForgotten(this.#highestTerm))
          this.#fail('terms-increase', `${node.id} became master with term ${event.term}, not above ${this.#highestTerm}`);
        // A term granted twice: checkpoints (ordered by term, then version) are not comparable from here on.
        this.#termReused = true;
      }
      this.#highestTerm = event.term;
      this.#lastMaster = node.machine;
      if (this.expectFirstMaster !== null) {
        if (node.id !== this.expectFirstMaster)
          this.#fail('cold-start-rank', `${node.id} became the first master; ${this.expectFirstMaster} ranks first`);
        this.expectFirstMaster = null;
      }
      if (this.joiner === node) this.#fail('probe-bound', `the joiner ${node.id} took the master role`);
    }
    if (
      this.stableSince !== null &&
      (event.type === 'master' || event.type === 'slave' || event.type === 'masterchange') &&
      node !== this.joiner
    ) {
      this.#fail('stable-no-flap', `${node.id} emitted ${event.type} in a stable cluster`);
    }
  }

  #afterStep(): void {
    const sim = this.#sim;
    const store = sim.store;
    const now = sim.now;
    for (const node of sim.nodes.values()) {
      if (!node.alive || node.frozenUntil > now) continue;
      const machine = node.machine;
      // Master as the app sees it (the component's `master` checks the lease's deadline too).
      if (!machine.isMasterAt({ mono: now, wall: 0 })) continue;
      if (!machine.eligible) this.#fail('ineligible-never-master', `${node.id} is master while ineligible`);
      const key = store.kv.get(machine.keys.master);
      const fence = store.kv.get(machine.keys.term);
      const term = machine.heldTerm;
      // A restore or wipe rewrites the store under a master, outside the lease's rules: it hears of
      // it (its watch breaks) and reads again within a few round trips, and acts no longer than its
      // lease allowed when it happened (a store down meanwhile tells it nothing). Its fenced writes fail.
      const rewrite = this.#rewrite;
      const grace = Math.max(rewrite?.at ?? -Infinity, 0) + store.watchLostDelayMs + store.maxOneWayMs * 4 + machine.ttlMs / 3 + 1;
      // (Until it has read the store again: a slow store may keep it from that for longer.)
      if (
        rewrite &&
        rewrite.known.has(machine) &&
        (now < Math.max(grace, rewrite.validUntil.get(machine) ?? -Infinity) || machine.lastReadAt < rewrite.at)
      )
        continue;
      if (!key || key.lease !== machine.lease || fence?.value !== String(term) || fence.lease !== key.lease) {
        this.#fail(
          'single-master-in-store-truth',
          `${node.id} believes it is master (term ${term}, lease ${machine.lease}) but the store's key is ${key ? `under lease ${key.lease}, its fence ${fence ? `${fence.value} under lease ${fence.lease}` : 'absent'}` : 'absent'}`,
        );
      }
      const lease = store.leases.get(key.lease);
      if (!lease || now >= lease.expiresAt) {
        this.#fail(
          'single-master-in-store-truth',
          `${node.id} believes it is master but its lease ${key.lease} ${lease ? `expired at ${lease.expiresAt.toFixed(1)} ms in store time` : 'is gone'}`,
        );
      }
      if (store.downSince !== null && now >= store.downSince + lease.ttlMs) {
        this.#fail(
          'no-master-while-store-down',
          `${node.id} is master ${Math.round(now - store.downSince)} ms into a store outage (TTL ${lease.ttlMs} ms)`,
        );
      }
    }
  }
}

/** The `n` of a scenario's checkpoint (`{ n }`), 0 for none. */
function checkpointN(checkpoint: unknown): number {
  const n = (checkpoint as { n?: unknown } | null)?.n;
  return typeof n === 'number' ? n : 0;
}
