/**
 * The master role handed on by request in the lease election: `stepDown()`, `promote()`, the
 * master's side of a promote request (held while the app drains its master work), and a
 * master made ineligible. A handoff deletes the election key and names the successor in one
 * transaction fenced by our term, with a checkpoint not stored yet; `promote()` asks the
 * master through the `promote` key, or with no master campaigns at once.
 *
 * The handoff in progress and how outcomes are told are handoff.ts (and elector/handoffs.ts);
 * the role changes themselves are the roles' (roles.ts).
 */
import type { Instant } from '../elector/types';
import type { PromoteHold } from '../elector/hold';
import type { Preemption } from '../elector/preempt';
import type { LeaseCheckpoints } from './checkpoints';
import type { LeaseHandoffs } from './handoff';
import type { LeaseSession } from './session';
import type { LeaseStep } from './step';
import type { LeaseTable } from './table';
import * as records from './records';

/** What a handover needs of the roles. */
export interface HandoverRoles {
  readonly role: 'none' | 'slave' | 'master';
  /** The term we hold as master, or held last. */
  readonly heldTerm: number;
  /** The election key as last read. */
  readonly master: { readonly hostname: string; readonly iid: string; readonly term: number } | null;
  readonly handoffWindowMs: number;
  settled: boolean;
  evaluate(now: Instant): void;
  relinquish(reason: string): void;
  resign(reason: string, now: Instant): void;
}

export interface HandoverParts {
  hold?: PromoteHold;
  step: LeaseStep;
  table: LeaseTable;
  session: LeaseSession;
  handoffs: LeaseHandoffs;
}

export class LeaseHandovers {
  readonly #hostname: string;
  readonly #instanceId: string;
  readonly #keys: records.Keys;
  readonly #p: HandoverParts;
  readonly #roles: HandoverRoles;
  readonly #checkpoints: LeaseCheckpoints;

  constructor(
    options: { hostname: string; instanceId: string; keys: records.Keys },
    parts: HandoverParts,
    roles: HandoverRoles,
    checkpoints: LeaseCheckpoints,
  ) {
    this.#hostname = options.hostname;
    this.#instanceId = options.instanceId;
    this.#keys = options.keys;
    this.#p = parts;
    this.#roles = roles;
    this.#checkpoints = checkpoints;
  }

  /** The master's side of promote(): a live eligible member asked for the role. */
  promoteRequested(request: { hostname: string; iid: string; term: number }, now: Instant): void {
    if (this.#roles.role !== 'master' || request.term !== this.#roles.heldTerm || request.hostname === this.#hostname) return;
    const member = this.#p.table.members.get(request.hostname);
    if (!member || !member.present || member.iid !== request.iid || !member.record.eligible) {
      this.#p.step.log(4, `Ignoring promote request from ${request.hostname}: not a live eligible member`);
      return;
    }
    if (this.#p.hold?.hold(request.hostname, now.mono)) return;
    this.#p.step.log(4, `${request.hostname} asked for the master role: handing off`);
    this.#handOff(request.hostname, false, now);
  }

  /** The app drained for a held promote request: hand to its sender, if we are master and it is a live eligible member. */
  handOffHeld(target: string, now: Instant): void {
    if (this.#roles.role !== 'master') return;
    const member = this.#p.table.members.get(target);
    if (!member || !member.present || !member.record.eligible) {
      this.#p.step.log(4, `Drained for ${target}, which is no longer a live eligible member: keeping the master role`);
      this.#p.step.event({ type: 'stepdown', ok: false, hostname: target, reason: `${target} is no longer a live eligible member` });
      return;
    }
    this.#p.step.log(4, `Master work drained: handing off to ${target}`);
    this.#handOff(target, false, now);
  }

  stepDown(now: Instant): void {
    if (!this.#p.session.active || this.#roles.role !== 'master') {
      this.#p.step.event({ type: 'stepdown', ok: false, hostname: '', reason: 'this server is not master' });
      return;
    }
    // A promote request held while the app drained: its sender asked first, it gets the role.
    const held = this.#p.hold?.take() ?? null;
    const member = held === null ? undefined : this.#p.table.members.get(held);
    const target = held !== null && member?.present && member.record.eligible ? held : this.#p.table.bestPeer();
    if (!target) {
      this.#p.step.event({ type: 'stepdown', ok: false, hostname: '', reason: 'no other eligible server to hand off to' });
      return;
    }
    this.#handOff(target, true, now);
  }

  /** Ask for the role (active, deadline checked): the master hands over, or with none we campaign now. */
  promote(now: Instant): void {
    const { step, session, table, handoffs } = this.#p;
    const roles = this.#roles;
    const fail = (reason: string): void => step.event({ type: 'promote', ok: false, reason });
    if (roles.role === 'master') return step.event({ type: 'promote', ok: true, reason: 'already master' });
    if (!table.self.eligible) return fail('this server is not eligible');
    const lease = session.lease;
    if (!lease || !session.synced) return fail('not in contact with the coordinator');
    // The master may drain its work first: allow it our own drain_timeout (one config across the cluster).
    handoffs.promoteUntil = now.mono + roles.handoffWindowMs + (this.#p.hold?.holdMs ?? 0);
    const master = roles.master;
    if (master && master.iid !== this.#instanceId) {
      step.log(4, `Asking ${master.hostname || 'the master'} to hand the master role to us`);
      step.op(
        {
          type: 'put',
          id: 0,
          key: this.#keys.promote,
          value: records.encodePromote(this.#hostname, this.#instanceId, master.term),
          lease: lease.id,
          timeoutMs: session.opTimeoutMs,
        },
        now.mono,
        'promote',
      );
    } else {
      step.log(4, 'Promoted with no master in place: campaigning now');
      handoffs.pending = null;
      handoffs.claimNow = true;
      roles.settled = true;
      roles.evaluate(now);
    }
  }

  /** We were made ineligible: a master hands off to the next in rank, or resigns. */
  becameIneligible(now: Instant): void {
    if (this.#roles.role !== 'master') return;
    const target = this.#p.table.bestPeer();
    if (target) this.#handOff(target, false, now);
    else this.#roles.resign('we are no longer eligible', now);
  }

  #handOff(target: string, stepDown: boolean, now: Instant): void {
    const { session, table, handoffs } = this.#p;
    const lease = session.lease;
    const term = table.self.term;
    handoffs.pending = { target, until: now.mono + this.#roles.handoffWindowMs, stepDown };
    this.#roles.relinquish(`handing off to ${target}`);
    if (!lease) return;
    // A checkpoint not stored yet goes in the same transaction: the successor reads it with the handoff.
    const carried = this.#checkpoints.carry(term);
    this.#p.step.op(
      {
        type: 'fenced',
        id: 0,
        fenceKey: this.#keys.term,
        fenceValue: records.encodeTerm(term),
        deleteKeys: [this.#keys.master, this.#keys.term],
        puts: [
          ...carried.puts,
          { key: this.#keys.handoff, value: records.encodeHandoff(this.#hostname, this.#instanceId, target, term), lease: lease.id },
        ],
        timeoutMs: session.opTimeoutMs,
      },
      now.mono,
      'resign',
      carried.extra,
    );
  }
}

/**
 * Preemption (elector/preempt.ts), asked at the end of every step while it is on: an eligible
 * slave in contact that ranks first among the registered eligible members, with no handoff or promote
 * under way, asks the master it has followed for the delay to hand over (the promote key,
 * held and drained like any other request).
 */
export function preemptIfDue(
  now: Instant,
  us: { hostname: string; instanceId: string; inContact: boolean },
  roles: Pick<HandoverRoles, 'role' | 'master'> & { promote(now: Instant): void },
  parts: { step: LeaseStep; table: LeaseTable; handoffs: LeaseHandoffs; preempt: Preemption },
): void {
  const { step, table, handoffs, preempt } = parts;
  const master = roles.master;
  let candidate: string | null = null;
  if (
    roles.role === 'slave' &&
    us.inContact &&
    table.self.eligible &&
    master !== null &&
    master.hostname !== '' &&
    master.iid !== us.instanceId &&
    handoffs.pending === null &&
    handoffs.promoteUntil === Infinity
  ) {
    const best = table.bestPeer();
    // The master must rank after us even when its own row is missing a moment from the table.
    if ((best === null || table.compare(us.hostname, best) < 0) && table.compare(us.hostname, master.hostname) < 0)
      candidate = master.hostname;
  }
  if (!preempt.due(now.mono, candidate) || candidate === null) return;
  step.log(
    4,
    `Preempting ${candidate}: we rank first and have followed it for ${Math.round(preempt.delayMs ?? 0)} ms; asking it for the master role`,
  );
  step.event({ type: 'preempt', master: candidate });
  roles.promote(now);
}
