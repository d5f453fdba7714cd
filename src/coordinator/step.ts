/**
 * What one call into the lease election produces (elector/step.ts), and what only it keeps
 * across calls: every store op sent, until its result comes back (which lease it belonged to,
 * what it was for), and which rows changed between the app's reads. The UDP core needs
 * neither: it awaits no results, and its member table tracks its own changed rows.
 */
import type { CoreEvent } from '../elector/types';
import type { StoreOp } from '../protocol/store';
import { OutputStep } from '../elector/step';

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

export class LeaseStep extends OutputStep {
  readonly #hostname: string;
  #pending = new Map<number, Pending>();
  #opId = 0;
  /** Counts abandoned leases; results of ops sent under an older epoch are void. */
  epoch = 0;
  /** Rows changed (added, updated or removed) since the app last asked. */
  changed = new Set<string>();

  constructor(hostname: string) {
    super();
    this.#hostname = hostname;
  }

  /** Send a store op that gets a result; `what` tells results of ops of one type apart. */
  op(op: StoreOp, sentAt: number, what?: Pending['what'], extra: { term?: number; ticket?: number } = {}): void {
    const id = this.nextId();
    op.id = id;
    const pending: Pending = { type: op.type, epoch: this.epoch, sentAt, ...extra };
    if (what) pending.what = what;
    this.#pending.set(id, pending);
    this.store(op);
  }

  /** Ids of ops and watches share one sequence. */
  nextId(): number {
    return ++this.#opId;
  }

  /** The op `id` was answered: what it was, once (undefined for unknown or repeated ids). */
  settle(id: number): Pending | undefined {
    const pending = this.#pending.get(id);
    if (pending) this.#pending.delete(id);
    return pending;
  }

  override event(event: CoreEvent): void {
    super.event(event);
    if (event.type === 'addserver' || event.type === 'deleteserver') this.changed.add(event.server.hostname);
    if (event.type === 'master' || event.type === 'slave') this.changed.add(this.#hostname);
  }
}
