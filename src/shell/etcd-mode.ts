/**
 * The etcd mode (docs/ETCD.md): the lease election decides, etcd carries its store ops (the
 * adapter, src/etcd/), and application messages go by UDP, unicast to the addresses members
 * registered. Leaving hands the role over first (`slave` reaches the app before the lease is
 * revoked), then revokes the lease, waits for etcd's answers or the ops' timeouts, and closes.
 */
import { LeaseElection } from '../coordinator/lease-election';
import { defaultTtlSeconds } from '../coordinator/timing';
import { Driver } from '../driver/driver';
import type { CheckpointResult } from '../driver/events';
import type { Elector } from '../elector/elector';
import type { CoreEvent, Instant, Output } from '../elector/types';
import { EtcdStore, loadEtcd3 } from '../etcd/etcd';
import { ipFamily } from '../protocol/address';
import type { JsonValue } from '../protocol/messages';
import { UdpUnicastTransport } from '../transport/unicast';
import type { Settings } from '../config';
import type { WireSettings } from '../driver/driver';
import { now, reloadElection, workOptions, type Mode, type ModeContext } from './mode';

export class EtcdMode implements Mode {
  readonly driver: Driver<Elector>;
  readonly transport: UdpUnicastTransport;
  readonly core = null;
  readonly lease: LeaseElection;
  readonly broadcastIp = '';
  readonly #ctx: ModeContext;
  readonly #store: EtcdStore;
  /** Store ops whose result someone awaits (the revoke at shutdown). */
  #awaitedOps = new Map<number, () => void>();
  /** setCheckpoint() calls awaiting etcd's answer, by ticket, oldest first. */
  #checkpointWaiters: Array<{ ticket: number; resolve: (result: CheckpointResult) => void }> = [];
  #checkpointTickets = 0;

  /**
   * Load etcd3, open the message socket and build the election; null when the component shut
   * down meanwhile. Throws (after logging why) when etcd3 is missing or no port can be bound.
   */
  static async start(ctx: ModeContext): Promise<EtcdMode | null> {
    const settings = ctx.settings;
    const coordinator = settings.coordinator as NonNullable<typeof settings.coordinator>;
    let module: ReturnType<typeof loadEtcd3>;
    try {
      module = loadEtcd3();
    } catch (err) {
      ctx.error('config', (err as Error).message);
      throw err;
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
        log: (level, message) => ctx.debug(level, message),
      });
      made.onMessage = (datagram, from) => ctx.onDatagram(datagram, from);
      made.onError = (err) => ctx.onSendError(err);
      return made;
    };
    ctx.debug(
      4,
      `Using etcd at ${coordinator.hosts.join(', ')} (prefix ${coordinator.prefix}); messages by UDP on port ${settings.comm_port}`,
    );
    let transport = makeTransport(settings.comm_port);
    try {
      await transport.open().catch((err: NodeJS.ErrnoException) => {
        // Peers learn each server's message address from its record in etcd: so several servers on
        // one host run with one config. Another holds comm_port here: take a port the system picks.
        if (err.code !== 'EADDRINUSE' || settings.comm_port === 0) throw err;
        ctx.debug(
          3,
          `UDP port ${settings.comm_port} is in use on ${settings.bind_ip} (another server on this host?); taking a free one: peers learn it from etcd`,
        );
        transport = makeTransport(0);
        return transport.open();
      });
    } catch (err) {
      ctx.error('socket', `UDP socket could not be bound on port ${settings.comm_port}: ${(err as Error).message}`);
      throw err;
    }
    if (ctx.shut()) {
      void transport.close();
      return null;
    }
    ctx.debug(4, `Messages by UDP on port ${transport.boundPort}`);
    return new EtcdMode(ctx, transport, module);
  }

  private constructor(ctx: ModeContext, transport: UdpUnicastTransport, module: ReturnType<typeof loadEtcd3>) {
    this.#ctx = ctx;
    this.transport = transport;
    const settings = ctx.settings;
    const coordinator = settings.coordinator as NonNullable<typeof settings.coordinator>;
    const tockMs = settings.heartbeat_freq * settings.check_beats * 1000;
    // The address peers send messages to: the bound one, or the server's own IP when bound to all.
    const wildcard = settings.bind_ip === '0.0.0.0' || settings.bind_ip === '::';
    const lease = (this.lease = new LeaseElection({
      hostname: ctx.hostname,
      ip: wildcard ? ctx.serverIp : settings.bind_ip,
      port: transport.boundPort,
      instanceId: ctx.instanceId,
      prefix: coordinator.prefix,
      tickMs: settings.heartbeat_freq * 1000,
      checkBeats: settings.check_beats,
      ttlSeconds: coordinator.ttl || defaultTtlSeconds(tockMs, coordinator.election_timeout_ms),
      eligible: ctx.eligible,
      data: ctx.data,
      ...(ctx.health ? { health: ctx.health } : {}),
      priority: settings.priority,
      maxServers: settings.max_servers,
      maxPacketBytes: settings.max_packet_bytes,
      maxDataBytes: settings.max_data_bytes,
      // Servers started together (a deploy, a reboot) may take a second to make their first
      // read on a busy machine: listen that long at least, so rank decides, not the fastest.
      listenMs: 1000,
      authenticated: ctx.keyring !== null,
      ...workOptions(settings),
    }));
    // Not budgeted as network input: the election's own lines about the store are rate-limited
    // where they are made (a failure once a minute, bad values once a minute), and a level-1
    // line must not be lost to a burst of debug ones.
    const step = (run: (now: Instant) => Output): void => {
      if (!ctx.shut()) this.driver.run((_core, now) => run(now));
    };
    this.#store = new EtcdStore(
      coordinator,
      {
        result: (id, outcome) => {
          const waiter = this.#awaitedOps.get(id);
          this.#awaitedOps.delete(id);
          // Results still count after shutdown began: the outcome of a checkpoint sent with the last resign.
          this.driver.run((_core, now) => lease.onResult(id, outcome, now));
          waiter?.();
        },
        watch: (id, batch) => step((now) => lease.onWatch(id, batch, now)),
        watchLost: (id, reason) => step((now) => lease.onWatchLost(id, reason, now)),
      },
      module,
    );
    const store = this.#store;
    this.driver = new Driver<Elector>(
      lease,
      {
        ...ctx.host,
        send: (datagram, message, to, done) => {
          ctx.debug(10, `Sending ${message.action}`, message);
          if (to) transport.send(datagram, to, done);
          else done();
        },
        store: (op) => store.execute(op),
      },
      ctx.wire,
    );
  }

  /**
   * Past the lease deadline we are master no more, even if the timer that steps us down has
   * not fired yet (a frozen process just resumed): step down now, so `slave` is emitted before
   * the app acts as master.
   */
  isMaster(): boolean {
    const at = now();
    const lease = this.lease;
    if (lease.master && !lease.isMasterAt(at) && !this.#ctx.shut()) this.driver.tick();
    return lease.isMasterAt(at);
  }

  /** Stored fenced by our term, retried until etcd stores it or we lose the role: resolves with which. */
  setCheckpoint(copy: JsonValue): Promise<CheckpointResult> {
    const ticket = ++this.#checkpointTickets;
    return new Promise((resolve) => {
      this.#checkpointWaiters.push({ ticket, resolve });
      this.driver.run((core, now) => {
        const out = core.setCheckpoint(copy, now, ticket);
        // Past the lease's deadline a moment ago: not master after all, nothing to wait for.
        if (!out) this.settleCheckpoints({ type: 'checkpoint', ok: false, ticket, reason: 'this server is no longer master' });
        return out;
      });
    });
  }

  /** Every setCheckpoint() call up to the event's ticket has this outcome. */
  settleCheckpoints(event: Extract<CoreEvent, { type: 'checkpoint' }>): void {
    const settled = this.#checkpointWaiters.filter((waiter) => waiter.ticket <= event.ticket);
    if (settled.length === 0) return;
    this.#checkpointWaiters = this.#checkpointWaiters.filter((waiter) => waiter.ticket > event.ticket);
    for (const waiter of settled) waiter.resolve({ ok: event.ok, reason: event.reason });
    if (!event.ok) this.#ctx.checkpointFailed(event.reason);
  }

  /** Timings and policy apply now; a new TTL, the store and the prefix wait for a restart (shell/reload.ts). */
  reload(settings: Settings, wire: WireSettings): void {
    reloadElection(this.#ctx, this, settings, wire);
  }

  /**
   * First `slave` (the app stops its master work, as client-go's OnStoppedLeading), with a
   * checkpoint not yet stored sent along with the resign; then revoke our lease (our record
   * and any election key of ours go at once, so the next in rank takes over in one round
   * trip), wait for etcd's answers or the ops' timeouts, then close.
   */
  async shutdown(): Promise<void> {
    const lease = this.lease;
    let awaited: Array<Promise<void>> = [];
    const await_ = (out: Output): void => {
      const ids = out.store.filter((op) => op.type === 'revoke' || op.type === 'fenced').map((op) => op.id);
      awaited = [...awaited, ...ids.map((id) => new Promise<void>((resolve) => this.#awaitedOps.set(id, resolve)))];
    };
    this.driver.run((_core, now) => lease.leave(now), { after: await_ });
    this.driver.run((core, now) => core.shutdown(now), { after: await_ });
    await Promise.all(awaited);
    // Whatever etcd did not answer in time: the caller learns it was perhaps not stored.
    this.settleCheckpoints({ type: 'checkpoint', ok: false, ticket: Infinity, reason: 'shut down before etcd answered' });
    await this.#store.close();
    await this.transport.close();
  }
}
