/**
 * Master work in the simulator: every server runs a scheduler through the semantics of
 * `exclusive()` (src/app/exclusive.ts), its tasks commit to a fenced store, and invariants on
 * both are checked at every step.
 *
 *  - A task is admitted only while its server is master and its gate is open; it carries the
 *    term of that moment, and commits to the store when it ends. The store (`FencedStore`)
 *    keeps the highest term written and refuses a commit below it, as the README's recipes do.
 *  - A handover made on purpose closes the gate, drains (the running tasks end, or the drain
 *    time passes and they are aborted), then hands over: `stepDown()`, a graceful shutdown, an
 *    eligibility change; and a promote request the election holds (its `drain` event), answered
 *    with `drained()`.
 *  - The role lost otherwise (`slave` with no handover of ours) aborts the running tasks. A
 *    careful task then stops without committing; a careless one (the app ignored its signal)
 *    commits anyway, and only the fence stands in its way.
 *  - A stalled process runs nothing: its scheduler, its tasks' ends and its drain wait for it
 *    to wake, in either order with the election's own overdue timer, as in a real process.
 *
 * Invariants:
 *  - `fenced-commit-order`: every commit the store accepts has a term above every commit of
 *    another process before it. So a master frozen mid-task past a failover, then woken, never
 *    commits after the next master's first commit (the store refuses it), whatever the order
 *    of its timers on waking.
 *  - `work-drained-before-handoff`: a server that hands the role over on purpose has no task
 *    running that was not aborted by the drain timeout; and its election never hands a held
 *    promote request over before `drained()` (its backstop aside, a tock after the drain time).
 */
import type { CoreEvent } from '../src/elector/types';
import type { SimCluster, SimNode } from './cluster';

export interface WorkSettings {
  /** How often each server's scheduler calls exclusive(), ms. */
  everyMs: number;
  /** A task runs between these, ms. */
  minTaskMs: number;
  maxTaskMs: number;
  /** drain_timeout, ms. */
  drainMs: number;
  /** Probability that a task ignores its aborted signal and commits anyway. */
  careless: number;
  /** False: a store that takes every commit (only to prove that the invariant bites). */
  fenced?: boolean;
}

type Fail = (invariant: 'fenced-commit-order' | 'work-drained-before-handoff', detail: string) => never;

interface Task {
  id: number;
  node: SimNode;
  iid: string;
  term: number;
  startedAt: number;
  endsAt: number;
  careless: boolean;
  aborted: 'role-lost' | 'drain-timeout' | null;
}

interface Drain {
  since: number;
  reason: string;
  then: Array<() => void>;
  timer: boolean;
}

interface NodeWork {
  tasks: Set<Task>;
  closed: string | null;
  drain: Drain | null;
  /** A promote request held by the election since (its `drain` event), until drained() is called. */
  held: { target: string; since: number } | null;
  /** The node's core is handing over on purpose (drained): its next `slave` is ours, not a loss. */
  handingOver: boolean;
  /** The core the scheduler runs for (a restart makes a new one). */
  core: unknown;
}

/** The store the README's recipes describe: the highest term written; a commit below it is refused. */
export class FencedStore {
  readonly fenced: boolean;
  highest = 0;
  accepted = 0;
  refused = 0;
  /** The last commit accepted: who, with which term, when. */
  last: { time: number; host: string; iid: string; term: number } | null = null;
  /** Per process (instance id), the highest term it committed with: as many entries as processes. */
  readonly #byProcess = new Map<string, number>();
  /** Per term, the process that committed with it first. */
  readonly #byTerm = new Map<number, string>();

  constructor(fenced = true) {
    this.fenced = fenced;
  }

  commit(time: number, host: string, iid: string, term: number): boolean {
    if (this.fenced && term < this.highest) {
      this.refused++;
      return false;
    }
    this.highest = Math.max(this.highest, term);
    this.accepted++;
    this.last = { time, host, iid, term };
    if ((this.#byProcess.get(iid) ?? 0) < term) this.#byProcess.set(iid, term);
    if (!this.#byTerm.has(term)) this.#byTerm.set(term, iid);
    return true;
  }

  /** The process that first committed with `term`, if any. */
  holderOf(term: number): string | undefined {
    return this.#byTerm.get(term);
  }

  /** The highest term committed so far by a live process other than `iid` (0: none). */
  highestOfOthers(iid: string, ended: ReadonlySet<string>): number {
    let highest = 0;
    for (const [process, term] of this.#byProcess) if (process !== iid && !ended.has(process) && term > highest) highest = term;
    return highest;
  }
}

export class SimWork {
  readonly store: FencedStore;
  readonly #sim: SimCluster;
  readonly #settings: WorkSettings;
  readonly #fail: Fail;
  readonly #nodes = new Map<SimNode, NodeWork>();
  #tasks = 0;
  /**
   * Processes that ended (crash, shutdown, restart). A term is its hostname's own (SPEC 7), so
   * only a later process of the same hostname can commit with a term an ended one used: when
   * every server that knew it is gone, the term starts over. No overlap is possible then.
   */
  readonly #ended = new Set<string>();
  /** Tasks aborted because the role was lost, and by a drain's timeout. */
  aborted = { roleLost: 0, drainTimeout: 0 };
  drains = 0;

  constructor(sim: SimCluster, settings: WorkSettings, fail: Fail) {
    this.#sim = sim;
    this.#settings = settings;
    this.#fail = fail;
    this.store = new FencedStore(settings.fenced !== false);
  }

  /** Start the scheduler of `node` (call once, when the server is added). */
  schedule(node: SimNode): void {
    const tick = (): void => {
      this.#later(node, this.#sim.now + this.#settings.everyMs * (0.5 + this.#sim.random.next()), tick, true);
      this.#tryRun(node);
    };
    this.#sim.at(this.#sim.now + this.#sim.random.next() * this.#settings.everyMs, tick);
  }

  /** Watch the election's events (from the simulator's observer chain). */
  onEvent(event: CoreEvent, node: SimNode): void {
    const work = this.#work(node);
    switch (event.type) {
      case 'master':
        if (!work.drain) work.closed = null;
        work.handingOver = false;
        break;
      case 'slave':
        if (work.handingOver) {
          work.handingOver = false;
          break;
        }
        if (work.held && node.core.handoffTarget === work.held.target) {
          const overdue = this.#sim.now >= work.held.since + this.#settings.drainMs + this.#sim.tockMs - 1e-6;
          if (!overdue)
            this.#fail(
              'work-drained-before-handoff',
              `${node.id} handed the role to ${work.held.target} (held since ${work.held.since.toFixed(1)} ms) before its app said drained`,
            );
        }
        for (const task of work.tasks) this.#abort(task, 'role-lost');
        break;
      case 'drain':
        work.held = { target: event.target, since: this.#sim.now };
        this.#handOver(node, `handing over to ${event.target}`, () => {
          work.held = null;
          work.handingOver = node.core.master;
          this.#sim.drained(node.id);
        });
        break;
      case 'stepdown':
        // A handover that did not happen, with us still master: calls are admitted again.
        if (!event.ok && node.core.master && !work.drain) work.closed = null;
        break;
      default:
        break;
    }
  }

  /** The process on `node` ended (crash, shutdown): its tasks are gone with it. */
  ended(node: SimNode): void {
    const work = this.#work(node);
    this.#ended.add(node.core.instanceId);
    work.tasks.clear();
    work.drain = null;
    work.held = null;
    work.closed = null;
    work.handingOver = false;
  }

  /** stepDown() through the app: drain, then hand over. */
  stepDown(node: SimNode): void {
    if (!node.alive || !node.core.master) return;
    this.#handOver(node, 'stepping down', () => {
      this.#work(node).handingOver = node.core.master;
      this.#sim.stepDown(node.id);
    });
  }

  /** A graceful shutdown through the app: drain if master, then shut down. */
  shutdown(node: SimNode, then: () => void): void {
    if (!node.alive) return;
    if (!node.core.master || this.#work(node).tasks.size === 0) return then();
    this.#handOver(node, 'shutting down', then);
  }

  /** `eligible = false` through the app: a master drains first. */
  setEligible(node: SimNode, eligible: boolean): void {
    if (eligible || !node.alive || !node.core.master) return this.#sim.setEligible(node.id, eligible);
    this.#handOver(node, 'made ineligible', () => {
      this.#work(node).handingOver = node.core.master;
      this.#sim.setEligible(node.id, eligible);
    });
  }

  // ---- internals ------------------------------------------------------------------------

  #work(node: SimNode): NodeWork {
    let work = this.#nodes.get(node);
    if (!work || work.core !== node.core) {
      work = { tasks: new Set(), closed: null, drain: null, held: null, handingOver: false, core: node.core };
      this.#nodes.set(node, work);
    }
    return work;
  }

  /**
   * Run `fn` at `time` on `node`'s event loop: not while it is stalled (then when it wakes, a
   * hair before or after its election's overdue timer), not after its process ended.
   */
  #later(node: SimNode, time: number, fn: () => void, always = false): void {
    const core = node.core;
    const run = (): void => {
      if (node.core !== core && !always) return;
      if (!node.alive && !always) return;
      if (node.stalledUntil > this.#sim.now) {
        this.#sim.at(node.stalledUntil + (this.#sim.random.chance(0.5) ? 0 : 1), run);
        return;
      }
      fn();
    };
    this.#sim.at(time, run);
  }

  #tryRun(node: SimNode): void {
    if (!node.alive) return;
    const work = this.#work(node);
    if (!node.core.master || work.closed !== null) return;
    const settings = this.#settings;
    const task: Task = {
      id: ++this.#tasks,
      node,
      iid: node.core.instanceId,
      term: node.core.term,
      startedAt: this.#sim.now,
      endsAt: this.#sim.now + settings.minTaskMs + this.#sim.random.next() * (settings.maxTaskMs - settings.minTaskMs),
      careless: this.#sim.random.chance(settings.careless),
      aborted: null,
    };
    work.tasks.add(task);
    this.#later(node, task.endsAt, () => this.#end(task));
  }

  #end(task: Task): void {
    const work = this.#work(task.node);
    if (!work.tasks.has(task)) return;
    work.tasks.delete(task);
    if (task.aborted === null || task.careless) this.#commit(task);
    this.#settled(task.node);
  }

  #commit(task: Task): void {
    const store = this.store;
    const time = this.#sim.now;
    const before = store.highestOfOthers(task.iid, this.#ended);
    if (!store.commit(time, task.node.id, task.iid, task.term)) {
      this.#sim.note(task.node.id, `COMMIT refused: task ${task.id} of term ${task.term} (the store holds ${store.highest})`);
      return;
    }
    this.#sim.note(task.node.id, `COMMIT task ${task.id} with term ${task.term}`);
    const holder = store.holderOf(task.term);
    if (holder !== task.iid && holder !== undefined && !this.#ended.has(holder))
      this.#fail('fenced-commit-order', `${task.node.id} committed with term ${task.term}, which another process committed with before`);
    if (before >= task.term)
      this.#fail(
        'fenced-commit-order',
        `${task.node.id} committed with term ${task.term} after another process committed with term ${before}`,
      );
  }

  #abort(task: Task, kind: 'role-lost' | 'drain-timeout'): void {
    if (task.aborted !== null) return;
    task.aborted = kind;
    if (kind === 'role-lost') this.aborted.roleLost++;
    else this.aborted.drainTimeout++;
    if (task.careless) return;
    // A careful task stops at once, without committing.
    const work = this.#work(task.node);
    work.tasks.delete(task);
    this.#settled(task.node);
  }

  #handOver(node: SimNode, reason: string, then: () => void): void {
    const work = this.#work(node);
    work.closed = reason;
    if (work.drain) {
      work.drain.then.push(then);
      return;
    }
    const drain: Drain = { since: this.#sim.now, reason, then: [then], timer: false };
    work.drain = drain;
    this.drains++;
    if (work.tasks.size === 0) {
      this.#finish(node, drain);
      return;
    }
    this.#later(node, this.#sim.now + this.#settings.drainMs, () => {
      if (work.drain !== drain) return;
      for (const task of [...work.tasks]) this.#abort(task, 'drain-timeout');
      this.#finish(node, drain);
    });
  }

  #settled(node: SimNode): void {
    const work = this.#work(node);
    const drain = work.drain;
    if (drain && work.tasks.size === 0) this.#finish(node, drain);
  }

  #finish(node: SimNode, drain: Drain): void {
    const work = this.#work(node);
    if (work.drain !== drain) return;
    work.drain = null;
    for (const task of work.tasks) {
      if (task.aborted === null)
        this.#fail('work-drained-before-handoff', `${node.id} hands over (${drain.reason}) with task ${task.id} still running`);
    }
    if (!node.alive) return;
    for (const then of drain.then) then();
  }
}
