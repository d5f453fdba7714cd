/**
 * Lease-election machines (src/coordinator/lease-election.ts) run by the component's own
 * driver (src/driver/driver.ts: one queue, the re-entry rule, events in order, failover
 * timing) against the simulated lease store (sim/lease-store.ts), in simulated time, from one
 * seed: the coordinator mode's counterpart of sim/cluster.ts. The driver's host routes store
 * ops to the simulated store, datagrams (application messages) to the addressed machine, and
 * the wake-up time to the event heap. Processes crash, shut down, restart and freeze
 * (SIGSTOP); the store goes down and comes back; one process's link to the store is cut.
 */
import { LeaseElection, type LeaseElectionOptions } from '../src/coordinator/lease-election';
import type { CoreEvent, Instant, Output } from '../src/elector/types';
import type { Address, JsonObject, JsonValue, Message } from '../src/protocol/messages';
import { Driver } from '../src/driver/driver';
import { SimLoop } from './loop';
import { Random } from './random';
import { SimLeaseStore, type ClientItem, type LeaseStoreOptions } from './lease-store';

export interface LeaseNodeOptions {
  eligible?: boolean;
  priority?: number;
  data?: JsonObject;
  /** Start time, ms; default now. */
  at?: number;
  /** Its app drains master work before a handover (drain_timeout, ms): promote requests are held until `drained`. */
  drainMs?: number;
  /** Preemption on, with this preempt_delay (ms). */
  preemptDelayMs?: number;
}

export interface LeaseSimOptions extends LeaseStoreOptions {
  seed?: number;
  tickMs?: number;
  checkBeats?: number;
  ttlSeconds?: number;
  trace?: boolean;
  /** Log lines up to this level go into the timeline. */
  traceLevel?: number;
}

export interface LeaseEventRecord {
  time: number;
  host: string;
  event: CoreEvent;
}

export interface LeaseNode {
  id: string;
  /** The driver of the running process (a restart makes a new one); `driver.core` is its machine. */
  driver: Driver<LeaseElection>;
  machine: LeaseElection;
  /** The UDP port it registers for messages (one per simulated host, all on 127.0.0.1). */
  port: number;
  alive: boolean;
  /** Frozen (SIGSTOP) until this time: nothing runs, inputs wait. */
  frozenUntil: number;
  /** The store client of the running process (a restart is a new client). */
  client: string;
  incarnation: number;
  wakeAt: number;
  wakeToken: number;
  options: LeaseNodeOptions;
  events: LeaseEventRecord[];
}

export interface LeaseObserver {
  onEvent?(record: LeaseEventRecord, node: LeaseNode): void;
  onLifecycle?(kind: 'start' | 'crash' | 'shutdown' | 'freeze' | 'eligible', node: LeaseNode): void;
  afterStep?(): void;
}

type Item = { time: number; seq: number; fn: () => void };

const WALL_EPOCH = Date.UTC(2026, 0, 1);
const MAX_STEPS_AT_ONE_INSTANT = 200_000;

export class LeaseSimCluster extends SimLoop<Item> {
  readonly random: Random;
  readonly store: SimLeaseStore;
  readonly nodes = new Map<string, LeaseNode>();
  readonly events: LeaseEventRecord[] = [];
  /** Log lines of level 5 and below (what an operator reads), for tests. */
  readonly logs: Array<{ time: number; host: string; level: number; message: string }> = [];
  readonly tickMs: number;
  readonly checkBeats: number;
  readonly ttlSeconds: number;
  observer: LeaseObserver | null = null;

  readonly #started = new WeakSet<LeaseElection>();
  #traceLevel: number;

  constructor(options: LeaseSimOptions = {}) {
    super({ trace: options.trace ?? false, maxStepsAtOneInstant: MAX_STEPS_AT_ONE_INSTANT });
    this.random = new Random(options.seed ?? 1);
    this.tickMs = options.tickMs ?? 1000;
    this.checkBeats = options.checkBeats ?? 3;
    this.ttlSeconds = options.ttlSeconds ?? Math.max(1, Math.ceil((this.tickMs * this.checkBeats) / 1000));
    this.#traceLevel = options.traceLevel ?? 5;
    this.store = new SimLeaseStore(
      { now: () => this.now, at: (time, fn) => this.at(time, fn), random: () => this.random.next() },
      (client, item) => this.#fromStore(client, item),
      options,
    );
  }

  get tockMs(): number {
    return this.tickMs * this.checkBeats;
  }

  add(hostname: string, options: LeaseNodeOptions = {}): LeaseNode {
    if (this.nodes.has(hostname)) throw new Error(`simulated server ${hostname} exists`);
    const port = 3014 + this.nodes.size;
    const node = {
      id: hostname,
      port,
      alive: false,
      frozenUntil: 0,
      client: '',
      incarnation: 0,
      wakeAt: Infinity,
      wakeToken: 0,
      options,
      events: [],
    } as Omit<LeaseNode, 'driver' | 'machine'> as LeaseNode;
    this.#attach(node, this.#newMachine(hostname, port, options));
    this.nodes.set(hostname, node);
    this.at(Math.max(this.now, options.at ?? this.now), () => this.#start(node));
    return node;
  }

  node(id: string): LeaseNode {
    const node = this.nodes.get(id);
    if (!node) throw new Error(`no simulated server ${id}`);
    return node;
  }

  live(): LeaseNode[] {
    return [...this.nodes.values()].filter((node) => node.alive);
  }

  /** Live servers that believe they are master. */
  masters(): LeaseNode[] {
    return this.live().filter((node) => node.machine.master);
  }

  /** Every live server names the same master, and it alone is master; else null. */
  agreedMaster(): string | null {
    const live = this.live();
    const name = live[0]?.machine.masterHostname ?? '';
    if (!name) return null;
    let holders = 0;
    for (const node of live) {
      if (node.machine.masterHostname !== name) return null;
      if (node.machine.master) holders++;
    }
    return holders === 1 && this.nodes.get(name)?.machine.master === true ? name : null;
  }

  // ---- faults and commands ----------------------------------------------------------------

  crash(id: string): void {
    const node = this.node(id);
    if (!node.alive) return;
    node.alive = false;
    node.wakeToken++;
    node.wakeAt = Infinity;
    this.store.forget(node.client);
    this.note(id, 'CRASH');
    this.observer?.onLifecycle?.('crash', node);
  }

  shutdown(id: string): void {
    const node = this.node(id);
    if (!node.alive) return;
    this.note(id, 'SHUTDOWN');
    // As the component: `leave` (a master's slave event reaches the app) before the revoke.
    node.driver.run((m, now) => m.leave(now));
    node.driver.run((m, now) => m.shutdown(now));
    node.alive = false;
    node.wakeToken++;
    node.wakeAt = Infinity;
    this.observer?.onLifecycle?.('shutdown', node);
  }

  /** A new process for this hostname after `delayMs` (the old one is killed first if alive). */
  restart(id: string, delayMs = 0): void {
    const node = this.node(id);
    if (node.alive) this.crash(id);
    this.#attach(node, this.#newMachine(id, node.port, node.options));
    node.frozenUntil = 0;
    this.note(id, `RESTART in ${delayMs} ms`);
    this.at(this.now + delayMs, () => this.#start(node));
  }

  /** SIGSTOP for `ms`: no timer runs and no input is read until then. */
  freeze(id: string, ms: number): void {
    const node = this.node(id);
    if (!node.alive) return;
    node.frozenUntil = Math.max(node.frozenUntil, this.now + ms);
    this.note(id, `FREEZE ${ms} ms`);
    this.observer?.onLifecycle?.('freeze', node);
    this.#scheduleWake(node, node.frozenUntil);
  }

  setEligible(id: string, eligible: boolean): void {
    const node = this.node(id);
    node.options = { ...node.options, eligible };
    this.note(id, `ELIGIBLE=${eligible}`);
    this.#command(node, (m, now) => m.setEligible(eligible, now));
    this.observer?.onLifecycle?.('eligible', node);
  }

  setPriority(id: string, priority: number): void {
    const node = this.node(id);
    node.options = { ...node.options, priority };
    this.note(id, `PRIORITY=${priority}`);
    this.#command(node, (m, now) => m.setPolicy({ priority }, now));
  }

  setData(id: string, data: JsonObject): void {
    this.node(id).machine.setData(data);
  }

  /** The app on `id` sets a checkpoint (its outcome comes as a `checkpoint` event with `ticket`); false when not master. */
  setCheckpoint(id: string, data: JsonValue, ticket = 0): boolean {
    const node = this.node(id);
    if (!node.alive || node.frozenUntil > this.now || !node.machine.isMasterAt(this.#instant())) return false;
    node.driver.run((m, now) => m.setCheckpoint(data, now, ticket));
    return true;
  }

  stepDown(id: string): void {
    this.note(id, 'STEP DOWN requested');
    this.#command(this.node(id), (m, now) => m.stepDown(now));
  }

  promote(id: string): void {
    this.note(id, 'PROMOTE requested');
    this.#command(this.node(id), (m, now) => m.promote(now));
  }

  /** The app on `id` has drained its master work (after a `drain` event). */
  drained(id: string): void {
    this.note(id, 'DRAINED');
    this.#command(this.node(id), (m, now) => m.drained(now));
  }

  storeDown(): void {
    this.store.stop();
    this.note('*', 'STORE DOWN');
  }

  storeUp(): void {
    this.store.start();
    this.note('*', 'STORE UP');
  }

  /** An etcd leader election of `ms`: nothing expires, writes wait or fail (sim/lease-store.ts). */
  storeLeaderless(ms: number): void {
    this.note('*', `STORE LEADER LOST for ${ms.toFixed(0)} ms`);
    this.store.leaderless(ms);
  }

  /** The store answers nothing for `ms`; leases run on. */
  storeStall(ms: number): void {
    this.note('*', `STORE STALLED for ${ms.toFixed(0)} ms`);
    this.store.stall(ms);
  }

  cutLink(id: string): void {
    const node = this.node(id);
    this.store.cutLink(node.client);
    this.note(id, 'LINK TO STORE CUT');
  }

  healLink(id: string): void {
    const node = this.node(id);
    this.store.healLink(node.client);
    this.note(id, 'LINK TO STORE HEALED');
  }

  // ---- running ----------------------------------------------------------------------------

  at(time: number, fn: () => void): void {
    this.push({ time: Math.max(time, this.now), seq: 0, fn });
  }

  eventsOf(type: CoreEvent['type'], host?: string): LeaseEventRecord[] {
    return this.events.filter((record) => record.event.type === type && (host === undefined || record.host === host));
  }

  // ---- internals ----------------------------------------------------------------------------

  #instant(): Instant {
    return { mono: this.now, wall: WALL_EPOCH + this.now };
  }

  #newMachine(hostname: string, port: number, options: LeaseNodeOptions): LeaseElection {
    const machineOptions: LeaseElectionOptions = {
      hostname,
      ip: '127.0.0.1',
      port,
      instanceId: this.random.hex(16),
      prefix: '/pixl-server-multi/sim/',
      tickMs: this.tickMs,
      checkBeats: this.checkBeats,
      ttlSeconds: this.ttlSeconds,
    };
    if (options.eligible !== undefined) machineOptions.eligible = options.eligible;
    if (options.priority !== undefined) machineOptions.priority = options.priority;
    if (options.data !== undefined) machineOptions.data = options.data;
    if (options.drainMs !== undefined) machineOptions.drainMs = options.drainMs;
    if (options.preemptDelayMs !== undefined) machineOptions.preemptDelayMs = options.preemptDelayMs;
    return new LeaseElection(machineOptions);
  }

  #start(node: LeaseNode): void {
    if (node.alive) return;
    // A process runs once: one that already ran (shut down or crashed before this start) is replaced.
    if (this.#started.has(node.machine)) this.#attach(node, this.#newMachine(node.id, node.port, node.options));
    this.#started.add(node.machine);
    node.alive = true;
    node.incarnation++;
    node.client = `${node.id}#${node.incarnation}`;
    this.note(node.id, 'START');
    this.observer?.onLifecycle?.('start', node);
    node.driver.run((m, now) => m.start(now));
  }

  /**
   * A new process: its machine behind a driver of its own, whose host is this simulation.
   * Every step of the machine goes through `driver.run` (or `receive`), as in the component.
   */
  #attach(node: LeaseNode, machine: LeaseElection): void {
    node.machine = machine;
    node.driver = new Driver<LeaseElection>(
      machine,
      {
        now: () => this.#instant(),
        send: (_datagram, message, to, done) => {
          if (to) this.#deliverMessage(node, message, to);
          done();
        },
        schedule: (wakeAt) => {
          if (node.alive && node.machine === machine) this.#scheduleWake(node, wakeAt);
        },
        log: (level, message) => {
          if (level <= 5) this.logs.push({ time: this.now, host: node.id, level, message });
          if (this.tracing && level <= this.#traceLevel) this.note(node.id, message);
        },
        emit: () => undefined,
        observe: (event) => this.#record(node, event),
        store: (op) => {
          if (this.tracing && this.#traceLevel >= 9)
            this.note(node.id, `store ${op.type} #${op.id}${'key' in op ? ` ${op.key}` : ''}${'lease' in op ? ` lease ${op.lease}` : ''}`);
          if (node.machine === machine) this.store.send(node.client, op);
        },
      },
      null,
    );
  }

  /** A datagram to the machine registered at `to` (all on 127.0.0.1, one port each), a store-like delay away. */
  #deliverMessage(sender: LeaseNode, message: Message, to: Address): void {
    const target = [...this.nodes.values()].find((node) => node.port === to.port);
    if (!target) return;
    const from: Address = { address: '127.0.0.1', port: sender.port };
    const delay = this.store.minDelayMs + this.random.next() * (this.store.maxDelayMs - this.store.minDelayMs);
    this.at(this.now + delay, () => this.receiveDatagram(target.id, message, from));
  }

  /** A datagram reaches `id`'s socket (a real member's, or a forger's): read when the process runs. */
  receiveDatagram(id: string, message: Message, from: Address): Output | null {
    const node = this.node(id);
    if (!node.alive) return null;
    if (node.frozenUntil > this.now) {
      this.at(node.frozenUntil + 0.001, () => this.receiveDatagram(id, message, from));
      return null;
    }
    let out: Output | null = null;
    node.driver.receive(message, from, (o) => {
      out = o;
    });
    return out;
  }

  /** An application message from `from` to `to` (by name, as the component's send()). */
  sendMessage(from: string, to: string, messageType: string, payload: JsonValue): void {
    this.#command(this.node(from), (m, now) => m.sendMessage(to, messageType, payload, now));
  }

  #record(node: LeaseNode, event: CoreEvent): void {
    const record = { time: this.now, host: node.id, event };
    node.events.push(record);
    this.events.push(record);
    if (this.tracing && event.type !== 'members') this.note(node.id, `event ${describe(event)}`);
    this.observer?.onEvent?.(record, node);
  }

  protected process(item: Item): void {
    item.fn();
  }

  protected afterStep(): void {
    this.observer?.afterStep?.();
  }

  /** A command from the app: runs now, or (frozen) when the process resumes. */
  #command(node: LeaseNode, run: (machine: LeaseElection, now: Instant) => Output | null): void {
    if (!node.alive) return;
    if (node.frozenUntil > this.now) {
      const machine = node.machine;
      this.at(node.frozenUntil + 0.001, () => {
        if (node.alive && node.machine === machine) node.driver.run(run);
      });
      return;
    }
    node.driver.run(run);
  }

  #fromStore(client: string, item: ClientItem): void {
    const node = this.nodes.get(client.slice(0, client.lastIndexOf('#')));
    if (!node || !node.alive || node.client !== client) return;
    if (node.frozenUntil > this.now) {
      // Read when the process resumes, after its timers (Node runs due timers before polling I/O).
      this.at(node.frozenUntil + 0.001, () => this.#fromStore(client, item));
      return;
    }
    const driver = node.driver;
    switch (item.kind) {
      case 'result':
        if (this.tracing && this.#traceLevel >= 9) this.note(node.id, `result #${item.id} ${JSON.stringify(item.result).slice(0, 160)}`);
        driver.run((m, now) => m.onResult(item.id, item.result, now));
        break;
      case 'watch':
        if (this.tracing && this.#traceLevel >= 9)
          this.note(node.id, `watch ${item.batch.events.map((e) => `${e.type} ${e.kv.key}@${e.kv.modRevision}`).join(', ')}`);
        driver.run((m, now) => m.onWatch(item.id, item.batch, now));
        break;
      case 'watchLost':
        driver.run((m, now) => m.onWatchLost(item.id, 'the stream broke', now));
        break;
    }
  }

  #scheduleWake(node: LeaseNode, wakeAt: number): void {
    if (!Number.isFinite(wakeAt)) return;
    const time = Math.max(this.now, wakeAt, node.frozenUntil);
    if (node.wakeAt <= time && node.wakeAt >= this.now) return;
    const token = ++node.wakeToken;
    node.wakeAt = time;
    this.at(time, () => {
      if (!node.alive || node.wakeToken !== token) return;
      node.wakeAt = Infinity;
      if (node.frozenUntil > this.now) return this.#scheduleWake(node, node.frozenUntil);
      node.driver.tick();
    });
  }
}

function describe(event: CoreEvent): string {
  switch (event.type) {
    case 'master':
      return `master (term ${event.term})`;
    case 'addserver':
    case 'deleteserver':
      return `${event.type} ${event.server.hostname}`;
    case 'masterchange':
      return `masterchange ${event.hostname || "''"}`;
    case 'stepdown':
    case 'promote':
      return `${event.type} ${event.ok ? 'ok' : 'failed'} (${event.reason})`;
    default:
      return event.type;
  }
}
