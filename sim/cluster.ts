/**
 * A deterministic cluster: many election cores on a simulated network and a simulated
 * monotonic clock, everything driven from one seed. Tests use it to check each SPEC
 * bound with exact times; `npm run sim` uses it to sweep faults.
 */
import { ElectionCore, type CoreOptions } from '../src/core/election';
import { CheckedCore, routineChecked } from './checked-core';
import { Driver } from '../src/driver/driver';
import { DEFAULT_MAX_PACKET_BYTES } from '../src/protocol/limits';
import type { Address, JsonValue, Message } from '../src/protocol/messages';
import type { CoreEvent, Instant, Output } from '../src/elector/types';
import { createKeyring, type Keyring } from '../src/wire/auth';
import { decode, type DecodeResult } from '../src/wire/codec';
import { SimLoop } from './loop';
import {
  addressOf,
  emptyBacklog,
  linkKey,
  type Delivery,
  type EndedInstance,
  type Instance,
  type Item,
  type LinkFault,
  type NetworkFaults,
  type SimClusterOptions,
  type SimEventRecord,
  type SimNode,
  type SimNodeOptions,
  type SimObserver,
} from './cluster-types';

export * from './cluster-types';
import { Random } from './random';

const WALL_EPOCH = Date.UTC(2026, 0, 1);
/**
 * A woken process runs its overdue timers before it reads its socket, and then reads
 * READ_BATCH datagrams per turn of its event loop (libuv's limit), its timers running
 * between turns. FIRST_READ_MS is how long after waking the first read comes: pessimistic
 * (on a loaded machine a turn can take longer), so that no fixed wait looks enough.
 */
const FIRST_READ_MS = 2;
const READ_BATCH = 32;
const READ_TURN_MS = 0.5;
/** Datagrams a socket's default receive buffer holds (about 200 KB of small datagrams). */
const SOCKET_QUEUE_DATAGRAMS = 256;
/** Far above what 1000 servers broadcasting at one instant need (10⁶ deliveries). */
const MAX_STEPS_AT_ONE_INSTANT = 3_000_000;

export class SimCluster extends SimLoop<Item> {
  readonly random: Random;
  readonly nodes = new Map<string, SimNode>();
  readonly events: SimEventRecord[] = [];
  tickMs: number;
  checkBeats: number;
  latencyMs: number;
  jitterMs: number;
  lossRate: number;
  /** Return false to drop a datagram from `from` to `to` (node ids; partitions, one-way links). */
  link: (from: string, to: string) => boolean = () => true;
  /** Faults of single directions, by `linkKey(from, to)` (node ids). */
  readonly linkFaults = new Map<string, LinkFault>();
  /** The node whose step ran last (null: a scheduled call). */
  stepNode: SimNode | null = null;
  datagrams = 0;
  /** Per-datagram network faults; latency, jitter and loss above are the baseline. */
  faults: NetworkFaults = { lossRate: 0, dupRate: 0, dupDelayMs: 0, reorderRate: 0, reorderMaxMs: 0, spikeRate: 0, spikeMs: 0 };
  observer: SimObserver | null = null;
  /** Latest delivery time of any datagram scheduled so far: after it, nothing sent earlier is in flight. */
  lastDeliveryDue = 0;
  /** Latest time a server (re)started. */
  lastStartAt = 0;
  readonly ended: EndedInstance[] = [];
  /** Datagrams refused, by reason: by a receiver's codec (bad MAC, …) or its core (stale, unverified, …). */
  readonly drops: Record<string, number> = Object.create(null) as Record<string, number>;
  /** Sees every datagram a server sends, as encoded (wire mode): what an eavesdropper on the LAN captures. */
  onDatagram: ((from: string, datagram: Buffer) => void) | null = null;

  #wire: boolean;
  #traceLevel: number;
  #keepEvents: boolean;
  /** The keyring every server starts with (shared, so one decode serves all who hold it). */
  #keyring: Keyring | null;
  #maxServers: number | undefined;

  constructor(options: SimClusterOptions = {}) {
    super({ trace: options.trace ?? false, maxStepsAtOneInstant: MAX_STEPS_AT_ONE_INSTANT });
    this.random = new Random(options.seed ?? 1);
    this.tickMs = options.tickMs ?? 1000;
    this.checkBeats = options.checkBeats ?? 3;
    this.latencyMs = options.latencyMs ?? 1;
    this.jitterMs = options.jitterMs ?? 0;
    this.lossRate = options.lossRate ?? 0;
    this.#wire = options.wire ?? true;
    this.#traceLevel = options.traceLevel ?? 6;
    this.#keepEvents = options.keepEvents ?? true;
    this.#keyring = options.secret === undefined ? null : createKeyring(options.secret);
    this.#maxServers = options.maxServers;
    if (this.#keyring && !this.#wire) throw new Error('a secret needs the wire codec');
  }

  get tockMs(): number {
    return this.tickMs * this.checkBeats;
  }

  /** Create a server and schedule its start (now, or at `options.at`). */
  add(hostname: string, options: SimNodeOptions = {}): SimNode {
    return this.#addNode(hostname, options.hostname ?? hostname, options);
  }

  /**
   * A second process that calls itself `hostname` (a copied config, a clone of a VM):
   * its own machine (node id `hostname#k`), the same hostname on the wire.
   */
  addDuplicate(hostname: string, options: SimNodeOptions = {}): SimNode {
    let k = 2;
    while (this.nodes.has(`${hostname}#${k}`)) k++;
    return this.#addNode(`${hostname}#${k}`, hostname, options);
  }

  #addNode(id: string, hostname: string, options: SimNodeOptions): SimNode {
    if (this.nodes.has(id)) throw new Error(`simulated server ${id} exists`);
    const core = this.#newCore(hostname, options);
    const node = {
      id,
      hostname,
      core,
      driver: null as unknown as Driver<ElectionCore>,
      instance: { iid: core.instanceId, lastDelivered: null },
      address: addressOf(id),
      keyring: this.#keyring,
      wakeAt: Infinity,
      alive: false,
      wallOffset: 0,
      stalledUntil: 0,
      backlog: emptyBacklog(),
      heardFrom: new Map(),
      troubleFrom: new Map(),
      stalledFrom: -Infinity,
      wakeToken: 0,
      events: [],
      options,
    } as SimNode;
    this.#attach(node, core);
    this.nodes.set(id, node);
    this.push({ time: Math.max(this.now, options.at ?? this.now), seq: 0, kind: 'start', host: id });
    return node;
  }

  /** The simulated server with this node id (its hostname, for all but duplicates). */
  node(id: string): SimNode {
    const node = this.nodes.get(id);
    if (!node) throw new Error(`no simulated server ${id}`);
    return node;
  }

  /** Kill without notice (SIGKILL, cable cut). */
  crash(id: string): void {
    const node = this.node(id);
    if (node.alive) this.#ended(node, 'crash');
    node.alive = false;
    this.#cancelWake(node);
    this.note(id, 'CRASH');
    this.observer?.onLifecycle?.('crash', node);
  }

  /** Graceful shutdown: the notice goes out, then the server is gone. */
  shutdown(id: string): void {
    const node = this.node(id);
    if (!node.alive) return;
    this.note(id, 'SHUTDOWN');
    this.#run(node, (core, now) => core.shutdown(now));
    this.#ended(node, 'shutdown');
    node.alive = false;
    this.#cancelWake(node);
    this.observer?.onLifecycle?.('shutdown', node);
  }

  /**
   * A new process with the same hostname (new instance id), starting after `delayMs`.
   * The old one is killed without notice, or, with `graceful`, shut down first.
   */
  restart(id: string, options: { graceful?: boolean; delayMs?: number } = {}): void {
    const node = this.node(id);
    if (node.alive) {
      if (options.graceful) this.shutdown(id);
      else this.crash(id);
    }
    this.#attach(node, this.#newCore(node.hostname, node.options));
    node.instance = { iid: node.core.instanceId, lastDelivered: null };
    node.stalledUntil = 0;
    node.backlog = emptyBacklog();
    this.#cancelWake(node);
    this.note(id, `RESTART${options.graceful ? ' (graceful)' : ''}${options.delayMs ? ` in ${options.delayMs} ms` : ''}`);
    this.push({ time: this.now + (options.delayMs ?? 0), seq: 0, kind: 'start', host: id });
  }

  setEligible(id: string, eligible: boolean): void {
    const node = this.node(id);
    node.options = { ...node.options, eligible };
    this.note(id, `ELIGIBLE=${eligible}`);
    if (!node.alive) {
      node.core.setEligible(eligible, this.#instant(node));
      return;
    }
    this.#run(node, (core, now) => core.setEligible(eligible, now));
    this.observer?.onLifecycle?.('eligible', node);
  }

  /** The application on `id` locks the record of `hostname` (never removed while locked). */
  lock(id: string, hostname: string, locked = true): void {
    const node = this.node(id);
    this.#run(node, (core, now) => core.setLocked(hostname, locked, now));
  }

  /** A config reload with another `priority` (the rest of the policy as it was). */
  setPriority(id: string, priority: number): void {
    const node = this.node(id);
    node.options = { ...node.options, priority };
    this.note(id, `PRIORITY=${priority}`);
    const policy = { exitOnConflict: node.options.exitOnConflict ?? false, priority, quorum: node.options.quorum ?? 0 };
    if (node.alive) this.#run(node, (core, now) => core.setPolicy(policy, now));
    else node.core.setPolicy(policy, this.#instant(node));
  }

  sendMessage(hostname: string, to: string, type: string, payload: JsonValue): void {
    const node = this.node(hostname);
    this.#run(node, (core, now) => core.sendMessage(to, type, payload, now));
  }

  setCheckpoint(hostname: string, data: JsonValue): boolean {
    const node = this.node(hostname);
    let accepted = false;
    this.#run(node, (core, now) => {
      const out = core.setCheckpoint(data, now);
      accepted = out !== null;
      return out;
    });
    return accepted;
  }

  stepDown(hostname: string): void {
    const node = this.node(hostname);
    this.note(hostname, 'STEP DOWN requested');
    this.#run(node, (core, now) => core.stepDown(now));
  }

  promote(hostname: string): void {
    const node = this.node(hostname);
    this.note(hostname, 'PROMOTE requested');
    this.#run(node, (core, now) => core.promote(now));
  }

  /** The app on `hostname` has drained its master work (after a `drain` event). */
  drained(hostname: string): void {
    const node = this.node(hostname);
    this.note(hostname, 'DRAINED');
    this.#run(node, (core, now) => core.drained(now));
  }

  setTiming(tickMs: number, checkBeats: number): void {
    this.tickMs = tickMs;
    this.checkBeats = checkBeats;
    for (const node of this.nodes.values()) {
      if (node.alive) this.#run(node, (core, now) => core.setTiming({ tickMs, checkBeats }, now));
    }
  }

  /** A config reload of one server's heartbeat_freq and check_beats (the others keep theirs). */
  setNodeTiming(id: string, tickMs: number, checkBeats: number): void {
    const node = this.node(id);
    node.options = { ...node.options, tickMs, checkBeats };
    this.note(id, `TIMING ${tickMs} ms × ${checkBeats}`);
    if (node.alive) this.#run(node, (core, now) => core.setTiming({ tickMs, checkBeats }, now));
  }

  /** Step one server's wall clock; its monotonic clock is untouched. */
  stepWallClock(id: string, deltaMs: number): void {
    this.node(id).wallOffset += deltaMs;
    this.note(id, `WALL CLOCK ${deltaMs > 0 ? '+' : ''}${deltaMs} ms`);
  }

  /** The server's timers fire no earlier than now + ms; datagrams queue meanwhile. */
  stall(id: string, ms: number, quiet = false): void {
    const node = this.node(id);
    if (node.stalledUntil <= this.now) node.stalledFrom = this.now;
    node.stalledUntil = Math.max(node.stalledUntil, this.now + ms);
    this.#backlogEnd(node);
    if (!quiet) this.note(id, `STALL ${ms} ms`);
  }

  /**
   * A loaded machine, until `untilMs`: the server's event loop is blocked again and again, each
   * time for up to `maxBlockMs`, with gaps of up to twice that between blocks. Its timers fire
   * late and its socket is read late, by as much (a GC, CPU starvation, a busy neighbour).
   */
  busy(id: string, maxBlockMs: number, untilMs: number): void {
    const node = this.node(id);
    this.note(id, `BUSY: blocks of up to ${maxBlockMs} ms until ${untilMs.toFixed(1)} ms`);
    const block = (): void => {
      if (this.now >= untilMs || !node.alive) return;
      const ms = this.random.next() * maxBlockMs;
      this.stall(id, ms, true);
      this.at(this.now + ms + this.random.next() * 2 * maxBlockMs, block);
    };
    this.at(this.now, block);
  }

  /** Give one server new keys at run time (a config reload), e.g. one step of a key rotation. */
  setKeys(hostname: string, secret: string | string[]): void {
    const node = this.node(hostname);
    if (!node.keyring) throw new Error('setKeys needs a cluster created with a secret');
    node.keyring = createKeyring(secret);
    if (node.driver.wire) node.driver.wire = { ...node.driver.wire, keyring: node.keyring };
    this.note(hostname, 'KEYS RELOADED');
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

  /** A decoded message from outside the simulated servers (forged, or from an old server), delivered now to `to`. */
  injectMessage(to: string, message: Message, from = 'outsider'): void {
    this.push({
      time: this.now,
      seq: 0,
      kind: 'deliver',
      to,
      from,
      message,
      late: false,
      source: { iid: message.iid ?? '', lastDelivered: null },
      address: '10.66.66.66',
    });
  }

  /** Servers in `groups` hear only their own group; unlisted servers hear nobody. */
  partition(groups: string[][]): void {
    const groupOf = new Map<string, number>();
    groups.forEach((group, index) => group.forEach((host) => groupOf.set(host, index)));
    this.link = (from, to) => from === to || (groupOf.has(from) && groupOf.get(from) === groupOf.get(to));
    this.note('*', `PARTITION ${groups.map((g) => g.join(',')).join(' | ')}`);
  }

  heal(): void {
    this.link = () => true;
    this.note('*', 'HEAL');
  }

  /** Each pair stops hearing each other, both ways; everyone else hears everyone (a non-transitive cut). */
  cut(pairs: Array<[string, string]>): void {
    this.link = (from, to) => !pairs.some(([a, b]) => (from === a && to === b) || (from === b && to === a));
    this.note('*', `CUT ${pairs.map(([a, b]) => `${a}-/-${b}`).join(', ')}`);
  }

  /** Run a function at simulated time `time`. */
  at(time: number, fn: () => void): void {
    this.push({ time, seq: 0, kind: 'call', fn });
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
    let holder: SimNode | undefined;
    for (const node of live) {
      if (node.core.masterHostname !== name) return null;
      if (node.core.master) {
        masters++;
        holder = node;
      }
    }
    return masters === 1 && holder?.hostname === name ? name : null;
  }

  /** Live servers (node ids) that believe they are master right now. */
  masters(): string[] {
    return this.live()
      .filter((node) => node.core.master)
      .map((node) => node.id);
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
      tickMs: options.tickMs ?? this.tickMs,
      checkBeats: options.checkBeats ?? this.checkBeats,
      verifyInstances: this.#keyring !== null,
    };
    if (this.#maxServers !== undefined) coreOptions.maxServers = this.#maxServers;
    if (options.eligible !== undefined) coreOptions.eligible = options.eligible;
    if (options.exitOnConflict !== undefined) coreOptions.exitOnConflict = options.exitOnConflict;
    if (options.data !== undefined) coreOptions.data = options.data;
    if (options.priority !== undefined) coreOptions.priority = options.priority;
    if (options.quorum !== undefined) coreOptions.quorum = options.quorum;
    if (options.clusterId !== undefined) coreOptions.clusterId = options.clusterId;
    if (options.drainMs !== undefined) coreOptions.drainMs = options.drainMs;
    if (options.preemptDelayMs !== undefined) coreOptions.preemptDelayMs = options.preemptDelayMs;
    return routineChecked() ? new CheckedCore(coreOptions) : new ElectionCore(coreOptions);
  }

  #instant(node: SimNode): Instant {
    return { mono: this.now, wall: WALL_EPOCH + this.now + node.wallOffset };
  }

  protected afterStep(): void {
    this.observer?.afterStep?.();
  }

  #ended(node: SimNode, how: 'crash' | 'shutdown'): void {
    this.ended.push({ id: node.id, hostname: node.hostname, instance: node.instance, at: this.now, how });
  }

  protected process(item: Item): void {
    this.stepNode = null;
    switch (item.kind) {
      case 'start': {
        const node = this.node(item.host);
        if (node.alive) return; // a restart scheduled twice: the process is already up
        node.alive = true;
        this.lastStartAt = Math.max(this.lastStartAt, this.now);
        this.note(item.host, `START${node.hostname !== node.id ? ` (hostname ${node.hostname})` : ''}`);
        this.observer?.onLifecycle?.('start', node);
        this.#run(node, (core, now) => core.start(now));
        break;
      }
      case 'wake': {
        const node = this.nodes.get(item.host);
        if (!node || !node.alive || item.token !== node.wakeToken) return;
        node.wakeAt = Infinity;
        if (node.stalledUntil > this.now) {
          this.#scheduleWake(node, node.stalledUntil);
          return;
        }
        this.stepNode = node;
        node.driver.tick();
        break;
      }
      case 'deliver': {
        const node = this.nodes.get(item.to);
        if (!node || !node.alive) return;
        if (this.#queued(node, item)) return;
        this.#land(node, item);
        break;
      }
      case 'read': {
        const node = this.nodes.get(item.host);
        // The queue of a process that has ended since (restarted while stalled): that socket's
        // backlog died with it; its successor has a socket of its own.
        if (!node || !node.alive || item.instance !== node.instance) return;
        this.#readTurn(node);
        break;
      }
      case 'call':
        item.fn();
        break;
    }
  }

  /** A datagram read by `node` now. */
  #land(node: SimNode, item: Delivery): void {
    if (item.from !== item.to) item.source.lastDelivered = this.now;
    if (this.tracing && item.late) this.note(item.to, `late ${item.message.action} from ${item.from} (seq ${item.message.seq ?? '-'})`);
    // A late copy (reordered, spiked, a duplicate) may be dropped as stale: no evidence, and it marks its link as troubled.
    if (item.late) node.troubleFrom.set(item.from, this.now);
    else if (item.message.action === 'heartbeat' && item.from !== item.to) {
      const before = node.heardFrom.get(item.from);
      node.heardFrom.set(item.from, {
        iid: item.source.iid,
        at: this.now,
        since: before?.iid === item.source.iid ? before.since : this.now,
      });
    }
    this.stepNode = node;
    this.#receive(node, item.message, this.#addressFor(item.address));
  }

  #receive(node: SimNode, message: Message, from: Address): void {
    node.driver.receive(message, from, this.#afterReceive);
  }

  /** One callback for every delivery (not a closure each): drops are counted cluster-wide. */
  readonly #afterReceive = (out: Output): void => {
    if (out.dropped) this.#countDrop(out.dropped);
  };

  /** Source addresses are few: one object each, shared by every delivery (cores never change them). */
  #addresses = new Map<string, Address>();
  #addressFor(address: string): Address {
    let from = this.#addresses.get(address);
    if (!from) this.#addresses.set(address, (from = Object.freeze({ address, port: 3014 })));
    return from;
  }

  #run(node: SimNode, step: (core: ElectionCore, now: Instant) => Output | null): void {
    // A stalled process runs nothing, an application's call included: it waits for the
    // process to wake, behind the overdue timer (which is when the stall is noticed).
    if (node.stalledUntil > this.now) {
      const core = node.core;
      this.push({
        time: node.stalledUntil + FIRST_READ_MS / 2,
        seq: 0,
        kind: 'call',
        fn: () => {
          if (node.alive && node.core === core) this.#run(node, step);
        },
      });
      return;
    }
    this.stepNode = node;
    node.driver.run(step);
  }

  /** Swap the core a server runs (tests: a deliberately broken core, to prove the checker). */
  replaceCore(id: string, core: ElectionCore): void {
    const node = this.node(id);
    node.core = core;
    node.driver.core = core;
  }

  /** A new process on `node`: its core, and the driver that carries out its steps. */
  #attach(node: SimNode, core: ElectionCore): void {
    const driver = new Driver<ElectionCore>(
      core,
      {
        now: () => this.#instant(node),
        send: (datagram, message, to, done, loopback) => {
          this.#broadcast(node, message, this.#wire ? datagram : null, to, loopback);
          done();
        },
        // Only the process that runs now: a step of one that ended (a listener of its own
        // last events, a call queued behind its stall) must not set its successor's timer.
        schedule: (wakeAt) => {
          if (node.driver === driver) this.#scheduleWake(node, wakeAt);
        },
        log: (_level, message) => this.note(node.id, message),
        logs: (level) => this.tracing && level <= this.#traceLevel,
        emit: () => {},
        observe: (event) => this.#observe(node, core, event),
      },
      this.#wire ? { keyring: node.keyring, maxPacketBytes: DEFAULT_MAX_PACKET_BYTES, maxDataBytes: 0 } : null,
    );
    node.driver = driver;
    node.core = core;
  }

  #countDrop(reason: string): void {
    this.drops[reason] = (this.drops[reason] ?? 0) + 1;
  }

  #decodeFor(node: SimNode, datagram: Buffer): DecodeResult {
    return decode(datagram, { keyring: node.keyring });
  }

  #observe(node: SimNode, core: ElectionCore, event: CoreEvent): void {
    const record = { time: this.now, host: node.id, event };
    if (this.#keepEvents) {
      node.events.push(record);
      this.events.push(record);
    }
    if (this.tracing && event.type !== 'masterchange' && event.type !== 'addserver') this.note(node.id, `event ${describeEvent(event)}`);
    this.observer?.onEvent?.(record, node);
    if (event.type === 'exit') {
      // The shell shuts the server down (pixl-server's shutdown sends the notice).
      this.at(this.now, () => {
        if (node.core === core) this.shutdown(node.id);
      });
    }
  }

  /**
   * Make sure the core is woken by `wakeAt`. A wake-up already due no later is kept (an
   * early tick() is harmless: the core acts only on what is due, then asks again), which
   * spares the queue a new entry for every datagram.
   */
  #scheduleWake(node: SimNode, wakeAt: number): void {
    if (!Number.isFinite(wakeAt)) return;
    const time = Math.max(this.now, wakeAt);
    if (node.wakeAt <= time) return;
    node.wakeToken++;
    node.wakeAt = time;
    this.push({ time, seq: 0, kind: 'wake', host: node.id, token: node.wakeToken });
  }

  #cancelWake(node: SimNode): void {
    node.wakeToken++;
    node.wakeAt = Infinity;
  }

  #broadcast(node: SimNode, message: Message, datagram: Buffer | null, to: Address | undefined, loopback = false): void {
    const from = node.id;
    const source = node.instance;
    const address = node.address;
    if (datagram) this.onDatagram?.(from, datagram);
    // One decode per receiving keyring: servers that share keys see the same message.
    const decoded = new Map<Keyring | null, DecodeResult>();
    const faults = this.faults;
    const random = this.random;
    for (const [id, receiver] of this.nodes) {
      // A datagram to one address reaches that server only (and a loopback copy, its sender).
      if (to && receiver.address !== to.address && !(loopback && id === from)) continue;
      this.datagrams++;
      let delivered = message;
      if (datagram) {
        let result = decoded.get(receiver.keyring);
        if (!result) {
          result = this.#decodeFor(receiver, datagram);
          decoded.set(receiver.keyring, result);
        }
        if (!result.ok) {
          // Between servers with the same keys a failed round trip is a codec bug, not a drop.
          if (receiver.keyring === node.keyring)
            throw new Error(`codec round trip failed for ${message.action}: ${result.reason} ${result.detail}`);
          this.#countDrop(result.reason);
          continue;
        }
        delivered = result.message;
      }
      if (id === from) {
        // The broadcast echo on our own socket: never lost or delayed, but behind what is
        // queued there (a backlog being read after a stall), which its delivery sees to.
        this.#deliver(this.now, id, from, delivered, false, source, address);
        continue;
      }
      if (
        !this.link(from, id) ||
        (this.lossRate > 0 && random.next() < this.lossRate) ||
        (faults.lossRate > 0 && random.next() < faults.lossRate)
      ) {
        receiver.troubleFrom.set(from, this.now);
        continue;
      }
      const linkFault = this.linkFaults.size > 0 ? this.linkFaults.get(linkKey(from, id)) : undefined;
      if (linkFault && linkFault.drop > 0 && random.next() < linkFault.drop) {
        receiver.troubleFrom.set(from, this.now);
        continue;
      }
      let delay = this.latencyMs + (this.jitterMs > 0 ? random.next() * this.jitterMs : 0);
      let late = false;
      if (faults.reorderRate > 0 && random.next() < faults.reorderRate) {
        delay += random.next() * faults.reorderMaxMs;
        late = true;
      }
      if (faults.spikeRate > 0 && random.next() < faults.spikeRate) {
        delay += faults.spikeMs * (0.5 + random.next() / 2);
        late = true;
      }
      if (linkFault && linkFault.delayMs > 0) {
        delay += linkFault.delayMs;
        late = true;
      }
      if (late) receiver.troubleFrom.set(from, this.now);
      this.#deliver(this.now + delay, id, from, delivered, late, source, address);
      if (faults.dupRate > 0 && random.next() < faults.dupRate) {
        this.#deliver(this.now + delay + random.next() * faults.dupDelayMs, id, from, delivered, true, source, address);
      }
      if (linkFault && linkFault.dup > 0 && random.next() < linkFault.dup) {
        this.#deliver(this.now + delay + random.next() * linkFault.dupDelayMs, id, from, delivered, true, source, address);
      }
    }
  }

  /**
   * A datagram reaches `node`'s socket: does it wait there (true), or is it read now? It
   * waits while the process is stalled, or while what queued during a stall is still being
   * read: first in, first out. What does not fit the socket's buffer while it is not read is
   * lost. (Read out of order, a restarted peer's newer heartbeats overtook its old
   * instance's, whose old shutdown notice then removed it alive: work seeds 1071, 2758.)
   */
  #queued(node: SimNode, item: Delivery): boolean {
    const backlog = node.backlog;
    const stalled = node.stalledUntil > this.now;
    const waiting = backlog.queue.length - backlog.head;
    if (!stalled && waiting === 0) return false;
    if (stalled && waiting >= SOCKET_QUEUE_DATAGRAMS) {
      this.#countDrop('socket-overflow');
      node.troubleFrom.set(item.from, this.now);
      return true;
    }
    backlog.queue.push(item);
    if (backlog.readAt === Infinity) this.#scheduleRead(node, stalled ? node.stalledUntil + FIRST_READ_MS : this.now, 0);
    this.#backlogEnd(node);
    return true;
  }

  /**
   * The reader's turn: a stalled process reads nothing (its first turn comes FIRST_READ_MS
   * after it wakes); else the datagram at the head, and the rest of the turn's READ_BATCH at
   * the same time, the next turn READ_TURN_MS later, its timers running between turns.
   */
  #readTurn(node: SimNode): void {
    const backlog = node.backlog;
    backlog.readAt = Infinity;
    if (node.stalledUntil > this.now) {
      this.#scheduleRead(node, node.stalledUntil + FIRST_READ_MS, 0);
      return;
    }
    const item = backlog.queue[backlog.head] as Delivery;
    backlog.head++;
    if (backlog.head === backlog.queue.length) {
      backlog.queue = [];
      backlog.head = 0;
    } else if (backlog.readInTurn + 1 < READ_BATCH) this.#scheduleRead(node, this.now, backlog.readInTurn + 1);
    else this.#scheduleRead(node, this.now + READ_TURN_MS, 0);
    this.#land(node, item);
  }

  #scheduleRead(node: SimNode, time: number, readInTurn: number): void {
    node.backlog.readAt = time;
    node.backlog.readInTurn = readInTurn;
    this.push({ time, seq: 0, kind: 'read', host: node.id, instance: node.instance });
  }

  /** When the last datagram queued on `node`'s socket is read, as things stand. */
  #backlogEnd(node: SimNode): void {
    const backlog = node.backlog;
    const waiting = backlog.queue.length - backlog.head;
    if (waiting === 0) return;
    // A reader due before the process wakes starts a new turn after it.
    const restarts = node.stalledUntil > this.now && backlog.readAt < node.stalledUntil + FIRST_READ_MS;
    const first = restarts ? node.stalledUntil + FIRST_READ_MS : backlog.readAt;
    const already = restarts ? 0 : backlog.readInTurn;
    backlog.end = first + Math.floor((already + waiting - 1) / READ_BATCH) * READ_TURN_MS;
    this.lastDeliveryDue = Math.max(this.lastDeliveryDue, backlog.end);
  }

  #deliver(time: number, to: string, from: string, message: Message, late: boolean, source: Instance, address: string): void {
    if (time > this.lastDeliveryDue) this.lastDeliveryDue = time;
    this.push({ time, seq: 0, kind: 'deliver', to, from, message, late, source, address });
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
