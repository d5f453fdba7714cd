/**
 * What one call into an election produces, collected as it happens: datagrams, store ops,
 * events, log lines, a drop reason. Every module of a machine writes into the same step, so
 * within a call the order of sends, ops and events is the order in which the rules fired.
 * Both machines collect their Output this way; each extends it with what only it keeps
 * (core/step.ts: a peer heard again; coordinator/step.ts: ops awaiting results, rows changed).
 */
import type { Address, Message } from '../protocol/messages';
import type { StoreOp } from '../protocol/store';
import type { CoreDropReason, CoreEvent, Outbound, Output } from './types';

export class OutputStep {
  #out: Output = emptyOutput();
  /** Joins, departures and eligibility flips set this: the member set may have changed. */
  membersMayHaveChanged = false;
  /**
   * The most detailed level anyone will write (the driver sets it from the logger): lines
   * built for every packet (level 10) are not built at all when nobody reads them.
   */
  verbosity = 10;

  wants(level: number): boolean {
    return level <= this.verbosity;
  }

  /** To everyone (`to` absent) or one address. `loopback`: it must also come back to our own socket, behind whatever is queued there. */
  send(message: Message, to?: Address, loopback = false): void {
    const outbound: Outbound = to ? { message, to } : { message };
    if (loopback) outbound.loopback = true;
    this.#out.send.push(outbound);
  }

  /** A store op for the driver's host to carry out (etcd mode). */
  store(op: StoreOp): void {
    this.#out.store.push(op);
  }

  event(event: CoreEvent): void {
    this.#out.events.push(event);
    // Only joins and departures (and eligibility flips, flagged where they happen) can
    // change the member set; other events need no re-sort of every hostname.
    if (event.type === 'addserver' || event.type === 'deleteserver') this.membersMayHaveChanged = true;
  }

  log(level: number, message: string, data?: unknown): void {
    this.#out.logs.push(data === undefined ? { level, message } : { level, message, data });
  }

  /** A line about another server, caused by its packets (or their absence): it counts against the driver's log budget. */
  peerLog(level: number, message: string, data?: unknown): void {
    this.#out.logs.push(data === undefined ? { level, message, remote: true } : { level, message, data, remote: true });
  }

  /** A line remote input can repeat at will: the driver writes at most one per `kind` per minute. */
  logOnce(kind: string, level: number, message: string): void {
    this.#out.logs.push({ level, message, kind, remote: true });
  }

  drop(reason: CoreDropReason): void {
    this.#out.dropped = reason;
  }

  /**
   * Hand over what was collected, with the wake-up time, and start a new step. A step that
   * produced nothing (most packets: a heartbeat that changes nothing) reuses one Output,
   * whose arrays stay empty: callers read an Output, they never keep or fill one.
   */
  take(wakeAt: number): Output {
    const out = this.#out;
    if (out.send.length === 0 && out.events.length === 0 && out.logs.length === 0 && out.store.length === 0) {
      out.wakeAt = wakeAt;
      const quiet = this.#quiet;
      quiet.wakeAt = wakeAt;
      if (out.dropped === undefined) delete quiet.dropped;
      else quiet.dropped = out.dropped;
      delete out.dropped;
      return quiet;
    }
    out.wakeAt = wakeAt;
    this.#out = emptyOutput();
    return out;
  }

  #quiet: Output = emptyOutput();
}

function emptyOutput(): Output {
  return { send: [], store: [], events: [], logs: [], wakeAt: Infinity };
}
