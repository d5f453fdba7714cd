/**
 * A deterministic cluster: many election cores on a simulated network and a simulated
 * monotonic clock, everything driven from one seed. Tests use it to check each SPEC
 * bound with exact times; `npm run sim` uses it to sweep faults.
 */
import { ElectionCore, type CoreOptions } from '../core/election';
import type { Address, CoreEvent, Instant, JsonValue, Message, Output } from '../core/types';
import { createKeyring, type Keyring } from '../wire/auth';
import { decode, encode, type DecodeResult } from '../wire/codec';
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
  /** The hostname it announces, when not its name in the simulation (two processes, one hostname). */
  hostname?: string;
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
  /** `secret_key` of every server: authenticated packets and instance verification (needs `wire`). */
  secret?: string | string[];
  /** `max_servers` of every server. */
  maxServers?: number;
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
  /** Its `secret_key`, derived (null: open format). Change it with `setKeys`. */
  keyring: Keyring | null;
}

type Item =
  | { time: number; seq: number; kind: 'deliver'; to: string; from: string; message: Message }
  | { time: number; seq: number; kind: 'wake'; host: string; token: number }
  | { time: number; seq: number; kind: 'start'; host: string }
  | { time: number; seq: number; kind: 'call'; fn: () => void };

const WALL_EPOCH = Date.UTC(2026, 0, 1);
/** More items than this at one simulated instant means a livelock (see #step). */
const MAX_STEPS_AT_ONE_INSTANT = 200_000;

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
  /** Datagrams refused, by reason: by a receiver's codec (bad MAC, …) or its core (stale, unverified, …). */
  readonly drops: Record<string, number> = Object.create(null) as Record<string, number>;
  /** Sees every datagram a server sends, as encoded (wire mode): what an eavesdropper on the LAN captures. */
  onDatagram: ((from: string, datagram: Buffer) => void) | null = null;

  #heap = new EventHeap<Item>();
  #seq = 0;
  #wire: boolean;
  #trace: boolean;
  /** The keyring every server starts with (shared, so one decode serves all who hold it). */
  #keyring: Keyring | null;
  #maxServers: number | undefined;

  constructor(options: SimClusterOptions = {}) {
    this.random = new Random(options.seed ?? 1);
    this.tickMs = options.tickMs ?? 1000;
    this.checkBeats = options.checkBeats ?? 3;
    this.latencyMs = options.latencyMs ?? 1;
    this.jitterMs = options.jitterMs ?? 0;
    this.lossRate = options.lossRate ?? 0;
    this.#wire = options.wire ?? true;
    this.#trace = options.trace ?? false;
    this.#keyring = options.secret === undefined ? null : createKeyring(options.secret);
    this.#maxServers = options.maxServers;
    if (this.#keyring && !this.#wire) throw new Error('a secret needs the wire codec');
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
      keyring: this.#keyring,
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

  /** Give one server new keys at run time (a config reload), e.g. one step of a key rotation. */
  setKeys(hostname: string, secret: string | string[]): void {
    const node = this.node(hostname);
    if (!node.keyring) throw new Error('setKeys needs a cluster created with a secret');
    node.keyring = createKeyring(secret);
    this.#note(hostname, 'KEYS RELOADED');
  }

  /**
   * A datagram from outside the cluster (an attacker on the LAN, or a replay) reaches
   * `to` (default: every live server) now, through each receiver's codec and core.
   */
  inject(datagram: Buffer, options: { to?: string[]; address?: string } = {}): void {
    const from: Address = { address: options.address ?? '10.66.66.66', port: 3014 };
    for (const host of options.to ?? [...this.nodes.keys()]) {
      const node = this.nodes.get(host);
      if (!node?.alive) continue;
      const result = this.#decodeFor(node, datagram);
      if (!result.ok) {
        this.#countDrop(result.reason);
        continue;
      }
      this.#receive(node, result.message, from);
    }
  }

  /** Run a function at simulated time `time`. */
  at(time: number, fn: () => void): void {
    this.#push({ time, seq: 0, kind: 'call', fn });
  }

  /** Deliveries and wake-ups waiting (a bound the fuzzer checks). */
  get pending(): number {
    return this.#heap.size;
  }

  runUntil(time: number): void {
    for (;;) {
      const next = this.#heap.peek();
      if (!next || next.time > time) break;
      this.#step(next);
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
      this.#step(next);
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

  #sameTimeSteps = 0;

  /**
   * Pop and process one item. Simulated time must advance: a core that keeps asking to be
   * woken at the instant it is woken would spin forever, so that fails loudly instead.
   */
  #step(next: Item): void {
    this.#heap.pop();
    this.#sameTimeSteps = next.time === this.now ? this.#sameTimeSteps + 1 : 0;
    if (this.#sameTimeSteps > MAX_STEPS_AT_ONE_INSTANT) {
      throw new Error(`simulation stuck at ${this.now} ms: ${MAX_STEPS_AT_ONE_INSTANT} steps without time advancing (last: ${next.kind})`);
    }
    this.now = next.time;
    this.#process(next);
  }

  #newCore(hostname: string, options: SimNodeOptions): ElectionCore {
    const coreOptions: CoreOptions = {
      hostname: options.hostname ?? hostname,
      ip: '127.0.0.1',
      instanceId: this.random.hex(16),
      tickMs: this.tickMs,
      checkBeats: this.checkBeats,
      verifyInstances: this.#keyring !== null,
    };
    if (this.#maxServers !== undefined) coreOptions.maxServers = this.#maxServers;
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
        this.#receive(node, item.message, { address: addressOf(item.from), port: 3014 });
        break;
      }
      case 'call':
        item.fn();
        break;
    }
  }

  #receive(node: SimNode, message: Message, from: Address): void {
    const out = node.core.receive(message, from, this.#instant(node));
    if (out.dropped) this.#countDrop(out.dropped);
    this.#apply(node, out);
  }

  #countDrop(reason: string): void {
    this.drops[reason] = (this.drops[reason] ?? 0) + 1;
  }

  #decodeFor(node: SimNode, datagram: Buffer): DecodeResult {
    return decode(datagram, { keyring: node.keyring });
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
    let datagram: Buffer | null = null;
    if (this.#wire) {
      datagram = encode(message, this.node(from).keyring);
      this.onDatagram?.(from, datagram);
    }
    // One decode per receiving keyring: servers that share keys see the same message.
    const decoded = new Map<Keyring | null, DecodeResult>();
    for (const to of this.nodes.keys()) {
      this.datagrams++;
      if (!this.link(from, to)) continue;
      if (to !== from && this.lossRate > 0 && this.random.next() < this.lossRate) continue;
      let delivered = message;
      if (datagram) {
        const receiver = this.node(to);
        let result = decoded.get(receiver.keyring);
        if (!result) {
          result = this.#decodeFor(receiver, datagram);
          decoded.set(receiver.keyring, result);
        }
        if (!result.ok) {
          // Between servers with the same keys a failed round trip is a codec bug, not a drop.
          if (receiver.keyring === this.node(from).keyring) throw new Error(`codec round trip failed for ${message.action}: ${result.reason} ${result.detail}`);
          this.#countDrop(result.reason);
          continue;
        }
        delivered = result.message;
      }
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

/** The simulated address of a server: stable, and distinct for the few names tests use. */
export function addressOf(hostname: string): string {
  return `10.0.0.${hashOf(hostname)}`;
}

function hashOf(text: string): number {
  let hash = 0;
  for (let i = 0; i < text.length; i++) hash = (hash * 31 + text.charCodeAt(i)) % 250;
  return hash + 1;
}
