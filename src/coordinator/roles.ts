/**
 * Who is master in the lease election: the election key as we last read it, our role changes,
 * and the resigns a master makes.
 *
 *  - the master is whoever created the `master` key; its term is in the key's value, and the
 *    `term` key (under the same lease) holds it alone, as the fence. When and for which term
 *    we campaign is campaign.ts; what we do with the result is here;
 *  - we are master only while the key is ours (our instance, our term) and our lease is
 *    alive. Past the lease's deadline we stop, but the key may outlive the lapse (etcd keeps
 *    the lease through its own leader elections): when we read it back, ours with the term we
 *    stopped at, we take the role back with that term. Nobody else can have been master in
 *    between: the key never went. A key of ours we no longer want (a lost reply, a term we
 *    gave up) is resigned by a transaction fenced on its term, again until the store shows it gone;
 *  - handoffs by request (stepDown, promote) are handovers.ts; the checkpoint, written fenced by
 *    the term we hold, is checkpoints.ts. Both act on the role through this module.
 *
 * Not the UDP core's roles (core/roles.ts): there every server decides from what it hears
 * (claims, conflicts, term slots); here the store decides, in one transaction. Both rank by
 * the same rule (elector/rank.ts) and report handoffs the same way (elector/handoffs.ts).
 */
import type { Checkpoint, JsonValue } from '../protocol/messages';
import { LeaseCampaign } from './campaign';
import { LeaseCheckpoints } from './checkpoints';
import { LeaseHandovers } from './handovers';
import type { Instant } from '../elector/types';
import type { KeyValue, StoreResult } from '../protocol/store';
import type { LeaseHandoffs } from './handoff';
import type { LeaseSession } from './session';
import type { LeaseStep, Pending } from './step';
import type { LeaseTable } from './table';
import * as records from './records';
import type { PromoteHold } from '../elector/hold';

type Role = 'none' | 'slave' | 'master';

/** The election key as we last read it. */
export interface MasterView {
  hostname: string;
  iid: string;
  term: number;
  lease: string;
}

export interface RolesParts {
  /** A promote request held while the app drains its master work (elector/hold.ts). */
  hold?: PromoteHold;
  step: LeaseStep;
  table: LeaseTable;
  session: LeaseSession;
  handoffs: LeaseHandoffs;
}

export class LeaseRoles {
  readonly #hostname: string;
  readonly #ip: string;
  readonly #instanceId: string;
  readonly #keys: records.Keys;
  readonly #limits: records.Limits;
  readonly #p: RolesParts;
  role: Role = 'none';
  masterHostname = '';
  /** The highest term seen (ours, the key's, `last-term`, members' records). */
  term = 0;
  master: MasterView | null = null;
  /** Shutting down: no more campaigns. */
  #leaving = false;
  /** The last term we held: a key of ours with this term or older is one we gave up, never to be adopted. */
  #heldTerm = 0;
  /** The term we held when our lease lapsed: its key, still ours when read back, is taken back. */
  #suspendedTerm = 0;
  /** Resign again at this time: our key outlived a failed resign. */
  #resignDueAt = Infinity;
  readonly #checkpoints: LeaseCheckpoints;
  readonly #campaign: LeaseCampaign;
  readonly #handovers: LeaseHandovers;

  constructor(
    options: { hostname: string; ip: string; instanceId: string; keys: records.Keys; limits: records.Limits; listenMs?: number },
    parts: RolesParts,
  ) {
    this.#hostname = options.hostname;
    this.#ip = options.ip;
    this.#instanceId = options.instanceId;
    this.#keys = options.keys;
    this.#limits = options.limits;
    this.#p = parts;
    this.#checkpoints = new LeaseCheckpoints(options, parts, {
      holds: (term) => this.role === 'master' && term === this.#heldTerm,
      fenceRefused: (term, now) => {
        this.relinquish(`a write fenced with our term ${term} was refused: the store holds another term`);
        this.#p.session.resync(now);
      },
    });
    this.#campaign = new LeaseCampaign(options, parts, this);
    this.#handovers = new LeaseHandovers(options, parts, this, this.#checkpoints);
  }

  /** Our first read settled who campaigns (or the listen after it ran out). */
  get settled(): boolean {
    return this.#campaign.settled;
  }

  set settled(value: boolean) {
    this.#campaign.settled = value;
  }

  get leaving(): boolean {
    return this.#leaving;
  }

  /** The newest checkpoint we know (set by us, or read from the store). */
  get checkpoint(): Checkpoint | null {
    return this.#checkpoints.known;
  }

  /** The term we hold as master, or held last (0: never). */
  get heldTerm(): number {
    return this.#heldTerm;
  }

  /**
   * How long a handoff or a promote request may take: a tock, as in the UDP core, but never
   * less than a TTL: it takes three store round trips (request, resign, campaign), and with a
   * short tick a slow store needs more than a tock for them.
   */
  get handoffWindowMs(): number {
    return Math.max(this.#p.session.tockMs, this.#p.session.ttlMs);
  }

  /** A term we learned of (a member's record, the `last-term` key): the next one we take is above it. */
  noteTerm(term: number): void {
    if (term > this.term) this.term = term;
  }

  /** The `last-term` key changed (kv) or is gone (null). */
  setLastTerm(kv: KeyValue | null, now: Instant): void {
    this.#campaign.setLastTerm(kv, now);
  }

  /** Raise a `last-term` below a term we have seen (campaign.ts). */
  repairLastTerm(now: Instant): void {
    this.#campaign.repairLastTerm(now);
  }

  /** Campaign if the rules say we may; write a checkpoint that is due. */
  evaluate(now: Instant): void {
    this.#campaign.run(now);
    this.#checkpoints.writeIfDue(now);
  }

  /** The store's history was rewritten: listen before any campaign (campaign.ts). */
  storeRewritten(why: string, now: Instant): void {
    this.#campaign.storeRewritten(why, now);
  }

  /** After our first full read (campaign.ts). */
  firstRead(now: Instant): void {
    this.#campaign.firstRead(now);
  }

  /** The election key changed (kv) or is gone (null). */
  setMaster(kv: KeyValue | null, now: Instant): void {
    const { table } = this.#p;
    let view: MasterView | null = null;
    if (kv) {
      const parsed = records.decodeMaster(kv.value, this.#limits);
      if (!parsed) table.badValue(kv.key, now);
      // An unreadable key still occupies the election: nobody can campaign while it exists.
      // Written by an older version (no term in it): its term was the key's create revision.
      view = { hostname: parsed?.hostname ?? '', iid: parsed?.iid ?? '', term: parsed?.term || kv.createRevision, lease: kv.lease };
      this.noteTerm(view.term);
    }
    const previous = this.master;
    this.master = view;
    if (previous && previous.hostname && previous.hostname !== view?.hostname) {
      const record = table.rows[previous.hostname];
      if (record && !record.self) record.master = false;
      this.#p.step.changed.add(previous.hostname);
    }
    if (this.role === 'master' && (!view || view.iid !== this.#instanceId || view.term !== table.self.term)) {
      this.relinquish('our election key is gone from the store');
      this.#endSuspension(now);
    }
    if (!view) {
      if (previous || this.#campaign.noMasterSince === Infinity) this.#campaign.noMasterSince = now.mono;
      this.#endSuspension(now);
      this.#setMasterHostname('');
      return;
    }
    if (view.iid === this.#instanceId) {
      if (this.role === 'master') return;
      const lease = this.#p.session.lease;
      const ours = lease !== null && view.lease === lease.id && table.self.eligible && now.mono < lease.validUntil;
      if (ours && view.term === this.#suspendedTerm && this.term <= view.term) {
        // Our lease lapsed here, not at the store: the key never went, so nobody else was master.
        // (Unless a higher term is known anywhere: then the store was restored under us.)
        this.#p.step.log(2, `Coordinator: our election key outlived the lapse of our lease (term ${view.term}): master again`);
        this.#suspendedTerm = 0;
        this.#becomeMaster(view.term, now);
      } else if (ours && view.term > this.#heldTerm) {
        // A campaign whose reply we lost went through: the key is ours, under our live lease.
        this.#becomeMaster(view.term, now);
      } else {
        this.#endSuspension(now);
        this.#resignKey(view.term, now);
      }
      return;
    }
    this.#endSuspension(now);
    const record = view.hostname ? table.rows[view.hostname] : undefined;
    if (record && !record.self) {
      record.master = true;
      record.term = Math.max(record.term, view.term);
      this.#p.step.changed.add(view.hostname);
    }
    this.#campaign.settled = true;
    if (view.hostname) this.#p.handoffs.done(view.hostname, this.#hostname);
    this.#setMasterHostname(view.hostname);
    this.#becomeSlave();
  }

  /**
   * We stop acting on our lease: it lapsed (past its deadline; the store may still hold it,
   * and our key with it) or it is gone. Master of nothing, and out of touch we cannot know who is.
   */
  leaseLost(reason: string, lapsed: boolean, now: Instant, resumable = lapsed): void {
    this.#campaign.inFlight = false;
    if (this.role === 'master') {
      if (lapsed && resumable) this.#suspendedTerm = this.#heldTerm;
      this.relinquish(`our lease may have expired (${reason})`);
    }
    if (!lapsed) this.#endSuspension(now);
    const previous = this.master;
    this.master = null;
    const record = previous?.hostname ? this.#p.table.rows[previous.hostname] : undefined;
    if (record && !record.self) record.master = false;
    if (previous?.hostname) this.#p.step.changed.add(previous.hostname);
    this.#campaign.noMasterSince = Infinity;
    this.#setMasterHostname('');
    this.#p.handoffs.claimNow = false;
    this.#resignDueAt = Infinity;
    // Lapsed or lost, the role is gone now (retaking it later starts afresh).
    this.#checkpoints.roleLost(now);
  }

  /** The result of a campaign or a fenced write (`current`: sent under the lease we hold). */
  settle(pending: Pending, result: StoreResult, current: boolean, now: Instant): void {
    if (result.type === 'error') {
      const retryAt = now.mono + this.#p.session.retryMs;
      if (pending.type === 'campaign') {
        if (!current) return;
        // It may have gone through: the watch will show our key, and we adopt it then.
        this.#campaign.inFlight = false;
        this.#campaign.nextAt = retryAt;
      } else if (pending.type === 'fenced' && current && pending.what === 'resign') {
        // Our key must not outlive a resign that failed: try again while the store shows it.
        this.#resignDueAt = Math.min(this.#resignDueAt, retryAt);
      }
      if (pending.what === 'last-term') this.#campaign.repairSettled();
      if (pending.ticket !== undefined) this.#checkpoints.failed(result.error, now);
      return;
    }
    if (result.type === 'fenced') {
      if (pending.what === 'last-term') this.#campaign.repairSettled();
      if (pending.ticket !== undefined) this.#checkpoints.settled(pending.ticket, result.succeeded, now);
      return;
    }
    if (result.type !== 'campaign') return;
    if (current) this.#campaign.inFlight = false;
    const term = pending.term ?? 0;
    if (result.won) {
      if (this.#heldTerm === term) return; // the watch showed it first: already master
      const { session, table } = this.#p;
      if (
        current &&
        session.active &&
        table.self.eligible &&
        this.role !== 'master' &&
        session.lease &&
        now.mono < session.lease.validUntil
      ) {
        this.#becomeMaster(term, now);
      } else if (current) {
        // Won, but no longer wanted (made ineligible meanwhile): give it back.
        this.#resignKey(term, now);
      }
      return;
    }
    if (!current) return;
    if (result.holder) {
      this.setMaster(result.holder, now);
      this.#campaign.nextAt = now.mono + this.#p.session.retryMs;
    } else {
      // No master, but `last-term` moved under us (another campaign came and went, or an
      // operator wrote it): take its term into account and try again at once.
      this.setLastTerm(result.guard, now);
      this.#campaign.nextAt = now.mono;
    }
  }

  /** A resign that failed is tried again while the store still shows our key. */
  resignIfDue(now: Instant): void {
    if (now.mono < this.#resignDueAt) return;
    this.#resignDueAt = Infinity;
    const master = this.master;
    if (this.#p.session.lease && master && master.iid === this.#instanceId && this.role !== 'master') this.#resignKey(master.term, now);
  }

  /** The master's side of promote() (handovers.ts). */
  promoteRequested(request: { hostname: string; iid: string; term: number }, now: Instant): void {
    this.#handovers.promoteRequested(request, now);
  }

  /** The app drained for a held promote request (handovers.ts). */
  handOffHeld(target: string, now: Instant): void {
    this.#handovers.handOffHeld(target, now);
  }

  stepDown(now: Instant): void {
    this.#handovers.stepDown(now);
  }

  /** Ask for the role (handovers.ts). */
  promote(now: Instant): void {
    this.#handovers.promote(now);
  }

  /**
   * Master only: accept a checkpoint, to be stored fenced by our term (retried until etcd
   * answers, while we hold the role). `ticket` comes back with its outcome. False: not master.
   */
  setCheckpoint(data: JsonValue, now: Instant, ticket: number): boolean {
    if (this.role !== 'master' || !this.#p.session.lease) return false;
    this.#checkpoints.set(data, this.#heldTerm, ticket, now);
    return true;
  }

  /** A checkpoint as read from the store (a newer one replaces ours; an older one is restored by the master). */
  storedCheckpoint(checkpoint: Checkpoint | null): void {
    this.#checkpoints.fromStore(checkpoint);
  }

  /** We were made ineligible: a master hands off to the next in rank, or resigns (handovers.ts). */
  becameIneligible(now: Instant): void {
    this.#handovers.becameIneligible(now);
  }

  /**
   * Graceful shutdown, first step: no more campaigns, and the app hears `slave` before the
   * lease (and with it the key) is revoked in the next step. A checkpoint not yet stored goes
   * with the resign, in one transaction fenced by our term.
   */
  leave(now: Instant): void {
    this.#leaving = true;
    if (this.role !== 'master') return;
    const term = this.#heldTerm;
    this.relinquish('shutting down');
    if (!this.#checkpoints.pending || !this.#p.session.lease) return;
    this.#resignKey(term, now);
  }

  /** Graceful shutdown, last step (the lease is being revoked). */
  stop(now: Instant): void {
    this.#leaving = true;
    if (this.role === 'master') this.relinquish('shutting down');
    this.#checkpoints.roleLost(now);
    this.role = 'none';
    this.#p.table.self.master = false;
  }

  /** Results still settled after we stopped: the outcome of a checkpoint sent with the last resign. */
  settleAfterStop(pending: Pending, result: StoreResult, now: Instant): void {
    if (pending.ticket === undefined) return;
    if (result.type === 'fenced') this.#checkpoints.settled(pending.ticket, result.succeeded, now);
    else if (result.type === 'error') this.#checkpoints.failed(result.error, now);
  }

  wakeAt(now: Instant): number {
    return Math.min(this.#resignDueAt, this.#campaign.wakeAt(now), this.#checkpoints.wakeAt(now));
  }

  #fence(term: number): { fenceKey: string; fenceValue: string } {
    return { fenceKey: this.#keys.term, fenceValue: records.encodeTerm(term) };
  }

  /** Give the role up and delete our key (for handovers.ts). */
  resign(reason: string, now: Instant): void {
    const term = this.#p.table.self.term;
    this.relinquish(reason);
    this.#resignKey(term, now);
  }

  /** Delete the election key of `term` if it is still there (ours, no longer wanted), with a checkpoint of that term not yet stored. */
  #resignKey(term: number, now: Instant): void {
    const carried = this.#checkpoints.carry(term);
    const op = {
      type: 'fenced' as const,
      id: 0,
      ...this.#fence(term),
      deleteKeys: [this.#keys.master, this.#keys.term],
      timeoutMs: this.#p.session.opTimeoutMs,
    };
    this.#p.step.op(carried.puts.length > 0 ? { ...op, puts: carried.puts } : op, now.mono, 'resign', carried.extra);
  }

  /** The term we stopped at is not coming back: a checkpoint of it that waited is reported. */
  #endSuspension(now: Instant): void {
    this.#suspendedTerm = 0;
    if (this.role !== 'master') this.#checkpoints.roleLost(now);
  }

  #becomeMaster(term: number, now: Instant): void {
    const { step, table, session, handoffs } = this.#p;
    const resumed = term === this.#heldTerm;
    // A checkpoint of an earlier term of ours that never got stored: that term is over.
    this.#checkpoints.dropStale(term);
    this.role = 'master';
    table.self.master = true;
    this.noteTerm(term);
    table.self.term = term;
    this.#heldTerm = term;
    this.master = { hostname: this.#hostname, iid: this.#instanceId, term, lease: session.lease?.id ?? '0' };
    handoffs.claimNow = false;
    handoffs.done(this.#hostname, this.#hostname);
    this.#setMasterHostname(this.#hostname);
    step.log(4, `We are ${resumed ? 'again' : 'now'} the master server (term ${term})`, { servers: Object.keys(table.rows).sort() });
    step.event({ type: 'master', term, checkpoint: this.checkpoint?.d ?? null });
    handoffs.promoted(term);
    // A checkpoint we know that the store lost (restored from an older snapshot, or wiped): store it again.
    this.#checkpoints.restoreLost(term, now);
  }

  #becomeSlave(): void {
    if (this.role === 'slave') return;
    this.role = 'slave';
    this.#p.table.self.master = false;
    this.#p.step.log(4, `We are now a slave server (master: ${this.masterHostname})`);
    this.#p.step.event({ type: 'slave' });
  }

  /** Stop being master, and say so (for handovers.ts and checkpoints.ts). */
  relinquish(reason: string): void {
    this.#p.step.log(4, `We are relinquishing master control: ${reason}`);
    this.role = 'slave';
    this.#p.table.self.master = false;
    this.#setMasterHostname('');
    this.#p.step.event({ type: 'slave' });
  }

  #setMasterHostname(hostname: string): void {
    if (hostname === this.masterHostname) return;
    const previous = this.masterHostname;
    this.masterHostname = hostname;
    // As the UDP mode: a new master is a state change (level 4), its loss is said where it happens.
    if (hostname && hostname !== this.#hostname) this.#p.step.log(4, `The master server is now: ${hostname}`);
    this.#p.step.event({ type: 'masterchange', hostname, previous });
  }
}
