/// <reference path="./types/pixl.d.ts" preserve="true" />
/**
 * The pixl-server component shell: config, clock, timer and socket around the pure
 * election core. It owns no election logic; it carries out what the core returns.
 */
import { randomBytes } from 'node:crypto';
import * as os from 'node:os';
import { performance } from 'node:perf_hooks';
import Component = require('pixl-server/component');
import Tools = require('pixl-tools');
import * as election from './core/election';
import * as config from './config';
import * as codec from './wire/codec';
import * as auth from './wire/auth';
import * as errors from './errors';
import type { Keyring } from './wire/auth';
import type { Address, JsonObject } from './protocol/messages';
import type { CoreDropReason, CoreEvent, Instant, Output, ServerRecord } from './core/types';
import type { MultiServerConfig, Settings } from './config';
import type { DropReason } from './wire/codec';

const { computeBroadcastIP, DEFAULT_CONFIG, validateConfig, validateHostname } = config;
const { dataBytes, decodeWire, encode } = codec;
const { DuplicateHostnameError } = errors;
const { ElectionCore } = election;
import { createTransport, RESTART_KEYS, UdpBroadcastTransport, type Transport } from './shell/transports';
import { ownerOf } from './app/rendezvous';
import { isLikeWebServer, registerRoutes } from './http';
import type { JsonValue } from './protocol/messages';
import { MESSAGE_TYPE_PATTERN } from './protocol/limits';
import { RateLimiter } from './util/rate-limit';

/** Requests awaiting replies; a bound so a caller in a loop cannot grow memory without end. */
const MAX_PENDING_REQUESTS = 10_000;

/** How often one sender's bad packets may be logged. */
const DROP_LOG_INTERVAL_MS = 60_000;
/** Shorter keys are accepted (a passphrase is stretched with scrypt) but get a warning. */
const RECOMMENDED_KEY_CHARS = 16;

interface MultiServerStats {
  packetsIn: number;
  packetsOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Datagrams dropped, by reason: by the codec (malformed, unauthenticated) or by the core (stale, unverified, …). */
  dropped: Partial<Record<DropReason | CoreDropReason, number>>;
  /** Authenticated packets verified by a key other than the first (signing) one: 0 once a rotation is complete. */
  oldKeyPackets: number;
  /** Times this server became master. */
  elections: number;
  sendErrors: number;
  /** Times this server saw the master change (lost and replaced, or handed over). */
  failovers: number;
  /** Milliseconds from losing the last master to knowing the next one, as seen here; 0 before any failover. */
  lastFailoverMs: number;
  /** The current term (fencing token). */
  term: number;
}

/** Replies to a request: call once with the answer payload. */
type Reply = (payload: JsonValue) => void;

interface MultiServerEvents {
  master: [term: number, checkpoint: JsonValue | null];
  message: [type: string, payload: JsonValue, from: string, reply: Reply | undefined];
  assignment: [members: string[]];
  stepdown: [result: { ok: boolean; reason: string }];
  promote: [result: { ok: boolean; reason: string }];
  slave: [];
  addserver: [server: ServerRecord];
  deleteserver: [server: ServerRecord];
  masterchange: [hostname: string, previous: string];
  /** Only emitted when someone listens: a DuplicateHostnameError. */
  error: [err: errors.DuplicateHostnameError];
}

class MultiServer extends Component {
  override __name = 'MultiServer';
  override defaultConfig: Record<string, unknown> = { ...DEFAULT_CONFIG };

  /** Our hostname (the parent server's). */
  hostname = '';
  /** The broadcast address in use. */
  broadcastIP = '';
  #stats: MultiServerStats = {
    packetsIn: 0,
    packetsOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    dropped: {},
    oldKeyPackets: 0,
    elections: 0,
    sendErrors: 0,
    failovers: 0,
    lastFailoverMs: 0,
    term: 0,
  };
  /** Monotonic ms when this server lost its master, while it has none. */
  #masterLostAt: number | null = null;

  /** Counters for monitoring (a live object; `term` is filled in when read). */
  get stats(): MultiServerStats {
    this.#stats.term = this.#core?.term ?? 0;
    return this.#stats;
  }

  #settings: Settings | null = null;
  #keyring: Keyring | null = null;
  #core: election.ElectionCore | null = null;
  #transport: Transport | null = null;
  #timer: NodeJS.Timeout | null = null;
  #eligible = true;
  #data: JsonObject = {};
  #emptyTable: Record<string, ServerRecord> = Object.create(null) as Record<string, ServerRecord>;
  #dropLog = new RateLimiter(DROP_LOG_INTERVAL_MS);
  #shut = false;
  #stepDownWaiters: Array<(err: Error | null) => void> = [];
  #promoteWaiters: Array<(err: Error | null) => void> = [];
  #members: string[] = [];
  #removeRoutes: (() => void) | null = null;
  #requests = new Map<string, { resolve: (payload: JsonValue) => void; reject: (err: Error) => void; timer: NodeJS.Timeout; to: string }>();
  #requestCounter = 0;

  // ---- the original's public properties ---------------------------------------------

  /** hostname → server record (a prototype-free object; `for…in` and Object.keys work). */
  get servers(): Record<string, ServerRecord> {
    return this.#core ? this.#core.table : this.#emptyTable;
  }
  /** Hostname of the current master; '' while unknown. */
  get masterHostname(): string {
    return this.#core?.masterHostname ?? '';
  }
  get master(): boolean {
    return this.#core?.master ?? false;
  }
  get slave(): boolean {
    return this.#core?.slave ?? false;
  }
  /** Whether this server may become master; settable at run time, broadcast at once. */
  get eligible(): boolean {
    return this.#eligible;
  }
  set eligible(value: boolean) {
    this.#eligible = !!value;
    if (this.#core) this.#apply(this.#core.setEligible(this.#eligible, this.#now()));
  }
  /** User object broadcast with every heartbeat; peers see it as servers[host].data. */
  get data(): JsonObject {
    return this.#data;
  }
  set data(value: JsonObject) {
    this.#data = value && typeof value === 'object' ? value : {};
    this.#core?.setData(this.#data);
  }
  /** The fencing token: raised by every change of master. Stamp writes with it; reject older ones. */
  get term(): number {
    return this.#core?.term ?? 0;
  }

  /**
   * Hand the master role to the next server in rank (one round trip; the term rises).
   * Resolves once another server is master; rejects if this server is not master, nobody
   * is eligible, or nobody took over within a tock (then the election runs as usual).
   */
  stepDown(): Promise<void> {
    return this.#request(this.#stepDownWaiters, (core, now) => core.stepDown(now));
  }

  /**
   * Make this server master: the current master hands over in one round trip (or, with no
   * master, this server claims at once). Resolves once this server is master; rejects if it
   * is not eligible, lacks a quorum, or the master did not hand over within a tock.
   */
  promote(): Promise<void> {
    return this.#request(this.#promoteWaiters, (core, now) => core.promote(now));
  }

  #request(waiters: Array<(err: Error | null) => void>, run: (core: election.ElectionCore, now: Instant) => Output): Promise<void> {
    const core = this.#core;
    if (!core || this.#shut) return Promise.reject(new Error('MultiServer is not running'));
    return new Promise((resolve, reject) => {
      waiters.push((err) => (err ? reject(err) : resolve()));
      this.#apply(run(core, this.#now()));
    });
  }

  // ---- messages between servers ------------------------------------------------------

  /**
   * Send `payload` (any JSON value) to a hostname, to 'master', or to '*' (every other
   * server). At most once: one UDP datagram, no retry, no acknowledgement. Throws when the
   * target is unknown, there is no master, the type is malformed or the message is larger
   * than `max_packet_bytes`.
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
    const core = this.#core;
    if (!core || this.#shut) throw new Error('MultiServer is not running');
    if (typeof type !== 'string' || !MESSAGE_TYPE_PATTERN.test(type)) {
      throw new TypeError(`message type must be 1 to 64 letters, digits, ".", "_", ":" or "-", got ${JSON.stringify(type)}`);
    }
    if (payload === undefined) throw new TypeError('message payload must be a JSON value, got undefined');
    let to = target;
    if (target === 'master') {
      to = core.masterHostname;
      if (!to) throw new Error('there is no master to send to');
    } else if (target !== '*' && !core.table[target]) {
      throw new Error(`unknown server ${JSON.stringify(target)}`);
    }
    const size = Buffer.byteLength(JSON.stringify(payload) ?? '', 'utf8');
    const limit = this.#settings?.max_packet_bytes ?? Infinity;
    if (size + 256 > limit) throw new RangeError(`message payload is ${size} bytes; with its envelope it must fit max_packet_bytes (${limit})`);
    if (to === this.hostname) {
      // To ourselves (e.g. 'master' on the master): no network, same event, next turn.
      const copy = JSON.parse(JSON.stringify(payload)) as JsonValue;
      setImmediate(() => this.#deliver({ from: this.hostname, messageType: type, payload: copy, ...ids }));
      return to;
    }
    this.#apply(core.sendMessage(to, type, payload, this.#now(), ids));
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

  /** Live eligible servers over which keys are split, as of the last change. */
  get members(): string[] {
    return [...this.#members];
  }

  /** The server that owns `key` (rendezvous hashing over the live eligible servers), or null. */
  masterFor(key: string): string | null {
    return ownerOf(String(key), this.#members);
  }

  /** Whether this server owns `key`. */
  isMasterFor(key: string): boolean {
    return this.masterFor(key) === this.hostname;
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
    return this.#core?.checkpoint ?? null;
  }

  /**
   * On the master: publish a small state object (JSON, at most `max_checkpoint_bytes`).
   * Every server keeps the latest; the next master gets it with its `master` event, after a
   * crash or a handoff, so work resumes where it stopped. Throws when not master.
   */
  setCheckpoint(value: JsonValue): void {
    const core = this.#core;
    if (!core || !core.master) throw new Error('only the master can set a checkpoint');
    const text = JSON.stringify(value);
    if (text === undefined) throw new TypeError('a checkpoint must be a JSON value');
    const limit = this.#settings?.max_checkpoint_bytes ?? 4096;
    const size = Buffer.byteLength(text, 'utf8');
    if (size > limit) throw new RangeError(`checkpoint is ${size} bytes, over max_checkpoint_bytes (${limit})`);
    const out = core.setCheckpoint(JSON.parse(text) as JsonValue, this.#now());
    if (out) this.#apply(out);
  }

  /** The election core (for diagnostics). */
  get core(): election.ElectionCore | null {
    return this.#core;
  }
  /** The transport (for diagnostics: `transport.peers?.()` lists unicast destinations). */
  get transport(): Transport | null {
    return this.#transport;
  }
  get settings(): Readonly<Settings> | null {
    return this.#settings;
  }

  // ---- pixl-server hooks ------------------------------------------------------------

  /** Validate the section when pixl-server initialises components, before any daemon fork. */
  override init(server: Component.Server, config?: Component.ConfigObject): void {
    super.init(server, config);
    this.#settings = validateConfig(this.config.get());
  }

  /** Called by the base class on init and on every config reload. */
  override initConfig(): void {
    super.initConfig();
    if (this.#core) this.#reload();
  }

  override startup(callback: (err?: Error | null) => void): void {
    let settings: Settings;
    try {
      settings = validateConfig(this.config.get());
      this.hostname = validateHostname(this.server.hostname);
    } catch (err) {
      this.logError('config', (err as Error).message);
      callback(err as Error);
      return;
    }
    this.#settings = settings;
    this.#keyring = this.#buildKeyring(settings.secret_key);
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
        this.#core = new ElectionCore({
          hostname: this.hostname,
          ip: this.server.ip,
          instanceId: randomBytes(8).toString('hex'),
          eligible: this.#eligible,
          data: this.#data,
          tickMs: settings.heartbeat_freq * 1000,
          checkBeats: settings.check_beats,
          exitOnConflict: settings.exit_on_conflict,
          maxServers: settings.max_servers,
          priority: settings.priority,
          quorum: settings.quorum,
          clusterId: settings.cluster_id,
          verifyInstances: this.#keyring !== null,
        });
        this.#apply(this.#core.start(this.#now()));
        // pixl-server-web resets its routes when it starts: add ours once every component has.
        if (settings.http_status_uri || settings.http_health_uri) this.server.once('ready', () => this.#addRoutes(settings));
        callback();
      },
      (err: Error) => {
        this.logError('socket', `UDP socket could not be bound on port ${settings.comm_port}: ${err.message}`);
        callback(err);
      },
    );
  }

  override shutdown(callback: () => void): void {
    this.#shut = true;
    this.#clearTimer();
    const core = this.#core;
    const transport = this.#transport;
    if (!core || !transport) {
      callback();
      return;
    }
    this.#removeRoutes?.();
    this.#removeRoutes = null;
    this.logDebug(2, 'Shutting down UDP server');
    for (const [rid, pending] of this.#requests) {
      clearTimeout(pending.timer);
      pending.reject(new Error('MultiServer shut down'));
      this.#requests.delete(rid);
    }
    const out = core.shutdown(this.#now());
    this.#apply(out, () => {
      this.#transport = null;
      void transport.close().then(() => callback());
    });
  }

  // ---- plumbing ----------------------------------------------------------------------

  #now(): Instant {
    return { mono: performance.now(), wall: Date.now() };
  }

  #onDatagram(datagram: Buffer, from: Address): void {
    const core = this.#core;
    if (!core || this.#shut) return;
    this.stats.packetsIn++;
    this.stats.bytesIn += datagram.length;
    const result = decodeWire(datagram, {
      maxBytes: this.#settings?.max_packet_bytes,
      maxDataBytes: this.#settings?.max_data_bytes,
      keyring: this.#keyring,
    });
    if (!result.ok) {
      this.#countDrop(result.reason);
      if (result.reason === 'unknown-action') {
        // Newer servers may speak actions we do not; that is not an attack.
        this.logDebug(9, `Ignoring unknown action "${result.detail}" from ${from.address}`);
        return;
      }
      const suppressed = this.#dropLog.hit(from.address, performance.now());
      if (suppressed !== null) {
        const more = suppressed ? ` (${suppressed} more dropped since the last report)` : '';
        this.logDebug(3, `Dropped datagram from ${from.address}:${from.port}: ${result.reason} (${result.detail})${more}`);
      }
      return;
    }
    if (result.keyIndex) this.stats.oldKeyPackets++;
    if ('gossip' in result) {
      // Transport business (unicast peer addresses): it never reaches the core.
      this.logDebug(10, `Received peer addresses from ${result.gossip.hostname} (${from.address})`);
      this.#transport?.gossip?.(from, result.gossip.addrs);
      return;
    }
    this.logDebug(10, `Received ${result.message.action} from ${result.message.hostname} (${from.address})`);
    const out = core.receive(result.message, from, this.#now());
    if (out.dropped) this.#countDrop(out.dropped);
    // Only a valid (with a secret: authenticated) heartbeat makes its sender a unicast
    // destination, never a hello or garbage; nor a stale one, which is a replay or a late copy.
    // An instance not yet verified is learned: the challenge that admits it must reach it.
    if (result.message.action === 'heartbeat' && out.dropped !== 'stale') this.#transport?.learn?.(from);
    this.#apply(out);
  }

  #countDrop(reason: DropReason | CoreDropReason): void {
    this.stats.dropped[reason] = (this.stats.dropped[reason] ?? 0) + 1;
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
    this.stats.sendErrors++;
    if (this.#dropLog.hit('send-error', performance.now()) !== null) {
      this.logDebug(3, `UDP send failed: ${err.message}`);
    }
  }

  #onTimer = (): void => {
    this.#timer = null;
    if (this.#core && !this.#shut) this.#apply(this.#core.tick(this.#now()));
  };

  #schedule(wakeAt: number): void {
    this.#clearTimer();
    if (!Number.isFinite(wakeAt) || this.#shut) return;
    const delay = Math.max(0, Math.ceil(wakeAt - performance.now()));
    this.#timer = setTimeout(this.#onTimer, delay);
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** Carry out one step of the core: send, log, emit, re-arm the timer. */
  #apply(out: Output, sent?: () => void): void {
    const transport = this.#transport;
    let pending = out.send.length;
    const oneSent = (): void => {
      if (--pending === 0) sent?.();
    };
    for (const { message, to } of out.send) {
      let datagram = encode(message, this.#keyring);
      if (message.action === 'heartbeat') {
        // Peers with the same limits would drop the whole heartbeat; send it without data instead.
        const limit = this.#settings?.max_packet_bytes ?? Infinity;
        const dataLimit = this.#settings?.max_data_bytes || Infinity;
        // data is smaller than the datagram it rides in: measure it only when that could be too big.
        const dataSize = datagram.length > dataLimit ? dataBytes(message.data) : 0;
        const over =
          datagram.length > limit
            ? `is ${Tools.getTextFromBytes(datagram.length)}, over max_packet_bytes (${limit})`
            : dataSize > dataLimit
              ? `has ${Tools.getTextFromBytes(dataSize)} of data, over max_data_bytes (${dataLimit})`
              : '';
        if (over) {
          if (this.#dropLog.hit('oversized-data', performance.now()) !== null) {
            this.logError('data', `Heartbeat with user data ${over}; sending it without data`);
          }
          datagram = encode({ ...message, data: {} }, this.#keyring);
        }
      }
      this.logDebug(10, `Sending ${message.action}`, message);
      if (!transport) {
        oneSent();
        continue;
      }
      this.stats.packetsOut++;
      this.stats.bytesOut += datagram.length;
      transport.send(datagram, to, oneSent);
    }
    if (out.send.length === 0) sent?.();
    for (const line of out.logs) this.logDebug(line.level, line.message, line.data);
    this.#schedule(out.wakeAt);
    for (const event of out.events) this.#emitEvent(event);
  }

  #emitEvent(event: CoreEvent): void {
    switch (event.type) {
      case 'master':
        this.stats.elections++;
        this.#emitBoth('master', event.term, event.checkpoint);
        break;
      case 'message':
        this.#deliver(event);
        break;
      case 'members':
        this.#members = event.members;
        this.#emitBoth('assignment', [...event.members]);
        break;
      case 'stepdown':
      case 'promote': {
        const waiters = event.type === 'stepdown' ? this.#stepDownWaiters : this.#promoteWaiters;
        const settle = waiters.splice(0);
        this.logDebug(event.ok ? 4 : 3, `${event.type === 'stepdown' ? 'Step down' : 'Promote'}: ${event.ok ? 'done' : 'failed'} (${event.reason})`);
        for (const waiter of settle) waiter(event.ok ? null : new Error(event.reason));
        this.#emitBoth(event.type, { ok: event.ok, reason: event.reason });
        break;
      }
      case 'slave':
        this.#emitBoth('slave');
        break;
      case 'addserver':
      case 'deleteserver':
        this.#emitBoth(event.type, event.server);
        break;
      case 'masterchange':
        this.#countFailover(event.hostname, event.previous);
        this.#emitBoth('masterchange', event.hostname, event.previous);
        break;
      case 'conflict':
        break;
      case 'duplicate':
        // An unhandled 'error' event would throw; only those who listen for it get one.
        if (this.listenerCount('error') > 0) {
          try {
            this.emit('error', new DuplicateHostnameError(event.hostname, event.keeper, event.yielder));
          } catch (err) {
            this.logError('listener', `An "error" listener threw: ${(err as Error).stack ?? err}`);
          }
        }
        break;
      case 'exit':
        this.logDebug(1, `Shutting down the server: ${event.reason}`);
        setImmediate(() => {
          if (!this.server.shut) this.server.shutdown();
        });
        break;
    }
  }

  #addRoutes(settings: Settings): void {
    const web = this.server.WebServer;
    if (!isLikeWebServer(web)) {
      this.logError('config', 'http_status_uri / http_health_uri are set, but the server has no WebServer component (pixl-server-web)');
      return;
    }
    this.#removeRoutes = registerRoutes(web, this, { status: settings.http_status_uri, health: settings.http_health_uri, acl: settings.http_acl });
    this.logDebug(4, `HTTP routes added: ${[settings.http_status_uri, settings.http_health_uri].filter(Boolean).join(', ')}`);
  }

  #countFailover(hostname: string, previous: string): void {
    const now = performance.now();
    if (!hostname) {
      if (previous) this.#masterLostAt = now;
      return;
    }
    if (this.#masterLostAt !== null) {
      this.#stats.failovers++;
      this.#stats.lastFailoverMs = Math.round(now - this.#masterLostAt);
      this.#masterLostAt = null;
    } else if (previous && previous !== hostname) {
      this.#stats.failovers++; // a direct change (a conflict resolved): no gap without a master
      this.#stats.lastFailoverMs = 0;
    }
  }

  /** Events go to the component and to the parent server, as in the original. */
  #emitBoth(name: string, ...args: unknown[]): void {
    for (const target of [this, this.server]) {
      try {
        target.emit(name, ...args);
      } catch (err) {
        // A throwing listener is the app's bug, but it must not kill the election.
        this.logError('listener', `A "${name}" listener threw: ${(err as Error).stack ?? err}`);
      }
    }
  }

  #reload(): void {
    const core = this.#core;
    if (!core) return;
    let settings: Settings;
    try {
      settings = validateConfig(this.config.get());
    } catch (err) {
      this.logError('config', `Config reload ignored: ${(err as Error).message}`);
      return;
    }
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
    const broadcast = settings.broadcast_ip || computeBroadcastIP(os.networkInterfaces());
    if (broadcast !== this.broadcastIP && this.#transport instanceof UdpBroadcastTransport) {
      this.broadcastIP = broadcast;
      this.#transport.broadcastIp = broadcast;
    }
    if (previous && previous.cluster_id !== settings.cluster_id) {
      this.logError('config', `cluster_id changed to "${settings.cluster_id}"; this takes effect after a restart`);
      settings.cluster_id = previous.cluster_id;
    }
    this.#apply(core.setPolicy({ exitOnConflict: settings.exit_on_conflict, priority: settings.priority, quorum: settings.quorum }, this.#now()));
    this.logDebug(4, `Config reloaded: heartbeat_freq ${settings.heartbeat_freq} s, check_beats ${settings.check_beats}`);
    this.#apply(core.setTiming({ tickMs: settings.heartbeat_freq * 1000, checkBeats: settings.check_beats }, this.#now()));
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

// Typed event methods without changing the runtime shape pixl-server expects.
interface MultiServer {
  on<E extends keyof MultiServerEvents>(event: E, listener: (...args: MultiServerEvents[E]) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once<E extends keyof MultiServerEvents>(event: E, listener: (...args: MultiServerEvents[E]) => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
}

// eslint-disable-next-line @typescript-eslint/no-namespace
namespace MultiServer {
  export type Stats = MultiServerStats;
  export type Events = MultiServerEvents;
  export type Record = ServerRecord;
  export type Config = MultiServerConfig;
  export import ElectionCore = election.ElectionCore;
  export import ConfigError = config.ConfigError;
  export import DuplicateHostnameError = errors.DuplicateHostnameError;
  export import createKeyring = auth.createKeyring;
  export import validateConfig = config.validateConfig;
  export import computeBroadcastIP = config.computeBroadcastIP;
  export import encode = codec.encode;
  export import decode = codec.decode;
}

export = MultiServer;
