/**
 * One lease-election machine run for real, by the component's driver: the etcd adapter, a
 * timer and the monotonic clock around it, events out through an EventEmitter. The election
 * alone in a process, without pixl-server (tests and the bench send it real signals).
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { LeaseElection, type LeaseElectionOptions } from '../src/coordinator/lease-election';
import { EtcdStore, type EtcdSettings } from '../src/etcd/etcd';
import { Driver } from '../src/driver/driver';
import type { CoreEvent, Instant, Output } from '../src/elector/types';

export interface LeaseNodeConfig {
  hostname: string;
  hosts: string[];
  prefix: string;
  tickMs: number;
  checkBeats: number;
  ttlSeconds: number;
  eligible?: boolean;
  priority?: number;
  /** Log lines up to this level are kept in `logs`. */
  logLevel?: number;
  /** Listen after the first read before a first campaign (see LeaseElectionOptions.listenMs). */
  listenMs?: number;
}

export class LeaseNode extends EventEmitter {
  readonly machine: LeaseElection;
  readonly driver: Driver<LeaseElection>;
  readonly logs: string[] = [];
  #store: EtcdStore;
  #timer: NodeJS.Timeout | null = null;
  #logLevel: number;
  #closed = false;
  /** Ops whose result the caller waits for (the revoke at shutdown). */
  #waiting = new Map<number, () => void>();

  constructor(config: LeaseNodeConfig) {
    super();
    this.#logLevel = config.logLevel ?? 4;
    const options: LeaseElectionOptions = {
      hostname: config.hostname,
      ip: '127.0.0.1',
      port: 0,
      instanceId: randomBytes(8).toString('hex'),
      prefix: config.prefix,
      tickMs: config.tickMs,
      checkBeats: config.checkBeats,
      ttlSeconds: config.ttlSeconds,
    };
    if (config.eligible !== undefined) options.eligible = config.eligible;
    if (config.priority !== undefined) options.priority = config.priority;
    if (config.listenMs !== undefined) options.listenMs = config.listenMs;
    this.machine = new LeaseElection(options);
    const settings: EtcdSettings = {
      type: 'etcd',
      hosts: config.hosts,
      prefix: config.prefix,
      ttl: config.ttlSeconds,
      election_timeout_ms: 1000,
      max_keys: 2000,
    };
    this.#store = new EtcdStore(settings, {
      result: (id, result) => {
        this.driver.run((m, now) => m.onResult(id, result, now));
        this.#waiting.get(id)?.();
        this.#waiting.delete(id);
      },
      watch: (id, batch) => this.driver.run((m, now) => m.onWatch(id, batch, now), { remote: true }),
      watchLost: (id, reason) => this.driver.run((m, now) => m.onWatchLost(id, reason, now), { remote: true }),
    });
    // The component's driver, with this process as its host: no datagrams (no message port).
    this.driver = new Driver<LeaseElection>(
      this.machine,
      {
        now,
        send: (_datagram, _message, _to, done) => done(),
        schedule: (wakeAt) => this.#schedule(wakeAt),
        log: (level, message) => this.#log(level, message),
        emit: () => undefined,
        observe: (event) => this.emit('event', event satisfies CoreEvent),
        store: (op) => {
          if (!this.#closed || op.type === 'revoke') this.#store.execute(op);
        },
      },
      null,
    );
  }

  start(): void {
    this.driver.run((m, at) => m.start(at));
  }

  /** Master now (the lease deadline checked against the clock). */
  get master(): boolean {
    return this.machine.isMasterAt(now());
  }

  run(command: (machine: LeaseElection, at: Instant) => Output | null): void {
    this.driver.run(command);
  }

  /** Graceful: revoke the lease (waits for etcd's answer or the op's timeout), then close. */
  async shutdown(): Promise<void> {
    if (this.#closed) return;
    let awaited: Array<Promise<void>> = [];
    const after = (out: Output): void => {
      awaited = [
        ...awaited,
        ...(out.store ?? [])
          .filter((op) => op.type === 'revoke' || op.type === 'fenced')
          .map((op) => new Promise<void>((resolve) => this.#waiting.set(op.id, resolve))),
      ];
    };
    // As the component: `slave` first, then the revoke.
    this.driver.run((m, at) => m.leave(at), { after });
    this.driver.run((m, at) => m.shutdown(at), { after });
    await Promise.all(awaited);
    await this.close();
  }

  /** Stop without telling etcd (a crash, as far as the cluster can see): the lease runs out. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#store.close();
  }

  #schedule(wakeAt: number): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (!this.#closed && Number.isFinite(wakeAt)) {
      this.#timer = setTimeout(() => this.driver.tick(), Math.max(0, Math.ceil(wakeAt - performance.now())));
    }
  }

  #log(level: number, message: string): void {
    if (level > this.#logLevel) return;
    this.logs.push(`${new Date().toISOString()} ${this.machine.hostname} [${level}] ${message}`);
    if (this.logs.length > 500) this.logs.shift();
  }
}

function now(): Instant {
  return { mono: performance.now(), wall: Date.now() };
}
