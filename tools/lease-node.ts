/**
 * One lease-election machine run for real: the etcd adapter, a timer and the monotonic
 * clock around it, events out through an EventEmitter. The dev-only stand-in for the
 * component until the driver carries the coordinator (tests and the bench use it).
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { LeaseElection, type LeaseElectionOptions } from '../src/coordinator/lease-election';
import { EtcdStore, type EtcdSettings } from '../src/coordinator/etcd';
import type { LeaseOutput } from '../src/coordinator/types';
import type { CoreEvent, Instant, LogLine } from '../src/core/types';

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
    const settings: EtcdSettings = { type: 'etcd', hosts: config.hosts, prefix: config.prefix, ttl: config.ttlSeconds, max_keys: 2000 };
    this.#store = new EtcdStore(settings, {
      result: (id, result) => {
        this.#waiting.get(id)?.();
        this.#waiting.delete(id);
        this.#apply(this.machine.onResult(id, result, now()));
      },
      watch: (id, batch) => this.#apply(this.machine.onWatch(id, batch, now())),
      watchLost: (id, reason) => this.#apply(this.machine.onWatchLost(id, reason, now())),
    });
  }

  start(): void {
    this.#apply(this.machine.start(now()));
  }

  /** Master now (the lease deadline checked against the clock). */
  get master(): boolean {
    return this.machine.isMasterAt(now());
  }

  run(command: (machine: LeaseElection, at: Instant) => LeaseOutput | null): void {
    const out = command(this.machine, now());
    if (out) this.#apply(out);
  }

  /** Graceful: revoke the lease (waits for etcd's answer or the op's timeout), then close. */
  async shutdown(): Promise<void> {
    if (this.#closed) return;
    const out = this.machine.shutdown(now());
    const revoked = out.store.filter((op) => op.type === 'revoke').map((op) => new Promise<void>((resolve) => this.#waiting.set(op.id, resolve)));
    this.#apply(out);
    await Promise.all(revoked);
    await this.close();
  }

  /** Stop without telling etcd (a crash, as far as the cluster can see): the lease runs out. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#store.close();
  }

  #apply(out: LeaseOutput): void {
    if (this.#closed && out.store.every((op) => op.type !== 'revoke')) return;
    for (const op of out.store) this.#store.execute(op);
    for (const line of out.logs) this.#log(line);
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (!this.#closed && Number.isFinite(out.wakeAt)) {
      this.#timer = setTimeout(() => this.#apply(this.machine.tick(now())), Math.max(0, Math.ceil(out.wakeAt - performance.now())));
    }
    for (const event of out.events) this.emit('event', event satisfies CoreEvent);
  }

  #log(line: LogLine): void {
    if (line.level > this.#logLevel) return;
    this.logs.push(`${new Date().toISOString()} ${this.machine.hostname} [${line.level}] ${line.message}`);
    if (this.logs.length > 500) this.logs.shift();
  }
}

function now(): Instant {
  return { mono: performance.now(), wall: Date.now() };
}
