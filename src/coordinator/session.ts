/**
 * Our session with the store: the lease and everything that hangs on it. We take a lease,
 * keep it alive, register our record under it (rewritten when it changes, at most once a
 * tick), read the cluster and watch it from the revision read. The lease is trusted only
 * until a margin before its earliest possible expiry at the store (`validUntil`, counted
 * from when we SENT the keep-alive the store acknowledged); past it, or when the store no
 * longer knows it, the lease is abandoned (revoked in the background, in case it lives) and
 * a new one is asked for. Results of ops sent under an abandoned lease are void (`epoch`).
 *
 * The session also keeps the timing every module reads: tick, tock, the TTL in use, and the
 * op timeout and retry delay derived from it.
 */
import type { Instant } from '../core/types';
import type { KeyValue, StoreResult } from '../protocol/store';
import type { LeaseStep, Pending } from './step';
import type { LeaseTable } from './table';
import * as records from './records';

/**
 * How long before the lease's earliest possible expiry at the store we stop acting as
 * master: a tenth of the TTL, at least 100 ms. It covers our timers firing late (the event
 * loop busy) and the store's clock running a little faster than ours.
 */
export function safetyMarginMs(ttlMs: number): number {
  return Math.min(ttlMs / 3, Math.max(100, ttlMs / 10));
}

export interface SessionOptions {
  hostname: string;
  instanceId: string;
  ip: string;
  port: number;
  keys: records.Keys;
  limits: records.Limits;
  tickMs: number;
  checkBeats: number;
  ttlSeconds: number;
}

/** What the election does when the session changes under it. */
export interface SessionHooks {
  /** The lease is gone or may be: we are master of nothing and cannot know who is. */
  leaseLost(reason: string): void;
  /** A full read of the prefix, at `revision`. */
  read(kvs: KeyValue[], revision: number, now: Instant): void;
}

export class LeaseSession {
  readonly #o: SessionOptions;
  readonly #step: LeaseStep;
  readonly #table: LeaseTable;
  readonly #hooks: SessionHooks;
  tickMs: number;
  checkBeats: number;
  ttlSeconds: number;

  started = false;
  stopped = false;
  #startedAt = 0;
  #lease: { id: string; ttlMs: number; validUntil: number } | null = null;
  #granting = false;
  #nextGrantAt = 0;
  #keepAliveInFlight = false;
  #nextKeepAliveAt = Infinity;
  /** Our record is in the store under the current lease. */
  registered = false;
  #recordInFlight = false;
  #lastRecordText = '';
  #recordDueAt = Infinity;
  #nextRecordCheckAt = Infinity;
  /** The members are read and watched. */
  synced = false;
  #syncInFlight = false;
  #nextSyncAt = Infinity;
  /** The revision of the last full read: watch events at or below it are already in it. */
  syncRevision = 0;
  watchId: number | null = null;
  #watchStartedAt = -Infinity;
  /** Leases we abandoned, revoked until the store confirms (so their keys go as soon as it is back). */
  #abandoned: string[] = [];
  #revokeInFlight = false;
  #nextRevokeAt = Infinity;

  constructor(options: SessionOptions, step: LeaseStep, table: LeaseTable, hooks: SessionHooks) {
    this.#o = options;
    this.#step = step;
    this.#table = table;
    this.#hooks = hooks;
    this.tickMs = options.tickMs;
    this.checkBeats = options.checkBeats;
    this.ttlSeconds = options.ttlSeconds;
  }

  get active(): boolean {
    return this.started && !this.stopped;
  }
  get lease(): { readonly id: string; readonly ttlMs: number; readonly validUntil: number } | null {
    return this.#lease;
  }
  get tockMs(): number {
    return this.tickMs * this.checkBeats;
  }
  /** The lease TTL in use (granted), or the one asked for before the first grant, ms. */
  get ttlMs(): number {
    return this.#lease?.ttlMs ?? this.ttlSeconds * 1000;
  }
  /** Ops time out before the next keep-alive is due, so a hung one is retried in time. */
  get opTimeoutMs(): number {
    return Math.max(50, this.ttlMs / 3);
  }
  get retryMs(): number {
    return Math.max(50, Math.min(this.ttlMs / 6, 1000));
  }

  start(now: Instant): void {
    this.started = true;
    this.#startedAt = now.mono;
    this.#nextRecordCheckAt = now.mono + this.tickMs;
    this.#step.log(4, `Coordinator: asking the store for a lease of ${this.ttlSeconds} s under ${this.#o.keys.prefix}`);
    this.#requestGrant(now);
  }

  /** Time passed: grant, keep-alive and read retries, the rate-limited record update, revokes. */
  tick(now: Instant): void {
    if (!this.#lease && !this.#granting && now.mono >= this.#nextGrantAt) this.#requestGrant(now);
    const lease = this.#lease;
    if (lease && !this.#keepAliveInFlight && now.mono >= this.#nextKeepAliveAt) {
      this.#keepAliveInFlight = true;
      this.#nextKeepAliveAt = Infinity;
      this.#step.op({ type: 'keepAlive', id: 0, lease: lease.id, timeoutMs: this.opTimeoutMs }, now.mono);
    }
    if (lease && !this.synced && !this.#syncInFlight && now.mono >= this.#nextSyncAt) this.#requestSync(now);
    if (now.mono >= this.#nextRecordCheckAt) {
      this.#nextRecordCheckAt = now.mono + this.tickMs;
      // `data` may have been changed in place: compare what we would write with what we wrote.
      if (this.#recordText() !== this.#lastRecordText) this.#recordDueAt = Math.min(this.#recordDueAt, now.mono);
      if (this.synced) this.#table.stamp(now);
    }
    if (lease && !this.#recordInFlight && now.mono >= this.#recordDueAt) this.#putRecord(now);
    this.#revokeAbandoned(now);
  }

  /**
   * Every input comes here first: past the deadline our lease may be gone at the store, and
   * with it our key, so someone else may be master. Step down before anything else happens.
   */
  checkDeadline(now: Instant): void {
    const lease = this.#lease;
    if (lease && now.mono >= lease.validUntil) this.#loseLease(now, `no keep-alive acknowledged within ${Math.round(lease.ttlMs - safetyMarginMs(lease.ttlMs))} ms`);
  }

  /** Our record changed (eligibility, priority): write it now if we can, else as soon as we can. */
  announceNow(now: Instant): void {
    this.#recordDueAt = now.mono;
    if (this.#lease && !this.#recordInFlight) this.#putRecord(now);
  }

  /** Our record went while our lease lives (a namesake's lease ended, or someone deleted it): put it back. */
  recordGone(now: Instant): void {
    if (this.#lease && this.registered) this.#recordDueAt = Math.min(this.#recordDueAt, now.mono + this.tickMs);
  }

  /** A full read without our record (registered before it): write it again now. */
  recordMissing(now: Instant): void {
    if (this.registered) this.#recordDueAt = now.mono;
  }

  /** A new tick length takes effect by the next tick. */
  retimed(now: Instant): void {
    this.#nextRecordCheckAt = Math.min(this.#nextRecordCheckAt, now.mono + this.tickMs);
  }

  /** After a full read at `revision`: follow every change from the next revision on. */
  watch(revision: number, now: Instant): void {
    this.syncRevision = revision;
    this.synced = true;
    const watchId = this.#step.nextId();
    this.watchId = watchId;
    this.#watchStartedAt = now.mono;
    this.#step.push({ type: 'watch', id: watchId, prefix: this.#o.keys.prefix, fromRevision: revision + 1, timeoutMs: this.opTimeoutMs });
  }

  /** The watch broke (connection lost, history compacted): read everything again. */
  watchLost(reason: string, now: Instant): void {
    this.#step.log(3, `Coordinator: watch lost (${reason}); reading the cluster again`);
    this.watchId = null;
    this.synced = false;
    // A watch that breaks as soon as it is made (a member refusing watches) must not become a busy loop of reads.
    this.#nextSyncAt = now.mono - this.#watchStartedAt < this.retryMs ? now.mono + this.retryMs : now.mono;
    this.checkDeadline(now);
    if (this.#lease && !this.#syncInFlight && now.mono >= this.#nextSyncAt) this.#requestSync(now);
  }

  /** Leave: revoking the lease deletes our record and any election key of ours at once. */
  shutdown(now: Instant): void {
    this.stopped = true;
    if (this.watchId !== null) this.#step.push({ type: 'unwatch', id: this.watchId });
    this.watchId = null;
    const lease = this.#lease;
    if (lease) {
      this.#step.op({ type: 'revoke', id: 0, lease: lease.id, timeoutMs: this.opTimeoutMs }, now.mono);
      this.#step.log(4, 'Coordinator: revoking our lease (our record and any election key of ours go with it)');
    }
    this.#lease = null;
  }

  /** A lease granted after we stopped would hold nothing, but must not linger either. */
  revokeLate(lease: string, now: Instant): void {
    this.#step.op({ type: 'revoke', id: 0, lease, timeoutMs: this.opTimeoutMs }, now.mono);
  }

  /** A grant, keep-alive, read, record put or revoke failed (`current`: sent under the lease we hold). */
  failed(pending: Pending, error: string, current: boolean, now: Instant): void {
    const retryAt = now.mono + this.retryMs;
    switch (pending.type) {
      case 'grant':
        this.#granting = false;
        this.#nextGrantAt = retryAt;
        this.#step.log(3, `Coordinator: lease grant failed (${error}); retrying`);
        return;
      case 'keepAlive':
        if (!current) return;
        this.#keepAliveInFlight = false;
        this.#nextKeepAliveAt = retryAt;
        this.#step.log(3, `Coordinator: keep-alive failed (${error})`);
        return;
      case 'sync':
        if (!current) return;
        this.#syncInFlight = false;
        this.#nextSyncAt = retryAt;
        this.#step.log(3, `Coordinator: reading the cluster failed (${error}); retrying`);
        return;
      case 'put':
        if (current && pending.what === 'record') {
          this.#recordInFlight = false;
          this.#recordDueAt = retryAt;
        }
        return;
      case 'revoke':
        if (pending.what === 'abandoned') {
          this.#revokeInFlight = false;
          this.#nextRevokeAt = retryAt;
        }
        return;
      default:
        return;
    }
  }

  succeeded(pending: Pending, result: Exclude<StoreResult, { type: 'error' }>, current: boolean, now: Instant): void {
    switch (result.type) {
      case 'grant': {
        this.#granting = false;
        const ttlMs = result.ttlSeconds * 1000;
        const validUntil = pending.sentAt + ttlMs - safetyMarginMs(ttlMs);
        if (this.#lease || !(ttlMs > 0) || now.mono >= validUntil) {
          // A grant we no longer need, or one so slow that it is already past its safe use.
          this.#step.op({ type: 'revoke', id: 0, lease: result.lease, timeoutMs: this.opTimeoutMs }, now.mono);
          if (!this.#lease) this.#nextGrantAt = now.mono;
          return;
        }
        this.#lease = { id: result.lease, ttlMs, validUntil };
        this.#nextKeepAliveAt = pending.sentAt + ttlMs / 3;
        this.#step.log(4, `Coordinator: lease ${result.lease} granted, TTL ${result.ttlSeconds} s`);
        this.#recordDueAt = now.mono;
        this.#putRecord(now);
        this.#requestSync(now);
        return;
      }
      case 'keepAlive': {
        if (!current) return;
        this.#keepAliveInFlight = false;
        const lease = this.#lease;
        if (!lease) return;
        if (result.ttlSeconds <= 0) {
          this.#loseLease(now, 'the store no longer knows it');
          return;
        }
        const ttlMs = result.ttlSeconds * 1000;
        lease.validUntil = Math.max(lease.validUntil, pending.sentAt + ttlMs - safetyMarginMs(ttlMs));
        this.#nextKeepAliveAt = Math.max(now.mono, pending.sentAt + lease.ttlMs / 3);
        return;
      }
      case 'put':
        if (current && pending.what === 'record') {
          this.#recordInFlight = false;
          this.registered = true;
        }
        return;
      case 'revoke':
        if (pending.what === 'abandoned') {
          // Revoked, or unknown to the store (expired): either way its keys are gone.
          this.#revokeInFlight = false;
          this.#abandoned.shift();
          this.#nextRevokeAt = now.mono;
          this.#revokeAbandoned(now);
        }
        return;
      case 'sync':
        if (!current) return;
        this.#syncInFlight = false;
        this.#hooks.read(result.kvs, result.revision, now);
        return;
      default:
        return;
    }
  }

  /** The earliest time the session has something to do (Infinity: nothing). */
  wakeAt(): number {
    let wake = this.#nextRecordCheckAt;
    const lease = this.#lease;
    if (lease) {
      wake = Math.min(wake, lease.validUntil);
      if (!this.#keepAliveInFlight) wake = Math.min(wake, this.#nextKeepAliveAt);
      if (!this.synced && !this.#syncInFlight) wake = Math.min(wake, this.#nextSyncAt);
      if (!this.#recordInFlight) wake = Math.min(wake, this.#recordDueAt);
    } else if (!this.#granting) {
      wake = Math.min(wake, this.#nextGrantAt);
    }
    if (this.#abandoned.length > 0 && !this.#revokeInFlight) wake = Math.min(wake, this.#nextRevokeAt);
    return wake;
  }

  #requestGrant(now: Instant): void {
    this.#granting = true;
    this.#step.op({ type: 'grant', id: 0, ttlSeconds: this.ttlSeconds, timeoutMs: this.opTimeoutMs }, now.mono);
  }

  #requestSync(now: Instant): void {
    this.#syncInFlight = true;
    this.#nextSyncAt = Infinity;
    this.#step.op({ type: 'sync', id: 0, prefix: this.#o.keys.prefix, timeoutMs: this.opTimeoutMs }, now.mono);
  }

  /** Our lease is gone or may be: forget it (revoke it, in case it is not) and start over with a new one. */
  #loseLease(now: Instant, reason: string): void {
    const lease = this.#lease;
    this.#lease = null;
    this.#step.epoch++;
    this.registered = false;
    this.synced = false;
    this.#keepAliveInFlight = false;
    this.#recordInFlight = false;
    this.#syncInFlight = false;
    this.#nextKeepAliveAt = Infinity;
    this.#recordDueAt = now.mono;
    this.#step.log(2, `Coordinator: lost our lease: ${reason}`);
    this.#hooks.leaseLost(reason);
    if (this.watchId !== null) this.#step.push({ type: 'unwatch', id: this.watchId });
    this.watchId = null;
    if (lease) {
      this.#abandoned.push(lease.id);
      if (this.#abandoned.length > 4) this.#abandoned.shift();
      this.#nextRevokeAt = now.mono;
      this.#revokeAbandoned(now);
    }
    this.#granting = false;
    this.#nextGrantAt = now.mono;
    this.#requestGrant(now);
  }

  /** Revoke the leases we abandoned, one at a time, until the store has them no more. */
  #revokeAbandoned(now: Instant): void {
    const lease = this.#abandoned[0];
    if (lease === undefined || this.#revokeInFlight || now.mono < this.#nextRevokeAt) return;
    this.#revokeInFlight = true;
    this.#nextRevokeAt = Infinity;
    this.#step.op({ type: 'revoke', id: 0, lease, timeoutMs: this.opTimeoutMs }, now.mono, 'abandoned');
  }

  #recordText(): string {
    const self = this.#table.self;
    // Uptime is left out of the comparison: it alone would mean a write every tick.
    return records.encodeMember({ hostname: this.#o.hostname, ip: this.#o.ip, eligible: self.eligible, uptime: 0, data: self.data, iid: this.#o.instanceId, priority: this.#table.priority, port: this.#o.port });
  }

  #putRecord(now: Instant): void {
    const lease = this.#lease;
    if (!lease) return;
    const o = this.#o;
    const self = this.#table.self;
    self.uptime = Math.max(0, Math.floor((now.mono - this.#startedAt) / 1000));
    let data = self.data;
    let value = records.encodeMember({ hostname: o.hostname, ip: o.ip, eligible: self.eligible, uptime: self.uptime, data, iid: o.instanceId, priority: this.#table.priority, port: o.port });
    const dataLimit = o.limits.maxDataBytes || Infinity;
    if (Buffer.byteLength(value, 'utf8') > o.limits.maxBytes || Buffer.byteLength(JSON.stringify(data), 'utf8') > dataLimit) {
      this.#step.log(1, 'Our record with its user data is over max_packet_bytes / max_data_bytes; storing it without data');
      data = {};
      value = records.encodeMember({ hostname: o.hostname, ip: o.ip, eligible: self.eligible, uptime: self.uptime, data, iid: o.instanceId, priority: this.#table.priority, port: o.port });
    }
    this.#lastRecordText = this.#recordText();
    this.#recordInFlight = true;
    // Data changes reach the store at most once a tick.
    this.#recordDueAt = Infinity;
    this.#nextRecordCheckAt = now.mono + this.tickMs;
    this.#step.op({ type: 'put', id: 0, key: o.keys.members + o.hostname, value, lease: lease.id, timeoutMs: this.opTimeoutMs }, now.mono, 'record');
  }
}
