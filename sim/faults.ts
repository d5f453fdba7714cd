/**
 * The faults of a UDP-mode scenario, applied to the simulated cluster at their times: crashes,
 * shutdowns, restarts, stalls, wall-clock steps, eligibility, priority and timing reloads,
 * handoffs, second processes of a hostname, a forger on the LAN, and the network windows
 * (partitions, one-way cuts, loss, duplication, reordering, spikes, single links, a cut that
 * stays), which are combined into the network's state whenever one opens or closes.
 */
import { linkKey, type LinkFault, type NetworkFaults, type SimCluster, type SimNode } from './cluster';
import { Forger } from './forger';
import type { InvariantChecker } from './invariants';
import { describeWindow, type Fault, type Scenario, type Target } from './scenario-types';
import type { SimWork } from './work';

const CLEAN: NetworkFaults = { lossRate: 0, dupRate: 0, dupDelayMs: 0, reorderRate: 0, reorderMaxMs: 0, spikeRate: 0, spikeMs: 0 };

type Window = Extract<Fault, { type: 'partition' | 'oneway' | 'net' | 'link' }>;

/** What the faults need of the run. */
export interface FaultContext {
  readonly sim: SimCluster;
  readonly checker: InvariantChecker;
  readonly scenario: Scenario;
  readonly work: SimWork | null;
  readonly tick: number;
  readonly tock: number;
  inMain(node: SimNode): boolean;
}

export class ScenarioFaults {
  /** Host index by hostname: partitions and cuts are by host index. */
  readonly #hostIndex = new Map<string, number>();
  /** Network faults in force. */
  readonly #windows = new Set<Window>();
  #cutActive = false;
  /** Second processes of a hostname (`duphost`). */
  readonly #dupNodes: SimNode[] = [];

  constructor(readonly run: FaultContext) {
    run.scenario.hosts.forEach((host, index) => this.#hostIndex.set(host.name, index));
  }

  /** Every fault is over: the network as it is with none. */
  allOver(): void {
    this.#windows.clear();
    this.applyWindows();
  }

  /** Hostnames a live second process still claims. */
  sharedHostnames(): string[] {
    return this.#dupNodes.filter((node) => node.alive).map((node) => node.hostname);
  }

  /** Heal a cut that stays, if one is in force; true if it was. */
  healCut(): boolean {
    if (!this.#cutActive) return false;
    this.#cutActive = false;
    this.run.sim.note('*', 'CUT HEALED (the stable watch goes on)');
    this.applyWindows();
    return true;
  }

  schedule(): void {
    const { sim, scenario, tick } = this.run;
    for (const fault of scenario.faults) sim.at(fault.at * tick, () => this.apply(fault));
    const staying = scenario.cut;
    if (staying) {
      sim.at(staying.at * tick, () => {
        this.#cutActive = true;
        sim.note(
          '*',
          `CUT that stays: ${staying.pairs.map(([a, b]) => `${scenario.hosts[a]?.name ?? a}-/-${scenario.hosts[b]?.name ?? b}`).join(', ')}`,
        );
        this.applyWindows();
      });
    }
    // API calls alone (no network fault, no stall): every handoff must stay clean (SPEC 9.3).
    this.run.checker.handoffStrict =
      scenario.kind === 'race' &&
      scenario.faults.every((fault) => ['stepdown', 'promote', 'eligible', 'timing', 'priority'].includes(fault.type));
  }

  /** Partitions cut by hostname: a foreign server sits with the main server of its name (group 0 if none). */
  #indexOf(id: string): number {
    return this.#hostIndex.get(this.run.sim.nodes.get(id)?.hostname ?? id) ?? 0;
  }

  /** The network faults in force, as the simulated network's loss, link faults and reachability. */
  applyWindows(): void {
    const { sim, scenario } = this.run;
    const faults: NetworkFaults = { ...CLEAN };
    const cuts: Window[] = [];
    sim.linkFaults.clear();
    for (const w of this.#windows) {
      if (w.type === 'link') this.#addLinkFault(w);
      else if (w.type === 'net') this.#addNetFault(faults, w);
      else cuts.push(w);
    }
    sim.faults = faults;
    this.run.checker.networkChanged();
    const staying = this.#cutActive && scenario.cut ? scenario.cut.pairs : [];
    if (cuts.length === 0 && staying.length === 0) {
      sim.link = () => true;
      return;
    }
    const oneways = cuts
      .filter((w): w is Extract<Window, { type: 'oneway' }> => w.type === 'oneway')
      .map((w) => ({ from: new Set(w.from), to: new Set(w.to) }));
    const partitions = cuts.filter((w): w is Extract<Window, { type: 'partition' }> => w.type === 'partition');
    sim.link = (from, to) => {
      const a = this.#indexOf(from);
      const b = this.#indexOf(to);
      for (const p of partitions) if ((p.groups[a] ?? 0) !== (p.groups[b] ?? 0)) return false;
      for (const o of oneways) if (o.from.has(a) && o.to.has(b)) return false;
      for (const [x, y] of staying) if ((a === x && b === y) || (a === y && b === x)) return false;
      return true;
    };
  }

  #addLinkFault(w: Extract<Window, { type: 'link' }>): void {
    const { sim, scenario, tick } = this.run;
    const from = scenario.hosts[w.from]?.name;
    const to = scenario.hosts[w.to]?.name;
    if (from === undefined || to === undefined) return;
    const key = linkKey(from, to);
    const before: LinkFault = sim.linkFaults.get(key) ?? { drop: 0, delayMs: 0, dup: 0, dupDelayMs: 0 };
    sim.linkFaults.set(key, {
      drop: Math.max(before.drop, w.drop),
      delayMs: Math.max(before.delayMs, w.delayTicks * tick),
      dup: Math.max(before.dup, w.dup),
      dupDelayMs: Math.max(before.dupDelayMs, w.dupTicks * tick),
    });
  }

  #addNetFault(faults: NetworkFaults, w: Extract<Window, { type: 'net' }>): void {
    const tick = this.run.tick;
    faults.lossRate = Math.max(faults.lossRate, w.loss);
    faults.dupRate = Math.max(faults.dupRate, w.dup);
    faults.dupDelayMs = Math.max(faults.dupDelayMs, w.dupTicks * tick);
    faults.reorderRate = Math.max(faults.reorderRate, w.reorder);
    faults.reorderMaxMs = Math.max(faults.reorderMaxMs, w.reorderTicks * tick);
    faults.spikeRate = Math.max(faults.spikeRate, w.spike);
    faults.spikeMs = Math.max(faults.spikeMs, w.spikeTicks * tick);
  }

  /** A host index, or the current master (else a live server of the main cluster, drawn). */
  #resolve(target: Target): SimNode | null {
    const sim = this.run.sim;
    if (target !== 'master') {
      const host = this.run.scenario.hosts[target];
      const node = host ? sim.nodes.get(host.name) : undefined;
      return node ?? null;
    }
    const live = [...sim.nodes.values()].filter((node) => node.alive && this.run.inMain(node));
    const master = live.find((node) => node.core.master);
    if (master) return master;
    return live.length > 0 ? sim.random.pick(live) : null;
  }

  /** `act` on the target, if there is one (a process that ended included: a reload or a clock step reaches its successor). */
  #on(target: Target, act: (node: SimNode) => void): void {
    const node = this.#resolve(target);
    if (node) act(node);
  }

  /** `act` on the target, if it is running. */
  #onLive(target: Target, act: (node: SimNode) => void): void {
    const node = this.#resolve(target);
    if (node?.alive) act(node);
  }

  apply(fault: Fault): void {
    const { sim, work, tick } = this.run;
    switch (fault.type) {
      case 'crash':
      case 'shutdown':
        return this.#end(fault);
      case 'restart':
        return this.#onLive(fault.target, (node) => sim.restart(node.id, { graceful: fault.graceful, delayMs: fault.delay * tick }));
      case 'stall':
        return this.#onLive(fault.target, (node) => sim.stall(node.id, fault.ticks * tick));
      case 'wallstep':
        return this.#on(fault.target, (node) => sim.stepWallClock(node.id, fault.ms));
      case 'eligible': {
        const node = this.#resolve(fault.target);
        if (node && work) work.setEligible(node, fault.eligible);
        else if (node) sim.setEligible(node.id, fault.eligible);
        return;
      }
      case 'partition':
      case 'oneway':
      case 'net':
      case 'link':
        return this.#openWindow(fault);
      case 'duphost':
        return this.#duplicate(fault);
      case 'stepdown': {
        const node = this.#resolve('master');
        if (node?.alive && node.core.master && work) work.stepDown(node);
        else if (node?.alive && node.core.master) sim.stepDown(node.id);
        return;
      }
      case 'promote':
        return this.#onLive(fault.target, (node) => sim.promote(node.id));
      case 'priority':
        return this.#on(fault.target, (node) => sim.setPriority(node.id, fault.priority));
      case 'timing':
        return this.#on(fault.target, (node) => sim.setNodeTiming(node.id, fault.tickFactor * tick, fault.checkBeats));
      case 'forge':
        return this.#forge(fault);
    }
  }

  #end(fault: Extract<Fault, { type: 'crash' | 'shutdown' }>): void {
    const { sim, work, tick } = this.run;
    const node = this.#resolve(fault.target);
    if (!node || !node.alive) return;
    const end = (): void => {
      if (!node.alive) return;
      if (fault.type === 'crash') sim.crash(node.id);
      else sim.shutdown(node.id);
      // Scheduled now, so the start is due before anything scheduled later for the same instant.
      if (fault.restartAfter !== undefined) sim.restart(node.id, { delayMs: fault.restartAfter * tick });
    };
    // With master work, a graceful shutdown drains first (the component's shutdown does).
    if (fault.type === 'shutdown' && work) work.shutdown(node, end);
    else end();
  }

  #openWindow(fault: Window): void {
    const { sim, scenario } = this.run;
    this.#windows.add(fault);
    sim.note('*', `NET ${describeWindow(fault, scenario)}`);
    this.applyWindows();
    sim.at(Math.max(fault.until, fault.at) * this.run.tick, () => {
      this.#windows.delete(fault);
      sim.note('*', `NET ends: ${describeWindow(fault, scenario)}`);
      this.applyWindows();
    });
  }

  #duplicate(fault: Extract<Fault, { type: 'duphost' }>): void {
    const sim = this.run.sim;
    const original = this.#resolve(fault.target);
    if (!original) return;
    const dup = sim.addDuplicate(original.hostname, { ...original.options, eligible: original.core.eligible, at: sim.now });
    this.#dupNodes.push(dup);
    if (fault.until === null) return;
    sim.at(Math.max(fault.until, fault.at) * this.run.tick, () => {
      if (fault.stop === 'crash') sim.crash(dup.id);
      else sim.shutdown(dup.id);
    });
  }

  #forge(fault: Extract<Fault, { type: 'forge' }>): void {
    const { sim, scenario, tick, checker } = this.run;
    const forger = new Forger(sim.random, {
      hostnames: scenario.hosts.map((host) => host.name),
      iidOf: (hostname) => {
        const node = sim.nodes.get(hostname);
        return node?.alive ? node.core.instanceId : undefined;
      },
      tickMs: tick,
    });
    sim.note(
      '*',
      `FORGER starts: ${fault.perTick} packets a tick, bursts up to ${fault.burst}, until ${(fault.until * tick).toFixed(1)} ms`,
    );
    checker.forgedUntil = Math.max(checker.forgedUntil, fault.until * tick + this.run.tock + 0.25 * tick);
    const end = fault.until * tick;
    const speak = (): void => {
      if (sim.now >= end) {
        sim.note('*', 'FORGER stops');
        return;
      }
      for (let i = sim.random.int(1, fault.burst); i > 0; i--) sim.inject(forger.next(), { address: '10.66.66.66' });
      sim.at(sim.now + (sim.random.next() * 2 * tick) / fault.perTick, speak);
    };
    speak();
  }
}
