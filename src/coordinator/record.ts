/**
 * Our own member record in the store, under our lease: written when the lease is granted,
 * rewritten when it changes (eligibility and priority at once; `data`, which an app may change
 * in place, compared at most once per `intervalMs`), and put back when the store lost it
 * or holds an older one (a restore). Over the size limits it is stored without its data.
 *
 * The lease it hangs on is the session's (session.ts): the session says when it was granted
 * or lost, and hands us the results of our puts.
 */
import type { Instant, ServerHealth } from '../elector/types';
import type { HealthWord, JsonObject } from '../protocol/messages';
import type { LeaseStep } from './step';
import type { LeaseTable } from './table';
import * as records from './records';

export interface RecordOptions {
  hostname: string;
  instanceId: string;
  ip: string;
  port: number;
  keys: records.Keys;
  limits: records.Limits;
}

/** What the record needs of the session. */
export interface RecordSession {
  /** The lease we may act on (null: none, or lapsed). */
  readonly lease: { readonly id: string } | null;
  /** The lease we hold, acting on it or not (lapsed). */
  readonly heldLease: object | null;
  readonly tickMs: number;
  readonly opTimeoutMs: number;
}

export class OwnRecord {
  readonly #o: RecordOptions;
  readonly #step: LeaseStep;
  readonly #table: LeaseTable;
  readonly #session: RecordSession;
  /** The highest term we know, carried in the record (a restored or wiped store learns it back from us). */
  readonly #term: () => number;
  #startedAt = 0;
  /** Our record is in the store under the current lease. */
  registered = false;
  #inFlight = false;
  #lastText = '';
  #dueAt = Infinity;
  #nextCheckAt = Infinity;

  constructor(options: RecordOptions, step: LeaseStep, table: LeaseTable, session: RecordSession, term: () => number) {
    this.#o = options;
    this.#step = step;
    this.#table = table;
    this.#session = session;
    this.#term = term;
  }

  /**
   * How often `data` may be rewritten: a tick, and in a big cluster 10 ms per server. Every
   * write reaches every server's watch, so N servers changing data each tick would cost etcd
   * N² events a tick; spaced so, the whole cluster writes at most 100 records a second and
   * etcd's work grows linearly with N (docs/ETCD.md, etcd load). Eligibility and priority
   * changes are written at once all the same.
   */
  get intervalMs(): number {
    return Math.max(this.#session.tickMs, this.#table.size * 10);
  }

  start(now: Instant): void {
    this.#startedAt = now.mono;
    this.#nextCheckAt = now.mono + this.#session.tickMs;
  }

  /** Time passed: `data` compared at most once per interval (`synced`: the rows we read are stamped then too), a due write made. */
  tick(now: Instant, synced: boolean): void {
    if (now.mono >= this.#nextCheckAt) {
      this.#nextCheckAt = now.mono + this.intervalMs;
      // `data` may have been changed in place: compare what we would write with what we wrote.
      if (this.#text() !== this.#lastText) this.#dueAt = Math.min(this.#dueAt, now.mono);
      if (synced) this.#table.stamp(now);
    }
    if (this.#session.lease && !this.#inFlight && now.mono >= this.#dueAt) this.#put(now);
  }

  /** A lease was granted: write the record under it now. */
  granted(now: Instant): void {
    this.#dueAt = now.mono;
    this.#put(now);
  }

  /** The lease is gone: the record went with it, to be written under the next one. */
  leaseLost(now: Instant): void {
    this.registered = false;
    this.#inFlight = false;
    this.#dueAt = now.mono;
  }

  /** Our record changed (eligibility, priority): write it now if we can, else as soon as we can. */
  announceNow(now: Instant): void {
    this.#dueAt = now.mono;
    if (this.#session.lease && !this.#inFlight) this.#put(now);
  }

  /** Our record went while our lease lives (a namesake's lease ended, or someone deleted it): put it back. */
  recordGone(now: Instant): void {
    if (this.#session.heldLease && this.registered) this.#dueAt = Math.min(this.#dueAt, now.mono + this.#session.tickMs);
  }

  /** A full read without our record, or with one that is not what we would write (a restored store): write it again now. */
  recordMissing(now: Instant): void {
    if (this.registered) this.#dueAt = now.mono;
  }

  /** Our own record as read from the store: rewrite it if it is not ours as we last wrote it (a restored store holds an old one). */
  ownRecordRead(value: string, now: Instant): void {
    if (!this.registered || this.#inFlight) return;
    const read = records.decodeMember(value, this.#o.hostname, this.#o.limits);
    if (read?.heartbeat.iid !== this.#o.instanceId) return; // a namesake's: table.putOwn reports it
    if ((read.heartbeat.term ?? 0) < this.#term() || read.heartbeat.eligible !== this.#table.self.eligible)
      this.#dueAt = Math.min(this.#dueAt, now.mono);
  }

  /** A new tick length takes effect by the next tick. */
  retimed(now: Instant): void {
    this.#nextCheckAt = Math.min(this.#nextCheckAt, now.mono + this.#session.tickMs);
  }

  /** A put of the record under the lease we hold was answered: stored, or failed (again at `retryAt`). */
  stored(): void {
    this.#inFlight = false;
    this.registered = true;
  }

  failed(retryAt: number): void {
    this.#inFlight = false;
    this.#dueAt = retryAt;
  }

  /** When `data` is next compared. */
  get checkAt(): number {
    return this.#nextCheckAt;
  }

  /** When a write is due (Infinity: one is in flight, or none is due). */
  get dueAt(): number {
    return this.#inFlight ? Infinity : this.#dueAt;
  }

  #text(): string {
    // Uptime is left out of the comparison: it alone would mean a write every tick.
    return this.#encode(0, this.#table.self.data, this.#term());
  }

  /** Our record as stored: the heartbeat's fields, the term we hold, the health state. */
  #encode(uptime: number, data: JsonObject, term: number): string {
    const self = this.#table.self;
    return records.encodeMember({
      hostname: this.#o.hostname,
      ip: this.#o.ip,
      eligible: self.eligible,
      uptime,
      data,
      iid: this.#o.instanceId,
      priority: this.#table.priority,
      port: this.#o.port,
      term,
      health: storedHealth(self.health),
    });
  }

  #put(now: Instant): void {
    const lease = this.#session.lease;
    if (!lease) return;
    const o = this.#o;
    const self = this.#table.self;
    self.uptime = Math.max(0, Math.floor((now.mono - this.#startedAt) / 1000));
    const term = this.#term();
    let data = self.data;
    let value = this.#encode(self.uptime, data, term);
    const dataLimit = o.limits.maxDataBytes || Infinity;
    if (Buffer.byteLength(value, 'utf8') > o.limits.maxBytes || Buffer.byteLength(JSON.stringify(data), 'utf8') > dataLimit) {
      this.#step.log(1, 'Our record with its user data is over max_packet_bytes / max_data_bytes; storing it without data');
      data = {};
      value = this.#encode(self.uptime, data, term);
    }
    this.#lastText = this.#text();
    this.#inFlight = true;
    // Data changes reach the store at most once a tick (and, in a big cluster, less often).
    this.#dueAt = Infinity;
    this.#nextCheckAt = now.mono + this.intervalMs;
    this.#step.op(
      { type: 'put', id: 0, key: o.keys.members + o.hostname, value, lease: lease.id, timeoutMs: this.#session.opTimeoutMs },
      now.mono,
      'record',
    );
  }
}

/**
 * What the store keeps of our health check: its state and rise/fall, which change rarely (once
 * from `starting`, then with our eligibility, which is a write anyway). Counts and the reason
 * change with every check, and a write per check per server is load on etcd no election needs.
 */
function storedHealth(health: ServerHealth | null): HealthWord | undefined {
  return health ? { s: health.state, rise: health.rise, fall: health.fall } : undefined;
}
