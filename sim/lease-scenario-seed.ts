/**
 * An etcd-mode scenario from a sweep seed: the seed stands for a fault kind and a cluster
 * size (`leaseSeedShape`), and one Random drawn from it picks the timing, the store's delays,
 * the servers and the faults. The draws and their order are the seed → scenario mapping the
 * `--coordinator` sweep table rests on: add draws only after the existing ones, never between.
 */
import { Random } from './random';
import { ELECTION_SLACK_MS, minimumTtlSeconds } from '../src/coordinator/timing';
import {
  LEASE_KINDS,
  LEASE_PROBES,
  LEASE_SIZES,
  type LeaseFault,
  type LeaseHost,
  type LeaseKind,
  type LeaseScenario,
} from './lease-scenario-types';

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
    // A fixed list, not derived from LEASE_KINDS, so that adding a kind leaves every existing
    // seed's scenario as it was (as the UDP mode's MIXABLE).
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
