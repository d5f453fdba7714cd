/**
 * The master's checkpoint in the lease election: written fenced by the term it was set under,
 * retried until etcd answers while that term is held, carried in a resign or handoff
 * transaction when the role goes, stored again when the store lost it (restored or wiped), and
 * its outcome reported once (ok, or a level-1 line and a failure). Whether we hold a term is the
 * roles' (roles.ts); they tell us, and we tell them when a fence refused ours.
 *
 * Not the UDP core's checkpoint (core/roles.ts): there it rides on heartbeats; here the store
 * keeps it, so a write can fail, be refused, or be lost with no answer.
 */
import type { Checkpoint, JsonValue } from '../protocol/messages';
import type { Instant } from '../elector/types';
import type { LeaseSession } from './session';
import type { LeaseStep } from './step';
import * as records from './records';

/** A checkpoint on its way to the store: the newest accepted, and every call it settles. */
interface CheckpointWrite {
  checkpoint: Checkpoint;
  /** The term it is fenced with (the one we held when it was set). */
  term: number;
  /** The caller's ticket: the outcome settles every call up to it. */
  ticket: number;
  /** Writes carrying it (or an older one) awaiting an answer. */
  inFlight: number;
  /** An attempt failed without an answer: it may have been stored. */
  uncertain: boolean;
  nextAt: number;
}

/** What the checkpoint needs of the roles. */
export interface CheckpointHolder {
  /** Whether we are master now, in `term`. */
  holds(term: number): boolean;
  /** A write fenced with `term`, which we hold, was refused: the store holds another term. */
  fenceRefused(term: number, now: Instant): void;
}

export class LeaseCheckpoints {
  readonly #hostname: string;
  readonly #keys: records.Keys;
  readonly #step: LeaseStep;
  readonly #session: LeaseSession;
  readonly #holder: CheckpointHolder;
  /** The newest checkpoint we know (set by us, or read from the store). */
  known: Checkpoint | null = null;
  /** The checkpoint as the store holds it (last read or written), to restore a newer one after a restore. */
  #stored: Checkpoint | null = null;
  #write: CheckpointWrite | null = null;

  constructor(
    options: { hostname: string; keys: records.Keys },
    parts: { step: LeaseStep; session: LeaseSession },
    holder: CheckpointHolder,
  ) {
    this.#hostname = options.hostname;
    this.#keys = options.keys;
    this.#step = parts.step;
    this.#session = parts.session;
    this.#holder = holder;
  }

  /** A checkpoint not yet stored is waiting (to go with a resign). */
  get pending(): boolean {
    return this.#write !== null;
  }

  /** Accept a checkpoint of `term` (which we hold): the newest replaces one not yet sent. */
  set(data: JsonValue, term: number, ticket: number, now: Instant): void {
    const version = this.known && this.known.t === term ? this.known.v + 1 : 1;
    this.known = { t: term, v: version, d: data };
    const write = this.#write;
    // The newest replaces one not yet sent; one in flight finishes first, then the newest follows.
    this.#write = {
      checkpoint: this.known,
      term,
      ticket,
      inFlight: write?.inFlight ?? 0,
      uncertain: write?.uncertain ?? false,
      nextAt: now.mono,
    };
    this.writeIfDue(now);
  }

  /** A checkpoint as read from the store (a newer one replaces ours; an older one is restored by the master). */
  fromStore(checkpoint: Checkpoint | null): void {
    this.#stored = checkpoint;
    const known = this.known;
    if (checkpoint && (!known || newer(checkpoint, known))) this.known = checkpoint;
  }

  /**
   * We became master in `term`: a checkpoint of an earlier term of ours that never got stored
   * is over (reported now); one we know that the store lost is to be stored again.
   */
  dropStale(term: number): void {
    const stale = this.#write;
    if (stale && stale.term !== term && stale.inFlight === 0) {
      this.#write = null;
      this.#report(stale, `term ${stale.term} ended before etcd answered`, stale.uncertain);
    }
  }

  /** After becoming master in `term`: a checkpoint we know that the store lost (restored from an older snapshot, or wiped) is stored again. */
  restoreLost(term: number, now: Instant): void {
    const known = this.known;
    if (known && (!this.#stored || newer(known, this.#stored)) && !this.#write) {
      this.#write = { checkpoint: known, term, ticket: 0, inFlight: 0, uncertain: false, nextAt: now.mono };
    }
  }

  /** When a write waits to be (re)sent while we hold its term. */
  wakeAt(now: Instant): number {
    const write = this.#write;
    if (write && write.inFlight === 0 && this.#holder.holds(write.term)) return Math.max(write.nextAt, now.mono);
    return Infinity;
  }

  writeIfDue(now: Instant): void {
    const write = this.#write;
    const lease = this.#session.lease;
    if (!write || write.inFlight > 0 || now.mono < write.nextAt || !this.#holder.holds(write.term) || !lease) return;
    write.inFlight++;
    const value = records.encodeCheckpoint(this.#hostname, write.checkpoint);
    this.#step.op(
      {
        type: 'fenced',
        id: 0,
        fenceKey: this.#keys.term,
        fenceValue: records.encodeTerm(write.term),
        puts: [{ key: this.#keys.checkpoint, value, lease: '0' }],
        timeoutMs: this.#session.opTimeoutMs,
      },
      now.mono,
      'checkpoint',
      {
        ticket: write.ticket,
      },
    );
  }

  /** The pending checkpoint of `term`, as puts for a resign's transaction (marked in flight), and its ticket. */
  carry(term: number): { puts: Array<{ key: string; value: string; lease: string }>; extra: { ticket?: number } } {
    const write = this.#write;
    if (!write || write.term !== term) return { puts: [], extra: {} };
    write.inFlight++;
    return {
      puts: [{ key: this.#keys.checkpoint, value: records.encodeCheckpoint(this.#hostname, write.checkpoint), lease: '0' }],
      extra: { ticket: write.ticket },
    };
  }

  /** A write carrying checkpoint `ticket` was answered: stored, or refused by the fence. */
  settled(ticket: number, stored: boolean, now: Instant): void {
    const write = this.#write;
    if (!write) return;
    write.inFlight = Math.max(0, write.inFlight - 1);
    if (stored) {
      if (ticket > 0) this.#step.event({ type: 'checkpoint', ok: true, ticket, reason: 'stored' });
      if (write.ticket === ticket) {
        this.#stored = write.checkpoint;
        this.#write = null;
      } else {
        // An older one: the newest follows.
        write.uncertain = false;
        this.writeIfDue(now);
      }
      return;
    }
    // Refused by the fence: the term we wrote with is no longer the store's. Another write still
    // in flight (the resign that carries it) may have stored it first: its answer decides.
    if (write.inFlight > 0) return;
    this.#write = null;
    this.#report(write, `term ${write.term} no longer holds the election key`, false);
    if (this.#holder.holds(write.term)) this.#holder.fenceRefused(write.term, now);
  }

  /** A write carrying the checkpoint got no answer: it may or may not be stored; again after a while, while we hold the role. */
  failed(error: string, now: Instant): void {
    const write = this.#write;
    if (!write) return;
    write.inFlight = Math.max(0, write.inFlight - 1);
    write.uncertain = true;
    write.nextAt = now.mono + this.#session.retryMs;
    if (!this.#holder.holds(write.term)) this.roleLost(now, error);
  }

  /** The role is gone (relinquished, lapsed, lost): a checkpoint not stored yet never will be by us; reported once no write of it is in flight. */
  roleLost(_now: Instant, why?: string): void {
    const write = this.#write;
    if (!write || write.inFlight > 0) return;
    this.#write = null;
    this.#report(
      write,
      why ? `we lost the master role before etcd answered (${why})` : 'we lost the master role before etcd answered',
      write.uncertain,
    );
  }

  #report(write: CheckpointWrite, reason: string, uncertain: boolean): void {
    const what = `Checkpoint of term ${write.term}, version ${write.checkpoint.v}`;
    const text = `${what} was ${uncertain ? 'perhaps not' : 'not'} stored: ${reason}`;
    this.#step.log(1, text);
    if (write.ticket > 0) this.#step.event({ type: 'checkpoint', ok: false, ticket: write.ticket, reason: text });
  }
}

function newer(a: Checkpoint, b: Checkpoint): boolean {
  return a.t > b.t || (a.t === b.t && a.v > b.v);
}
