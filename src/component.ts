/// <reference path="./types/pixl.d.ts" preserve="true" />
/**
 * The pixl-server component: the original's public API and the pixl-server hooks around one
 * runner (shell/runner.ts), which runs the election in one mode (shell/udp-mode.ts or
 * shell/etcd-mode.ts) behind the driver. It owns no election logic: every input goes through
 * the driver.
 *
 * Where the rest lives: the modules behind this API, wired together in shell/parts.ts; the
 * mode's start, timer, datagram intake (shell/intake.ts), reload (shell/reload.ts) and leaving
 * in the runner; messages and requests (shell/messaging.ts), events and handoff outcomes
 * (shell/events.ts), stepDown() and promote() (shell/handovers.ts), exclusive() and the health
 * check (app/master-work.ts), stats (shell/stats.ts), the checks of application values
 * (shell/json.ts) and of the section (shell/section.ts), the startup watch (shell/startup.ts).
 */
import { randomBytes } from 'node:crypto';
import Component = require('pixl-server/component');
import * as election from './core/election';
import * as config from './config';
import * as codec from './wire/codec';
import * as auth from './wire/auth';
import * as errors from './errors';
import type { JsonObject, JsonValue } from './protocol/messages';
import type { ServerRecord } from './elector/types';
import type { MultiServerSection, Settings } from './config';
import type { Failover } from './driver/driver';
import type { LeaseElection } from './coordinator/lease-election';
import type { CheckpointResult, EventName, HandoffResult, MultiServerEvents } from './driver/events';
import type { Transport } from './shell/transports';
import { ownerOf } from './app/rendezvous';
import type { MasterWork } from './app/master-work';
import type { ExclusiveOptions, ExclusiveResult } from './app/exclusive';
import type { HealthCheckFn, HealthOptions, HealthStatus } from './app/health';
import { operatorHttp, type OperatorHttp } from './shell/http'; // ops: HTTP routes
import { createMetricsRegistry, type MetricsRegistry } from './shell/metrics'; // ops: metrics
import type { MultiServerStats } from './shell/stats';
import { checkedData } from './shell/json';
import { watchStartup } from './shell/startup';
import type { Mode } from './shell/mode';
import { shellParts, type ShellParts } from './shell/parts';

const { DEFAULT_CONFIG, validateHostname } = config;

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
  /** The modules behind this API, wired in shell/parts.ts. */
  readonly #p: ShellParts = shellParts(this);

  /** Counters for monitoring: a live object (each property reads the current value). */
  readonly stats: MultiServerStats = this.#p.stats;

  #eligible = true;
  #data: JsonObject = {};
  #emptyTable: Record<string, ServerRecord> = Object.create(null) as Record<string, ServerRecord>;
  #http: OperatorHttp | null = null; // ops
  #metricsRegistry: MetricsRegistry | null = null; // ops
  /** A failed startup is watched for once (init may run again). */
  #startupWatched = false;

  // ---- the original's public properties ---------------------------------------------

  /**
   * hostname → server record (a prototype-free object; `for…in` and Object.keys work). A
   * copy of the election's table, refreshed when read: writing to it changes nothing but
   * `servers[host].locked`, which keeps that server from being removed (see lock()).
   */
  get servers(): Record<string, ServerRecord> {
    return this.#mode?.driver.servers ?? this.#emptyTable;
  }
  /** Hostname of the current master; '' while unknown. */
  get masterHostname(): string {
    return this.#mode?.driver.core.masterHostname ?? '';
  }
  get master(): boolean {
    return this.#mode?.isMaster() ?? false;
  }
  get slave(): boolean {
    return this.#mode?.driver.core.slave ?? false;
  }
  /** Whether this server may become master; settable at run time, broadcast at once. */
  get eligible(): boolean {
    return this.#eligible;
  }
  set eligible(value: boolean) {
    this.#eligible = !!value;
    // What the election gets also depends on the health check; a master drains first.
    this.#p.work.eligibilityChanged(this.#eligible ? 'eligible set to true' : 'eligible set to false');
  }
  /** User object broadcast with every heartbeat; peers see it as servers[host].data. */
  get data(): JsonObject {
    return this.#data;
  }
  set data(value: JsonObject) {
    this.#data = checkedData(value);
    this.#mode?.driver.core.setData(this.#data);
  }
  /** The fencing token: raised by every change of master. Stamp writes with it; reject older ones. */
  get term(): number {
    return this.#mode?.driver.core.term ?? 0;
  }

  /** The last failover seen here: from whom to whom, when, and how long it took (from the lost master's last heartbeat). */
  get lastFailover(): Failover | null {
    return this.#mode?.driver.lastFailover ?? null;
  }

  /**
   * Keep `hostname`'s record from ever being removed (the original's `locked: true`), or
   * allow it again. Setting `servers[hostname].locked` does the same.
   */
  lock(hostname: string, locked = true): void {
    this.#p.runner.run((core, now) => core.setLocked(String(hostname), locked === true, now));
  }

  /**
   * Hand the master role to the next server in rank (one round trip; the term rises).
   * Resolves once another server is master; rejects if this server is not master, nobody
   * is eligible, or nobody took over within a tock (then the election runs as usual).
   */
  stepDown(): Promise<void> {
    return this.#p.handovers.stepDown();
  }

  /**
   * Make this server master: the current master hands over in one round trip (or, with no
   * master, this server claims at once). Resolves once this server is master; rejects if it
   * is not eligible, lacks a quorum, or the master did not hand over within a tock.
   */
  promote(): Promise<void> {
    return this.#p.handovers.promote();
  }

  // ---- messages between servers ------------------------------------------------------

  /**
   * Send `payload` (any JSON value) to a hostname, to 'master', or to '*' (every other
   * server). At most once: one UDP datagram, no retry, no acknowledgement. Throws when the
   * target is unknown, there is no master, the type is malformed, the payload is not JSON,
   * or the message is larger than `max_packet_bytes`.
   */
  send(target: string, type: string, payload: JsonValue): void {
    this.#p.messaging.send(target, type, payload);
  }

  /**
   * Send a message and await the reply its receiver gives through the `reply` argument of
   * its `message` listener. Rejects after `timeoutMs` (default `request_timeout_ms`): the
   * request or the reply may have been lost, or nobody answered.
   */
  request(target: string, type: string, payload: JsonValue, options: { timeoutMs?: number } = {}): Promise<JsonValue> {
    return this.#p.messaging.request(target, type, payload, options);
  }

  // ---- work split by key --------------------------------------------------------------

  /** Live eligible servers over which keys are split, as of the last change ([] when not running). */
  get members(): string[] {
    return this.#p.runner.shut || !this.#mode ? [] : [...this.#mode.driver.members];
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
    if (!this.#p.runner.driver) return Promise.resolve({ ran: false, reason: 'not-running', detail: 'MultiServer is not running' });
    return this.#p.work.exclusive(fn, options);
  }

  /** exclusive() calls running, and the handover that waits for them (for the status document). */
  get work(): MasterWork['state'] {
    return this.#p.work.state;
  }

  /**
   * Run `fn` every `interval` seconds (default 2): `fall` failures in a row (default 3; a
   * throw, a rejection, `false`, or no answer within `timeout`) make this server ineligible
   * (a master drains its exclusive() work, then steps down); `rise` passes in a row (default
   * 2) eligible again. The first result counts at once. `null` removes the check.
   */
  setHealthCheck(fn: HealthCheckFn | null, options: HealthOptions = {}): void {
    this.#p.work.setHealthCheck(fn, options);
  }

  /** The health check's state, or null without one. */
  get health(): HealthStatus | null {
    return this.#p.work.health;
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
    return this.#mode?.driver.core.checkpoint ?? null;
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
    return this.#p.runner.setCheckpoint(value);
  }

  /** The election core (for diagnostics; drive it only through the component). */
  get core(): election.ElectionCore | null {
    return this.#mode?.core ?? null;
  }
  /** Coordinator mode: the lease election (for diagnostics; drive it only through the component). */
  get coordinator(): LeaseElection | null {
    return this.#mode?.lease ?? null;
  }
  /** The transport (for diagnostics: `transport.peers?.()` lists unicast destinations). */
  get transport(): Transport | null {
    return this.#p.runner.transport;
  }
  get settings(): Readonly<Settings> | null {
    return this.#p.runner.settings;
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
    this.#p.runner.settings = this.#p.section.validate();
    if (!this.#startupWatched) this.#startupWatched = watchStartup(this.server as unknown as Parameters<typeof watchStartup>[0]);
  }

  /** Called by the base class on init and on every config reload. */
  override initConfig(): void {
    super.initConfig();
    if (this.#mode) this.#reload();
  }

  override startup(callback: (err?: Error | null) => void): void {
    let settings: Settings;
    try {
      settings = this.#p.section.validate();
      this.hostname = validateHostname(this.server.hostname);
      // ops: throws at startup when metrics are configured and prom-client is missing.
      this.#http = operatorHttp(this, settings, this.#p.log, () => this.metricsRegistry());
    } catch (err) {
      this.logError('config', (err as Error).message);
      callback(err as Error);
      return;
    }
    this.#p.section.reportUnknownKeys();
    this.logDebug(2, `This process: pid ${process.pid}, instance ${this.instanceId}, hostname ${this.hostname}`);
    this.#p.runner.start(settings).then(
      (mode) => {
        if (!mode) return; // shut down while it opened: closed again
        this.broadcastIP = mode.broadcastIp;
        // pixl-server-web resets its routes when it starts: add ours once every component has.
        if (this.#http) this.server.once('ready', () => this.#http?.attach(this.server.WebServer)); // ops
        callback();
      },
      (err: Error) => callback(err),
    );
  }

  override shutdown(callback: () => void): void {
    this.#p.leave(() => {
      this.#http?.detach(); // ops
      this.#http = null; // ops
      this.logDebug(2, 'Shutting down UDP server');
    }, callback);
  }

  // ---- plumbing ----------------------------------------------------------------------

  /** The running mode (UDP heartbeats or etcd); it stays after shutdown, for the last state. */
  get #mode(): Mode | null {
    return this.#p.runner.mode;
  }

  /** A config reload: what can change now does (shell/reload.ts says which keys wait for a restart). */
  #reload(): void {
    const settings = this.#p.section.reloaded();
    if (!settings) return;
    this.#p.runner.reload(settings);
    this.broadcastIP = this.#mode?.broadcastIp ?? this.broadcastIP;
  }
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

namespace MultiServer {
  export type Stats = MultiServerStats;
  export type Events = MultiServerEvents;
  export type Record = ServerRecord;
  /** A record's `health`: that server's health check as its heartbeats tell it. */
  export type ServerHealth = import('./elector/types').ServerHealth;
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
