/**
 * What one call into the lease election produces, collected as it happens: store ops (each
 * remembered until its result comes back), datagrams, events and log lines. Every module
 * writes into the same step, so within a call the order of ops, and of events, is the order
 * in which the rules fired. It also keeps which rows changed between the app's reads.
 */
import type { CoreDropReason, CoreEvent, LogLine, Outbound } from '../core/types';
import type { StoreOp } from '../protocol/store';
import type { LeaseOutput } from './types';

/** An op sent and not yet answered. */
export interface Pending {
  type: StoreOp['type'];
  /** Which lease it belongs to: results for an abandoned lease are void. */
  epoch: number;
  sentAt: number;
  /** For puts, fenced writes and revokes: which one. */
  what?: 'record' | 'promote' | 'resign' | 'checkpoint' | 'last-term';
  /** A campaign: the term it asks for. */
  term?: number;
  /** A write carrying a checkpoint: the caller's ticket (0: none). */
  ticket?: number;
}

export class LeaseStep {
  readonly #hostname: string;
  #out: LeaseOutput = emptyOutput();
  #pending = new Map<number, Pending>();
  #opId = 0;
  /** Counts abandoned leases; results of ops sent under an older epoch are void. */
  epoch = 0;
  /** Rows changed (added, updated or removed) since the app last asked. */
  changed = new Set<string>();
  /** Joins, departures and eligibility flips set this: report the member set if it changed. */
  reportMembersSoon = false;

  constructor(hostname: string) {
    this.#hostname = hostname;
  }

  /** Send a store op that gets a result; `what` tells results of ops of one type apart. */
  op(op: StoreOp, sentAt: number, what?: Pending['what'], extra: { term?: number; ticket?: number } = {}): void {
    const id = this.nextId();
    op.id = id;
    const pending: Pending = { type: op.type, epoch: this.epoch, sentAt, ...extra };
    if (what) pending.what = what;
    this.#pending.set(id, pending);
    this.#out.store.push(op);
  }

  /** Ids of ops and watches share one sequence. */
  nextId(): number {
    return ++this.#opId;
  }

  /** A watch or unwatch: no result is awaited. */
  push(op: StoreOp): void {
    this.#out.store.push(op);
  }

  /** The op `id` was answered: what it was, once (undefined for unknown or repeated ids). */
  settle(id: number): Pending | undefined {
    const pending = this.#pending.get(id);
    if (pending) this.#pending.delete(id);
    return pending;
  }

  send(outbound: Outbound): void {
    this.#out.send.push(outbound);
  }

  drop(reason: CoreDropReason): void {
    this.#out.dropped = reason;
  }

  event(event: CoreEvent): void {
    this.#out.events.push(event);
    if (event.type === 'addserver' || event.type === 'deleteserver') this.changed.add(event.server.hostname);
    if (event.type === 'master' || event.type === 'slave') this.changed.add(this.#hostname);
    if (event.type === 'addserver' || event.type === 'deleteserver') this.reportMembersSoon = true;
  }

  log(level: number, message: string, data?: unknown): void {
    const line: LogLine = data === undefined ? { level, message } : { level, message, data };
    this.#out.logs.push(line);
  }

  /** Hand over what was collected, with the wake-up time, and start a new step. */
  take(wakeAt: number): LeaseOutput {
    const out = this.#out;
    out.wakeAt = wakeAt;
    this.#out = emptyOutput();
    return out;
  }
}

function emptyOutput(): LeaseOutput {
  return { send: [], events: [], logs: [], wakeAt: Infinity, store: [] };
}
