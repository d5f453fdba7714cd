/**
 * A deterministic cluster: many election cores on a simulated network and a simulated
 * monotonic clock, everything driven from one seed. Tests use it to check each SPEC
 * bound with exact times; `npm run sim` uses it to sweep faults.
 */
import { ElectionCore, type CoreOptions } from '../core/election';
import type { CoreEvent, Instant, JsonValue, Message, Output } from '../core/types';
import { decode, encode } from '../wire/codec';
import { EventHeap } from './heap';
import { Random } from './random';

export interface SimNodeOptions {
  eligible?: boolean;
  exitOnConflict?: boolean;
  data?: CoreOptions['data'];
  priority?: number;
  quorum?: number;
  clusterId?: string;
  /** Start time; default now. */
  at?: number;
}

export interface SimClusterOptions {
  seed?: number;
  tickMs?: number;
  checkBeats?: number;
  /** One-way delay of every datagram, ms (before jitter). */
  latencyMs?: number;
  /** Extra random delay, uniform in [0, jitterMs). */
  jitterMs?: number;
  /** Probability that a datagram to one receiver is lost. */
  lossRate?: number;
  /** Round-trip every datagram through the wire codec (on by default: proves the codec too). */
  wire?: boolean;
  /** Keep a readable timeline (costly for big clusters). */
  trace?: boolean;
}

export interface SimEventRecord {
  time: number;
  host: string;
  event: CoreEvent;
}

export interface SimNode {
  hostname: string;
  core: ElectionCore;
  alive: boolean;
  /** Added to the simulated wall clock for this node only (a stepped or skewed clock). */
  wallOffset: number;
  /** Timers of this node fire no earlier than this (a stall: CPU starvation, paused VM). */
  stalledUntil: number;
  wakeToken: number;
  events: SimEventRecord[];
  options: SimNodeOptions;
}

type Item =
  | { time: number; seq: number; kind: 'deliver'; to: string; from: string; message: Message }
  | { time: number; seq: number; kind: 'wake'; host: string; token: number }
  | { time: number; seq: number; kind: 'start'; host: string }
  | { time: number; seq: number; kind: 'call'; fn: () => void };

const WALL_EPOCH = Date.UTC(2026, 0, 1);

export class SimCluster {
  readonly random: Random;
  readonly nodes = new Map<string, SimNode>();
  readonly events: SimEventRecord[] = [];
  readonly timeline: string[] = [];
  now = 0;
  tickMs: number;
  checkBeats: number;
  latencyMs: number;
  jitterMs: number;
  lossRate: number;
  /** Return false to drop a datagram from `from` to `to` (partitions, one-way links). */
  link: (from: string, to: string) => boolean = () => true;
  datagrams = 0;

  #heap = new EventHeap<Item>();
  #seq = 0;
  #wire: boolean;
  #trace: boolean;

  constructor(options: SimClusterOptions = {}) {
    this.random = new Random(options.seed ?? 1);
    this.tickMs = options.tickMs ?? 1000;
    this.checkBeats = options.checkBeats ?? 3;
    this.latencyMs = options.latencyMs ?? 1;
    this.jitterMs = options.jitterMs ?? 0;
    this.lossRate = options.lossRate ?? 0;
    this.#wire = options.wire ?? true;
    this.#trace = options.trace ?? false;
  }

  get tockMs(): number {
    return this.tickMs * this.checkBeats;
  }

  /** Create a server and schedule its start (now, or at `options.at`). */
  add(hostname: string, options: SimNodeOptions = {}): SimNode {
    const node: SimNode = {
      hostname,
      core: this.#newCore(hostname, options),
      alive: false,
      wallOffset: 0,
      stalledUntil: 0,
      wakeToken: 0,
      events: [],
      options,
    };
    this.nodes.set(hostname, node);
    this.#push({ time: Math.max(this.now, options.at ?? this.now), seq: 0, kind: 'start', host: hostname });
    return node;
  }

  node(hostname: string): SimNode {
    const node = this.nodes.get(hostname);
    if (!node) throw new Error(`no simulated server ${hostname}`);
    return node;
  }

  /** Kill without notice (SIGKILL, cable cut). */
  crash(hostname: string): void {
    const node = this.node(hostname);
    node.alive = false;
    node.wakeToken++;
    this.#note(hostname, 'CRASH');
  }

  /** Graceful shutdown: the notice goes out, then the server is gone. */
  shutdown(hostname: string): void {
    const node = this.node(hostname);
    if (!node.alive) return;
    this.#note(hostname, 'SHUTDOWN');
    this.#apply(node, node.core.shutdown(this.#instant(node)));
    node.alive = false;
    node.wakeToken++;
  }

  /** A new process with the same hostname (new instance id), starting now. */
  restart(hostname: string): void {
    const node = this.node(hostname);
    if (node.alive) this.crash(hostname);
    node.core = this.#newCore(hostname, node.options);
    this.#push({ time: this.now, seq: 0, kind: 'start', host: hostname });
  }

  setEligible(hostname: string, eligible: boolean): void {
    const node = this.node(hostname);
    this.#note(hostname, `ELIGIBLE=${eligible}`);
    this.#apply(node, node.core.setEligible(eligible, this.#instant(node)));
  }

  sendMessage(hostname: string, to: string, type: string, payload: JsonValue): void {
    const node = this.node(hostname);
    this.#apply(node, node.core.sendMessage(to, type, payload, this.#instant(node)));
  }

  setCheckpoint(hostname: string, data: JsonValue): boolean {
    const node = this.node(hostname);
    const out = node.core.setCheckpoint(data, this.#instant(node));
    if (out) this.#apply(node, out);
    return out !== null;
  }

  stepDown(hostname: string): void {
    const node = this.node(hostname);
    this.#note(hostname, 'STEP DOWN requested');
    this.#apply(node, node.core.stepDown(this.#instant(node)));
  }

  promote(hostname: string): void {
    const node = this.node(hostname);
    this.#note(hostname, 'PROMOTE requested');
    this.#apply(node, node.core.promote(this.#instant(node)));
  }

  setTiming(tickMs: number, checkBeats: number): void {
    this.tickMs = tickMs;
    this.checkBeats = checkBeats;
    for (const node of this.nodes.values()) {
      if (node.alive) this.#apply(node, node.core.setTiming({ tickMs, checkBeats }, this.#instant(node)));
    }
  }

  /** Step one server's wall clock; its monotonic clock is untouched. */
  stepWallClock(hostname: string, deltaMs: number): void {
    this.node(hostname).wallOffset += deltaMs;
    this.#note(hostname, `WALL CLOCK ${deltaMs > 0 ? '+' : ''}${deltaMs} ms`);
  }

  /** The server's timers fire no earlier than now + ms; datagrams queue meanwhile. */
  stall(hostname: string, ms: number): void {
    const node = this.node(hostname);
    node.stalledUntil = Math.max(node.stalledUntil, this.now + ms);
    this.#note(hostname, `STALL ${ms} ms`);
  }

  /** Servers in `groups` hear only their own group; unlisted servers hear nobody. */
  partition(groups: string[][]): void {
    const groupOf = new Map<string, number>();
    groups.forEach((group, index) => group.forEach((host) => groupOf.set(host, index)));
    this.link = (from, to) => from === to || (groupOf.has(from) && groupOf.get(from) === groupOf.get(to));
    this.#note('*', `PARTITION ${groups.map((g) => g.join(',')).join(' | ')}`);
  }

  heal(): void {
    this.link = () => true;
    this.#note('*', 'HEAL');
  }

  /** Run a function at simulated time `time`. */
  at(time: number, fn: () => void): void {
    this.#push({ time, seq: 0, kind: 'call', fn });
  }

  runUntil(time: number): void {
    for (;;) {
      const next = this.#heap.peek();
      if (!next || next.time > time) break;
      this.#heap.pop();
      this.now = next.time;
      this.#process(next);
    }
    this.now = Math.max(this.now, time);
  }

  runFor(ms: number): void {
    this.runUntil(this.now + ms);
  }

  /** Run until `predicate` holds (checked after each event) or `limit` ms pass; returns the time or null. */
  runUntilTrue(predicate: () => boolean, limitMs: number): number | null {
    const end = this.now + limitMs;
    if (predicate()) return this.now;
    for (;;) {
      const next = this.#heap.peek();
      if (!next || next.time > end) break;
      this.#heap.pop();
      this.now = next.time;
      this.#process(next);
      if (predicate()) return this.now;
    }
    this.now = Math.max(this.now, end);
    return null;
  }

  live(): SimNode[] {
    return [...this.nodes.values()].filter((node) => node.alive);
  }

  /** The agreed master: every live server names it and it alone is master. Else null. */
  agreedMaster(): string | null {
    const live = this.live();
    if (live.length === 0) return null;
    const name = live[0]?.core.masterHostname ?? '';
    if (!name) return null;
    let masters = 0;
    for (const node of live) {
      if (node.core.masterHostname !== name) return null;
      if (node.core.master) masters++;
    }
    const holder = this.nodes.get(name);
    return masters === 1 && holder?.alive && holder.core.master ? name : null;
  }

  /** Live servers that believe they are master right now. */
  masters(): string[] {
    return this.live()
      .filter((node) => node.core.master)
      .map((node) => node.hostname);
  }

  eventsOf(type: CoreEvent['type'], host?: string): SimEventRecord[] {
    return this.events.filter((record) => record.event.type === type && (host === undefined || record.host === host));
  }

  // ---- internals -------------------------------------------------------------------

  #newCore(hostname: string, options: SimNodeOptions): ElectionCore {
    const coreOptions: CoreOptions = {
      hostname,
      ip: '127.0.0.1',
      instanceId: this.random.hex(16),
      tickMs: this.tickMs,
      checkBeats: this.checkBeats,
    };
    if (options.eligible !== undefined) coreOptions.eligible = options.eligible;
    if (options.exitOnConflict !== undefined) coreOptions.exitOnConflict = options.exitOnConflict;
    if (options.data !== undefined) coreOptions.data = options.data;
    if (options.priority !== undefined) coreOptions.priority = options.priority;
    if (options.quorum !== undefined) coreOptions.quorum = options.quorum;
    if (options.clusterId !== undefined) coreOptions.clusterId = options.clusterId;
    return new ElectionCore(coreOptions);
  }

  #instant(node: SimNode): Instant {
    return { mono: this.now, wall: WALL_EPOCH + this.now + node.wallOffset };
  }

  #push(item: Item): void {
    item.seq = ++this.#seq;
    this.#heap.push(item);
  }

  #process(item: Item): void {
    switch (item.kind) {
      case 'start': {
        const node = this.node(item.host);
        node.alive = true;
        this.#note(item.host, 'START');
        this.#apply(node, node.core.start(this.#instant(node)));
        break;
      }
      case 'wake': {
        const node = this.nodes.get(item.host);
        if (!node || !node.alive || item.token !== node.wakeToken) return;
        if (node.stalledUntil > this.now) {
          this.#scheduleWake(node, node.stalledUntil);
          return;
        }
        this.#apply(node, node.core.tick(this.#instant(node)));
        break;
      }
      case 'deliver': {
        const node = this.nodes.get(item.to);
        if (!node || !node.alive) return;
        if (node.stalledUntil > this.now) {
          // A stalled process reads its socket when it wakes; the datagram waits in the
          // buffer. Node runs due timers before it polls for I/O, so it is read just after.
          this.#push({ ...item, time: node.stalledUntil + 0.001, seq: 0 });
          return;
        }
        this.#apply(node, node.core.receive(item.message, { address: `10.0.0.${hashOf(item.from)}`, port: 3014 }, this.#instant(node)));
        break;
      }
      case 'call':
        item.fn();
        break;
    }
  }

  #apply(node: SimNode, out: Output): void {
    for (const log of out.logs) {
      if (this.#trace && log.level <= 6) this.#note(node.hostname, log.message);
    }
    for (const outbound of out.send) this.#broadcast(node.hostname, outbound.message);
    this.#scheduleWake(node, out.wakeAt);
    for (const event of out.events) {
      const record = { time: this.now, host: node.hostname, event };
      node.events.push(record);
      this.events.push(record);
      if (this.#trace && event.type !== 'masterchange') this.#note(node.hostname, `event ${describeEvent(event)}`);
      if (event.type === 'exit') {
        // The shell shuts the server down (pixl-server's shutdown sends the notice).
        const target = node;
        this.at(this.now, () => this.shutdown(target.hostname));
      }
    }
  }

  #scheduleWake(node: SimNode, wakeAt: number): void {
    node.wakeToken++;
    if (!Number.isFinite(wakeAt)) return;
    this.#push({ time: Math.max(this.now, wakeAt), seq: 0, kind: 'wake', host: node.hostname, token: node.wakeToken });
  }

  #broadcast(from: string, message: Message): void {
    let delivered = message;
    if (this.#wire) {
      const result = decode(encode(message));
      if (!result.ok) throw new Error(`codec round trip failed for ${message.action}: ${result.reason} ${result.detail}`);
      delivered = result.message;
    }
    for (const to of this.nodes.keys()) {
      this.datagrams++;
      if (!this.link(from, to)) continue;
      if (to !== from && this.lossRate > 0 && this.random.next() < this.lossRate) continue;
      const delay = to === from ? 0 : this.latencyMs + (this.jitterMs > 0 ? this.random.next() * this.jitterMs : 0);
      this.#push({ time: this.now + delay, seq: 0, kind: 'deliver', to, from, message: delivered });
    }
  }

  #note(host: string, text: string): void {
    if (this.#trace) this.timeline.push(`${this.now.toFixed(1).padStart(10)} ms  ${host.padEnd(8)} ${text}`);
  }
}

function describeEvent(event: CoreEvent): string {
  switch (event.type) {
    case 'addserver':
    case 'deleteserver':
      return `${event.type} ${event.server.hostname}`;
    case 'conflict':
    case 'duplicate':
      return `${event.type} ${event.hostname}`;
    case 'exit':
      return `exit (${event.reason})`;
    default:
      return event.type;
  }
}

function hashOf(text: string): number {
  let hash = 0;
  for (let i = 0; i < text.length; i++) hash = (hash * 31 + text.charCodeAt(i)) % 250;
  return hash + 1;
}
