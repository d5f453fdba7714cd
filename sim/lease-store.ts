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
 * etcd's own faults: a leader election (`leaderless`: keep-alives and reads wait at the
 * members for the new leader, writes fail or time out, nothing expires, and the new leader
 * extends every lease, as etcd's lessor promotion does), a stall (`stall`: the store answers
 * nothing until it ends, leases run on and expire at its end), a restore from a snapshot
 * (`restore`: keys, leases and the revision of an earlier moment, every watch broken; leases
 * refreshed, as etcd's members restart) and a wipe (`wipe`: empty, revision 1).
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

/** The store at one moment (etcdctl snapshot save). */
export interface StoreSnapshot {
  revision: number;
  kv: KeyValue[];
  leases: Array<{ id: string; ttlMs: number; keys: string[] }>;
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
  /** No leader until then (an etcd leader election): -Infinity when there is one. */
  leaderlessUntil = -Infinity;
  /** Answering nothing until then (a stall). */
  stalledUntil = -Infinity;
  /** Store time of the last restore or wipe (history rewritten under the clients). */
  rewrittenAt = -Infinity;
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
  /** Watch events delivered to clients (each event once per watcher that gets it). */
  eventsDelivered = 0;
  /** Requests sent, by op type. */
  readonly opsByType: Record<string, number> = Object.create(null) as Record<string, number>;

  #host: StoreHost;
  #nextLease = 0x1000;
  #watchers = new Map<string, Watcher>();
  /** Counts restores and wipes: a request or reply of an earlier one is lost. */
  #generation = 0;
  /** Requests held by members for the new leader. */
  #waitingForLeader: Array<() => void> = [];
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

  /**
   * An etcd leader election lasting `ms`: requests that need the leader wait for it (keep-
   * alives, linearizable reads) or fail (writes: the proposal is dropped, at once or at the
   * client's timeout); no lease expires; the new leader extends every lease to a full TTL.
   */
  leaderless(ms: number): void {
    const now = this.#host.now();
    const until = now + ms;
    if (until <= this.leaderlessUntil) return;
    this.leaderlessUntil = until;
    this.#host.at(until, () => {
      if (this.#host.now() < this.leaderlessUntil) return;
      this.leaderlessUntil = -Infinity;
      const at = this.#host.now();
      for (const lease of this.leases.values()) {
        lease.expiresAt = Math.max(lease.expiresAt, at + lease.ttlMs);
        this.#scheduleExpiry(lease);
      }
      for (const run of this.#waitingForLeader.splice(0)) run();
    });
  }

  /** The store answers nothing for `ms` (a stalled leader); requests are served when it ends, leases run on. */
  stall(ms: number): void {
    const now = this.#host.now();
    this.stalledUntil = Math.max(this.stalledUntil, now + ms);
    const until = this.stalledUntil;
    this.#host.at(until, () => {
      if (this.#host.now() < this.stalledUntil) return;
      // Expiry was held up with everything else: what ran out during the stall goes now.
      for (const lease of [...this.leases.values()]) if (lease.expiresAt <= this.#host.now()) this.#endLease(lease);
    });
  }

  /** The store as it is now (etcdctl snapshot save). */
  snapshot(): StoreSnapshot {
    return {
      revision: this.revision,
      kv: [...this.kv.values()].map((kv) => ({ ...kv })),
      leases: [...this.leases.values()].map((lease) => ({ id: lease.id, ttlMs: lease.ttlMs, keys: [...lease.keys] })),
    };
  }

  /**
   * Restored from `snapshot` (etcdctl snapshot restore, every member restarted): its keys,
   * leases (refreshed to a full TTL) and revision; every watch broken. Lease ids granted since
   * are unknown to it. Etcd 3.4 cannot raise the revision on restore: it goes back.
   */
  restore(snapshot: StoreSnapshot): void {
    this.#rewrite();
    const now = this.#host.now();
    this.revision = snapshot.revision;
    for (const kv of snapshot.kv) this.kv.set(kv.key, { ...kv });
    for (const saved of snapshot.leases) {
      const lease: StoreLease = {
        id: saved.id,
        ttlMs: saved.ttlMs,
        expiresAt: now + saved.ttlMs - this.earlyExpiryMs,
        keys: new Set(saved.keys),
      };
      this.leases.set(lease.id, lease);
      this.#scheduleExpiry(lease);
    }
    this.history.splice(0, this.history.length, ...this.history.filter((entry) => entry.revision <= snapshot.revision));
  }

  /** Every key and lease gone, revision 1 (a new cluster in place of the old). */
  wipe(): void {
    this.#rewrite();
    this.revision = 1;
    this.history.splice(0);
  }

  #rewrite(): void {
    this.rewrittenAt = this.#host.now();
    // Every member was stopped for it: requests and replies in flight are lost (the clients time out).
    this.#generation++;
    for (const watcher of [...this.#watchers.values()]) this.#breakWatch(watcher);
    this.kv.clear();
    this.leases.clear();
    this.#waitingForLeader = [];
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
        // Asked to start past the store's revision: it went back (a restore or a wipe since the
        // read). Events below would never come; the adapter ends such a watch (etcd.ts).
        if (op.fromRevision > this.revision + 1) return this.#breakWatch(watcher);
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
    this.#host.at(now + op.timeoutMs, () =>
      settle({ type: 'error', error: 'timed out', kind: 'timeout', endpoint: 'http://sim-store:2379' }),
    );
    if (!this.#reachable(client) && this.#host.random() < 0.5) {
      this.#host.at(now + this.#delay(), () =>
        settle({ type: 'error', error: 'connection refused', kind: 'unreachable', endpoint: 'http://sim-store:2379' }),
      );
      return;
    }
    const generation = this.#generation;
    const serve = (): void => {
      if (!this.#reachable(client) || generation !== this.#generation) return; // lost on the way (or while held): the client times out
      const at = this.#host.now();
      if (at < this.stalledUntil) return this.#host.at(this.stalledUntil, serve);
      if (at < this.leaderlessUntil) {
        // A keep-alive or a read waits at the member for the new leader; a write's proposal is dropped.
        if (op.type === 'keepAlive' || op.type === 'sync') return void this.#waitingForLeader.push(serve);
        if (this.#host.random() < 0.5)
          this.#host.at(at + this.#delay(), () => settle({ type: 'error', error: 'etcdserver: no leader', kind: 'no-leader' }));
        return;
      }
      const result = this.#apply(op);
      this.#host.at(this.#host.now() + this.#delay(), () => {
        if (this.cut.has(client) || generation !== this.#generation) return; // the reply is lost
        settle(result);
      });
    };
    this.#host.at(now + this.#delay(), serve);
  }

  #apply(op: Exclude<StoreOp, { type: 'watch' } | { type: 'unwatch' }>): StoreResult {
    const now = this.#host.now();
    switch (op.type) {
      case 'grant': {
        const ttlSeconds = Math.max(op.ttlSeconds, this.minTtlSeconds);
        const id = String(this.#nextLease++);
        const lease: StoreLease = {
          id,
          ttlMs: ttlSeconds * 1000,
          expiresAt: now + ttlSeconds * 1000 - this.earlyExpiryMs,
          keys: new Set(),
        };
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
          return {
            type: 'campaign',
            won: false,
            revision: this.revision,
            holder: holder ? { ...holder } : null,
            guard: guard ? { ...guard } : null,
          };
        }
        if (!this.#liveLease(op.lease) || op.alsoPut.some((put) => put.lease !== '0' && !this.#liveLease(put.lease)))
          return { type: 'error', error: 'lease not found' };
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
        const holds =
          op.fenceModRevision !== undefined
            ? (fence?.modRevision ?? 0) === op.fenceModRevision
            : fence !== undefined && fence.value === op.fenceValue;
        if (!holds) return { type: 'fenced', succeeded: false, revision: this.revision };
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
      // No leader, no expiry (the next extends every lease); a stalled store expires it when the stall ends.
      if (this.#host.now() < this.leaderlessUntil || this.#host.now() < this.stalledUntil) return;
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
      this.eventsDelivered += batch.events.length;
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
