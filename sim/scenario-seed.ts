/**
 * A UDP-mode scenario from a sweep seed: the seed stands for a fault kind and a cluster size
 * (`seedShape`), and one Random drawn from it picks the timing, the servers and the faults.
 * The draws and their order are the seed → scenario mapping the sweep tables and the saved
 * regressions rest on: add draws only after the existing ones of a kind, never between.
 */
import { Random } from './random';
import { KINDS, PROBES, SIZES, HANDOFF_PROBES, type Fault, type HostSpec, type Kind, type Scenario, type Target } from './scenario-types';

/**
 * What `mixed` combines. A fixed list, not derived from KINDS, so that adding a kind
 * leaves every existing seed's scenario as it was.
 */
const MIXABLE: readonly Kind[] = [
  'loss',
  'dup',
  'reorder',
  'spike',
  'partition',
  'oneway',
  'crash',
  'shutdown',
  'restart',
  'stall',
  'wallstep',
  'eligibility',
  'join',
];

const round = (value: number): number => Math.round(value * 1000) / 1000;

export interface SeedOptions {
  kind?: Kind;
  n?: number;
}

/** The kind and size a sweep seed stands for: every kind at every size, in turn. */
export function seedShape(seed: number): { kind: Kind; n: number } {
  const kind = KINDS[seed % KINDS.length] as Kind;
  const n = SIZES[Math.floor(seed / KINDS.length) % SIZES.length] as number;
  return { kind, n };
}

export function scenarioFromSeed(seed: number, options: SeedOptions = {}): Scenario {
  const shape = seedShape(seed);
  const kind = options.kind ?? shape.kind;
  const n = options.n ?? shape.n;
  const r = new Random((seed * 2654435761) ^ 0x5bd1e995);
  const checkBeats = r.pick([1, 2, 3, 3, 3, 4, 5]);
  const tickMs = r.pick([100, 1000, 1000, 1000, 20000]);
  const tockTicks = checkBeats;
  const spread =
    kind === 'none' || kind === 'wallstep' ? r.pick([0, r.next() * tockTicks * 0.6, r.next() * 2 * tockTicks]) : r.next() * 2 * tockTicks;

  const names = new Set<string>();
  const digits = n > 200 ? 4 : 3;
  while (names.size < n) names.add(`s${r.hex(digits)}`);
  const hosts: HostSpec[] = [...names].map((name) => ({ name, eligible: r.chance(0.8), locked: false, startAt: round(r.next() * spread) }));
  if (r.chance(0.95) && !hosts.some((host) => host.eligible)) r.pick(hosts).eligible = true;
  if (r.chance(0.3)) {
    for (let i = r.int(1, 2); i > 0; i--) r.pick(hosts).locked = true;
  }
  const window = round(spread + tockTicks * (1 + r.next() * 4));
  const scenario: Scenario = {
    seed,
    kind,
    tickMs,
    checkBeats,
    latencyMs: r.pick([0.1, 0.5, 1, 2, 5]),
    jitterMs: round(r.next() * 5),
    exitOnConflict: r.chance(0.15),
    hosts,
    faults: [],
    probe: r.pick(PROBES),
    stableTicks: 2 * checkBeats + 4,
  };
  const kinds: Kind[] = kind === 'mixed' ? pickSome(r, MIXABLE, r.int(2, 4)) : [kind];
  for (const k of kinds) addFaults(scenario, k, r, window);
  scenario.faults.sort((a, b) => a.at - b.at);
  return scenario;
}

function pickSome<T>(r: Random, items: readonly T[], count: number): T[] {
  const pool = [...items];
  const out: T[] = [];
  while (out.length < count && pool.length > 0) out.push(pool.splice(r.int(0, pool.length - 1), 1)[0] as T);
  return out;
}

function addFaults(s: Scenario, kind: Kind, r: Random, window: number): void {
  const n = s.hosts.length;
  const tock = s.checkBeats;
  const at = (): number => round(r.next() * window);
  const target = (masterBias = 0.5): Target => (r.chance(masterBias) ? 'master' : r.int(0, n - 1));
  const duration = (): number => round(0.2 + r.next() * 3 * tock);
  const subset = (): number[] => {
    const size = r.int(1, Math.max(1, n - 1));
    return pickSome(r, [...Array(n).keys()], size).sort((a, b) => a - b);
  };
  const net = (fields: Partial<Extract<Fault, { type: 'net' }>>): Fault => {
    const start = at();
    return {
      type: 'net',
      at: start,
      until: round(start + duration()),
      loss: 0,
      dup: 0,
      dupTicks: 0,
      reorder: 0,
      reorderTicks: 0,
      spike: 0,
      spikeTicks: 0,
      ...fields,
    };
  };
  const times = (min: number, max: number): number => r.int(min, max);
  switch (kind) {
    case 'none':
    case 'mixed':
      return;
    case 'loss':
      for (let i = times(1, 3); i > 0; i--) s.faults.push(net({ loss: round(0.05 + r.next() * 0.85) }));
      return;
    case 'dup':
      for (let i = times(1, 3); i > 0; i--) s.faults.push(net({ dup: round(0.1 + r.next() * 0.9), dupTicks: round(r.next() * 2) }));
      return;
    case 'reorder':
      for (let i = times(1, 3); i > 0; i--)
        s.faults.push(net({ reorder: round(0.1 + r.next() * 0.6), reorderTicks: round(0.1 + r.next() * 3) }));
      return;
    case 'spike':
      for (let i = times(1, 3); i > 0; i--)
        s.faults.push(net({ spike: round(0.02 + r.next() * 0.5), spikeTicks: round(0.5 + r.next() * 2 * tock) }));
      return;
    case 'partition':
      for (let i = times(1, 4); i > 0; i--) {
        const start = at();
        const groupCount = r.int(2, Math.min(4, n));
        s.faults.push({
          type: 'partition',
          at: start,
          until: round(start + duration()),
          groups: s.hosts.map(() => r.int(0, groupCount - 1)),
        });
      }
      return;
    case 'oneway':
      for (let i = times(1, 4); i > 0; i--) {
        const start = at();
        s.faults.push({ type: 'oneway', at: start, until: round(start + duration()), from: subset(), to: subset() });
      }
      return;
    case 'crash':
    case 'shutdown':
      for (let i = times(1, 3); i > 0; i--) {
        const fault: Extract<Fault, { type: 'crash' | 'shutdown' }> = { type: kind, at: at(), target: target() };
        if (r.chance(0.5)) fault.restartAfter = round(r.next() * 2 * tock);
        s.faults.push(fault);
      }
      return;
    case 'restart':
      for (let i = times(1, 3); i > 0; i--)
        s.faults.push({ type: 'restart', at: at(), target: target(), graceful: r.chance(0.5), delay: r.chance(0.5) ? 0 : round(r.next()) });
      return;
    case 'stall':
      for (let i = times(1, 4); i > 0; i--) s.faults.push({ type: 'stall', at: at(), target: target(), ticks: round(0.05 + r.next() * 6) });
      return;
    case 'wallstep':
      // Also during the stable phase that follows: wall steps must change nothing (SPEC 4.9).
      for (let i = times(2, 8); i > 0; i--) {
        s.faults.push({
          type: 'wallstep',
          at: round(r.next() * (window + 4 * tock + 10)),
          target: target(0.3),
          ms: Math.round((r.chance(0.5) ? 1 : -1) * (1000 + r.next() * 7_199_000)),
        });
      }
      return;
    case 'eligibility':
      for (let i = times(1, 6); i > 0; i--) s.faults.push({ type: 'eligible', at: at(), target: target(0.4), eligible: r.chance(0.5) });
      return;
    case 'join': {
      const joiners = r.int(1, Math.max(1, Math.floor(n / 2)));
      for (const index of pickSome(r, [...Array(n).keys()], joiners)) {
        const host = s.hosts[index] as HostSpec;
        host.startAt = round(r.next() * window);
      }
      return;
    }
    case 'duphost':
      for (let i = n > 10 ? times(1, 2) : 1; i > 0; i--) {
        const start = at();
        s.faults.push({
          type: 'duphost',
          at: start,
          target: target(),
          until: r.chance(0.5) ? null : round(start + duration()),
          stop: r.chance(0.5) ? 'crash' : 'shutdown',
        });
      }
      return;
    case 'priority':
      // Equal priorities are common (the original's rule decides among them), and reloads change them.
      for (const host of s.hosts) host.priority = r.pick([0, 0, 1, 2, 5]);
      addFaults(s, r.pick(['crash', 'shutdown', 'partition', 'restart', 'eligibility', 'join', 'stall'] as const), r, window);
      for (let i = times(0, 2); i > 0; i--)
        s.faults.push({ type: 'priority', at: at(), target: target(0.3), priority: r.pick([0, 1, 2, 5, 10]) });
      return;
    case 'quorum': {
      // Usually a majority of the eligible servers; sometimes any count, up to all of them.
      const eligible = s.hosts.filter((host) => host.eligible).length;
      if (eligible === 0) return;
      s.quorum = r.chance(0.8) ? Math.floor(eligible / 2) + 1 : r.int(1, eligible);
      for (const sub of pickSome(r, ['partition', 'partition', 'oneway', 'crash', 'shutdown', 'restart', 'stall'] as const, r.int(1, 2)))
        addFaults(s, sub, r, window);
      return;
    }
    case 'handoff':
      for (let i = times(1, 4); i > 0; i--)
        s.faults.push(r.chance(0.5) ? { type: 'stepdown', at: at() } : { type: 'promote', at: at(), target: r.int(0, n - 1) });
      if (r.chance(0.5)) addFaults(s, r.pick(['loss', 'crash', 'partition', 'stall', 'reorder'] as const), r, window);
      s.probe = r.pick(HANDOFF_PROBES);
      return;
    case 'forger': {
      for (let i = times(1, 2); i > 0; i--) {
        const start = at();
        // Every forged packet reaches every server: in big clusters fewer of them, so a run
        // stays minutes, not hours (the servers' behaviour per packet is what is tested).
        const scale = n > 16 ? 0.1 : 1;
        s.faults.push({
          type: 'forge',
          at: start,
          until: round(start + duration()),
          perTick: Math.max(1, Math.round(r.pick([1, 5, 20, 100]) * scale)),
          burst: Math.max(1, Math.round(r.pick([1, 1, 10, 50]) * scale)),
        });
      }
      if (r.chance(0.5)) addFaults(s, r.pick(['crash', 'shutdown', 'restart', 'eligibility', 'join', 'loss'] as const), r, window);
      return;
    }
    case 'freeze':
      // A process stopped for up to five tocks (SIGSTOP, a paused VM, a long GC), the master
      // most often; its socket keeps what arrives meanwhile and is read when it wakes.
      for (let i = times(1, 3); i > 0; i--)
        s.faults.push({ type: 'stall', at: at(), target: target(0.7), ticks: round(0.5 + r.next() * 5 * tock) });
      if (r.chance(0.3)) addFaults(s, r.pick(['crash', 'loss', 'join'] as const), r, window);
      return;
    case 'link': {
      // Single directions of single links: lost (flaky, or a one-way cut), slowed, duplicated;
      // and cuts of both directions between two servers that both still hear the others.
      if (n < 2) return;
      for (let i = times(1, 5); i > 0; i--) {
        const from = r.int(0, n - 1);
        const to = (from + r.int(1, n - 1)) % n;
        const start = at();
        const base = {
          type: 'link' as const,
          at: start,
          until: round(start + duration()),
          from,
          to,
          drop: 0,
          delayTicks: 0,
          dup: 0,
          dupTicks: 0,
        };
        switch (r.pick(['drop', 'drop', 'cut', 'cut', 'delay', 'dup'] as const)) {
          case 'drop':
            s.faults.push({ ...base, drop: r.chance(0.5) ? 1 : round(0.1 + r.next() * 0.9) });
            break;
          case 'cut':
            s.faults.push({ ...base, drop: 1 }, { ...base, from: to, to: from, drop: 1 });
            break;
          case 'delay':
            s.faults.push({ ...base, delayTicks: round(0.01 + r.next() * r.pick([0.1, 0.5, 2])) });
            break;
          case 'dup':
            s.faults.push({ ...base, dup: round(0.2 + r.next() * 0.8), dupTicks: round(r.next() * 2) });
            break;
        }
      }
      // Half the runs with three servers or more: a cut that stays. One server (the bridge)
      // hears and is heard by everyone; up to four pairs of the others never hear each other.
      if (n >= 3 && r.chance(0.5)) {
        const bridge = r.int(0, n - 1);
        const others = [...Array(n).keys()].filter((index) => index !== bridge);
        const pairs: Array<[number, number]> = [];
        for (let k = r.int(1, Math.min(4, others.length - 1)); k > 0; k--) {
          const [a, b] = pickSome(r, others, 2) as [number, number];
          if (!pairs.some(([x, y]) => (x === a && y === b) || (x === b && y === a))) pairs.push([Math.min(a, b), Math.max(a, b)]);
        }
        s.cut = { at: at(), pairs };
        // The bridge must stay: a server that exits on a conflict could be it, and no word crosses a cut without one.
        s.exitOnConflict = false;
      }
      return;
    }
    case 'race': {
      // Bursts of API calls, at one instant or within a fiftieth of a tick of each other, on
      // several servers: stepDown() on the master, promote(), eligibility, timing reloads
      // (heartbeat_freq a quarter to four times the scenario's, any check_beats). Every server
      // reloaded goes back to the scenario's timing at the end, one after another.
      const reloaded = new Set<number>();
      for (let burst = times(1, 5); burst > 0; burst--) {
        const start = at();
        for (let k = r.int(1, Math.min(n, 4)); k > 0; k--) {
          const when = round(start + (r.chance(0.5) ? 0 : r.next() * 0.02));
          switch (r.pick(['stepdown', 'promote', 'promote', 'eligible', 'timing'] as const)) {
            case 'stepdown':
              s.faults.push({ type: 'stepdown', at: when });
              break;
            case 'promote':
              s.faults.push({ type: 'promote', at: when, target: r.int(0, n - 1) });
              break;
            case 'eligible':
              s.faults.push({ type: 'eligible', at: when, target: target(0.3), eligible: r.chance(0.6) });
              break;
            case 'timing': {
              const host = r.int(0, n - 1);
              reloaded.add(host);
              s.faults.push({ type: 'timing', at: when, target: host, tickFactor: r.pick([0.25, 0.5, 1, 2, 4]), checkBeats: r.int(1, 5) });
              break;
            }
          }
        }
      }
      for (const host of reloaded)
        s.faults.push({ type: 'timing', at: round(window + 0.5 + r.next() * 2), target: host, tickFactor: 1, checkBeats: s.checkBeats });
      s.probe = r.pick([...PROBES, ...HANDOFF_PROBES]);
      return;
    }
    case 'work': {
      // Master work on every server, through exclusive(), committing to a fenced store. The
      // master is frozen mid-task most of all (past a failover, then woken: its overdue task
      // ends and commits in either order with its election's timer), and handed over on purpose.
      const ticks = r.pick([0.05, 0.2, 1, 3]);
      s.work = {
        everyTicks: round(ticks * (0.2 + r.next())),
        minTaskTicks: round(ticks * r.next()),
        maxTaskTicks: round(ticks * (1 + r.next() * 2)),
        drainTicks: round(r.pick([0.1, 1, 3, 10]) * ticks + r.next()),
        careless: r.pick([0, 0.5, 1]),
      };
      for (let i = times(1, 4); i > 0; i--)
        s.faults.push({ type: 'stall', at: at(), target: target(0.8), ticks: round(0.2 + r.next() * 3 * tock) });
      for (let i = times(0, 3); i > 0; i--) {
        switch (r.pick(['stepdown', 'promote', 'shutdown', 'eligible'] as const)) {
          case 'stepdown':
            s.faults.push({ type: 'stepdown', at: at() });
            break;
          case 'promote':
            s.faults.push({ type: 'promote', at: at(), target: r.int(0, n - 1) });
            break;
          case 'shutdown':
            s.faults.push({ type: 'shutdown', at: at(), target: target(0.7), restartAfter: round(r.next() * 2 * tock) });
            break;
          case 'eligible': {
            const when = at();
            const host = target(0.7);
            s.faults.push(
              { type: 'eligible', at: when, target: host, eligible: false },
              { type: 'eligible', at: round(when + r.next() * 2 * tock), target: host, eligible: true },
            );
            break;
          }
        }
      }
      if (r.chance(0.5)) addFaults(s, r.pick(['crash', 'partition', 'loss', 'restart'] as const), r, window);
      // Probes that hand over measure the election's round trip; with work they would wait for a drain.
      s.probe = r.pick(['none', 'graceful', 'crash'] as const);
      return;
    }
    case 'preempt': {
      // Preemption on every server; priorities make one of them first. The first in rank flaps
      // (restarts, crashes, freezes), joins late, or is cut off; the role must move to it at most
      // once per delay, and end with it.
      s.preemptDelayTicks = round(r.pick([0.5, 1, 2, 4]) * tock);
      for (const host of s.hosts) host.priority = r.pick([0, 0, 1, 2, 5]);
      for (const host of s.hosts) host.eligible = true;
      const top = s.hosts.reduce(
        (best, host, index) =>
          (host.priority ?? 0) > (s.hosts[best]?.priority ?? 0) ||
          ((host.priority ?? 0) === (s.hosts[best]?.priority ?? 0) && host.name < (s.hosts[best]?.name ?? ''))
            ? index
            : best,
        0,
      );
      if (r.chance(0.5)) (s.hosts[top] as HostSpec).startAt = round(r.next() * window);
      for (let i = times(1, 5); i > 0; i--) {
        const when = at();
        switch (r.pick(['restart', 'restart', 'crash', 'stall', 'partition'] as const)) {
          case 'restart':
            s.faults.push({ type: 'restart', at: when, target: top, graceful: r.chance(0.5), delay: round(r.next()) });
            break;
          case 'crash':
            s.faults.push({ type: 'crash', at: when, target: r.chance(0.5) ? top : 'master', restartAfter: round(r.next() * 2 * tock) });
            break;
          case 'stall':
            s.faults.push({ type: 'stall', at: when, target: r.chance(0.5) ? top : 'master', ticks: round(0.2 + r.next() * 2 * tock) });
            break;
          case 'partition':
            s.faults.push({
              type: 'partition',
              at: when,
              until: round(when + duration()),
              groups: s.hosts.map((_, index) => (index === top ? 1 : 0)),
            });
            break;
        }
      }
      if (r.chance(0.3)) addFaults(s, r.pick(['loss', 'join', 'eligibility'] as const), r, window);
      s.probe = r.pick(['none', 'graceful', 'crash'] as const);
      return;
    }
    case 'namespace': {
      // A second cluster on the same port, under another cluster_id; some of its hostnames are ours.
      s.clusterId = r.pick(['', 'blue']);
      const ours = s.hosts.map((host) => host.name);
      const names = new Set<string>();
      for (let i = Math.min(n, r.int(2, 5)); i > 0; i--) names.add(r.chance(0.5) ? r.pick(ours) : `f${r.hex(3)}`);
      const spread = Math.max(...s.hosts.map((host) => host.startAt));
      s.foreign = {
        clusterId: s.clusterId === '' ? 'green' : r.pick(['', 'green']),
        hosts: [...names].map((name) => ({ name, eligible: r.chance(0.8), locked: false, startAt: round(r.next() * spread) })),
      };
      addFaults(s, r.pick(['crash', 'shutdown', 'partition', 'restart', 'loss', 'join'] as const), r, window);
      return;
    }
  }
}
