/**
 * Who is master in the lease election: the campaign rule, the election key as we last read
 * it, our role changes, and the writes a master makes (resign, handoff, checkpoint).
 *
 *  - the master is whoever created the `master` key; its term is in the key's value, and the
 *    `term` key (under the same lease) holds it alone, as the fence;
 *  - a new term is one above every term we know: the `last-term` key (every campaign writes
 *    it, and the campaign's transaction is guarded on its revision, so no campaign in between
 *    can slip by), the terms we have seen, and the terms members carry in their records. So
 *    terms keep growing when the store is restored from an old snapshot or wiped: the servers
 *    that saw the newer terms carry them back;
 *  - with no key, the eligible member that ranks first campaigns, once it has listened for a
 *    tick after its first read; after `patience` without a master anyone eligible does; a
 *    pending handoff lets only its target;
 *  - we are master only while the key is ours (our instance, our term) and our lease is
 *    alive. Past the lease's deadline we stop, but the key may outlive the lapse (etcd keeps
 *    the lease through its own leader elections): when we read it back, ours with the term we
 *    stopped at, we take the role back with that term. Nobody else can have been master in
 *    between: the key never went. A key of ours we no longer want (a lost reply, a term we
 *    gave up) is resigned by a transaction fenced on its term, again until the store shows it gone;
 *  - a handoff deletes the key and names the successor in one fenced transaction;
 *  - a checkpoint is written fenced by the term we hold, retried until etcd stores it or we
 *    lose the role for good, and its outcome is reported (ok, or a level-1 line and failure). *
 * Not the UDP core's roles (core/roles.ts): there every server decides from what it hears
 * (claims, conflicts, term slots); here the store decides, in one transaction. Both rank by
 * the same rule (elector/rank.ts) and report handoffs the same way (elector/handoffs.ts).
 */
import type { Checkpoint, JsonValue } from '../protocol/messages';
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
  checkpoint: Checkpoint | null = null;
  master: MasterView | null = null;
  /** Since when no key is known (Infinity: unknown until we read the store). */
  noMasterSince = Infinity;
  /** At least this long (options.listenMs), however short the tick. */
  readonly #listenMs: number;
  /** Past this, after our first read, the rank may decide (we have listened for a tick). */
  listenUntil = Infinity;
  settled = false;
  /** Shutting down: no more campaigns. */
  #leaving = false;
  #campaignInFlight = false;
  #nextCampaignAt = 0;
  /** The last term we held: a key of ours with this term or older is one we gave up, never to be adopted. */
  #heldTerm = 0;
  /** The term we held when our lease lapsed: its key, still ours when read back, is taken back. */
  #suspendedTerm = 0;
  /** Resign again at this time: our key outlived a failed resign. */
  #resignDueAt = Infinity;
  /** The `last-term` key as last read: its value, and the revision a campaign is guarded on. */
  #lastTerm = { term: 0, modRevision: 0 };
  /** The checkpoint as the store holds it (last read or written), to restore a newer one after a restore. */
  #storedCheckpoint: Checkpoint | null = null;
  #checkpointWrite: CheckpointWrite | null = null;
  #repairInFlight = false;

  constructor(
    options: { hostname: string; ip: string; instanceId: string; keys: records.Keys; limits: records.Limits; listenMs?: number },
    parts: RolesParts,
  ) {
    this.#listenMs = options.listenMs ?? 0;
    this.#hostname = options.hostname;
    this.#ip = options.ip;
    this.#instanceId = options.instanceId;
    this.#keys = options.keys;
    this.#limits = options.limits;
    this.#p = parts;
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

  /** Without a master for this long, anyone eligible campaigns, whatever the rank (never before the rank had its listen). */
  get #patienceMs(): number {
    const session = this.#p.session;
    return Math.max(session.ttlMs, session.tockMs, this.#listenMs + session.tickMs);
  }

  /** A term we learned of (a member's record, the `last-term` key): the next one we take is above it. */
  noteTerm(term: number): void {
    if (term > this.term) this.term = term;
  }

  /** The `last-term` key changed (kv) or is gone (null). */
  setLastTerm(kv: KeyValue | null, now: Instant): void {
    if (!kv) {
      this.#lastTerm = { term: 0, modRevision: 0 };
      return;
    }
    const term = records.decodeTerm(kv.value);
    if (term === null) this.#p.table.badValue(kv.key, now);
    this.#lastTerm = { term: term ?? 0, modRevision: kv.modRevision };
    this.noteTerm(term ?? 0);
  }

  /**
   * The store holds a lower `last-term` than a term we have seen: it was restored from an
   * older snapshot, or wiped (or written by an older version). Raise it back at once, guarded
   * by the revision we read (a campaign or another server's repair in between wins), so that a
   * server that never saw the newer terms (started since) still campaigns above them.
   */
  repairLastTerm(now: Instant): void {
    const lease = this.#p.session.lease;
    if (!lease || this.#repairInFlight || this.#lastTerm.term >= this.term || this.#leaving) return;
    this.#repairInFlight = true;
    this.#p.step.log(
      3,
      `Coordinator: the store's last term is ${this.#lastTerm.term || 'missing'}, below term ${this.term} we have seen (etcd restored or wiped?): raising it back`,
    );
    this.#p.step.op(
      {
        type: 'fenced',
        id: 0,
        fenceKey: this.#keys.lastTerm,
        fenceModRevision: this.#lastTerm.modRevision,
        puts: [{ key: this.#keys.lastTerm, value: records.encodeTerm(this.term), lease: '0' }],
        timeoutMs: this.#p.session.opTimeoutMs,
      },
      now.mono,
      'last-term',
    );
  }

  /** Campaign if the rules say we may. */
  evaluate(now: Instant): void {
    this.settled ||= now.mono >= this.listenUntil;
    if (this.#mayCampaign(now)) {
      const lease = this.#p.session.lease as { id: string };
      const keys = this.#keys;
      // Above every term we know of, whatever the store's revision: the store may have been restored or wiped.
      const term = Math.max(this.term, this.#lastTerm.term, this.#heldTerm) + 1;
      const text = records.encodeTerm(term);
      this.#campaignInFlight = true;
      this.#p.step.log(5, `Coordinator: no master; campaigning for term ${term}`);
      this.#p.step.op(
        {
          type: 'campaign',
          id: 0,
          key: keys.master,
          value: records.encodeMaster(this.#hostname, this.#ip, this.#instanceId, term),
          lease: lease.id,
          alsoPut: [
            { key: keys.term, value: text, lease: lease.id },
            { key: keys.lastTerm, value: text, lease: '0' },
          ],
          alsoDelete: keys.handoff,
          guard: { key: keys.lastTerm, modRevision: this.#lastTerm.modRevision },
          timeoutMs: this.#p.session.opTimeoutMs,
        },
        now.mono,
        undefined,
        { term },
      );
    }
    this.#writeCheckpointIfDue(now);
  }

  #mayCampaign(now: Instant): boolean {
    const { session, table, handoffs } = this.#p;
    if (!session.active || this.#leaving || !table.self.eligible || this.role === 'master' || this.#campaignInFlight) return false;
    if (!session.lease || !session.registered || !session.synced || this.master !== null || now.mono < this.#nextCampaignAt) return false;
    const handoff = handoffs.pending;
    if (handoff && now.mono < handoff.until) {
      if (handoff.target === this.#hostname) return !handoff.stepDown;
      const target = table.members.get(handoff.target);
      if (target?.present) return false; // it campaigns, not us
    }
    if (handoffs.claimNow) return true;
    if (!this.settled) return false;
    if (now.mono >= this.noMasterSince + this.#patienceMs) return true;
    const best = table.bestPeer();
    return best === null || table.compare(this.#hostname, best) < 0;
  }

  /**
   * The store's history was rewritten (restored from an older snapshot, or wiped): listen a
   * TTL and a tick before any campaign. Within a TTL every live server renews its lease, so
   * hears of it too, reads again, raises `last-term` back and registers its record (with the
   * highest term it knows): the next term is above every term a live server has seen.
   */
  storeRewritten(why: string, now: Instant): void {
    const session = this.#p.session;
    const listenMs = Math.max(session.ttlMs + session.tickMs, this.#listenMs);
    this.#p.step.log(
      2,
      `Coordinator: etcd was restored from a snapshot or wiped (${why}): listening ${Math.round(listenMs)} ms before any campaign`,
    );
    this.listenUntil = Math.max(this.listenUntil === Infinity ? 0 : this.listenUntil, now.mono + listenMs);
    this.settled = false;
    this.noMasterSince = now.mono;
  }

  /** After our first full read: listen a tick before campaigning, so servers that start together elect by rank. */
  firstRead(now: Instant): void {
    if (this.listenUntil === Infinity) this.listenUntil = now.mono + Math.max(this.#p.session.tickMs, this.#listenMs);
    this.settled ||= now.mono >= this.listenUntil;
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
      this.#relinquish('our election key is gone from the store');
      this.#endSuspension(now);
    }
    if (!view) {
      if (previous || this.noMasterSince === Infinity) this.noMasterSince = now.mono;
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
    this.settled = true;
    if (view.hostname) this.#p.handoffs.done(view.hostname, this.#hostname);
    this.#setMasterHostname(view.hostname);
    this.#becomeSlave();
  }

  /**
   * We stop acting on our lease: it lapsed (past its deadline; the store may still hold it,
   * and our key with it) or it is gone. Master of nothing, and out of touch we cannot know who is.
   */
  leaseLost(reason: string, lapsed: boolean, now: Instant, resumable = lapsed): void {
    this.#campaignInFlight = false;
    if (this.role === 'master') {
      if (lapsed && resumable) this.#suspendedTerm = this.#heldTerm;
      this.#relinquish(`our lease may have expired (${reason})`);
    }
    if (!lapsed) this.#endSuspension(now);
    const previous = this.master;
    this.master = null;
    const record = previous?.hostname ? this.#p.table.rows[previous.hostname] : undefined;
    if (record && !record.self) record.master = false;
    if (previous?.hostname) this.#p.step.changed.add(previous.hostname);
    this.noMasterSince = Infinity;
    this.#setMasterHostname('');
    this.#p.handoffs.claimNow = false;
    this.#resignDueAt = Infinity;
    // Lapsed or lost, the role is gone now (retaking it later starts afresh).
    this.#checkpointRoleLost(now);
  }

  /** The result of a campaign or a fenced write (`current`: sent under the lease we hold). */
  settle(pending: Pending, result: StoreResult, current: boolean, now: Instant): void {
    if (result.type === 'error') {
      const retryAt = now.mono + this.#p.session.retryMs;
      if (pending.type === 'campaign') {
        if (!current) return;
        // It may have gone through: the watch will show our key, and we adopt it then.
        this.#campaignInFlight = false;
        this.#nextCampaignAt = retryAt;
      } else if (pending.type === 'fenced' && current && pending.what === 'resign') {
        // Our key must not outlive a resign that failed: try again while the store shows it.
        this.#resignDueAt = Math.min(this.#resignDueAt, retryAt);
      }
      if (pending.what === 'last-term') this.#repairInFlight = false;
      if (pending.ticket !== undefined) this.#checkpointFailed(result.error, now);
      return;
    }
    if (result.type === 'fenced') {
      if (pending.what === 'last-term') this.#repairInFlight = false;
      if (pending.ticket !== undefined) this.#checkpointSettled(pending.ticket, result.succeeded, now);
      return;
    }
    if (result.type !== 'campaign') return;
    if (current) this.#campaignInFlight = false;
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
      this.#nextCampaignAt = now.mono + this.#p.session.retryMs;
    } else {
      // No master, but `last-term` moved under us (another campaign came and went, or an
      // operator wrote it): take its term into account and try again at once.
      this.setLastTerm(result.guard, now);
      this.#nextCampaignAt = now.mono;
    }
  }

  /** A resign that failed is tried again while the store still shows our key. */
  resignIfDue(now: Instant): void {
    if (now.mono < this.#resignDueAt) return;
    this.#resignDueAt = Infinity;
    const master = this.master;
    if (this.#p.session.lease && master && master.iid === this.#instanceId && this.role !== 'master') this.#resignKey(master.term, now);
  }

  /** The master's side of promote(): a live eligible member asked for the role. */
  promoteRequested(request: { hostname: string; iid: string; term: number }, now: Instant): void {
    if (this.role !== 'master' || request.term !== this.#heldTerm || request.hostname === this.#hostname) return;
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
    if (this.role !== 'master') return;
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
    if (!this.#p.session.active || this.role !== 'master') {
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
    const fail = (reason: string): void => step.event({ type: 'promote', ok: false, reason });
    if (this.role === 'master') return step.event({ type: 'promote', ok: true, reason: 'already master' });
    if (!table.self.eligible) return fail('this server is not eligible');
    const lease = session.lease;
    if (!lease || !session.synced) return fail('not in contact with the coordinator');
    // The master may drain its work first: allow it our own drain_timeout (one config across the cluster).
    handoffs.promoteUntil = now.mono + this.handoffWindowMs + (this.#p.hold?.holdMs ?? 0);
    const master = this.master;
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
      this.settled = true;
      this.evaluate(now);
    }
  }

  /**
   * Master only: accept a checkpoint, to be stored fenced by our term (retried until etcd
   * answers, while we hold the role). `ticket` comes back with its outcome. False: not master.
   */
  setCheckpoint(data: JsonValue, now: Instant, ticket: number): boolean {
    if (this.role !== 'master' || !this.#p.session.lease) return false;
    const term = this.#heldTerm;
    const version = this.checkpoint && this.checkpoint.t === term ? this.checkpoint.v + 1 : 1;
    this.checkpoint = { t: term, v: version, d: data };
    const write = this.#checkpointWrite;
    // The newest replaces one not yet sent; one in flight finishes first, then the newest follows.
    this.#checkpointWrite = {
      checkpoint: this.checkpoint,
      term,
      ticket,
      inFlight: write?.inFlight ?? 0,
      uncertain: write?.uncertain ?? false,
      nextAt: now.mono,
    };
    this.#writeCheckpointIfDue(now);
    return true;
  }

  /** A checkpoint as read from the store (a newer one replaces ours; an older one is restored by the master). */
  storedCheckpoint(checkpoint: Checkpoint | null): void {
    this.#storedCheckpoint = checkpoint;
    const known = this.checkpoint;
    if (checkpoint && (!known || newer(checkpoint, known))) this.checkpoint = checkpoint;
  }

  /** We were made ineligible: a master hands off to the next in rank, or resigns. */
  becameIneligible(now: Instant): void {
    if (this.role !== 'master') return;
    const target = this.#p.table.bestPeer();
    if (target) this.#handOff(target, false, now);
    else this.#resign('we are no longer eligible', now);
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
    this.#relinquish('shutting down');
    if (!this.#checkpointWrite || !this.#p.session.lease) return;
    this.#resignKey(term, now);
  }

  /** Graceful shutdown, last step (the lease is being revoked). */
  stop(now: Instant): void {
    this.#leaving = true;
    if (this.role === 'master') this.#relinquish('shutting down');
    this.#checkpointRoleLost(now);
    this.role = 'none';
    this.#p.table.self.master = false;
  }

  /** Results still settled after we stopped: the outcome of a checkpoint sent with the last resign. */
  settleAfterStop(pending: Pending, result: StoreResult, now: Instant): void {
    if (pending.ticket === undefined) return;
    if (result.type === 'fenced') this.#checkpointSettled(pending.ticket, result.succeeded, now);
    else if (result.type === 'error') this.#checkpointFailed(result.error, now);
  }

  wakeAt(now: Instant): number {
    let wake = this.#resignDueAt;
    if (this.master === null && this.#p.table.self.eligible && this.role !== 'master') {
      if (!this.settled) wake = Math.min(wake, this.listenUntil);
      if (this.#nextCampaignAt > now.mono) wake = Math.min(wake, this.#nextCampaignAt);
      const impatient = this.noMasterSince + this.#patienceMs;
      if (impatient > now.mono) wake = Math.min(wake, impatient);
    }
    const write = this.#checkpointWrite;
    if (write && write.inFlight === 0 && this.role === 'master' && write.term === this.#heldTerm)
      wake = Math.min(wake, Math.max(write.nextAt, now.mono));
    return wake;
  }

  #fence(term: number): { fenceKey: string; fenceValue: string } {
    return { fenceKey: this.#keys.term, fenceValue: records.encodeTerm(term) };
  }

  #handOff(target: string, stepDown: boolean, now: Instant): void {
    const { session, table, handoffs } = this.#p;
    const lease = session.lease;
    const term = table.self.term;
    handoffs.pending = { target, until: now.mono + this.handoffWindowMs, stepDown };
    this.#relinquish(`handing off to ${target}`);
    if (!lease) return;
    // A checkpoint not stored yet goes in the same transaction: the successor reads it with the handoff.
    const carried = this.#carryCheckpoint(term);
    this.#p.step.op(
      {
        type: 'fenced',
        id: 0,
        ...this.#fence(term),
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

  /** The pending checkpoint of `term`, as puts for a resign's transaction (marked in flight), and its ticket. */
  #carryCheckpoint(term: number): { puts: Array<{ key: string; value: string; lease: string }>; extra: { ticket?: number } } {
    const write = this.#checkpointWrite;
    if (!write || write.term !== term) return { puts: [], extra: {} };
    write.inFlight++;
    return {
      puts: [{ key: this.#keys.checkpoint, value: records.encodeCheckpoint(this.#hostname, write.checkpoint), lease: '0' }],
      extra: { ticket: write.ticket },
    };
  }

  #resign(reason: string, now: Instant): void {
    const term = this.#p.table.self.term;
    this.#relinquish(reason);
    this.#resignKey(term, now);
  }

  /** Delete the election key of `term` if it is still there (ours, no longer wanted), with a checkpoint of that term not yet stored. */
  #resignKey(term: number, now: Instant): void {
    const carried = this.#carryCheckpoint(term);
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
    if (this.role !== 'master') this.#checkpointRoleLost(now);
  }

  #becomeMaster(term: number, now: Instant): void {
    const { step, table, session, handoffs } = this.#p;
    const resumed = term === this.#heldTerm;
    // A checkpoint of an earlier term of ours that never got stored: that term is over.
    const stale = this.#checkpointWrite;
    if (stale && stale.term !== term && stale.inFlight === 0) {
      this.#checkpointWrite = null;
      this.#reportCheckpoint(stale, `term ${stale.term} ended before etcd answered`, stale.uncertain);
    }
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
    const known = this.checkpoint;
    if (known && (!this.#storedCheckpoint || newer(known, this.#storedCheckpoint)) && !this.#checkpointWrite) {
      this.#checkpointWrite = { checkpoint: known, term, ticket: 0, inFlight: 0, uncertain: false, nextAt: now.mono };
    }
  }

  #becomeSlave(): void {
    if (this.role === 'slave') return;
    this.role = 'slave';
    this.#p.table.self.master = false;
    this.#p.step.log(4, `We are now a slave server (master: ${this.masterHostname})`);
    this.#p.step.event({ type: 'slave' });
  }

  #relinquish(reason: string): void {
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

  // ---- checkpoints ------------------------------------------------------------------

  #writeCheckpointIfDue(now: Instant): void {
    const write = this.#checkpointWrite;
    const lease = this.#p.session.lease;
    if (!write || write.inFlight > 0 || now.mono < write.nextAt || this.role !== 'master' || !lease || write.term !== this.#heldTerm)
      return;
    write.inFlight++;
    const value = records.encodeCheckpoint(this.#hostname, write.checkpoint);
    this.#p.step.op(
      {
        type: 'fenced',
        id: 0,
        ...this.#fence(write.term),
        puts: [{ key: this.#keys.checkpoint, value, lease: '0' }],
        timeoutMs: this.#p.session.opTimeoutMs,
      },
      now.mono,
      'checkpoint',
      {
        ticket: write.ticket,
      },
    );
  }

  /** A write carrying checkpoint `ticket` was answered: stored, or refused by the fence. */
  #checkpointSettled(ticket: number, stored: boolean, now: Instant): void {
    const write = this.#checkpointWrite;
    if (!write) return;
    write.inFlight = Math.max(0, write.inFlight - 1);
    if (stored) {
      if (ticket > 0) this.#p.step.event({ type: 'checkpoint', ok: true, ticket, reason: 'stored' });
      if (write.ticket === ticket) {
        this.#storedCheckpoint = write.checkpoint;
        this.#checkpointWrite = null;
      } else {
        // An older one: the newest follows.
        write.uncertain = false;
        this.#writeCheckpointIfDue(now);
      }
      return;
    }
    // Refused by the fence: the term we wrote with is no longer the store's. Another write still
    // in flight (the resign that carries it) may have stored it first: its answer decides.
    if (write.inFlight > 0) return;
    this.#checkpointWrite = null;
    this.#reportCheckpoint(write, `term ${write.term} no longer holds the election key`, false);
    if (this.role === 'master' && write.term === this.#heldTerm) {
      this.#relinquish(`a write fenced with our term ${write.term} was refused: the store holds another term`);
      this.#p.session.resync(now);
    }
  }

  /** A write carrying the checkpoint got no answer: it may or may not be stored; again after a while, while we hold the role. */
  #checkpointFailed(error: string, now: Instant): void {
    const write = this.#checkpointWrite;
    if (!write) return;
    write.inFlight = Math.max(0, write.inFlight - 1);
    write.uncertain = true;
    write.nextAt = now.mono + this.#p.session.retryMs;
    if (this.role !== 'master' || write.term !== this.#heldTerm) this.#checkpointRoleLost(now, error);
  }

  /** The role is gone (relinquished, lapsed, lost): a checkpoint not stored yet never will be by us; reported once no write of it is in flight. */
  #checkpointRoleLost(_now: Instant, why?: string): void {
    const write = this.#checkpointWrite;
    if (!write || write.inFlight > 0) return;
    this.#checkpointWrite = null;
    this.#reportCheckpoint(
      write,
      why ? `we lost the master role before etcd answered (${why})` : 'we lost the master role before etcd answered',
      write.uncertain,
    );
  }

  #reportCheckpoint(write: CheckpointWrite, reason: string, uncertain: boolean): void {
    const what = `Checkpoint of term ${write.term}, version ${write.checkpoint.v}`;
    const text = `${what} was ${uncertain ? 'perhaps not' : 'not'} stored: ${reason}`;
    this.#p.step.log(1, text);
    if (write.ticket > 0) this.#p.step.event({ type: 'checkpoint', ok: false, ticket: write.ticket, reason: text });
  }
}

function newer(a: Checkpoint, b: Checkpoint): boolean {
  return a.t > b.t || (a.t === b.t && a.v > b.v);
}
