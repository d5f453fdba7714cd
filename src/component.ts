/// <reference path="./types/pixl.d.ts" preserve="true" />
/**
 * The pixl-server component shell: config, clock, timer and socket around the election
 * core. It owns no election logic: every input goes through the driver (src/driver/),
 * which calls the core and carries out what it returns.
 */
import { randomBytes } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import Component = require('pixl-server/component');
import * as election from './core/election';
import * as config from './config';
import * as codec from './wire/codec';
import * as auth from './wire/auth';
import * as errors from './errors';
import type { Keyring } from './wire/auth';
import type { Address, JsonObject, JsonValue } from './protocol/messages';
import type { CoreDropReason, CoreEvent, Instant, Output, ServerRecord } from './core/types';
import type { MultiServerSection, Settings } from './config';
import type { DropReason } from './wire/codec';
import { MESSAGE_TYPE_PATTERN } from './protocol/limits';
import { Driver, type DriverStats, type Failover } from './driver/driver';
import type { Elector } from './driver/elector';
import { LeaseElection } from './coordinator/lease-election';
import { EtcdStore, loadEtcd3 } from './coordinator/etcd';
import { defaultTtlSeconds } from './coordinator/timing';
import { UdpUnicastTransport } from './transport/unicast';
import { ipFamily } from './protocol/address';
import type { CheckpointResult, EventName, HandoffResult, MultiServerEvents, Reply } from './driver/events';
import { createTransport, RESTART_KEYS, UdpBroadcastTransport, type Transport } from './shell/transports';
import { ownerOf } from './app/rendezvous';
import { MasterWork } from './app/master-work';
import type { ExclusiveOptions, ExclusiveResult } from './app/exclusive';
import type { HealthCheckFn, HealthOptions, HealthStatus } from './app/health';
import { OperatorHttp, wantsHttp } from './shell/http'; // ops: HTTP routes
import { createMetricsRegistry, type MetricsRegistry } from './shell/metrics'; // ops: metrics
import { describeThrown } from './util/describe';
import { WakeTimer } from './util/wake-timer';

const { computeBroadcastIP, DEFAULT_CONFIG, misplacedKeys, unknownKeys, validateConfig, validateHostname, ConfigError } = config;
const { decodeWire, encode } = codec;
const { DuplicateHostnameError, CheckpointError } = errors;
const { ElectionCore } = election;

/** Requests awaiting replies; a bound so a caller in a loop cannot grow memory without end. */
const MAX_PENDING_REQUESTS = 10_000;
/** setTimeout's limit: a longer delay fires at once. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;
/** Shorter keys are accepted (a passphrase is stretched with scrypt) but get a warning. */
const RECOMMENDED_KEY_CHARS = 16;

interface MultiServerStats extends DriverStats {
  /** Datagrams dropped, by reason: by the codec (malformed, unauthenticated) or by the core (stale, unverified, …). */
  dropped: Partial<Record<DropReason | CoreDropReason, number>>;
  /** Authenticated packets verified by a key other than the first (signing) one: 0 once a rotation is complete. */
  oldKeyPackets: number;
  sendErrors: number;
  /** Handoffs completed (stepDown or promote), as seen by the master that handed over. */
  handoffs: number;
  /** Times this server asked the master for the role by preemption (`preempt`). */
  preemptions: number;
  /** The current term (fencing token). */
  term: number;
}

class MultiServer extends Component {
  override __name = 'MultiServer';
  override defaultConfig: Record<string, unknown> = { ...DEFAULT_CONFIG };

  /** Our hostname (the parent server's). */
  hostname = '';
  /**
   * This process's instance id: random per start, sent in every packet. A duplicate-hostname
   * line names each process by it (and by its pid): logged at startup to tell which is which.
   */
  readonly instanceId = randomBytes(8).toString('hex');
  /** The broadcast address in use. */
  broadcastIP = '';
  readonly #counters = { dropped: {} as MultiServerStats['dropped'], oldKeyPackets: 0, sendErrors: 0, handoffs: 0, preemptions: 0 };

  /** Counters for monitoring: a live object (each property reads the current value). */
  readonly stats: MultiServerStats = liveStats(
    () => this.#driver?.stats ?? EMPTY_DRIVER_STATS,
    this.#counters,
    () => this.#driver?.core.term ?? 0,
  );

  #settings: Settings | null = null;
  #keyring: Keyring | null = null;
  #driver: Driver<Elector> | null = null;
  /** Coordinator mode: the lease election (also `#driver.core`) and its store. */
  #lease: LeaseElection | null = null;
  #store: EtcdStore | null = null;
  /** Store ops whose result someone awaits (the revoke at shutdown). */
  #awaitedOps = new Map<number, () => void>();
  #transport: Transport | null = null;
  /** The wake-up time the last step asked for: a datagram read later than it may follow a stall. */
  #wakeAsked = -Infinity;
  /** The last heartbeat we sent to everyone (broadcast and multicast loop it back to us). */
  #ownHeartbeat: Buffer | null = null;
  /** The election's one timer: `tick()` at the wake-up time the last step asked for. */
  #wake = new WakeTimer(() => {
    if (!this.#shut) this.#driver?.tick();
  });
  #eligible = true;
  /** exclusive() calls, the drain before a handover, the health check (src/app/master-work.ts). */
  readonly #work = new MasterWork({
    isMaster: () => this.master,
    term: () => this.term,
    drainTimeoutMs: () => (this.#settings?.drain_timeout ?? 10) * 1000,
    appEligible: () => this.#eligible,
    applyEligible: (eligible) => this.#run((core, now) => core.setEligible(eligible, now)),
    log: (level, message) => this.logDebug(level, message),
  });
  #stepping: Promise<void> | null = null;
  #data: JsonObject = {};
  #emptyTable: Record<string, ServerRecord> = Object.create(null) as Record<string, ServerRecord>;
  #shut = false;
  #stepDownWaiters: Array<(err: Error | null) => void> = [];
  #promoteWaiters: Array<(err: Error | null) => void> = [];
  /** setCheckpoint() calls awaiting etcd's answer (coordinator mode), by ticket, oldest first. */
  #checkpointWaiters: Array<{ ticket: number; resolve: (result: CheckpointResult) => void }> = [];
  #checkpointTickets = 0;
  #http: OperatorHttp | null = null; // ops
  #metricsRegistry: MetricsRegistry | null = null; // ops
  /** A failed startup is watched for once (init may run again). */
  #startupWatched = false;
  #requests = new Map<string, { resolve: (payload: JsonValue) => void; reject: (err: Error) => void; timer: NodeJS.Timeout; to: string }>();
  #requestCounter = 0;

  // ---- the original's public properties ---------------------------------------------

  /**
   * hostname → server record (a prototype-free object; `for…in` and Object.keys work). A
   * copy of the election's table, refreshed when read: writing to it changes nothing but
   * `servers[host].locked`, which keeps that server from being removed (see lock()).
   */
  get servers(): Record<string, ServerRecord> {
    return this.#driver?.servers ?? this.#emptyTable;
  }
  /** Hostname of the current master; '' while unknown. */
  get masterHostname(): string {
    return this.#driver?.core.masterHostname ?? '';
  }
  get master(): boolean {
    const lease = this.#lease;
    if (lease && this.#driver) {
      // Coordinator mode: past the lease deadline we are master no more, even if the timer
      // that steps us down has not fired yet (a frozen process just resumed): step down now,
      // so `slave` is emitted before the app acts as master.
      const now = { mono: performance.now(), wall: Date.now() };
      if (lease.master && !lease.isMasterAt(now) && !this.#shut) this.#driver.tick();
      return lease.isMasterAt(now);
    }
    return this.#driver?.core.master ?? false;
  }
  get slave(): boolean {
    return this.#driver?.core.slave ?? false;
  }
  /** Whether this server may become master; settable at run time, broadcast at once. */
  get eligible(): boolean {
    return this.#eligible;
  }
  set eligible(value: boolean) {
    this.#eligible = !!value;
    // What the election gets also depends on the health check; a master drains first.
    this.#work.eligibilityChanged(this.#eligible ? 'eligible set to true' : 'eligible set to false');
  }
  /** User object broadcast with every heartbeat; peers see it as servers[host].data. */
  get data(): JsonObject {
    return this.#data;
  }
  set data(value: JsonObject) {
    const data = value === undefined || value === null ? {} : value;
    if (typeof data !== 'object' || Array.isArray(data)) throw new TypeError(`MultiServer data must be a plain object, got ${describeValue(data)}`);
    jsonProblem(data, 'MultiServer data');
    this.#data = data;
    this.#driver?.core.setData(data);
  }
  /** The fencing token: raised by every change of master. Stamp writes with it; reject older ones. */
  get term(): number {
    return this.#driver?.core.term ?? 0;
  }

  /** The last failover seen here: from whom to whom, when, and how long it took (from the lost master's last heartbeat). */
  get lastFailover(): Failover | null {
    return this.#driver?.lastFailover ?? null;
  }

  /**
   * Keep `hostname`'s record from ever being removed (the original's `locked: true`), or
   * allow it again. Setting `servers[hostname].locked` does the same.
   */
  lock(hostname: string, locked = true): void {
    this.#run((core, now) => core.setLocked(String(hostname), locked === true, now));
  }

  /**
   * Hand the master role to the next server in rank (one round trip; the term rises).
   * Resolves once another server is master; rejects if this server is not master, nobody
   * is eligible, or nobody took over within a tock (then the election runs as usual).
   */
  stepDown(): Promise<void> {
    if (this.#stepping) return this.#stepping;
    // Nobody to hand to, or not master: fail now, without draining the work for nothing.
    if (!this.#driver || this.#shut || !this.master || !this.members.some((host) => host !== this.hostname)) return this.#handoff(this.#stepDownWaiters, (core, now) => core.stepDown(now));
    const stepping = Promise.resolve(this.#work.handOver('stepping down', () => this.#handoff(this.#stepDownWaiters, (core, now) => core.stepDown(now))))
      .catch((err: unknown) => {
        this.#work.handoverFailed();
        throw err;
      })
      .finally(() => {
        if (this.#stepping === stepping) this.#stepping = null;
      });
    this.#stepping = stepping;
    return stepping;
  }

  /**
   * Make this server master: the current master hands over in one round trip (or, with no
   * master, this server claims at once). Resolves once this server is master; rejects if it
   * is not eligible, lacks a quorum, or the master did not hand over within a tock.
   */
  promote(): Promise<void> {
    return this.#handoff(this.#promoteWaiters, (core, now) => core.promote(now));
  }

  #handoff(waiters: Array<(err: Error | null) => void>, run: (core: Elector, now: Instant) => Output): Promise<void> {
    const driver = this.#driver;
    if (!driver || this.#shut) return Promise.reject(new Error('MultiServer is not running'));
    return new Promise((resolve, reject) => {
      waiters.push((err) => (err ? reject(err) : resolve()));
      driver.run(run);
    });
  }

  // ---- messages between servers ------------------------------------------------------

  /**
   * Send `payload` (any JSON value) to a hostname, to 'master', or to '*' (every other
   * server). At most once: one UDP datagram, no retry, no acknowledgement. Throws when the
   * target is unknown, there is no master, the type is malformed, the payload is not JSON,
   * or the message is larger than `max_packet_bytes`.
   */
  send(target: string, type: string, payload: JsonValue): void {
    this.#sendMessage(target, type, payload, {});
  }

  /**
   * Send a message and await the reply its receiver gives through the `reply` argument of
   * its `message` listener. Rejects after `timeoutMs` (default `request_timeout_ms`): the
   * request or the reply may have been lost, or nobody answered.
   */
  request(target: string, type: string, payload: JsonValue, options: { timeoutMs?: number } = {}): Promise<JsonValue> {
    const timeoutMs = options.timeoutMs ?? this.#settings?.request_timeout_ms ?? 5000;
    if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_TIMEOUT_MS) {
      return Promise.reject(new RangeError(`request timeoutMs must be a number of milliseconds from 1 to ${MAX_TIMEOUT_MS}, got ${describeValue(timeoutMs)}`));
    }
    if (this.#requests.size >= MAX_PENDING_REQUESTS) return Promise.reject(new Error(`too many requests in flight (${MAX_PENDING_REQUESTS})`));
    const rid = `${(++this.#requestCounter).toString(36)}${randomBytes(4).toString('hex')}`;
    return new Promise((resolve, reject) => {
      let to: string;
      try {
        to = this.#sendMessage(target, type, payload, { rid });
      } catch (err) {
        reject(err as Error);
        return;
      }
      const timer = setTimeout(() => {
        this.#requests.delete(rid);
        reject(new Error(`request "${type}" to ${to} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.#requests.set(rid, { resolve, reject, timer, to });
    });
  }

  #sendMessage(target: string, type: string, payload: JsonValue, ids: { rid?: string; re?: string }): string {
    const driver = this.#driver;
    if (!driver || this.#shut) throw new Error('MultiServer is not running');
    if (typeof type !== 'string' || !MESSAGE_TYPE_PATTERN.test(type)) {
      throw new TypeError(`message type must be 1 to 64 letters, digits, ".", "_", ":" or "-", got ${describeValue(type)}`);
    }
    const text = jsonProblem(payload, 'message payload');
    const core = driver.core;
    let to = target;
    if (target === 'master') {
      to = core.masterHostname;
      if (!to) throw new Error('there is no master to send to');
    } else if (typeof target !== 'string' || (target !== '*' && !core.record(target))) {
      throw new Error(`unknown server ${describeValue(target)}`);
    }
    const size = Buffer.byteLength(text, 'utf8');
    const limit = this.#settings?.max_packet_bytes ?? Infinity;
    if (size + 256 > limit) throw new RangeError(`message payload is ${size} bytes; with its envelope it must fit max_packet_bytes (${limit})`);
    // What the receiver gets: the payload as JSON sees it (a Date becomes a string, and so on).
    const copy = JSON.parse(text) as JsonValue;
    if (to === this.hostname) {
      // To ourselves (e.g. 'master' on the master): no network, same event, next turn.
      setImmediate(() => this.#deliver({ from: this.hostname, messageType: type, payload: copy, ...ids }));
      return to;
    }
    driver.run((c, now) => c.sendMessage(to, type, copy, now, ids));
    return to;
  }

  #deliver(message: { from: string; messageType: string; payload: JsonValue; rid?: string; re?: string }): void {
    if (message.re !== undefined) {
      const pending = this.#requests.get(message.re);
      if (!pending || (pending.to !== message.from && pending.to !== '*')) return; // late, unknown or forged reply
      this.#requests.delete(message.re);
      clearTimeout(pending.timer);
      pending.resolve(message.payload);
      return;
    }
    let reply: Reply | undefined;
    if (message.rid !== undefined) {
      const rid = message.rid;
      let replied = false;
      reply = (payload: JsonValue) => {
        if (replied) return;
        replied = true;
        this.#sendMessage(message.from, message.messageType, payload, { re: rid });
      };
    }
    this.#emitBoth('message', message.messageType, message.payload, message.from, reply);
  }

  // ---- work split by key --------------------------------------------------------------

  /** Live eligible servers over which keys are split, as of the last change ([] when not running). */
  get members(): string[] {
    return this.#shut || !this.#driver ? [] : [...this.#driver.members];
  }

  /** The server that owns `key` (rendezvous hashing over the live eligible servers), or null. */
  masterFor(key: string): string | null {
    return ownerOf(String(key), this.members);
  }

  /** Whether this server owns `key`. */
  isMasterFor(key: string): boolean {
    return this.masterFor(key) === this.hostname;
  }

  /**
   * Run master work that must never overlap with another master's: when this server is master
   * and not handing over, `fn(signal, term)` runs now and the promise resolves with
   * `{ ran: true, value, term }` once it settles (rejects if it throws); otherwise it resolves
   * with `{ ran: false, reason, detail }` without running it, so every server may call it on
   * every tick. A handover made on purpose (stepDown, a promote request, a graceful shutdown,
   * a failing health check) waits for the calls running, up to `drain_timeout` seconds, then
   * aborts what is left; the role lost otherwise (conflict, stall, quorum, the etcd deadline)
   * aborts `signal` at once. `{ drain: 'abort' }` aborts the signal as soon as a handover
   * begins, for work that runs until told to stop.
   */
  exclusive<T>(fn: (signal: AbortSignal, term: number) => T | PromiseLike<T>, options?: ExclusiveOptions): Promise<ExclusiveResult<T>> {
    if (!this.#driver || this.#shut) return Promise.resolve({ ran: false, reason: 'not-running', detail: 'MultiServer is not running' });
    return this.#work.exclusive(fn, options);
  }

  /** exclusive() calls running, and the handover that waits for them (for the status document). */
  get work(): MasterWork['state'] {
    return this.#work.state;
  }

  /**
   * Run `fn` every `interval` seconds (default 2): `fall` failures in a row (default 3; a
   * throw, a rejection, `false`, or no answer within `timeout`) make this server ineligible
   * (a master drains its exclusive() work, then steps down); `rise` passes in a row (default
   * 2) eligible again. The first result counts at once. `null` removes the check.
   */
  setHealthCheck(fn: HealthCheckFn | null, options: HealthOptions = {}): void {
    this.#work.setHealthCheck(fn, options);
  }

  /** The health check's state, or null without one. */
  get health(): HealthStatus | null {
    return this.#work.health;
  }

  /** Run `fn` now if this server is master; returns whether it ran. */
  doIfMaster(fn: () => void): boolean {
    if (!this.master) return false;
    fn();
    return true;
  }

  /** Run `fn` now if this server owns `key`; returns whether it ran. */
  doIfMasterFor(key: string, fn: () => void): boolean {
    if (!this.isMasterFor(key)) return false;
    fn();
    return true;
  }

  // ---- state handoff ------------------------------------------------------------------

  /** The newest checkpoint known here (the master's), or null. */
  get checkpoint(): JsonValue | null {
    return this.#driver?.core.checkpoint ?? null;
  }

  /**
   * On the master: publish a small state object (JSON, at most `max_checkpoint_bytes`).
   * Every server keeps the latest; the next master gets it with its `master` event, after a
   * crash or a handoff, so work resumes where it stopped. Throws when not master.
   *
   * The promise never rejects: it resolves with the outcome. With UDP heartbeats, `ok` once
   * sent. With etcd, `ok` once etcd has stored it (retried until then, while this server
   * holds the role); `ok: false` when it could not be stored (the role was lost first), which
   * is also logged at level 1 and emitted as an `error` event (a CheckpointError) when the
   * component has an `error` listener.
   */
  setCheckpoint(value: JsonValue): Promise<CheckpointResult> {
    const driver = this.#driver;
    if (!driver || !driver.core.master || this.#shut) throw new Error('only the master can set a checkpoint');
    const text = jsonProblem(value, 'a checkpoint');
    const limit = this.#settings?.max_checkpoint_bytes ?? 4096;
    const size = Buffer.byteLength(text, 'utf8');
    if (size > limit) throw new RangeError(`checkpoint is ${size} bytes, over max_checkpoint_bytes (${limit})`);
    const copy = JSON.parse(text) as JsonValue;
    if (!this.#lease) {
      driver.run((core, now) => core.setCheckpoint(copy, now));
      return Promise.resolve({ ok: true, reason: 'sent' });
    }
    const ticket = ++this.#checkpointTickets;
    return new Promise((resolve) => {
      this.#checkpointWaiters.push({ ticket, resolve });
      driver.run((core, now) => {
        const out = core.setCheckpoint(copy, now, ticket);
        // Past the lease's deadline a moment ago: not master after all, nothing to wait for.
        if (!out) this.#settleCheckpoints({ type: 'checkpoint', ok: false, ticket, reason: 'this server is no longer master' });
        return out;
      });
    });
  }

  /** The election core (for diagnostics; drive it only through the component). */
  get core(): election.ElectionCore | null {
    return this.#lease ? null : ((this.#driver?.core as election.ElectionCore | undefined) ?? null);
  }
  /** Coordinator mode: the lease election (for diagnostics; drive it only through the component). */
  get coordinator(): LeaseElection | null {
    return this.#lease;
  }
  /** The transport (for diagnostics: `transport.peers?.()` lists unicast destinations). */
  get transport(): Transport | null {
    return this.#transport;
  }
  get settings(): Readonly<Settings> | null {
    return this.#settings;
  }

  /**
   * This server's Prometheus metrics: a prom-client Registry of its own, to merge into the
   * app's (`Registry.merge`). Needs the prom-client package (an optional dependency).
   */
  metricsRegistry(): MetricsRegistry {
    return (this.#metricsRegistry ??= createMetricsRegistry(this)); // ops
  }

  // ---- pixl-server hooks ------------------------------------------------------------

  /**
   * Validate the section when pixl-server initialises components, before any daemon fork.
   * (Parameters typed as `this[...]`, not `Component.Server`: an app's own declaration of
   * pixl-server/component, which our shipped .d.ts then extends, may lack that namespace.)
   */
  override init(server: this['server'], config?: this['config']): void {
    super.init(server, config);
    this.#settings = this.#validate();
    this.#watchStartup();
  }

  /**
   * pixl-server ends a failed startup (any component's: a web port in use, our UDP port) by
   * logging why to its log file and calling process.exit(1). A user in the foreground whose
   * `echo` does not show pixl-server's own error rows sees nothing on the terminal at all.
   * From init (which runs whatever the order of components) to `ready`, the reason is noted
   * from the log rows; should the server shut down before it is ready, it goes to stderr, once.
   */
  #watchStartup(): void {
    const server = this.server;
    const logger = server.logger as unknown as Partial<EventEmitter> | undefined;
    if (this.#startupWatched || !logger || typeof logger.on !== 'function' || typeof logger.removeListener !== 'function') return;
    this.#startupWatched = true;
    let reason = '';
    let echoed = false;
    const onRow = (_line: unknown, _cols: unknown, args: { category?: unknown; code?: unknown; msg?: unknown; component?: unknown } | undefined): void => {
      if (reason || args?.category !== 'error' || args.code !== 'startup') return;
      reason = String(args.msg);
      echoed = echoes(server, args);
    };
    const done = (): void => {
      logger.removeListener?.('row', onRow);
      server.removeListener('ready', done);
      server.removeListener('shutdown', onShutdown);
    };
    const onShutdown = (): void => {
      done();
      if (server.started || !reason || echoed) return;
      const dir = server.config.get('log_dir');
      const file = server.config.get('log_filename');
      const log = path.join(typeof dir === 'string' && dir ? dir : '.', typeof file === 'string' && file ? file : 'event.log');
      try {
        process.stderr.write(`pixl-server-multi: the server could not start: ${reason}. pixl-server exits with code 1; its log: ${log}\n`);
      } catch {
        // No stderr to write to (a daemon without one): the log file has it.
      }
    };
    logger.on('row', onRow);
    server.once('ready', done);
    server.once('shutdown', onShutdown);
  }

  /**
   * Keys nobody reads, at level 1 (the default level: a misspelt `heartbeat_freq` changes
   * failover from seconds to a minute, and must not pass unseen). With `strict_config`
   * validation has already refused them. The top level of the whole config is looked at too.
   */
  #reportUnknownKeys(): void {
    const found = [...misplacedKeys(this.server.config.get()), ...unknownKeys(this.config.get())];
    for (const { message } of found) this.logDebug(1, message);
  }

  /** Called by the base class on init and on every config reload. */
  override initConfig(): void {
    super.initConfig();
    if (this.#driver) this.#reload();
  }

  /**
   * The section as configured. pixl-server turns a `MultiServer` key set to null (or any
   * non-object) into `{}`, that is all defaults: that must be an error, not a silent
   * 20-second heartbeat.
   */
  #validate(): Settings {
    const raw = this.server.config.get('MultiServer');
    if (raw !== undefined && (raw === null || typeof raw !== 'object' || Array.isArray(raw))) throw new ConfigError('MultiServer', 'an object', raw);
    return validateConfig(this.config.get());
  }

  override startup(callback: (err?: Error | null) => void): void {
    let settings: Settings;
    try {
      settings = this.#validate();
      this.hostname = validateHostname(this.server.hostname);
      // ops: throws at startup when metrics are configured and prom-client is missing.
      this.#http = wantsHttp(settings) ? new OperatorHttp(this, settings, { debug: (level, message) => this.logDebug(level, message), error: (code, message) => this.logError(code, message) }, () => this.metricsRegistry()) : null;
    } catch (err) {
      this.logError('config', (err as Error).message);
      callback(err as Error);
      return;
    }
    this.#settings = settings;
    // Here, not in init: that runs again in the daemon pixl-server forks, and would log twice.
    this.#reportUnknownKeys();
    this.logDebug(2, `This process: pid ${process.pid}, instance ${this.instanceId}, hostname ${this.hostname}`);
    this.#keyring = this.#buildKeyring(settings.secret_key);
    if (settings.coordinator) {
      this.#startCoordinated(settings, callback);
      return;
    }
    this.broadcastIP = settings.broadcast_ip || computeBroadcastIP(os.networkInterfaces());
    const transport = createTransport(settings, { broadcastIp: this.broadcastIP, log: (level, message) => this.logDebug(level, message) });
    this.logDebug(4, `Using ${transport.description ?? settings.transport}`);
    this.logDebug(4, `Starting UDP server on port: ${settings.comm_port}`);
    transport.onMessage = (datagram, from) => this.#onDatagram(datagram, from);
    transport.onError = (err) => this.#onSendError(err);
    transport.gossipEncoder = (addrs) => encode({ action: 'peers', hostname: this.hostname, addrs }, this.#keyring);
    transport.open().then(
      () => {
        if (this.#shut) {
          void transport.close();
          return;
        }
        this.#transport = transport;
        const core = new ElectionCore({
          hostname: this.hostname,
          ip: this.server.ip,
          instanceId: this.instanceId,
          pid: process.pid,
          eligible: this.#work.eligible,
          data: this.#data,
          tickMs: settings.heartbeat_freq * 1000,
          checkBeats: settings.check_beats,
          exitOnConflict: settings.exit_on_conflict,
          maxServers: settings.max_servers,
          priority: settings.priority,
          quorum: settings.quorum,
          clusterId: settings.cluster_id,
          verifyInstances: this.#keyring !== null,
          // A promote request waits for our exclusive() work to drain (src/app/master-work.ts).
          drainMs: settings.drain_timeout * 1000,
          ...(settings.preempt ? { preemptDelayMs: settings.preempt_delay * 1000 } : {}),
        });
        this.#driver = new Driver<Elector>(
          core,
          {
            now: () => ({ mono: performance.now(), wall: Date.now() }),
            send: (datagram, message, to, done, loopback) => {
              if (this.debugLevel(10)) this.logDebug(10, `Sending ${message.action}`, message);
              const target = to && transport.targets ? to : undefined;
              transport.send(datagram, target, done);
              if (loopback) transport.sendToSelf?.(datagram);
              if (message.action === 'heartbeat' && target === undefined) this.#ownHeartbeat = datagram;
            },
            schedule: (wakeAt) => this.#schedule(wakeAt),
            log: (level, message, data) => this.logDebug(level, message, data),
            logs: (level) => this.debugLevel(level),
            emit: (name, ...args) => this.#emitBoth(name, ...args),
            handle: (event) => this.#handle(event),
          },
          this.#wireSettings(settings),
        );
        this.#run((c, now) => c.start(now));
        // pixl-server-web resets its routes when it starts: add ours once every component has.
        if (this.#http) this.server.once('ready', () => this.#http?.attach(this.server.WebServer)); // ops
        callback();
      },
      (err: Error) => {
        this.logError('socket', `UDP socket could not be bound on port ${settings.comm_port}: ${err.message}`);
        callback(err);
      },
    );
  }

  /**
   * Coordinator mode (docs/ETCD.md): the lease election decides, etcd carries its store ops,
   * and application messages go by UDP, unicast to the addresses members registered.
   */
  #startCoordinated(settings: Settings, callback: (err?: Error | null) => void): void {
    const coordinator = settings.coordinator as NonNullable<Settings['coordinator']>;
    let module: ReturnType<typeof loadEtcd3>;
    try {
      module = loadEtcd3();
    } catch (err) {
      this.logError('config', (err as Error).message);
      callback(err as Error);
      return;
    }
    const family = ipFamily(settings.bind_ip) === 6 ? 6 : 4;
    const makeTransport = (port: number): UdpUnicastTransport => {
      const made = new UdpUnicastTransport({
        port,
        bindIp: settings.bind_ip,
        family,
        peers: [],
        tickMs: settings.heartbeat_freq * 1000,
        checkBeats: settings.check_beats,
        maxLearned: settings.max_servers,
        maxPacketBytes: settings.max_packet_bytes,
        log: (level, message) => this.logDebug(level, message),
      });
      made.onMessage = (datagram, from) => this.#onDatagram(datagram, from);
      made.onError = (err) => this.#onSendError(err);
      return made;
    };
    this.logDebug(4, `Using etcd at ${coordinator.hosts.join(', ')} (prefix ${coordinator.prefix}); messages by UDP on port ${settings.comm_port}`);
    let transport = makeTransport(settings.comm_port);
    // Peers learn each server's message address from its record in etcd: so several servers on
    // one host run with one config. Another holds comm_port here: take a port the system picks.
    const opened = transport.open().catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EADDRINUSE' || settings.comm_port === 0) throw err;
      this.logDebug(3, `UDP port ${settings.comm_port} is in use on ${settings.bind_ip} (another server on this host?); taking a free one: peers learn it from etcd`);
      transport = makeTransport(0);
      return transport.open();
    });
    opened.then(
      () => {
        if (this.#shut) {
          void transport.close();
          return;
        }
        this.logDebug(4, `Messages by UDP on port ${transport.boundPort}`);
        this.#transport = transport;
        const tockMs = settings.heartbeat_freq * settings.check_beats * 1000;
        // The address peers send messages to: the bound one, or the server's own IP when bound to all.
        const wildcard = settings.bind_ip === '0.0.0.0' || settings.bind_ip === '::';
        const lease = new LeaseElection({
          hostname: this.hostname,
          ip: wildcard ? this.server.ip : settings.bind_ip,
          port: transport.boundPort,
          instanceId: this.instanceId,
          prefix: coordinator.prefix,
          tickMs: settings.heartbeat_freq * 1000,
          checkBeats: settings.check_beats,
          ttlSeconds: coordinator.ttl || defaultTtlSeconds(tockMs, coordinator.election_timeout_ms),
          eligible: this.#work.eligible,
          data: this.#data,
          priority: settings.priority,
          maxServers: settings.max_servers,
          maxPacketBytes: settings.max_packet_bytes,
          maxDataBytes: settings.max_data_bytes,
          // Servers started together (a deploy, a reboot) may take a second to make their first
          // read on a busy machine: listen that long at least, so rank decides, not the fastest.
          listenMs: 1000,
          authenticated: this.#keyring !== null,
          drainMs: settings.drain_timeout * 1000,
          ...(settings.preempt ? { preemptDelayMs: settings.preempt_delay * 1000 } : {}),
        });
        this.#lease = lease;
        // Not budgeted as network input: the election's own lines about the store are rate-limited
        // where they are made (a failure once a minute, bad values once a minute), and a level-1
        // line must not be lost to a burst of debug ones.
        const step = (run: (now: Instant) => Output): void => {
          if (!this.#shut) this.#driver?.run((_core, now) => run(now));
        };
        // Results still count after shutdown began: the outcome of a checkpoint sent with the last resign.
        const result = (run: (now: Instant) => Output): void => {
          this.#driver?.run((_core, now) => run(now));
        };
        const store = new EtcdStore(
          coordinator,
          {
            result: (id, outcome) => {
              const waiter = this.#awaitedOps.get(id);
              this.#awaitedOps.delete(id);
              result((now) => lease.onResult(id, outcome, now));
              waiter?.();
            },
            watch: (id, batch) => step((now) => lease.onWatch(id, batch, now)),
            watchLost: (id, reason) => step((now) => lease.onWatchLost(id, reason, now)),
          },
          module,
        );
        this.#store = store;
        this.#driver = new Driver<Elector>(
          lease,
          {
            now: () => ({ mono: performance.now(), wall: Date.now() }),
            send: (datagram, message, to, done) => {
              this.logDebug(10, `Sending ${message.action}`, message);
              if (to) transport.send(datagram, to, done);
              else done();
            },
            schedule: (wakeAt) => this.#schedule(wakeAt),
            log: (level, message, data) => this.logDebug(level, message, data),
            logs: (level) => this.debugLevel(level),
            emit: (name, ...args) => this.#emitBoth(name, ...args),
            handle: (event) => this.#handle(event),
            store: (op) => store.execute(op),
          },
          this.#wireSettings(settings),
        );
        this.#run((c, now) => c.start(now));
        if (this.#http) this.server.once('ready', () => this.#http?.attach(this.server.WebServer)); // ops
        callback();
      },
      (err: Error) => {
        this.logError('socket', `UDP socket could not be bound on port ${settings.comm_port}: ${err.message}`);
        callback(err);
      },
    );
  }

  override shutdown(callback: () => void): void {
    // The master's exclusive() work ends (or drain_timeout passes) before anyone may take over.
    const draining = this.#work.leave();
    if (draining) void draining.then(() => this.#shutdown(callback));
    else this.#shutdown(callback);
  }

  #shutdown(callback: () => void): void {
    this.#shut = true;
    this.#clearTimer();
    const driver = this.#driver;
    const transport = this.#transport;
    if (!driver || !transport) {
      callback();
      return;
    }

    this.#http?.detach(); // ops
    this.#http = null; // ops
    this.logDebug(2, 'Shutting down UDP server');
    for (const [rid, pending] of this.#requests) {
      clearTimeout(pending.timer);
      pending.reject(new Error('MultiServer shut down'));
      this.#requests.delete(rid);
    }
    const closed = new Error('MultiServer shut down');
    for (const waiter of [...this.#stepDownWaiters.splice(0), ...this.#promoteWaiters.splice(0)]) waiter(closed);
    const store = this.#store;
    const lease = this.#lease;
    if (store && lease) {
      // First `slave` (the app stops its master work, as client-go's OnStoppedLeading), with a
      // checkpoint not yet stored sent along with the resign; then revoke our lease (our record
      // and any election key of ours go at once, so the next in rank takes over in one round
      // trip), wait for etcd's answers or the ops' timeouts, then close.
      let awaited: Array<Promise<void>> = [];
      const await_ = (out: Output): void => {
        const ids = (out.store ?? []).filter((op) => op.type === 'revoke' || op.type === 'fenced').map((op) => op.id);
        awaited = [...awaited, ...ids.map((id) => new Promise<void>((resolve) => this.#awaitedOps.set(id, resolve)))];
      };
      driver.run((_core, now) => lease.leave(now), { after: await_ });
      driver.run((core, now) => core.shutdown(now), { after: await_ });
      void Promise.all(awaited)
        .then(() => {
          // Whatever etcd did not answer in time: the caller learns it was perhaps not stored.
          this.#settleCheckpoints({ type: 'checkpoint', ok: false, ticket: Infinity, reason: 'shut down before etcd answered' });
          return store.close();
        })
        .then(() => {
          this.#transport = null;
          this.#store = null;
          this.#clearTimer();
          return transport.close();
        })
        .then(() => callback());
      return;
    }
    driver.run((core, now) => core.shutdown(now), {
      sent: () => {
        this.#transport = null;
        this.#clearTimer();
        void transport.close().then(() => callback());
      },
    });
  }

  // ---- plumbing ----------------------------------------------------------------------

  /** Run a step of the core through the driver (queued when called from a listener). */
  #run(step: (core: Elector, now: Instant) => Output | null): void {
    if (this.#shut) return;
    this.#driver?.run(step);
  }

  #wireSettings(settings: Settings): { keyring: Keyring | null; maxPacketBytes: number; maxDataBytes: number } {
    return { keyring: this.#keyring, maxPacketBytes: settings.max_packet_bytes, maxDataBytes: settings.max_data_bytes };
  }

  #onDatagram(datagram: Buffer, from: Address): void {
    const driver = this.#driver;
    if (!driver || this.#shut) return;
    driver.stats.packetsIn++;
    driver.stats.bytesIn += datagram.length;
    // Our last heartbeat, looped back by broadcast or multicast: the core ignores it (it
    // carries our instance id) unless it comes after a stall, which the core alone judges, so
    // it gets it then. Otherwise it goes no further: a third of an idle server's datagrams,
    // each a decode and a step of the core for nothing (docs/PERFORMANCE.md, idle cost).
    const own = this.#ownHeartbeat;
    if (own !== null && datagram.length === own.length && performance.now() <= this.#wakeAsked && datagram.equals(own)) return;
    const result = decodeWire(datagram, {
      maxBytes: this.#settings?.max_packet_bytes,
      maxDataBytes: this.#settings?.max_data_bytes,
      keyring: this.#keyring,
    });
    if (!result.ok) {
      this.#countDrop(result.reason);
      if (result.reason === 'unknown-action') {
        // Newer servers may speak actions we do not; that is not an attack.
        driver.logRemote(9, 'unknown-action', `Ignoring unknown action "${result.detail}" from ${from.address}`);
        return;
      }
      driver.logRemote(3, `dropped:${result.reason}`, `Dropped datagram from ${from.address}:${from.port}: ${result.reason} (${result.detail})`);
      return;
    }
    if (result.keyIndex) this.#counters.oldKeyPackets++;
    if ('gossip' in result) {
      // Transport business (unicast peer addresses): it never reaches the core.
      driver.logRemote(10, 'gossip', `Received peer addresses from ${result.gossip.hostname} (${from.address})`);
      this.#transport?.gossip?.(from, result.gossip.addrs);
      return;
    }
    const message = result.message;
    driver.receive(message, from, (out) => {
      if (out.dropped) this.#countDrop(out.dropped);
      // Only a valid (with a secret: authenticated) heartbeat makes its sender a unicast
      // destination, never a hello or garbage; nor a stale one, which is a replay or a late copy.
      // An instance not yet verified is learned: the challenge that admits it must reach it.
      if (message.action === 'heartbeat' && out.dropped !== 'stale') this.#transport?.learn?.(from);
    });
  }

  #countDrop(reason: DropReason | CoreDropReason): void {
    const dropped = this.#counters.dropped;
    dropped[reason] = (dropped[reason] ?? 0) + 1;
  }

  /** The keyring for `secret_key` (null without one); short keys get a warning, never an echo. */
  #buildKeyring(secrets: string[]): Keyring | null {
    if (secrets.length === 0) return null;
    secrets.forEach((secret, index) => {
      if (secret.length < RECOMMENDED_KEY_CHARS) {
        this.logError('config', `secret_key entry ${index} has only ${secret.length} characters; use ${RECOMMENDED_KEY_CHARS} or more random ones (e.g. \`openssl rand -base64 32\`)`);
      }
    });
    return auth.createKeyring(secrets);
  }

  #onSendError(err: Error): void {
    this.#counters.sendErrors++;
    this.#driver?.logRemote(3, 'send-error', `UDP send failed: ${err.message}`);
  }

  /** Be woken at `wakeAt` (a timer already set no later is kept: see WakeTimer). */
  #schedule(wakeAt: number): void {
    this.#wakeAsked = wakeAt;
    if (this.#shut) this.#wake.clear();
    else this.#wake.schedule(wakeAt);
  }

  #clearTimer(): void {
    this.#wake.clear();
  }

  /** Core events that need the shell: messages, handoff outcomes, duplicates, exits. */
  #handle(event: CoreEvent): void {
    switch (event.type) {
      case 'message':
        this.#deliver(event);
        break;
      case 'drain': {
        // A promote request the election holds until our exclusive() work has drained.
        const driver = this.#driver;
        void this.#work.handOver(`handing over to ${event.target}`, () => driver?.run((core, now) => core.drained?.(now) ?? null));
        break;
      }
      case 'stepdown':
      case 'promote': {
        const waiters = event.type === 'stepdown' ? this.#stepDownWaiters : this.#promoteWaiters;
        const settle = waiters.splice(0);
        if (event.type === 'stepdown' && !event.ok) this.#work.handoverFailed();
        if (event.type === 'stepdown' && event.ok) this.#counters.handoffs++;
        this.logDebug(event.ok ? 4 : 3, `${event.type === 'stepdown' ? 'Step down' : 'Promote'}: ${event.ok ? 'done' : 'failed'} (${event.reason})`);
        for (const waiter of settle) waiter(event.ok ? null : new Error(event.reason));
        const result: HandoffResult = { ok: event.ok, reason: event.reason };
        this.#emitBoth(event.type, result);
        break;
      }
      case 'checkpoint':
        this.#settleCheckpoints(event);
        break;
      case 'preempt':
        this.#counters.preemptions++;
        break;
      case 'duplicate':
        // An unhandled 'error' event would throw; only those who listen for it get one.
        if (this.listenerCount('error') > 0) this.#emitOne(this, 'error', [new DuplicateHostnameError(event.hostname, event.keeper, event.yielder)]);
        break;
      case 'exit':
        this.logDebug(1, `Shutting down the server: ${event.reason}`);
        setImmediate(() => {
          if (!this.server.shut) this.server.shutdown();
        });
        break;
      default:
        break;
    }
  }

  /** Every setCheckpoint() call up to the event's ticket has this outcome. */
  #settleCheckpoints(event: Extract<CoreEvent, { type: 'checkpoint' }>): void {
    const settled = this.#checkpointWaiters.filter((waiter) => waiter.ticket <= event.ticket);
    if (settled.length === 0) return;
    this.#checkpointWaiters = this.#checkpointWaiters.filter((waiter) => waiter.ticket > event.ticket);
    for (const waiter of settled) waiter.resolve({ ok: event.ok, reason: event.reason });
    if (!event.ok && this.listenerCount('error') > 0) this.#emitOne(this, 'error', [new CheckpointError(event.reason)]);
  }

  /** Events go to the component and to the parent server, as in the original. */
  #emitBoth<E extends EventName>(name: E, ...args: MultiServerEvents[E]): void {
    // Before any listener: `master` opens exclusive() to the new term, `slave` aborts what runs.
    if (name === 'master') this.#work.onMaster();
    else if (name === 'slave') this.#work.onSlave();
    this.#emitOne(this, name, args);
    this.#emitOne(this.server, name, args);
  }

  #emitOne(target: { emit(name: string, ...args: unknown[]): boolean }, name: string, args: readonly unknown[]): void {
    try {
      target.emit(name, ...args);
    } catch (err) {
      // A throwing listener is the app's bug, but it must not stop the election, whatever it threw.
      try {
        this.logError('listener', `A "${name}" listener threw: ${describeThrown(err)}`);
      } catch {
        // The logger itself failed; there is nothing left to tell.
      }
    }
  }

  #reload(): void {
    const driver = this.#driver;
    if (!driver) return;
    let settings: Settings;
    try {
      settings = this.#validate();
    } catch (err) {
      this.logError('config', `Config reload ignored: ${(err as Error).message}`);
      return;
    }
    this.#reportUnknownKeys();
    const previous = this.#settings;
    this.#settings = settings;
    if (previous && previous.comm_port !== settings.comm_port) {
      this.logError('config', `comm_port changed to ${settings.comm_port}; this takes effect after a restart`);
      settings.comm_port = previous.comm_port;
    }
    for (const key of RESTART_KEYS) {
      if (previous && previous[key] !== settings[key]) {
        this.logError('config', `${key} changed to ${JSON.stringify(settings[key])}; this takes effect after a restart`);
        Object.assign(settings, { [key]: previous[key] });
      }
    }
    this.#transport?.reconfigure?.(settings);
    this.#reloadKeys(previous, settings);
    driver.wire = this.#wireSettings(settings);
    const broadcast = settings.broadcast_ip || computeBroadcastIP(os.networkInterfaces());
    if (broadcast !== this.broadcastIP && this.#transport instanceof UdpBroadcastTransport) {
      this.broadcastIP = broadcast;
      this.#transport.broadcastIp = broadcast;
    }
    if (previous && previous.cluster_id !== settings.cluster_id) {
      this.logError('config', `cluster_id changed to "${settings.cluster_id}"; this takes effect after a restart`);
      settings.cluster_id = previous.cluster_id;
    }
    if (previous && JSON.stringify(previous.coordinator) !== JSON.stringify(settings.coordinator)) {
      this.logError('config', 'coordinator changed; this takes effect after a restart');
      settings.coordinator = previous.coordinator;
    }
    this.#run((core, now) => core.setPolicy({ exitOnConflict: settings.exit_on_conflict, priority: settings.priority, quorum: settings.quorum, drainMs: settings.drain_timeout * 1000, preemptDelayMs: settings.preempt ? settings.preempt_delay * 1000 : null }, now));
    this.logDebug(4, `Config reloaded: heartbeat_freq ${settings.heartbeat_freq} s, check_beats ${settings.check_beats}`);
    this.#run((core, now) => core.setTiming({ tickMs: settings.heartbeat_freq * 1000, checkBeats: settings.check_beats }, now));
  }

  /**
   * New keys apply at once, so a key is rotated across a running cluster without a
   * restart (see README, Security). Turning authentication on or off changes the wire
   * format and the admission rules of the core, so that waits for a restart.
   */
  #reloadKeys(previous: Settings | null, settings: Settings): void {
    const before = previous?.secret_key ?? [];
    if ((before.length > 0) !== (settings.secret_key.length > 0)) {
      this.logError('config', `secret_key was ${before.length ? 'removed' : 'added'}; this takes effect after a restart`);
      settings.secret_key = before;
      return;
    }
    if (before.length === settings.secret_key.length && before.every((key, i) => key === settings.secret_key[i])) return;
    this.#keyring = this.#buildKeyring(settings.secret_key);
    this.logDebug(2, `secret_key reloaded: ${settings.secret_key.length} key(s), the first one signs`);
  }
}

const EMPTY_DRIVER_STATS: DriverStats = {
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

function liveStats(driverStats: () => DriverStats, counters: Omit<MultiServerStats, keyof DriverStats | 'term'>, term: () => number): MultiServerStats {
  const stats = {} as MultiServerStats;
  const read = (key: string, get: () => unknown): void => {
    Object.defineProperty(stats, key, { enumerable: true, get });
  };
  for (const key of Object.keys(EMPTY_DRIVER_STATS) as Array<keyof DriverStats>) read(key, () => driverStats()[key]);
  for (const key of Object.keys(counters) as Array<keyof typeof counters>) read(key, () => counters[key]);
  read('term', term);
  return stats;
}

/**
 * The JSON text of `value`, or a TypeError naming `what` when JSON cannot carry it (a
 * function, a symbol, undefined, a BigInt, a cycle, a throwing toJSON): it is thrown at
 * the caller, not later in a timer far from the cause.
 */
function jsonProblem(value: unknown, what: string): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new TypeError(`${what} must be JSON-encodable: ${describeThrown(err)}`);
  }
  if (typeof text !== 'string') throw new TypeError(`${what} must be a JSON value, got ${describeValue(value)}`);
  return text;
}

/** Would pixl-server's `echo` have shown this row on the terminal already? (Its own rule, from server.js.) */
function echoes(server: { config: { get(key: string): unknown } }, row: { category?: unknown; component?: unknown }): boolean {
  const echo = server.config.get('echo');
  if (echo === true || (typeof echo === 'number' && echo !== 0)) return true;
  if (typeof echo !== 'string' || echo === '') return false;
  // A string of digits is a level to pixl-server: it echoes every row.
  if (/^\d+$/.test(echo)) return true;
  try {
    const pattern = new RegExp('(' + echo.replace(/\s+/g, '|') + ')');
    return pattern.test(String(row.component)) || pattern.test(String(row.category));
  } catch {
    return false;
  }
}

function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n (bigint)`;
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'symbol') return 'a symbol';
  if (value === null || typeof value !== 'object') return `${String(value)} (${typeof value})`;
  return Array.isArray(value) ? 'an array' : 'an object';
}

// Typed event methods without changing the runtime shape pixl-server expects.
interface MultiServer {
  on<E extends EventName>(event: E, listener: (...args: MultiServerEvents[E]) => void): this;
  once<E extends EventName>(event: E, listener: (...args: MultiServerEvents[E]) => void): this;
  off<E extends EventName>(event: E, listener: (...args: MultiServerEvents[E]) => void): this;
  addListener<E extends EventName>(event: E, listener: (...args: MultiServerEvents[E]) => void): this;
  removeListener<E extends EventName>(event: E, listener: (...args: MultiServerEvents[E]) => void): this;
  emit<E extends EventName>(event: E, ...args: MultiServerEvents[E]): boolean;
}

// eslint-disable-next-line @typescript-eslint/no-namespace
namespace MultiServer {
  export type Stats = MultiServerStats;
  export type Events = MultiServerEvents;
  export type Record = ServerRecord;
  /** The `MultiServer` section as an app writes it: every key optional (defaults fill the rest). */
  export type Config = MultiServerSection;
  /** The section after validation: every key, as the component runs with it (`multi.settings`). */
  export type Settings = config.Settings;
  export type Result = HandoffResult;
  /** What the status route serves and the status CLI prints with --json (docs/OPERATIONS.md). */
  export type StatusDocument = import('./shell/status').StatusDocument;
  export import ElectionCore = election.ElectionCore;
  export import ConfigError = config.ConfigError;
  export import DuplicateHostnameError = errors.DuplicateHostnameError;
  export import CheckpointError = errors.CheckpointError;
  export import createKeyring = auth.createKeyring;
  export import validateConfig = config.validateConfig;
  export import computeBroadcastIP = config.computeBroadcastIP;
  export import encode = codec.encode;
  export import decode = codec.decode;
}

// `import MultiServer from 'pixl-server-multi'` without esModuleInterop compiles to
// `require(...).default`: index.ts sets that property, this types it (the whole class and
// namespace, so `MultiServer` stays usable as a type after a default import).
declare namespace MultiServer {
  export { MultiServer as default };
}

// `server.MultiServer` and the events emitted on the server, typed in the pixl-server
// declarations shipped in types/pixl.d.ts. The pattern's own name finds that declaration and
// never an app's own `declare module 'pixl-server'`, so this cannot clash with one.
declare module '*pixl-server' {
  interface Components {
    MultiServer: MultiServer;
  }
  interface Events extends MultiServerEvents {}
  interface Config {
    /** This component's section: every key optional, each checked (a misspelt one does not compile). */
    MultiServer?: MultiServerSection;
  }
}

export = MultiServer;
