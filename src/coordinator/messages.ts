/**
 * Application messages in the lease election: datagrams (UDP, the driver's transport) to the
 * address each member registered in its record. Only a registered member's current instance
 * is heard, and each of its sequence numbers once: a replayed or reordered datagram is
 * stale, except numbers a newer one skipped (taken once, for a tock), by the UDP core's own
 * rule (elector/seq.ts `isStaleSeq`): without a secret, a forged datagram with a member's
 * instance id and a huge sequence number silences that member for a tock at most.
 */
import type { Address, AppMessage, Message, JsonValue } from '../protocol/messages';
import { messageEvent, type Instant } from '../elector/types';
import { isStaleSeq } from '../elector/seq';
import type { LeaseStep } from './step';
import type { LeaseTable } from './table';

export class AppMessages {
  readonly #hostname: string;
  readonly #instanceId: string;
  readonly #step: LeaseStep;
  readonly #table: LeaseTable;
  /** Datagrams are authenticated (secret_key): a number at or below the last is stale, always. */
  readonly #authenticated: boolean;
  #seq = 0;

  constructor(hostname: string, instanceId: string, step: LeaseStep, table: LeaseTable, authenticated = false) {
    this.#authenticated = authenticated;
    this.#hostname = hostname;
    this.#instanceId = instanceId;
    this.#step = step;
    this.#table = table;
  }

  /** A validated datagram arrived: an event if it is new, from a member, and for us. */
  receive(message: Message, from: Address, now: Instant, tockMs: number): void {
    if (message.action !== 'message' || message.hostname === this.#hostname) return;
    const member = this.#table.members.get(message.hostname);
    if (!member || !member.present || message.iid !== member.iid || message.seq === undefined) {
      this.#step.log(9, `Ignoring a message from ${message.hostname} (${from.address}): not a registered member`);
      return;
    }
    if (message.seq <= member.seq) {
      if (isStaleSeq(message.seq, member.seq, member.seqHeardAt, now.mono, tockMs, this.#authenticated)) {
        if (!member.skipped.take(message.seq, now.mono)) return this.#step.drop('stale');
      } else {
        // A new count: the higher number was a forger's (or is a tock old).
        member.seq = message.seq;
        member.skipped.clear();
      }
    } else {
      member.skipped.note(member.seq, message.seq, now.mono, now.mono + tockMs);
      member.seq = message.seq;
    }
    member.seqHeardAt = now.mono;
    if (message.to !== '*' && message.to !== this.#hostname) return;
    this.#step.event(messageEvent(message));
  }

  /** To the address `to` registered, or to every member for '*'. */
  send(to: string, messageType: string, payload: JsonValue, ids: { rid?: string; re?: string }): void {
    const message: AppMessage = {
      action: 'message',
      hostname: this.#hostname,
      to,
      type: messageType,
      payload,
      iid: this.#instanceId,
      seq: ++this.#seq,
    };
    if (ids.rid !== undefined) message.rid = ids.rid;
    if (ids.re !== undefined) message.re = ids.re;
    const targets = to === '*' ? [...this.#table.members.keys()] : [to];
    for (const hostname of targets) {
      const address = this.#table.addressOf(hostname);
      if (address) this.#step.send(message, address);
      else if (to !== '*') this.#step.log(3, `Cannot send to ${hostname}: no registered address`);
    }
  }
}
