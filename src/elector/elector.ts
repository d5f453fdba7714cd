/**
 * What the driver and the component need of an election: the UDP core (core/election.ts)
 * and the lease election (coordinator/lease-election.ts) both are one. Every input takes the
 * time and returns an Output to carry out; the lease election's Output also carries store
 * ops, which the driver hands to its host.
 */
import type { Address, HealthWord, JsonObject, JsonValue, Message } from '../protocol/messages';
import type { Instant, Output, ServerRecord } from './types';

export interface Elector {
  readonly hostname: string;
  readonly instanceId: string;
  readonly master: boolean;
  readonly slave: boolean;
  readonly masterHostname: string;
  readonly eligible: boolean;
  /** The fencing token. */
  readonly term: number;
  readonly checkpoint: JsonValue | null;
  /** The whole table as copies. */
  readonly table: Record<string, ServerRecord>;
  record(hostname: string): ServerRecord | undefined;
  /** Hostnames whose row changed since the last call, or 'all'. */
  takeChanged(): Set<string> | 'all';
  start(now: Instant): Output;
  /** `lateMs`: how late the timer that calls it fired (the driver measures it). */
  tick(now: Instant, lateMs?: number): Output;
  receive(message: Message, from: Address, now: Instant): Output;
  sendMessage(to: string, messageType: string, payload: JsonValue, now: Instant, ids?: { rid?: string; re?: string }): Output;
  /** `ticket` (coordinator mode) comes back in the `checkpoint` event that says whether it was stored. */
  setCheckpoint(data: JsonValue, now: Instant, ticket?: number): Output | null;
  setEligible(eligible: boolean, now: Instant): Output;
  setData(data: JsonObject): void;
  /** Our health check's state, as our record shows it and other servers see it (null: none). */
  setHealth(health: HealthWord | null): void;
  setLocked(hostname: string, locked: boolean, now: Instant): Output;
  setTiming(timing: { tickMs: number; checkBeats: number }, now: Instant): Output;
  /** `drainMs`: the app's drain_timeout, for a promote request held while it drains; `preemptDelayMs`: preempt_delay (null: preemption off); absent: unchanged. */
  setPolicy(
    policy: { exitOnConflict: boolean; priority: number; quorum: number; drainMs?: number; preemptDelayMs?: number | null },
    now: Instant,
  ): Output;
  stepDown(now: Instant): Output;
  promote(now: Instant): Output;
  shutdown(now: Instant): Output;
  /** The app's master work has drained: hand over to the promote request held (a `drain` event), if any. */
  drained?(now: Instant): Output;
  /** The most detailed log level anyone reads; an elector may skip building lines beyond it. */
  logLevel?: number;
}
