/**
 * A linearizable lease store (what etcd is to the lease election), in simulated time.
 *
 * One revision counter; every request is applied atomically at the instant it reaches the
 * store; leases expire in store time (at their deadline, or at the next sweep of
 * `expirySweepMs`, as etcd's leader checks every 500 ms). While the store is down nothing
 * is applied and no lease expires (etcd without a quorum has no leader to expire them);
 * when it comes back every lease is refreshed to a full TTL (etcd's new leader does the same).
 *
 * The network to it is modelled per client: request, response and watch delays, requests
 * and responses lost while the client's link is cut or the store is down, and a watch that
 * breaks then (its owner hears of it a little later and must read everything again; no
 * event is ever silently skipped on a watch that is still reported healthy).
 *
 * This file is the store alone; sim/lease-cluster.ts drives machines against it.
 */
import type { KeyValue, StoreOp, StoreResult, WatchBatch, WatchEvent } from '../src/protocol/store';

export interface StoreLease {
  id: string;
  ttlMs: number;
  /** Store time at which it expires, unless refreshed. */
  expiresAt: number;
  keys: Set<string>;
}

interface Watcher {
  client: string;
  id: number;
  prefix: string;
  broken: boolean;
  /** Not yet at the store (its request is on the way): it sees nothing yet. */
  pending: boolean;
  /** Deliveries to this watcher are FIFO: none is scheduled before this time. */
  lastDeliveryAt: number;
}

/** What the store asks its host (the simulated cluster) to schedule. */
export interface StoreHost {
  now(): number;
  /** Run `fn` at simulated time `time`. */
  at(time: number, fn: () => void): void;
  /** A random number in [0, 1). */
  random(): number;
}

export interface LeaseStoreOptions {
  /** One-way delay client → store and back, ms: uniform in [min, max]. */
  minDelayMs?: number;
  maxDelayMs?: number;
  /** Leases expire at the next multiple of this (0: exactly at their deadline). */
  expirySweepMs?: number;
  /** The store raises shorter TTLs to this (etcd: 1.5 election timeouts, rounded up to seconds). */
  minTtlSeconds?: number;
  /** How long a client takes to notice that its watch broke, at most, ms. */
  watchLostDelayMs?: number;
  /**
   * Leases end this many ms before their TTL (a store whose clock runs fast). 0 for a
   * correct store; the checker's own tests set it past the machine's margin to prove that
   * an overlap is caught.
   */
  earlyExpiryMs?: number;
}

export class SimLeaseStore {
  revision = 1;
  readonly kv = new Map<string, KeyValue>();
  readonly leases = new Map<string, StoreLease>();
  /** Every change, for watches that start in the past. */
  readonly history: Array<{ revision: number; events: WatchEvent[] }> = [];
  down = false;
  /** Store time at which the current outage began (null: up). */
  downSince: number | null = null;
  /** Clients whose link to the store is cut. */
  readonly cut = new Set<string>();
  /** Extra one-way delay on every message, ms (a slow network or an overloaded store). */
  extraDelayMs = 0;
  minDelayMs: number;
  maxDelayMs: number;
  readonly expirySweepMs: number;
  readonly minTtlSeconds: number;
  readonly watchLostDelayMs: number;
  readonly earlyExpiryMs: number;
  requests = 0;
  /** Requests sent, by op type. */
  readonly opsByType: Record<string, number> = Object.create(null) as Record<string, number>;

  #host: StoreHost;
  #nextLease = 0x1000;
  #watchers = new Map<string, Watcher>();
  /** Per client: deliver a result/watch batch/watch loss to it. */
  #deliver: (client: string, item: ClientItem) => void;

  constructor(host: StoreHost, deliver: (client: string, item: ClientItem) => void, options: LeaseStoreOptions = {}) {
    this.#host = host;
    this.#deliver = deliver;
    this.minDelayMs = options.minDelayMs ?? 0.5;
    this.maxDelayMs = options.maxDelayMs ?? 2;
    this.expirySweepMs = options.expirySweepMs ?? 0;
    this.minTtlSeconds = options.minTtlSeconds ?? 1;
    this.watchLostDelayMs = options.watchLostDelayMs ?? 50;
    this.earlyExpiryMs = options.earlyExpiryMs ?? 0;
  }

  /** The largest one-way delay now possible. */
  get maxOneWayMs(): number {
    return this.maxDelayMs + this.extraDelayMs;
  }

  #delay(): number {
    return this.minDelayMs + this.#host.random() * (this.maxDelayMs - this.minDelayMs) + this.extraDelayMs;
  }

  #reachable(client: string): boolean {
    return !this.down && !this.cut.has(client);
  }

  // ---- faults ----------------------------------------------------------------------------

  /** The whole store stops (every member down, or no quorum). */
  stop(): void {
    if (this.down) return;
    this.down = true;
    this.downSince = this.#host.now();
    for (const watcher of this.#watchers.values()) this.#breakWatch(watcher);
  }

  /** The store is back: a new leader refreshes every lease to a full TTL, as etcd's does. */
  start(): void {
    if (!this.down) return;
    this.down = false;
    this.downSince = null;
    const now = this.#host.now();
    for (const lease of this.leases.values()) {
      lease.expiresAt = Math.max(lease.expiresAt, now + lease.ttlMs);
      this.#scheduleExpiry(lease);
    }
  }

  /** Cut one client's link (its requests, replies and watch events are lost). */
  cutLink(client: string): void {
    this.cut.add(client);
    for (const watcher of this.#watchers.values()) if (watcher.client === client) this.#breakWatch(watcher);
  }

  healLink(client: string): void {
    this.cut.delete(client);
  }

  /** A client process died: its watches end (its leases live on until they expire). */
  forget(client: string): void {
    for (const [key, watcher] of this.#watchers) if (watcher.client === client) this.#watchers.delete(key);
  }

  // ---- requests ----------------------------------------------------------------------------

  /**
   * A client sends `op` now. Its result reaches the client by `deliver`, exactly once:
   * the reply, or an error at `timeoutMs` when the request or the reply was lost (or at once,
   * half the time, when the link is down: a refused connection).
   */
  send(client: string, op: StoreOp): void {
    const now = this.#host.now();
    if (op.type === 'unwatch') {
      this.#watchers.delete(`${client}/${op.id}`);
      return;
    }
    if (op.type === 'watch') {
      const watcher: Watcher = { client, id: op.id, prefix: op.prefix, broken: false, pending: true, lastDeliveryAt: now };
      this.#watchers.set(`${client}/${op.id}`, watcher);
      if (!this.#reachable(client)) {
        this.#breakWatch(watcher);
        return;
      }
      this.#host.at(now + this.#delay(), () => {
        if (watcher.broken || !this.#watchers.has(`${client}/${op.id}`)) return;
        if (!this.#reachable(client)) return this.#breakWatch(watcher);
        watcher.pending = false;
        // Replay what happened since `fromRevision`, then follow.
        for (const entry of this.history) {
          if (entry.revision < op.fromRevision) continue;
          const events = entry.events.filter((event) => event.kv.key.startsWith(op.prefix));
          if (events.length > 0) this.#push(watcher, { events });
        }
      });
      return;
    }
    this.requests++;
    this.opsByType[op.type] = (this.opsByType[op.type] ?? 0) + 1;
    let settled = false;
    const settle = (result: StoreResult): void => {
      if (settled) return;
      settled = true;
      this.#deliver(client, { kind: 'result', id: op.id, result });
    };
    this.#host.at(now + op.timeoutMs, () => settle({ type: 'error', error: 'timed out' }));
    if (!this.#reachable(client) && this.#host.random() < 0.5) {
      this.#host.at(now + this.#delay(), () => settle({ type: 'error', error: 'connection refused' }));
      return;
    }
    this.#host.at(now + this.#delay(), () => {
      if (!this.#reachable(client)) return; // lost on the way: the client times out
      const result = this.#apply(op);
      this.#host.at(this.#host.now() + this.#delay(), () => {
        if (this.cut.has(client)) return; // the reply is lost
        settle(result);
      });
    });
  }

  #apply(op: Exclude<StoreOp, { type: 'watch' } | { type: 'unwatch' }>): StoreResult {
    const now = this.#host.now();
    switch (op.type) {
      case 'grant': {
        const ttlSeconds = Math.max(op.ttlSeconds, this.minTtlSeconds);
        const id = String(this.#nextLease++);
        const lease: StoreLease = { id, ttlMs: ttlSeconds * 1000, expiresAt: now + ttlSeconds * 1000 - this.earlyExpiryMs, keys: new Set() };
        this.leases.set(id, lease);
        this.#scheduleExpiry(lease);
        return { type: 'grant', lease: id, ttlSeconds };
      }
      case 'keepAlive': {
        const lease = this.#liveLease(op.lease);
        if (!lease) return { type: 'keepAlive', ttlSeconds: 0 };
        lease.expiresAt = now + lease.ttlMs - this.earlyExpiryMs;
        this.#scheduleExpiry(lease);
        return { type: 'keepAlive', ttlSeconds: lease.ttlMs / 1000 };
      }
      case 'revoke': {
        const lease = this.leases.get(op.lease);
        if (lease) this.#endLease(lease);
        return { type: 'revoke' };
      }
      case 'put': {
        if (op.lease !== '0' && !this.#liveLease(op.lease)) return { type: 'error', error: 'lease not found' };
        this.revision++;
        this.#commit([this.#put(op.key, op.value, op.lease)]);
        return { type: 'put', revision: this.revision };
      }
      case 'campaign': {
        const holder = this.kv.get(op.key);
        const guard = this.kv.get(op.guard.key);
        if (holder || (guard?.modRevision ?? 0) !== op.guard.modRevision) {
          return { type: 'campaign', won: false, revision: this.revision, holder: holder ? { ...holder } : null, guard: guard ? { ...guard } : null };
        }
        if (!this.#liveLease(op.lease) || op.alsoPut.some((put) => put.lease !== '0' && !this.#liveLease(put.lease))) return { type: 'error', error: 'lease not found' };
        this.revision++;
        const events = [this.#put(op.key, op.value, op.lease), ...op.alsoPut.map((put) => this.#put(put.key, put.value, put.lease))];
        if (op.alsoDelete !== undefined) {
          const deleted = this.#delete(op.alsoDelete);
          if (deleted) events.push(deleted);
        }
        this.#commit(events);
        return { type: 'campaign', won: true, revision: this.revision, holder: null, guard: null };
      }
      case 'fenced': {
        const fence = this.kv.get(op.fenceKey);
        if (!fence || fence.value !== op.fenceValue) return { type: 'fenced', succeeded: false, revision: this.revision };
        const puts = op.puts ?? [];
        if (puts.some((put) => put.lease !== '0' && !this.#liveLease(put.lease))) return { type: 'error', error: 'lease not found' };
        this.revision++;
        const events: WatchEvent[] = [];
        for (const key of op.deleteKeys ?? []) {
          const deleted = this.#delete(key);
          if (deleted) events.push(deleted);
        }
        for (const put of puts) events.push(this.#put(put.key, put.value, put.lease));
        this.#commit(events);
        return { type: 'fenced', succeeded: true, revision: this.revision };
      }
      case 'sync': {
        const kvs = [...this.kv.values()].filter((kv) => kv.key.startsWith(op.prefix)).map((kv) => ({ ...kv }));
        return { type: 'sync', revision: this.revision, kvs };
      }
    }
  }

  /** An expired lease is as good as gone (etcd answers "not found" while it revokes it). */
  #liveLease(id: string): StoreLease | null {
    const lease = this.leases.get(id);
    return lease && this.#host.now() < lease.expiresAt ? lease : null;
  }

  /** A write outside any client (an operator, or an attacker with write access). */
  write(key: string, value: string): void {
    if (this.down) return;
    this.revision++;
    this.#commit([this.#put(key, value, '0')]);
  }

  #put(key: string, value: string, lease: string): WatchEvent {
    const existing = this.kv.get(key);
    if (existing && existing.lease !== '0') this.leases.get(existing.lease)?.keys.delete(key);
    const kv: KeyValue = { key, value, createRevision: existing?.createRevision ?? this.revision, modRevision: this.revision, lease };
    this.kv.set(key, kv);
    if (lease !== '0') this.leases.get(lease)?.keys.add(key);
    return { type: 'put', kv: { ...kv } };
  }

  #delete(key: string): WatchEvent | null {
    const existing = this.kv.get(key);
    if (!existing) return null;
    this.kv.delete(key);
    if (existing.lease !== '0') this.leases.get(existing.lease)?.keys.delete(key);
    return { type: 'delete', kv: { key, value: '', createRevision: 0, modRevision: this.revision, lease: '0' } };
  }

  #endLease(lease: StoreLease): void {
    this.leases.delete(lease.id);
    if (lease.keys.size === 0) return;
    this.revision++;
    const events: WatchEvent[] = [];
    for (const key of lease.keys) {
      const deleted = this.#delete(key);
      if (deleted) events.push(deleted);
    }
    this.#commit(events);
  }

  #scheduleExpiry(lease: StoreLease): void {
    const sweep = this.expirySweepMs;
    const due = sweep > 0 ? Math.ceil(lease.expiresAt / sweep) * sweep : lease.expiresAt;
    const expected = lease.expiresAt;
    this.#host.at(due, () => {
      if (this.down || this.leases.get(lease.id) !== lease || lease.expiresAt !== expected) return;
      this.#endLease(lease);
    });
  }

  #commit(events: WatchEvent[]): void {
    if (events.length === 0) return;
    this.history.push({ revision: this.revision, events });
    for (const watcher of this.#watchers.values()) {
      if (watcher.broken || watcher.pending) continue;
      const mine = events.filter((event) => event.kv.key.startsWith(watcher.prefix));
      if (mine.length > 0) this.#push(watcher, { events: mine });
    }
  }

  #push(watcher: Watcher, batch: WatchBatch): void {
    const time = Math.max(watcher.lastDeliveryAt, this.#host.now() + this.#delay());
    watcher.lastDeliveryAt = time;
    this.#host.at(time, () => {
      if (watcher.broken || !this.#watchers.has(`${watcher.client}/${watcher.id}`)) return;
      this.#deliver(watcher.client, { kind: 'watch', id: watcher.id, batch });
    });
  }

  #breakWatch(watcher: Watcher): void {
    if (watcher.broken) return;
    watcher.broken = true;
    this.#watchers.delete(`${watcher.client}/${watcher.id}`);
    const at = this.#host.now() + this.#host.random() * this.watchLostDelayMs;
    this.#host.at(at, () => this.#deliver(watcher.client, { kind: 'watchLost', id: watcher.id }));
  }
}

export type ClientItem =
  | { kind: 'result'; id: number; result: StoreResult }
  | { kind: 'watch'; id: number; batch: WatchBatch }
  | { kind: 'watchLost'; id: number };
