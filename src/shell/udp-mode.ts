/**
 * The UDP mode: heartbeats on one socket (broadcast, multicast or unicast), the election core
 * behind the driver. Leaving sends the shutdown notice, then closes the socket.
 */
import * as os from 'node:os';
import { computeBroadcastIP } from '../config';
import { ElectionCore } from '../core/election';
import { Driver } from '../driver/driver';
import type { CheckpointResult } from '../driver/events';
import type { Elector } from '../elector/elector';
import type { JsonValue } from '../protocol/messages';
import type { Transport } from '../transport/types';
import { encode } from '../wire/codec';
import type { Settings } from '../config';
import type { WireSettings } from '../driver/driver';
import { reloadElection, workOptions, type Mode, type ModeContext } from './mode';
import { createTransport } from './transports';

export class UdpMode implements Mode {
  readonly driver: Driver<Elector>;
  readonly transport: Transport;
  readonly core: ElectionCore;
  readonly lease = null;
  readonly #ctx: ModeContext;
  #broadcastIp: string;

  /** Open the socket and build the election; null when the component shut down meanwhile. */
  static async start(ctx: ModeContext, broadcastIp: string): Promise<UdpMode | null> {
    const settings = ctx.settings;
    const transport = createTransport(settings, { broadcastIp, log: (level, message) => ctx.debug(level, message) });
    ctx.debug(4, `Using ${transport.description ?? settings.transport}`);
    ctx.debug(4, `Starting UDP server on port: ${settings.comm_port}`);
    transport.onMessage = (datagram, from) => ctx.onDatagram(datagram, from);
    transport.onError = (err) => ctx.onSendError(err);
    transport.gossipEncoder = (addrs) => encode({ action: 'peers', hostname: ctx.hostname, addrs }, ctx.keyring);
    try {
      await transport.open();
    } catch (err) {
      ctx.error('socket', `UDP socket could not be bound on port ${settings.comm_port}: ${(err as Error).message}`);
      throw err;
    }
    if (ctx.shut()) {
      void transport.close();
      return null;
    }
    return new UdpMode(ctx, transport, broadcastIp);
  }

  private constructor(ctx: ModeContext, transport: Transport, broadcastIp: string) {
    const settings = ctx.settings;
    this.#ctx = ctx;
    this.#broadcastIp = broadcastIp;
    this.transport = transport;
    this.core = new ElectionCore({
      hostname: ctx.hostname,
      ip: ctx.serverIp,
      instanceId: ctx.instanceId,
      pid: process.pid,
      eligible: ctx.eligible,
      data: ctx.data,
      ...(ctx.health ? { health: ctx.health } : {}),
      tickMs: settings.heartbeat_freq * 1000,
      checkBeats: settings.check_beats,
      exitOnConflict: settings.exit_on_conflict,
      maxServers: settings.max_servers,
      priority: settings.priority,
      quorum: settings.quorum,
      clusterId: settings.cluster_id,
      verifyInstances: ctx.keyring !== null,
      ...workOptions(settings),
    });
    const debug10 = ctx.host.logs;
    this.driver = new Driver<Elector>(
      this.core,
      {
        ...ctx.host,
        send: (datagram, message, to, done, loopback) => {
          if (debug10 === undefined || debug10(10)) ctx.debug(10, `Sending ${message.action}`, message);
          const target = to && transport.targets ? to : undefined;
          transport.send(datagram, target, done);
          if (loopback) transport.sendToSelf?.(datagram);
          if (message.action === 'heartbeat' && target === undefined) ctx.sentHeartbeat(datagram);
        },
      },
      ctx.wire,
    );
  }

  /**
   * Woken from a stall, the app's timers that came due first run before ours: with ours past
   * due, run it now, so a master stalled past what its peers wait steps down (`slave`, its
   * work aborted) before the app starts work under its old term, as in etcd mode (SPEC 4.11).
   */
  isMaster(): boolean {
    if (this.core.master && this.driver.overdue()) this.driver.tick();
    return this.core.master;
  }

  /** It rides on every heartbeat from now on: sent is all this mode can say. */
  setCheckpoint(copy: JsonValue): Promise<CheckpointResult> {
    this.driver.run((core, now) => core.setCheckpoint(copy, now));
    return Promise.resolve({ ok: true, reason: 'sent' });
  }

  settleCheckpoints(): void {}

  /** Computed at start whatever the transport (the original's `broadcastIP`); a reload changes it where heartbeats go there. */
  get broadcastIp(): string {
    return this.#broadcastIp;
  }

  reload(settings: Settings, wire: WireSettings): void {
    const broadcast = broadcastAddress(settings.broadcast_ip);
    if (this.transport.retarget && broadcast !== this.#broadcastIp) {
      this.#broadcastIp = broadcast;
      this.transport.retarget(broadcast);
    }
    reloadElection(this.#ctx, this, settings, wire);
  }

  /** The shutdown notice (the survivors elect without waiting a tock), then the socket closes. */
  shutdown(): Promise<void> {
    return new Promise((resolve) => {
      this.driver.run((core, now) => core.shutdown(now), { sent: () => void this.transport.close().then(resolve) });
    });
  }
}

/** The broadcast address in use: the configured one, or the one computed from the interfaces. */
export function broadcastAddress(broadcastIp: string): string {
  return broadcastIp || computeBroadcastIP(os.networkInterfaces());
}
