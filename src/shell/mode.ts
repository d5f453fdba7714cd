/**
 * A mode is how the component runs an election: with UDP heartbeats (udp-mode.ts) or with
 * etcd (etcd-mode.ts). Each opens its socket (and store), builds its machine behind the one
 * driver, and knows how to leave; the component only starts one and talks to it through this.
 */
import { performance } from 'node:perf_hooks';
import type { Settings } from '../config';
import type { ElectionCore } from '../core/election';
import type { LeaseElection } from '../coordinator/lease-election';
import type { Driver, DriverHost, WireSettings } from '../driver/driver';
import type { CheckpointResult } from '../driver/events';
import type { Elector } from '../elector/elector';
import type { CoreEvent } from '../elector/types';
import type { Address, HealthWord, JsonObject, JsonValue } from '../protocol/messages';
import type { Transport } from '../transport/types';
import type { Keyring } from '../wire/auth';

export interface Mode {
  readonly driver: Driver<Elector>;
  readonly transport: Transport;
  /** UDP heartbeats: the election core (for diagnostics), else null. */
  readonly core: ElectionCore | null;
  /** etcd: the lease election (for diagnostics), else null. */
  readonly lease: LeaseElection | null;
  /** Master now, as an application may act on it. */
  isMaster(): boolean;
  /** Publish a checkpoint (a JSON copy, already checked); resolves with its outcome. */
  setCheckpoint(copy: JsonValue): Promise<CheckpointResult>;
  /** The election said how setCheckpoint() calls ended (etcd mode). */
  settleCheckpoints(event: Extract<CoreEvent, { type: 'checkpoint' }>): void;
  /** Leave the cluster and close the socket (and store); resolves once closed. */
  shutdown(): Promise<void>;
  /** A config reload (shell/reload.ts has put back what waits for a restart): apply the rest. */
  reload(settings: Settings, wire: WireSettings): void;
  /** UDP broadcast: the address heartbeats go to ('' for other transports and the etcd mode). */
  readonly broadcastIp: string;
}

/** What a mode gets from the component. */
export interface ModeContext {
  readonly hostname: string;
  /** The parent server's IP (what a server bound to all interfaces registers). */
  readonly serverIp: string;
  readonly instanceId: string;
  readonly eligible: boolean;
  readonly data: JsonObject;
  readonly health: HealthWord | null;
  readonly settings: Settings;
  readonly keyring: Keyring | null;
  readonly wire: WireSettings;
  /** The driver host's parts both modes share (clock, timer, logs, events). */
  readonly host: Omit<DriverHost, 'send' | 'store'>;
  /** The component shut down meanwhile: a mode that finishes opening closes again. */
  shut(): boolean;
  onDatagram(datagram: Buffer, from: Address): void;
  onSendError(err: Error): void;
  /** A heartbeat sent to everyone (the intake recognises it when it loops back). */
  sentHeartbeat(datagram: Buffer): void;
  debug(level: number, message: string, data?: unknown): void;
  error(code: string, message: string): void;
  /** A CheckpointError for the application's `error` listeners (etcd mode). */
  checkpointFailed(reason: string): void;
}

/** What both modes apply of a reload: the transport's reloadable settings, the codec's, the election's policy and timing. */
export function reloadElection(ctx: ModeContext, mode: Mode, settings: Settings, wire: WireSettings): void {
  mode.transport.reconfigure?.(settings);
  mode.driver.wire = wire;
  if (ctx.shut()) return;
  mode.driver.run((core, now) =>
    core.setPolicy(
      {
        exitOnConflict: settings.exit_on_conflict,
        priority: settings.priority,
        quorum: settings.quorum,
        drainMs: settings.drain_timeout * 1000,
        preemptDelayMs: settings.preempt ? settings.preempt_delay * 1000 : null,
      },
      now,
    ),
  );
  ctx.debug(4, `Config reloaded: heartbeat_freq ${settings.heartbeat_freq} s, check_beats ${settings.check_beats}`);
  mode.driver.run((core, now) => core.setTiming({ tickMs: settings.heartbeat_freq * 1000, checkBeats: settings.check_beats }, now));
}

/** What both machines take of the master work's settings: a promote request waits for our exclusive() work to drain (app/master-work.ts); preemption, when on. */
export function workOptions(settings: Settings): { drainMs: number; preemptDelayMs?: number } {
  return { drainMs: settings.drain_timeout * 1000, ...(settings.preempt ? { preemptDelayMs: settings.preempt_delay * 1000 } : {}) };
}

/** Both clocks, read when a step runs. */
export function now(): { mono: number; wall: number } {
  return { mono: performance.now(), wall: Date.now() };
}
