/**
 * Our session with the store: the lease and everything that hangs on it. We take a lease,
 * keep it alive, register our record under it (record.ts: rewritten when it changes, at most
 * once a tick), read the cluster and watch it from the revision read.
 *
 * The lease is trusted only until a margin before its earliest possible expiry at the store
 * (`validUntil`, counted from when we SENT the keep-alive the store acknowledged). Past it we
 * stop acting on it (the election relinquishes the master role and forgets who is master),
 * but we do not give it up: the store may still hold it (etcd extends every lease across its
 * own leader elections, and expires none while it has no leader). We go on renewing it; once
 * the store acknowledges a keep-alive again we read the cluster, and the election takes the
 * role back if the key is still ours with the same term. Only the store saying it no longer
 * knows the lease ends it; then a new one is asked for, and results of ops sent under the old
 * one are void (`epoch`).
 *
 * Renewals are hedged: every renewal interval (a third of the TTL) a keep-alive goes out; if
 * none is answered within `hedgeMs`, another goes out (the adapter sends it to another
 * member), up to three at once, and one that fails is followed promptly by another. So a
 * member that died, hangs, or waits for a new etcd leader costs a fraction of a second, not
 * the lease.
 *
 * The session also keeps the timing every module reads: tick, tock, the TTL in use, and the
 * op timeout and retry delay derived from it, and our contact with the store (contact.ts).
 */
import type { Instant } from '../elector/types';
import type { KeyValue, StoreResult } from '../protocol/store';
import { StoreContact } from './contact';
import { OwnRecord, type RecordOptions } from './record';
import type { LeaseStep, Pending } from './step';
import type { LeaseTable } from './table';

import { hedgeMs, renewIntervalMs, safetyMarginMs } from './timing';

export { safetyMarginMs } from './timing';

/**
 * Keep-alives of one renewal in flight at once, at most. One sent after etcd has a new leader
 * is answered at once, while one sent before may wait at a follower for a while: so they go
 * out every hedge until one is answered, not only one per member.
 */
const MAX_KEEPALIVES_IN_FLIGHT = 8;

/** Our record's options (we keep it), and the timing. */
export interface SessionOptions extends RecordOptions {
  tickMs: number;
  checkBeats: number;
  ttlSeconds: number;
}

/** What the election does when the session changes under it. */
export interface SessionHooks {
  /**
   * We stop acting on the lease: past its deadline (`lapsed`: it may live on at the store,
   * we keep renewing it) or gone (the store no longer knows it). Either way we are master of
   * nothing and cannot know who is.
   */
  leaseLost(reason: string, lapsed: boolean, now: Instant, resumable?: boolean): void;
  /** A full read of the prefix, at `revision`. */
  read(kvs: KeyValue[], revision: number, now: Instant): void;
  /** What the store sent that we cannot act on (read before our lease lapsed): its terms still count. */
  learnTerms(kvs: KeyValue[]): void;
  /** The highest term we know, for our record (a restored or wiped store learns it back from us). */
  term(): number;
  /** The store was restored from an older snapshot, or wiped: its revision went back, or it forgot a lease that could not have expired. */
  rewritten(why: string, now: Instant): void;
}

export class LeaseSession {
  readonly #o: SessionOptions;
  readonly #step: LeaseStep;
  readonly #table: LeaseTable;
  readonly #hooks: SessionHooks;
  readonly contact: StoreContact;
  /** Our member record under the lease (record.ts). */
  readonly record: OwnRecord;
  tickMs: number;
  checkBeats: number;
  ttlSeconds: number;

  started = false;
  stopped = false;
  #lease: { id: string; ttlMs: number; validUntil: number } | null = null;
  /** Past `validUntil` on a lease the store may still hold: not acting on it, renewing it. */
  #lapsed = false;
  #granting = false;
  #nextGrantAt = 0;
  /** When the next renewal starts. */
  #nextKeepAliveAt = Infinity;
  /** A renewal in progress (since then): keep-alives go out until one is answered. */
  #renewingSince: number | null = null;
  #keepAlivesInFlight = 0;
  #nextAttemptAt = Infinity;
  /** Keep-alives of this renewal that failed in a row (the next waits longer each time). */
  #keepAliveErrors = 0;
  /** The members are read and watched. */
  synced = false;
  #syncInFlight = false;
  #nextSyncAt = Infinity;
  /** The revision of the last full read: watch events at or below it are already in it. */
  syncRevision = 0;
  /** Monotonic ms of the last full read (-Infinity: none yet). */
  lastReadAt = -Infinity;
  /** The highest store revision seen (a read, a write, a watch event): one going back means a restore or a wipe. */
  #highestRevision = 0;
  /** The highest revision we knew when we sent the current read. */
  #revisionAtRead = 0;
  watchId: number | null = null;
  /** The watch our lease's lapse ended: what it still delivers is read for its terms only. */
  lastWatchId: number | null = null;
  #watchStartedAt = -Infinity;

  constructor(options: SessionOptions, step: LeaseStep, table: LeaseTable, hooks: SessionHooks) {
    this.#o = options;
    this.#step = step;
    this.#table = table;
    this.#hooks = hooks;
    this.contact = new StoreContact(step);
    this.tickMs = options.tickMs;
    this.checkBeats = options.checkBeats;
    this.ttlSeconds = options.ttlSeconds;
    this.record = new OwnRecord(options, step, table, this, () => hooks.term());
  }

  /** Our record is in the store under the current lease. */
  get registered(): boolean {
    return this.record.registered;
  }

  get active(): boolean {
    return this.started && !this.stopped;
  }
  /** The lease we may act on: held, and not past its deadline (null otherwise). */
  get lease(): { readonly id: string; readonly ttlMs: number; readonly validUntil: number } | null {
    return this.#lapsed ? null : this.#lease;
  }
  /** The lease we hold, acting on it or not (lapsed). */
  get heldLease(): { readonly id: string; readonly ttlMs: number; readonly validUntil: number } | null {
    return this.#lease;
  }
  get lapsed(): boolean {
    return this.#lapsed;
  }
  get tockMs(): number {
    return this.tickMs * this.checkBeats;
  }
  /** The lease TTL in use (granted), or the one asked for before the first grant, ms. */
  get ttlMs(): number {
    return this.#lease?.ttlMs ?? this.ttlSeconds * 1000;
  }
  /**
   * Ops (other than keep-alives, which have their own) time out at half a TTL: long enough for
   * a slow store, short enough to retry a hung one (at a member that takes requests and never
   * answers) well before the lease needs it.
   */
  get opTimeoutMs(): number {
    return Math.max(50, this.ttlMs / 2);
  }
  get retryMs(): number {
    return Math.max(50, Math.min(this.ttlMs / 6, 1000));
  }
  /** A renewal interval: a keep-alive goes out this long after the last acknowledged one was sent. */
  get renewIntervalMs(): number {
    return renewIntervalMs(this.ttlMs);
  }
  /** Unanswered this long, a keep-alive is followed by another (to another member). */
  get hedgeMs(): number {
    return hedgeMs(this.ttlMs);
  }

  start(now: Instant): void {
    this.started = true;
    this.record.start(now);
    this.#step.log(4, `Coordinator: asking the store for a lease of ${this.ttlSeconds} s under ${this.#o.keys.prefix}`);
    this.#requestGrant(now);
  }

  /** Time passed: grant, keep-alive and read retries, the rate-limited record update. */
  tick(now: Instant): void {
    if (!this.#lease && !this.#granting && now.mono >= this.#nextGrantAt) this.#requestGrant(now);
    this.#renew(now);
    const lease = this.lease;
    if (lease && !this.synced && !this.#syncInFlight && now.mono >= this.#nextSyncAt) this.#requestSync(now);
    this.record.tick(now, this.synced);
    this.contact.check(now.mono, this.ttlMs);
  }

  /**
   * Every input comes here first: past the deadline our lease may be gone at the store, and
   * with it our key, so someone else may be master. Stop acting on it before anything else
   * happens (but keep it, and keep renewing it: the store may still hold it).
   */
  checkDeadline(now: Instant): void {
    const lease = this.#lease;
    if (!lease || this.#lapsed || now.mono < lease.validUntil) return;
    this.#lapsed = true;
    this.synced = false;
    this.#syncInFlight = false;
    if (this.watchId !== null) this.#step.store({ type: 'unwatch', id: this.watchId });
    this.lastWatchId = this.watchId;
    this.watchId = null;
    // Found past the deadline (not at it): this process was stalled (SIGSTOP, a paused VM), and
    // the world may have moved on meanwhile (etcd restored, even): the role is not taken back.
    const stalled = now.mono - lease.validUntil > Math.max(100, this.hedgeMs);
    const reason = `no keep-alive acknowledged within ${Math.round(lease.ttlMs - safetyMarginMs(lease.ttlMs))} ms${stalled ? ` (this process was stalled for ${Math.round(now.mono - lease.validUntil)} ms past it)` : ''}`;
    this.#step.log(2, `Coordinator: ${reason}; we stop acting on lease ${lease.id} but keep renewing it (etcd may still hold it)`);
    this.#hooks.leaseLost(reason, true, now, !stalled);
  }

  /** After a full read at `revision`: follow every change from the next revision on. */
  watch(revision: number, now: Instant): void {
    this.syncRevision = revision;
    this.synced = true;
    const watchId = this.#step.nextId();
    this.watchId = watchId;
    this.#watchStartedAt = now.mono;
    this.#step.store({ type: 'watch', id: watchId, prefix: this.#o.keys.prefix, fromRevision: revision + 1, timeoutMs: this.opTimeoutMs });
  }

  /** A revision the store answered with, or a watch event's. */
  noteRevision(revision: number): void {
    if (revision > this.#highestRevision) this.#highestRevision = revision;
  }

  /** The store says it does not know our lease (an op under it failed so): ask it now rather than at the next renewal. */
  checkLeaseSoon(now: Instant): void {
    if (this.#lease && this.#renewingSince === null) this.#nextKeepAliveAt = Math.min(this.#nextKeepAliveAt, now.mono);
  }

  /** What we follow may be stale (a write fenced with our term was refused): read everything again now. */
  resync(now: Instant): void {
    if (this.watchId !== null) this.#step.store({ type: 'unwatch', id: this.watchId });
    this.watchId = null;
    this.synced = false;
    this.#nextSyncAt = now.mono;
    if (this.lease && !this.#syncInFlight) this.#requestSync(now);
  }

  /** The watch broke (connection lost, history compacted, no leader): read everything again. */
  watchLost(reason: string, now: Instant): void {
    this.#step.log(5, `Coordinator: watch lost (${reason}); reading the cluster again`);
    this.watchId = null;
    this.synced = false;
    // A watch that breaks as soon as it is made (a member refusing watches) must not become a busy loop of reads.
    this.#nextSyncAt = now.mono - this.#watchStartedAt < this.retryMs ? now.mono + this.retryMs : now.mono;
    this.checkDeadline(now);
    if (this.lease && !this.#syncInFlight && now.mono >= this.#nextSyncAt) this.#requestSync(now);
  }

  /** Leave: revoking the lease deletes our record and any election key of ours at once. */
  shutdown(now: Instant): void {
    this.stopped = true;
    if (this.watchId !== null) this.#step.store({ type: 'unwatch', id: this.watchId });
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
  failed(pending: Pending, current: boolean, now: Instant): void {
    const retryAt = now.mono + this.retryMs;
    switch (pending.type) {
      case 'grant':
        this.#granting = false;
        this.#nextGrantAt = retryAt;
        return;
      case 'keepAlive': {
        if (!current) return;
        this.#keepAlivesInFlight = Math.max(0, this.#keepAlivesInFlight - 1);
        if (this.#renewingSince === null || pending.sentAt < this.#renewingSince) return;
        // Promptly another (the adapter avoids the member that failed), waiting longer after each failure in a row.
        this.#keepAliveErrors++;
        // Lapsed (etcd down, or cut off), a try a second is enough to notice its return.
        const cap = this.#lapsed ? Math.max(this.retryMs, 1000) : this.hedgeMs;
        this.#nextAttemptAt = Math.min(this.#nextAttemptAt, now.mono + Math.min(cap, 25 * 2 ** Math.min(this.#keepAliveErrors, 10)));
        return;
      }
      case 'sync':
        if (!current) return;
        this.#syncInFlight = false;
        this.#nextSyncAt = retryAt;
        return;
      case 'put':
        if (current && pending.what === 'record') this.record.failed(retryAt);
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
        this.#lapsed = false;
        this.#nextKeepAliveAt = pending.sentAt + this.renewIntervalMs;
        this.#renewingSince = null;
        this.#keepAlivesInFlight = 0;
        this.#step.log(4, `Coordinator: lease ${result.lease} granted, TTL ${result.ttlSeconds} s`);
        this.record.granted(now);
        this.#requestSync(now);
        return;
      }
      case 'keepAlive': {
        if (!current) return;
        this.#keepAlivesInFlight = Math.max(0, this.#keepAlivesInFlight - 1);
        const lease = this.#lease;
        if (!lease) return;
        if (result.ttlSeconds <= 0) {
          // Asked before the lease could have expired there: nobody but us revokes it, so the store lost it.
          const early = pending.sentAt < lease.validUntil + safetyMarginMs(lease.ttlMs) - 1;
          this.#loseLease(now, 'the store no longer knows it');
          if (early) this.#hooks.rewritten(`it forgot lease ${lease.id}, which could not have expired yet`, now);
          return;
        }
        const ttlMs = result.ttlSeconds * 1000;
        lease.validUntil = Math.max(lease.validUntil, pending.sentAt + ttlMs - safetyMarginMs(ttlMs));
        if (this.#renewingSince !== null && pending.sentAt >= this.#renewingSince) {
          this.#renewingSince = null;
          this.#keepAliveErrors = 0;
          this.#nextAttemptAt = Infinity;
          this.#nextKeepAliveAt = Math.max(now.mono, pending.sentAt + this.renewIntervalMs);
        }
        if (this.#lapsed && now.mono < lease.validUntil) {
          // The store still held it: act on it again once we have read what it holds.
          this.#lapsed = false;
          this.#step.log(2, `Coordinator: lease ${lease.id} is alive at the store after all; reading the cluster again`);
          this.#nextSyncAt = now.mono;
          if (!this.#syncInFlight) this.#requestSync(now);
        }
        return;
      }
      case 'put':
        this.noteRevision(result.revision);
        if (current && pending.what === 'record') this.record.stored();
        return;
      case 'sync':
        if (!current) return;
        this.#syncInFlight = false;
        // Read before the lease lapsed: what it shows may be stale by now; read again once renewed.
        if (this.#lapsed) return this.#hooks.learnTerms(result.kvs);
        this.lastReadAt = now.mono;
        // Every revision we knew when we sent the read was committed before it: a lower one means the store went back.
        if (result.revision < this.#revisionAtRead) {
          this.#highestRevision = result.revision;
          this.#hooks.rewritten(`its revision went back from ${this.#revisionAtRead} to ${result.revision}`, now);
        } else {
          this.noteRevision(result.revision);
        }
        this.#hooks.read(result.kvs, result.revision, now);
        return;
      default:
        return;
    }
  }

  /** The earliest time the session has something to do (Infinity: nothing). */
  wakeAt(): number {
    let wake = Math.min(this.record.checkAt, this.contact.wakeAt(this.ttlMs));
    const held = this.#lease;
    if (held) {
      if (!this.#lapsed) wake = Math.min(wake, held.validUntil);
      wake = Math.min(
        wake,
        this.#renewingSince === null
          ? this.#nextKeepAliveAt
          : this.#keepAlivesInFlight < MAX_KEEPALIVES_IN_FLIGHT
            ? this.#nextAttemptAt
            : Infinity,
      );
      if (!this.#lapsed) {
        if (!this.synced && !this.#syncInFlight) wake = Math.min(wake, this.#nextSyncAt);
        wake = Math.min(wake, this.record.dueAt);
      }
    } else if (!this.#granting) {
      wake = Math.min(wake, this.#nextGrantAt);
    }
    return wake;
  }

  /** Keep-alives: a renewal every interval; unanswered for `hedgeMs`, or failed, another (up to three at once). */
  #renew(now: Instant): void {
    const lease = this.#lease;
    if (!lease) return;
    if (this.#renewingSince === null) {
      if (now.mono < this.#nextKeepAliveAt) return;
      this.#renewingSince = now.mono;
      this.#keepAliveErrors = 0;
      this.#nextAttemptAt = now.mono;
    }
    while (now.mono >= this.#nextAttemptAt && this.#keepAlivesInFlight < MAX_KEEPALIVES_IN_FLIGHT) {
      this.#keepAlivesInFlight++;
      // Lapsed (etcd down, or cut off from us): a try a second is enough to notice its return.
      this.#nextAttemptAt = now.mono + (this.#lapsed ? Math.max(this.retryMs, 1000) : this.hedgeMs);
      // An answer after the deadline it would set is no use; a member that hangs is left that long.
      this.#step.op(
        { type: 'keepAlive', id: 0, lease: lease.id, timeoutMs: Math.max(50, lease.ttlMs - safetyMarginMs(lease.ttlMs)) },
        now.mono,
      );
    }
  }

  #requestGrant(now: Instant): void {
    this.#granting = true;
    this.#step.op({ type: 'grant', id: 0, ttlSeconds: this.ttlSeconds, timeoutMs: this.opTimeoutMs }, now.mono);
  }

  #requestSync(now: Instant): void {
    this.#revisionAtRead = this.#highestRevision;
    this.#syncInFlight = true;
    this.#nextSyncAt = Infinity;
    this.#step.op({ type: 'sync', id: 0, prefix: this.#o.keys.prefix, timeoutMs: this.opTimeoutMs }, now.mono);
  }

  /** The store no longer knows our lease: forget it and start over with a new one. */
  #loseLease(now: Instant, reason: string): void {
    this.#lease = null;
    this.#lapsed = false;
    this.#step.epoch++;
    this.record.leaseLost(now);
    this.synced = false;
    this.#renewingSince = null;
    this.#keepAlivesInFlight = 0;
    this.#nextAttemptAt = Infinity;
    this.#syncInFlight = false;
    this.#nextKeepAliveAt = Infinity;
    this.#step.log(2, `Coordinator: lost our lease: ${reason}`);
    this.#hooks.leaseLost(reason, false, now);
    if (this.watchId !== null) this.#step.store({ type: 'unwatch', id: this.watchId });
    this.watchId = null;
    this.#granting = false;
    this.#nextGrantAt = now.mono;
    this.#requestGrant(now);
  }
}
