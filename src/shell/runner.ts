/**
 * The component's election while it runs: the mode started for the settings (udp-mode.ts or
 * etcd-mode.ts), its one timer, the datagram intake, every step through the driver, a reload
 * and leaving. The component (src/component.ts) holds one runner and reads its state through
 * it; what the application sees (events, messages, handoff outcomes) stays with the component's
 * own modules (events.ts, messaging.ts).
 */
import type { Settings } from '../config';
import type { Driver, WireSettings } from '../driver/driver';
import type { Elector } from '../elector/elector';
import type { Instant, Output } from '../elector/types';
import { CheckpointError } from '../errors';
import type { CheckpointResult } from '../driver/events';
import type { HealthWord, JsonObject, JsonValue } from '../protocol/messages';
import type { Transport } from '../transport/types';
import { WakeTimer } from '../util/wake-timer';
import type { Keyring } from '../wire/auth';
import { EtcdMode } from './etcd-mode';
import type { ShellEvents } from './events';
import { DatagramIntake } from './intake';
import { jsonProblem } from './json';
import { now, type Mode, type ModeContext } from './mode';
import { buildKeyring, planReload } from './reload';
import type { ShellCounters } from './stats';
import { broadcastAddress, UdpMode } from './udp-mode';

/** What the runner needs of the component: who we are, what the app set, the logs and events. */
export interface RunnerHost {
  hostname(): string;
  serverIp(): string;
  readonly instanceId: string;
  /** The eligibility the election starts with (the app's, and its health check's). */
  eligible(): boolean;
  data(): JsonObject;
  /** The health check's state our heartbeats start with (null: none). */
  health(): HealthWord | null;
  readonly counters: ShellCounters;
  readonly events: ShellEvents;
  debug(level: number, message: string, data?: unknown): void;
  logs(level: number): boolean;
  error(code: string, message: string): void;
}

export class Runner {
  readonly #host: RunnerHost;
  /** The settings in force: validated at init, replaced by a reload. */
  settings: Settings | null = null;
  keyring: Keyring | null = null;
  /** The running mode (UDP heartbeats or etcd); it stays after shutdown, for the last state. */
  mode: Mode | null = null;
  /** The mode's socket while it is open. */
  transport: Transport | null = null;
  /** Shutdown has begun: no step runs any more, and a mode that finishes opening closes again. */
  shut = false;
  /** The election's one timer: `tick()` at the wake-up time the last step asked for. */
  readonly #wake = new WakeTimer(() => {
    if (!this.shut) this.mode?.driver.tick();
  });
  readonly #intake: DatagramIntake;

  constructor(host: RunnerHost) {
    this.#host = host;
    this.#intake = new DatagramIntake({
      driver: () => this.driver,
      transport: () => this.transport,
      keyring: () => this.keyring,
      settings: () => this.settings,
      counters: host.counters,
    });
  }

  /** The driver while the election runs; null before the start and once shutdown has begun. */
  get driver(): Driver<Elector> | null {
    return this.shut ? null : (this.mode?.driver ?? null);
  }

  /** Run a step of the election through the driver (queued when called from a listener). */
  run(step: (core: Elector, now: Instant) => Output | null): void {
    this.driver?.run(step);
  }

  /**
   * Open the mode the settings name and start the election. Resolves with the mode, or null
   * when shutdown began while it opened (it is closed again); rejects when it cannot open.
   */
  async start(settings: Settings): Promise<Mode | null> {
    this.settings = settings;
    this.keyring = buildKeyring(settings.secret_key, (message) => this.#host.error('config', message));
    const context = this.#context(settings);
    const mode = settings.coordinator
      ? await EtcdMode.start(context)
      : await UdpMode.start(context, broadcastAddress(settings.broadcast_ip));
    if (!mode) return null;
    this.transport = mode.transport;
    this.mode = mode;
    // The health check may have reported while the mode opened (etcd: seconds): the first heartbeat says what it says now.
    mode.driver.core.setHealth(this.#host.health());
    this.run((core, now) => core.start(now));
    return mode;
  }

  /** Shutdown begins: no step runs from now on. Returns whether a mode is open, for close(). */
  halt(): boolean {
    this.shut = true;
    this.#wake.clear();
    return this.mode !== null && this.transport !== null;
  }

  /** Leave the cluster and close the mode (after halt()). */
  async close(): Promise<void> {
    const mode = this.mode;
    if (!mode || !this.transport) return;
    await mode.shutdown();
    this.transport = null;
    this.#wake.clear();
  }

  /** On the master: a checkpoint checked (JSON, at most `max_checkpoint_bytes`) and handed to the mode as a copy. */
  setCheckpoint(value: JsonValue): Promise<CheckpointResult> {
    const mode = this.mode;
    if (!mode || !mode.driver.core.master || this.shut) throw new Error('only the master can set a checkpoint');
    const text = jsonProblem(value, 'a checkpoint');
    const limit = this.settings?.max_checkpoint_bytes ?? 4096;
    const size = Buffer.byteLength(text, 'utf8');
    if (size > limit) throw new RangeError(`checkpoint is ${size} bytes, over max_checkpoint_bytes (${limit})`);
    return mode.setCheckpoint(JSON.parse(text) as JsonValue);
  }

  /** A config reload, validated: what can change now does (reload.ts says which keys wait for a restart). */
  reload(settings: Settings): void {
    const mode = this.mode;
    const previous = this.settings;
    if (!mode || !previous) return;
    const plan = planReload(previous, settings);
    this.settings = settings;
    for (const notice of plan.notices) this.#host.error('config', notice);
    if (plan.keysChanged) {
      this.keyring = buildKeyring(settings.secret_key, (message) => this.#host.error('config', message));
      this.#host.debug(2, `secret_key reloaded: ${settings.secret_key.length} key(s), the first one signs`);
    }
    mode.reload(settings, this.#wireSettings(settings));
  }

  /** What a mode needs: identity, settings, the driver host's shared parts. */
  #context(settings: Settings): ModeContext {
    const host = this.#host;
    return {
      hostname: host.hostname(),
      serverIp: host.serverIp(),
      instanceId: host.instanceId,
      eligible: host.eligible(),
      data: host.data(),
      health: host.health(),
      settings,
      keyring: this.keyring,
      wire: this.#wireSettings(settings),
      host: {
        now,
        schedule: (wakeAt) => this.#schedule(wakeAt),
        log: (level, message, data) => host.debug(level, message, data),
        logs: (level) => host.logs(level),
        emit: (name, ...args) => host.events.emitBoth(name, ...args),
        handle: (event) => host.events.handle(event),
      },
      shut: () => this.shut,
      onDatagram: (datagram, from) => this.#intake.receive(datagram, from),
      onSendError: (err) => {
        host.counters.sendErrors++;
        this.mode?.driver.logRemote(3, 'send-error', `UDP send failed: ${err.message}`);
      },
      sentHeartbeat: (datagram) => {
        this.#intake.ownHeartbeat = datagram;
      },
      debug: (level, message, data) => host.debug(level, message, data),
      error: (code, message) => host.error(code, message),
      checkpointFailed: (reason) => host.events.emitError(new CheckpointError(reason)),
    };
  }

  #wireSettings(settings: Settings): WireSettings {
    return { keyring: this.keyring, maxPacketBytes: settings.max_packet_bytes, maxDataBytes: settings.max_data_bytes };
  }

  /** Be woken at `wakeAt` (a timer already set no later is kept: see WakeTimer). */
  #schedule(wakeAt: number): void {
    this.#intake.wakeAsked = wakeAt;
    if (this.shut) this.#wake.clear();
    else this.#wake.schedule(wakeAt);
  }
}
