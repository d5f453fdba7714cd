/**
 * The one driver of the election core, for the component and for the simulator alike.
 *
 * Every input (a datagram, a timer, a call from the application) becomes a step: the core
 * is called, and its Output is carried out in order: datagrams encoded and sent, log lines
 * written, the wake-up timer set, events emitted. Steps run from one FIFO drained by one
 * loop, and the loop is never re-entered: a listener that calls back into the component
 * (sets `eligible`, calls stepDown(), sends a message) queues a step that runs after every
 * event of the current one has been delivered. So the application sees events in the order
 * they happened, and the last one always matches the state.
 *
 * I/O is injected (`DriverHost`): the component passes a UDP transport, a real timer and
 * an EventEmitter; the simulator passes its network, its clock and a recorder.
 */
import type { Address, Message } from '../protocol/messages';
import type { CoreEvent, Instant, LogLine, Outbound, Output, ServerRecord } from '../elector/types';
import type { StoreOp } from '../protocol/store';
import type { Elector } from '../elector/elector';
import { dataBytes, encode } from '../wire/codec';
import type { Keyring } from '../wire/auth';
import { describeThrown } from '../util/describe';
import { LogBudget, type LogBudgetOptions } from '../util/log-budget';
import type { Emit } from './events';
import { ServerView } from './view';

export interface DriverHost {
  /** Both clocks, read when a step runs. */
  now(): Instant;
  /**
   * Put one datagram on the network: to every server (`to` absent) or to one address.
   * `done` runs once it is sent. `loopback`: a copy must also come back to our own socket.
   */
  send(datagram: Buffer, message: Message, to: Address | undefined, done: () => void, loopback: boolean): void;
  /** Call `driver.tick()` at monotonic `wakeAt` (Infinity: no wake-up needed). Replaces any earlier request. */
  schedule(wakeAt: number): void;
  log(level: number, message: string, data?: unknown): void;
  /** Would a line of this level be written? (Lines that would not are not counted against the budget.) */
  logs?(level: number): boolean;
  emit: Emit;
  /**
   * Core events that need the host (application messages, handoff outcomes, duplicates,
   * exits). Called in order with the emitted events.
   */
  handle?(event: CoreEvent): void;
  /** Every core event, before it is carried out (the simulator's invariant checker). */
  observe?(event: CoreEvent): void;
  /** Coordinator mode: a store op of the lease election, to carry out (its result comes back as a step). */
  store?(op: StoreOp): void;
}

export interface WireSettings {
  keyring: Keyring | null;
  /** Largest datagram; a heartbeat whose data makes it larger is sent without data. */
  maxPacketBytes: number;
  /** Largest user data in JSON bytes; 0: only the packet limit. */
  maxDataBytes: number;
}

export interface DriverStats {
  packetsIn: number;
  packetsOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Times this server became master. */
  elections: number;
  /** Times this server saw the master change (lost and replaced, or handed over). */
  failovers: number;
  /** Milliseconds from the lost master's last heartbeat heard here to knowing the next one; 0 before any failover. */
  lastFailoverMs: number;
  /** Wall-clock epoch ms of the last failover seen here; 0 before any. */
  lastFailoverAt: number;
  /** Master conflicts seen (two claimants). */
  conflicts: number;
  /** Heartbeats sent without their data because it was too large or not JSON-encodable. */
  oversizedData: number;
  /** Log lines caused by network input that were suppressed by the log budget. */
  logsSuppressed: number;
}

export interface Failover {
  /** Epoch ms when the new master became known here. */
  at: number;
  from: string;
  to: string;
  /** Milliseconds from the lost master's last heartbeat (or notice) heard here to `at`. */
  ms: number;
}

type StepFn<C> = (core: C, now: Instant) => Output | null;

interface Pending<C> {
  /** The step; null for a received message (the common case, kept free of closures). */
  run: StepFn<C> | null;
  message: Message | null;
  from: Address | null;
  /** Runs once every datagram of the step has been sent. */
  sent: (() => void) | undefined;
  /** Runs with the Output once the step is carried out (e.g. to read `dropped`). */
  after: ((out: Output) => void) | undefined;
  /** Caused by network input: its log lines count against the budget. */
  remote: boolean;
}

/** Every counter at zero: a new driver's, and what the component shows before there is one. */
export function emptyDriverStats(): DriverStats {
  return {
    packetsIn: 0,
    packetsOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    elections: 0,
    failovers: 0,
    lastFailoverMs: 0,
    lastFailoverAt: 0,
    conflicts: 0,
    oversizedData: 0,
    logsSuppressed: 0,
  };
}

export class Driver<C extends Elector = Elector> {
  /** The core it drives (the simulator's tests swap in a broken one to prove the checker). */
  core: C;
  readonly view: ServerView;
  readonly stats: DriverStats = emptyDriverStats();
  /** Live eligible servers, as of the last change. */
  members: string[] = [];
  /** Encoding settings (a config reload replaces them); null: the simulator without the codec. */
  wire: WireSettings | null;
  readonly #host: DriverHost;
  readonly #budget: LogBudget;
  #queue: Pending<C>[] = [];
  #steps = 0;
  #draining = false;
  /** The master lost while none is known yet, and when it was last heard (monotonic ms). */
  #lost: { hostname: string; at: number } | null = null;
  /** The last failover seen here, or null. */
  lastFailover: Failover | null = null;
  /** The earliest wake-up asked of the host since its timer last fired (the host keeps the earliest). */
  #dueAt = Infinity;

  constructor(core: C, host: DriverHost, wire: WireSettings | null, budget: LogBudgetOptions = {}) {
    this.core = core;
    this.#host = host;
    this.wire = wire;
    this.#budget = new LogBudget(budget);
    this.view = new ServerView(
      {
        record: (hostname) => this.core.record(hostname),
        takeChanged: () => this.core.takeChanged(),
        table: () => this.core.table,
      },
      (hostname, locked) => this.run((c, now) => c.setLocked(hostname, locked, now)),
    );
  }

  /** The `servers` table applications read. */
  get servers(): Record<string, ServerRecord> {
    return this.view.table;
  }

  /** Queue a step; it runs now unless a step is being carried out (then right after it). */
  run(run: StepFn<C>, options: { sent?: () => void; after?: (out: Output) => void; remote?: boolean } = {}): void {
    this.#enqueue({ run, message: null, from: null, sent: options.sent, after: options.after, remote: options.remote ?? false });
  }

  #enqueue(pending: Pending<C>): void {
    this.#queue.push(pending);
    if (this.#draining) return;
    this.#draining = true;
    try {
      for (let next = this.#queue.shift(); next; next = this.#queue.shift()) this.#step(next);
    } finally {
      this.#draining = false;
    }
  }

  /** A decoded, validated message arrived. `after` sees the Output (its `dropped` reason). */
  receive(message: Message, from: Address, after?: (out: Output) => void): void {
    this.#enqueue({ run: null, message, from, sent: undefined, after, remote: true });
  }

  /** Our timer is past due: it fires soon, but a timer of the app's that came due first runs before it. */
  overdue(): boolean {
    return this.#dueAt < this.#host.now().mono;
  }

  /**
   * The wake-up time came. How late the host's timer fired, against the earliest wake-up
   * asked for since the last one, goes to the core: its grace for silent peers follows it.
   */
  tick(): void {
    const due = this.#dueAt;
    this.#dueAt = Infinity;
    this.run((core, now) => core.tick(now, due < now.mono ? now.mono - due : 0));
  }

  /** Log a line caused by network input (a dropped datagram), within the same budget as the core's. */
  logRemote(level: number, kind: string, message: string): void {
    this.#writeLog({ level, message, kind }, true);
  }

  #step(pending: Pending<C>): void {
    // Now and then (the logger's level can change on a config reload), tell the core how much
    // detail anyone reads, so that per-packet lines nobody reads are not built.
    if (this.#host.logs && this.#steps++ % 256 === 0) this.core.logLevel = this.#host.logs(10) ? 10 : this.#host.logs(9) ? 9 : 8;
    const now = this.#host.now();
    const out = pending.run ? pending.run(this.core, now) : this.core.receive(pending.message as Message, pending.from as Address, now);
    if (!out) {
      pending.sent?.();
      return;
    }
    this.#carryOut(out, pending, now.mono);
    pending.after?.(out);
  }

  #carryOut(out: Output, pending: Pending<C>, now: number): void {
    // Indexed loops and no closure unless someone waits for the sends: an idle server runs
    // this for every datagram, mostly before the JIT has optimized it, where each for…of
    // costs an iterator and each closure an allocation (docs/PERFORMANCE.md, idle cost).
    const host = this.#host;
    const send = out.send;
    const sent = pending.sent;
    if (send.length > 0) {
      let unsent = send.length;
      const oneSent = sent
        ? (): void => {
            if (--unsent === 0) sent();
          }
        : NOTHING;
      for (let i = 0; i < send.length; i++) {
        const outbound = send[i] as Outbound;
        const datagram = this.#encode(outbound.message);
        this.stats.packetsOut++;
        this.stats.bytesOut += datagram.length;
        host.send(datagram, outbound.message, outbound.to, oneSent, outbound.loopback === true);
      }
    } else sent?.();
    const store = out.store;
    if (store) for (let i = 0; i < store.length; i++) host.store?.(store[i] as StoreOp);
    const logs = out.logs;
    for (let i = 0; i < logs.length; i++) this.#writeLog(logs[i] as LogLine, pending.remote);
    // Not before now: a deadline already past fires at once, and is no lateness of the timer.
    if (out.wakeAt < this.#dueAt) this.#dueAt = Math.max(out.wakeAt, now);
    host.schedule(out.wakeAt);
    // Most steps have no event (a heartbeat that changes nothing): no call to coalesce them.
    if (out.events.length === 0) return;
    const events = coalesceMasterChanges(out.events);
    for (let i = 0; i < events.length; i++) this.#deliver(events[i] as CoreEvent);
  }

  #encode(message: Message): Buffer {
    const wire = this.wire;
    if (!wire) return EMPTY;
    let datagram: Buffer;
    try {
      datagram = encode(message, wire.keyring);
    } catch (err) {
      // Only a heartbeat carries something the application can break after the fact: it may
      // put a BigInt or a cycle into `data` long after setting it. Send the heartbeat without.
      if (message.action !== 'heartbeat') throw err;
      this.stats.oversizedData++;
      this.#writeLog(
        {
          level: 1,
          message: `Heartbeat data cannot be encoded as JSON (${describeThrown(err)}); sending it without data`,
          kind: 'unencodable-data',
        },
        true,
      );
      return encode({ ...message, data: {} }, wire.keyring);
    }
    if (message.action !== 'heartbeat') return datagram;
    // Peers with the same limits would drop the whole heartbeat; send it without data instead.
    const limit = wire.maxPacketBytes;
    const dataLimit = wire.maxDataBytes || Infinity;
    // data is smaller than the datagram it rides in: measure it only when that could be too big.
    const dataSize = datagram.length > dataLimit ? dataBytes(message.data) : 0;
    const over =
      datagram.length > limit
        ? `is ${datagram.length} bytes, over max_packet_bytes (${limit})`
        : dataSize > dataLimit
          ? `has ${dataSize} bytes of data, over max_data_bytes (${dataLimit})`
          : '';
    if (!over) return datagram;
    this.stats.oversizedData++;
    this.#writeLog({ level: 1, message: `Heartbeat with user data ${over}; sending it without data`, kind: 'oversized-data' }, true);
    return encode({ ...message, data: {} }, wire.keyring);
  }

  #writeLog(line: LogLine, remote: boolean): void {
    const host = this.#host;
    if (host.logs && !host.logs(line.level)) return;
    let message = line.message;
    if (remote || line.remote === true || line.kind !== undefined) {
      const suppressed = this.#budget.admit(line.level, line.kind, host.now().mono);
      this.stats.logsSuppressed = this.#budget.suppressed;
      if (suppressed === null) return;
      if (suppressed > 0) message += ` (${suppressed} similar lines suppressed)`;
    }
    host.log(line.level, message, line.data);
  }

  #deliver(event: CoreEvent): void {
    const host = this.#host;
    host.observe?.(event);
    switch (event.type) {
      case 'master':
        this.stats.elections++;
        host.emit('master', event.term, event.checkpoint);
        break;
      case 'slave':
        host.emit('slave');
        break;
      case 'addserver':
        host.emit('addserver', this.view.detached(event.server));
        break;
      case 'deleteserver':
        host.emit('deleteserver', this.view.detached(event.server));
        break;
      case 'masterchange':
        this.#countFailover(event);
        host.emit('masterchange', event.hostname, event.previous);
        break;
      case 'members':
        this.members = event.members;
        host.emit('assignment', [...event.members]);
        break;
      case 'conflict':
        this.stats.conflicts++;
        break;
      default:
        host.handle?.(event);
    }
  }

  /**
   * A failover as an operator means it: from the last heartbeat (or the shutdown notice)
   * heard here from the master that was lost, to the moment the next master is known here.
   * That includes the silence it takes to notice a crash, which is what the clients of a
   * crashed master live through; a handoff takes about nothing.
   */
  #countFailover(event: Extract<CoreEvent, { type: 'masterchange' }>): void {
    const { hostname, previous, lostAt } = event;
    const now = this.#host.now();
    if (!hostname) {
      if (previous) this.#lost = { hostname: previous, at: lostAt ?? now.mono };
      return;
    }
    const lost = this.#lost ?? (previous && previous !== hostname ? { hostname: previous, at: lostAt ?? now.mono } : null);
    this.#lost = null;
    if (!lost || lost.hostname === hostname) return;
    const ms = Math.max(0, Math.round(now.mono - Math.min(lost.at, lostAt ?? lost.at)));
    this.stats.failovers++;
    this.stats.lastFailoverMs = ms;
    this.stats.lastFailoverAt = now.wall;
    this.lastFailover = { at: now.wall, from: lost.hostname, to: hostname, ms };
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * One `masterchange` per step: the master as it was before the step, and as it is after. A
 * step can pass through "no master" (the dead master removed, then this server claims; a
 * relinquish, then the rival followed), but no listener could ever read that state: every
 * event is delivered after the step, when `masterHostname` already names the new master.
 * So A → '' then '' → B is one A → B (keeping when the lost master was last heard), and
 * A → '' → A is none. The rest keep their order; the event stands where the first one stood:
 * after the `deleteserver` of the lost master, before the `master` or `slave` it brought.
 */
export function coalesceMasterChanges(events: readonly CoreEvent[]): readonly CoreEvent[] {
  let count = 0;
  for (const event of events) if (event.type === 'masterchange') count++;
  if (count < 2) return events;
  type Change = Extract<CoreEvent, { type: 'masterchange' }>;
  const changes = events.filter((event): event is Change => event.type === 'masterchange');
  const previous = (changes[0] as Change).previous;
  const last = changes[changes.length - 1] as Change;
  const lostAt = changes.reduce<number | undefined>((at, change) => at ?? change.lostAt, undefined);
  const merged: Change =
    lostAt === undefined
      ? { type: 'masterchange', hostname: last.hostname, previous }
      : { type: 'masterchange', hostname: last.hostname, previous, lostAt };
  const out: CoreEvent[] = [];
  for (const event of events) {
    if (event.type !== 'masterchange') out.push(event);
    else if (event === changes[0] && merged.hostname !== merged.previous) out.push(merged);
  }
  return out;
}

const NOTHING = (): void => undefined;
