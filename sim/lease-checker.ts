/**
 * The etcd mode's invariants (listed in sim/lease-scenario.ts), checked on every event and
 * after every simulation step of a `LeaseSimCluster`; the first one broken throws a
 * `LeaseViolation`.
 */
import type { LeaseEventRecord, LeaseNode, LeaseSimCluster } from './lease-cluster';
import { LeaseViolation, type LeaseInvariant } from './lease-scenario-types';

export class LeaseChecker {
  expectFirstMaster: string | null = null;
  /** Set while the cluster must stay as it is. */
  stableSince: number | null = null;
  joiner: LeaseNode | null = null;
  /** Until then (a leader election alone), no role event may happen on these processes. */
  noFlapUntil: number | null = null;
  readonly noFlap = new Set<LeaseNode['machine']>();
  #sim: LeaseSimCluster;
  #highestTerm = 0;
  /** A term was granted twice (the store forgot it, and no one who knew it was back): checkpoint order means nothing after. */
  #termReused = false;
  /** The highest checkpoint (its `n`) the store acknowledged, when it was sent, and when acknowledged. */
  #acked = { n: 0, sentAt: -Infinity, at: -Infinity };
  #sentAt = new Map<number, number>();
  /** When the store's history was last rewritten (restore, wipe), what each live process knew then, and until when it could act on its lease. */
  #rewrite: {
    at: number;
    known: Map<LeaseNode['machine'], number>;
    validUntil: Map<LeaseNode['machine'], number>;
    terms: Map<LeaseNode['machine'], number>;
  } | null = null;
  /** The machine (process) that last became master. */
  #lastMaster: LeaseNode['machine'] | null = null;
  #resume: { node: LeaseNode; term: number; at: number; seen: boolean } | null = null;

  constructor(sim: LeaseSimCluster) {
    this.#sim = sim;
    sim.observer = {
      onEvent: (record, node) => this.#onEvent(record, node),
      afterStep: () => this.#afterStep(),
    };
  }

  watchResume(node: LeaseNode, term: number, at: number): void {
    this.#resume = { node, term, at, seen: false };
  }

  /** The outcome arrives as a `checkpoint` event (ticket = n). */
  /**
   * The store was rewritten after `term` was granted, and no process that knew it has read the
   * store since: nothing anywhere can carry it back (SPEC 15.4's limit; docs/ETCD.md, after a
   * restore or a wipe).
   */
  #termsForgotten(term: number): boolean {
    const rewrite = this.#rewrite;
    if (!rewrite) return false;
    for (const [machine, known] of rewrite.terms) {
      const node = [...this.#sim.nodes.values()].find((n) => n.machine === machine);
      if (known >= term && node?.alive && machine.lastReadAt > rewrite.at) return false;
    }
    return true;
  }

  checkpointSent(ticket: number): void {
    this.#sentAt.set(ticket, this.#sim.now);
  }

  /** The store is about to be restored or wiped: what each process knows now is all that survives outside it. */
  rewritten(): void {
    const known = new Map<LeaseNode['machine'], number>();
    const validUntil = new Map<LeaseNode['machine'], number>();
    const terms = new Map<LeaseNode['machine'], number>();
    for (const node of this.#sim.live()) {
      known.set(node.machine, checkpointN(node.machine.checkpoint));
      validUntil.set(node.machine, node.machine.leaseValidUntil);
      terms.set(node.machine, node.machine.term);
    }
    this.#rewrite = { at: this.#sim.now, known, validUntil, terms };
  }

  #fail(invariant: LeaseInvariant, detail: string): never {
    throw new LeaseViolation(invariant, this.#sim.now, detail);
  }

  #onEvent(record: LeaseEventRecord, node: LeaseNode): void {
    const event = record.event;
    const resume = this.#resume;
    // masterchange to '' comes just before slave (as in the UDP core): it says "no master known".
    const neutral = event.type === 'members' || (event.type === 'masterchange' && event.hostname === '');
    if (resume && resume.node === node && !resume.seen && this.#sim.now >= resume.at && !neutral) {
      resume.seen = true;
      if (event.type !== 'slave')
        this.#fail('resume-slave-first', `${node.id} resumed from a freeze past its lease and emitted ${event.type} before slave`);
    }
    if (
      this.noFlapUntil !== null &&
      this.#sim.now <= this.noFlapUntil &&
      this.noFlap.has(node.machine) &&
      (event.type === 'master' || event.type === 'slave' || event.type === 'masterchange')
    ) {
      this.#fail('leader-change-no-flap', `${node.id} emitted ${event.type} during an etcd leader election alone`);
    }
    if (event.type === 'checkpoint' && event.ok && event.ticket > this.#acked.n)
      this.#acked = { n: event.ticket, sentAt: this.#sentAt.get(event.ticket) ?? -Infinity, at: this.#sim.now };
    if (event.type === 'master') {
      // No acknowledged checkpoint lost: the next master resumes from it (or a newer one), unless the
      // store lost it (a restore or wipe since) and this process did not know it when that happened.
      const acked = this.#acked;
      const rewrite = this.#rewrite;
      // (Stored before the rewrite if sent before it, whenever the acknowledgement arrived.)
      const exempt =
        this.#termReused || (rewrite !== null && rewrite.at > acked.sentAt && (rewrite.known.get(node.machine) ?? 0) < acked.n);
      const got = checkpointN(event.checkpoint);
      if (!exempt && got < acked.n)
        this.#fail(
          'checkpoint-kept',
          `${node.id} became master with checkpoint ${got}, but checkpoint ${acked.n} was acknowledged at ${acked.at.toFixed(1)} ms`,
        );
    }
    if (event.type === 'master') {
      // A master whose lease lapsed here but not in the store takes its role back with the same
      // term: the same tenure, nobody else master in between (single-master checks the store).
      const resumed = event.term === this.#highestTerm && this.#lastMaster === node.machine;
      if (event.term < this.#highestTerm || (event.term === this.#highestTerm && !resumed)) {
        if (!this.#termsForgotten(this.#highestTerm))
          this.#fail('terms-increase', `${node.id} became master with term ${event.term}, not above ${this.#highestTerm}`);
        // A term granted twice: checkpoints (ordered by term, then version) are not comparable from here on.
        this.#termReused = true;
      }
      this.#highestTerm = event.term;
      this.#lastMaster = node.machine;
      if (this.expectFirstMaster !== null) {
        if (node.id !== this.expectFirstMaster)
          this.#fail('cold-start-rank', `${node.id} became the first master; ${this.expectFirstMaster} ranks first`);
        this.expectFirstMaster = null;
      }
      if (this.joiner === node) this.#fail('probe-bound', `the joiner ${node.id} took the master role`);
    }
    if (
      this.stableSince !== null &&
      (event.type === 'master' || event.type === 'slave' || event.type === 'masterchange') &&
      node !== this.joiner
    ) {
      this.#fail('stable-no-flap', `${node.id} emitted ${event.type} in a stable cluster`);
    }
  }

  #afterStep(): void {
    const sim = this.#sim;
    const store = sim.store;
    const now = sim.now;
    for (const node of sim.nodes.values()) {
      if (!node.alive || node.frozenUntil > now) continue;
      const machine = node.machine;
      // Master as the app sees it (the component's `master` checks the lease's deadline too).
      if (!machine.isMasterAt({ mono: now, wall: 0 })) continue;
      if (!machine.eligible) this.#fail('ineligible-never-master', `${node.id} is master while ineligible`);
      const key = store.kv.get(machine.keys.master);
      const fence = store.kv.get(machine.keys.term);
      const term = machine.heldTerm;
      // A restore or wipe rewrites the store under a master, outside the lease's rules: it hears of
      // it (its watch breaks) and reads again within a few round trips, and acts no longer than its
      // lease allowed when it happened (a store down meanwhile tells it nothing). Its fenced writes fail.
      const rewrite = this.#rewrite;
      const grace = Math.max(rewrite?.at ?? -Infinity, 0) + store.watchLostDelayMs + store.maxOneWayMs * 4 + machine.ttlMs / 3 + 1;
      // (Until it has read the store again: a slow store may keep it from that for longer.)
      if (
        rewrite &&
        rewrite.known.has(machine) &&
        (now < Math.max(grace, rewrite.validUntil.get(machine) ?? -Infinity) || machine.lastReadAt < rewrite.at)
      )
        continue;
      if (!key || key.lease !== machine.lease || fence?.value !== String(term) || fence.lease !== key.lease) {
        this.#fail(
          'single-master-in-store-truth',
          `${node.id} believes it is master (term ${term}, lease ${machine.lease}) but the store's key is ${key ? `under lease ${key.lease}, its fence ${fence ? `${fence.value} under lease ${fence.lease}` : 'absent'}` : 'absent'}`,
        );
      }
      const lease = store.leases.get(key.lease);
      if (!lease || now >= lease.expiresAt) {
        this.#fail(
          'single-master-in-store-truth',
          `${node.id} believes it is master but its lease ${key.lease} ${lease ? `expired at ${lease.expiresAt.toFixed(1)} ms in store time` : 'is gone'}`,
        );
      }
      if (store.downSince !== null && now >= store.downSince + lease.ttlMs) {
        this.#fail(
          'no-master-while-store-down',
          `${node.id} is master ${Math.round(now - store.downSince)} ms into a store outage (TTL ${lease.ttlMs} ms)`,
        );
      }
    }
  }
}

/** The `n` of a scenario's checkpoint (`{ n }`), 0 for none. */
function checkpointN(checkpoint: unknown): number {
  const n = (checkpoint as { n?: unknown } | null)?.n;
  return typeof n === 'number' ? n : 0;
}
