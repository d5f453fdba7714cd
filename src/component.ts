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
import type { Address, CoreDropReason, CoreEvent, Instant, JsonObject, Output, ServerRecord } from './core/types';
import type { MultiServerConfig, Settings } from './config';
import type { DropReason } from './wire/codec';

const { computeBroadcastIP, DEFAULT_CONFIG, validateConfig, validateHostname } = config;
const { dataBytes, decode, encode } = codec;
const { DuplicateHostnameError } = errors;
const { ElectionCore } = election;
import type { Transport } from './transport/types';
import { UdpBroadcastTransport } from './transport/udp';
import { RateLimiter } from './util/rate-limit';

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
}

interface MultiServerEvents {
  master: [];
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
  readonly stats: MultiServerStats = {
    packetsIn: 0,
    packetsOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    dropped: {},
    oldKeyPackets: 0,
    elections: 0,
    sendErrors: 0,
  };

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
  /** The election core (for diagnostics). */
  get core(): election.ElectionCore | null {
    return this.#core;
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
    this.logDebug(4, `Using broadcast IP: ${this.broadcastIP}`);
    this.logDebug(4, `Starting UDP server on port: ${settings.comm_port}`);

    const transport = new UdpBroadcastTransport({ port: settings.comm_port, broadcastIp: this.broadcastIP });
    transport.onMessage = (datagram, from) => this.#onDatagram(datagram, from);
    transport.onError = (err) => this.#onSendError(err);
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
          verifyInstances: this.#keyring !== null,
        });
        this.#apply(this.#core.start(this.#now()));
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
    this.logDebug(2, 'Shutting down UDP server');
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
    const result = decode(datagram, {
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
    this.logDebug(10, `Received ${result.message.action} from ${result.message.hostname} (${from.address})`);
    const out = core.receive(result.message, from, this.#now());
    if (out.dropped) this.#countDrop(out.dropped);
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
        const dataLimit = this.#settings?.max_data_bytes ?? Infinity;
        const over =
          datagram.length > limit
            ? `is ${Tools.getTextFromBytes(datagram.length)}, over max_packet_bytes (${limit})`
            : datagram.length > dataLimit && dataBytes(message.data) > dataLimit
              ? `has ${Tools.getTextFromBytes(dataBytes(message.data))} of data, over max_data_bytes (${dataLimit})`
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
        this.#emitBoth('master');
        break;
      case 'slave':
        this.#emitBoth('slave');
        break;
      case 'addserver':
      case 'deleteserver':
        this.#emitBoth(event.type, event.server);
        break;
      case 'masterchange':
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
    this.#reloadKeys(previous, settings);
    const broadcast = settings.broadcast_ip || computeBroadcastIP(os.networkInterfaces());
    if (broadcast !== this.broadcastIP && this.#transport instanceof UdpBroadcastTransport) {
      this.broadcastIP = broadcast;
      this.#transport.broadcastIp = broadcast;
    }
    core.setExitOnConflict(settings.exit_on_conflict);
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
