/**
 * Invariants of the election, checked continuously while a simulated cluster runs.
 *
 * The checker watches every core event and every process start and end, and after
 * every simulation step re-checks whatever the step could have changed. The scenario
 * runner tells it which phase the run is in; the first broken invariant throws a
 * `Violation`, which stops the run at the very step that broke it.
 *
 * Words (as in SPEC.md):
 *  - agreed: every live server has the same `masterHostname`, and exactly one live server,
 *    the one of that hostname, has `master === true`. When no live server is eligible,
 *    agreed means no master at all and every `masterHostname` is ''.
 *  - quiet (T_quiet): the network is stable (no loss, duplication, reordering, delay spike,
 *    partition or one-way cut) and every datagram sent while it was not has landed; no
 *    server is stalled; no server starts, ends or changes eligibility any more. Wall-clock
 *    steps may go on: SPEC 4.9 says they change nothing, so they do not break quiet.
 *  - fresh (T_fresh = T_quiet + 1 tick + the largest one-way delay): every live server has
 *    heard every other since T_quiet. Before it, a server may still act on what it last
 *    heard during the faults: a peer silent through a cut can reach its deadline just after
 *    the heal and be removed (and re-added at its next heartbeat), which SPEC 4.6 allows,
 *    as that peer was not heard within the last tock.
 *  - stable: fresh, and agreed; T_conv is when that agreement began. On a quiet network,
 *    agreement among fresh servers is absorbing, so from then on nothing may change.
 */
import type { CoreEvent } from '../src/elector/types';
import type { SimCluster, SimEventRecord, SimNode } from './cluster';

export type InvariantName =
  /** The core never throws, whatever arrives in whatever order. */
  | 'no-exception'
  /** Simulated time moves on: no core asks to be woken "now" over and over (a busy loop in a real process). */
  | 'no-livelock'
  /** SPEC 4.8: at no instant, in any phase, is an ineligible server master. */
  | 'ineligible-never-master'
  /** SPEC 3 / 4.6: a record marked `locked` is never removed, in any phase. */
  | 'locked-never-removed'
  /**
   * SPEC 4.2, 4.4, 4.7, measured from T_quiet: agreed by the deadline, and agreed at every
   * instant from the deadline on; the deadline is
   *   max(T_quiet + max(1 tock, 1 tick + 2 × the largest delay)
   *                                         — 4.7: conflicts resolve within a tock of a network on
   *                                           which every server hears every other, which takes a
   *                                           heartbeat round and an answer after T_quiet,
   *       last start + 1 tock + 1 tick      — 4.2: cold start, late joiners, restarts,
   *       L + 1 tock + 2 ticks for every ended process, L = the last time a datagram of it
   *                                         — 4.4: master within tock + tick of the last
   *                                           heartbeat heard, all agree one tick later).
   * A stall's bound runs from the stall's end, which is part of T_quiet.
   */
  | 'agreed-within-bound'
  /** SPEC 4.2: with no fault at all and every start within (tock - tick) of the first, the first-sorting eligible server wins. */
  | 'cold-start-first-sorting-wins'
  /** SPEC 4.10: once stable, no master/slave/masterchange/exit event on any server. */
  | 'stable-no-flap'
  /** SPEC 4.6: once stable (so every live server has been heard since T_quiet), no server removes a server that is alive. */
  | 'stable-no-live-removal'
  /** Once stable the cluster stays agreed (the same master) to the end of the run. */
  | 'stable-stays-agreed'
  /** SPEC 4.3: a server joining a stable cluster never takes the master role, even if it sorts first. */
  | 'joiner-never-master'
  /** SPEC 4.3: a server joining a stable cluster names the master within 1 tick. */
  | 'joiner-learns-master-within-tick'
  /** SPEC 4.5: the stable cluster's master shuts down gracefully; the survivors agree within 100 ms. */
  | 'graceful-handoff-within-100ms'
  /**
   * SPEC 4.4: the stable cluster's master crashes; the first-sorting eligible survivor F is
   * master within tock + tick of the last heartbeat F heard from it, all agree 1 tick later.
   */
  | 'crash-failover-within-tock-plus-tick'
  /**
   * Two processes share (or shared) a hostname; the core's handling of that is still being
   * built. Safety only: from
   * T_quiet + 1 tock + 1 tick on, at most one server whose hostname is not shared is master.
   */
  | 'duplicate-hostname-single-master'
  /**
   * SPEC 8, quorum: a master that can no longer hear `quorum` live eligible servers
   * (itself included) steps down within one tock (with check_beats 1, 1.25 ticks) of the
   * last datagram from the ones it lost (a stall postpones that: its datagrams are read
   * when it wakes). So the minority side
   * of a partition never keeps a master.
   */
  | 'quorum-minority-steps-down'
  /**
   * SPEC 8, quorum: no server becomes master while it cannot hear `quorum` live eligible
   * servers, once a tick and a half has passed since the last datagrams of those it lost
   * landed (a claim counts only servers heard that recently).
   */
  | 'quorum-minority-never-claims'
  /**
   * SPEC 8, quorum, when the only faults are clean cuts (partitions both ways, crashes,
   * shutdowns) and no loss: never two masters at once, on either side of a partition.
   */
  | 'quorum-no-two-masters'
  /** SPEC 9, stepDown()/promote() on a stable cluster: the target is master and all agree within one round trip, and both ends report success. */
  | 'handoff-within-round-trip'
  /** SPEC 7: the new master's term is above the old master's. */
  | 'handoff-raises-term'
  /**
   * SPEC 9.3: during a handoff no two servers are master at once, and no server's table shows
   * two masters; in the probe of a stable cluster, and in the fault phase of runs whose only
   * faults are API calls (stepDown, promote, eligibility, timing reloads on several servers
   * at once), at every step while any server has a handoff in progress.
   */
  | 'handoff-no-two-masters'
  /**
   * SPEC 7.4, fencing tokens are unique: no term is ever held as master by two servers
   * (hostnames), at once or one after the other, in any phase, whatever the network does:
   * crossing claims, the two sides of a partition, handoffs, stalls. Checked at every step.
   */
  | 'term-unique'
  /**
   * SPEC 4.6, 4.12: no server removes a live server whose heartbeats reach it: at a
   * `deleteserver`, the removed server is alive, neither it nor the remover has stalled,
   * and nothing it sent the remover since the remover last heard it was lost or delayed by
   * the network (a partition, loss, a spike, a slow link). Checked in every phase (a forger
   * aside, which can remove real servers while it speaks). A server configured slower than
   * the remover must also hear it (that is how it keeps its pace), and with check_beats 1 it
   * may be removed once as it joins (SPEC 4.12).
   */
  | 'no-live-removal'
  /**
   * From T_quiet on (faults over, a forger gone), each master the cluster agrees on holds a
   * term above the one agreed on before it. (Two claims that cross in flight while the
   * cluster converges may share a term for that moment; the master agreed on after it never
   * goes back.)
   */
  | 'term-increases'
  /** SPEC 11, cluster_id: a server never adds a server that exists only in another namespace. */
  | 'namespace-isolated'
  /**
   * SPEC 9.7 (sim/work.ts): every commit a fenced store accepts from master work carries a term
   * above every commit of another process before it: a master frozen mid-task past a failover
   * never commits after the next master's first commit.
   */
  | 'fenced-commit-order'
  /**
   * SPEC 9.6 (sim/work.ts): a server hands the role over on purpose only with no task running
   * (but those aborted at the drain timeout), and never hands a held promote request over
   * before its app said drained (the backstop aside).
   */
  | 'work-drained-before-handoff'
  /**
   * SPEC 4.14: a server preempts only a master that ranks after it, that has been master (as
   * elected) for at least the delay, and at most once per delay.
   */
  | 'preempt-once-per-delay';

export class Violation extends Error {
  constructor(
    readonly invariant: InvariantName,
    readonly time: number,
    readonly detail: string,
  ) {
    super(`${invariant} at ${time.toFixed(1)} ms: ${detail}`);
    this.name = 'Violation';
  }
}

export type Phase =
  /** Faults may be active: only the invariants that hold always are checked. */
  | 'faulty'
  /** Quiet, waiting for agreement by `deadline` and for T_fresh. */
  | 'converging'
  /** Agreed since T_conv: nothing may change. */
  | 'stable'
  /** A duplicate hostname is still running: safety only. */
  | 'shared-hostname';

export interface Agreement {
  agreed: boolean;
  /** The agreed master's hostname ('' for "no master"); meaningful when agreed. */
  master: string;
}

/** Who may still change its view during a stable phase (a joiner learning the master). */
interface Exemption {
  id: string;
  master: string;
}

export class InvariantChecker {
  phase: Phase = 'faulty';
  /** When the current convergence must be done, and under which invariant. */
  deadline = Infinity;
  /** T_fresh of the current convergence: the stable phase starts no earlier. */
  freshAt = 0;
  deadlineInvariant: InvariantName = 'agreed-within-bound';
  deadlineDetail = '';
  /** Start of the agreement that became the stable phase (null while converging). */
  convergedAt: number | null = null;
  /** Start of the current unbroken agreement while converging (null: not agreed now). */
  #agreedSince: number | null = null;
  agreedMaster = '';
  /** Called once when agreement is reached in a 'converging' phase. */
  onConverged: ((time: number, master: string) => void) | null = null;
  /** While converging, only agreement on this master counts (a handoff to a known target). */
  expectMaster: string | null = null;
  /** The `cluster_id` whose agreement `agreedMaster` reports; other namespaces must agree among themselves. */
  mainCluster = '';
  /** A manual handoff is under way: two masters, even as one server sees them, are a violation. */
  handoff = false;
  /**
   * With a quorum: how many live eligible servers of its namespace (itself included) `node`
   * can hear now, and the time by which any datagram already sent has landed (the runner
   * knows the network). Set by the runner; null when no server has a quorum.
   */
  quorumNetwork: { reach(node: SimNode): number; deliveredBy(): number } | null = null;
  /** Check `quorum-no-two-masters` (the runner knows when the faults allow it). */
  quorumStrict = false;
  /** Per server below quorum in the real network: when the datagrams it still had coming have landed. */
  #shortSince = new Map<SimNode, number>();
  #reachDirty = true;
  /** A server of another namespace has started. */
  #namespaces = false;
  /** The reach last computed per server. */
  #reach = new Map<SimNode, number>();

  readonly lockedHosts: ReadonlySet<string>;
  #sim: SimCluster;
  #dirty = true;
  #exempt: Exemption | null = null;
  /** Hostnames run by more than one node id (duplicate-hostname processes). */
  #shared = new Set<string>();
  /**
   * Until when what a forger said may still be believed (its last packet + a tock and a
   * quarter tick). Term uniqueness is not checked before: without a secret a forger can
   * make a server ignore a real claim while it speaks.
   */
  forgedUntil = -Infinity;
  /** From T_quiet: the master last agreed on and its term (null: not watching yet). */
  #lastAgreed: { hostname: string; term: number } | null = null;
  /** Every term held as master so far, per namespace ("<cid> <term>"), and by whom. */
  #termHolders = new Map<string, string>();
  /** Servers that may be master now (became master and have not been seen to stop). */
  #masters = new Set<SimNode>();
  /**
   * The run's only faults are API calls: while any server has a handoff in progress, no two
   * masters and no table showing two (set by the runner).
   */
  handoffStrict = false;

  constructor(sim: SimCluster, lockedHosts: Iterable<string> = []) {
    this.#sim = sim;
    this.lockedHosts = new Set(lockedHosts);
    sim.observer = {
      onEvent: (record, node) => this.#onEvent(record, node),
      onLifecycle: (kind, node) => {
        this.#dirty = true;
        this.#reachDirty = true;
        if (kind === 'start' && (node.options.clusterId ?? '') !== this.mainCluster) this.#namespaces = true;
        if (kind === 'start' || kind === 'crash' || kind === 'shutdown') this.#masters.delete(node);
        // Setting eligible to false on a master must take the role away at once (SPEC 4.8).
        if (kind === 'eligible' && node.alive && node.core.master && !node.core.eligible) {
          this.fail('ineligible-never-master', `${node.id} is still master after being made ineligible`);
        }
      },
      afterStep: () => this.#afterStep(),
    };
  }

  /**
   * Enter the convergence phase: agreement is due by `deadline` and must hold from then on;
   * the stable phase begins once agreed and `freshAt` has passed (the runner schedules
   * `checkDeadline` at both instants).
   */
  converge(
    deadline: number,
    freshAt: number,
    invariant: InvariantName = 'agreed-within-bound',
    detail = '',
    expectMaster: string | null = null,
  ): void {
    this.phase = 'converging';
    this.expectMaster = expectMaster;
    this.deadline = deadline;
    this.freshAt = freshAt;
    this.#agreedSince = null;
    this.deadlineInvariant = invariant;
    this.deadlineDetail = detail;
    this.convergedAt = null;
    this.#exempt = null;
    this.#dirty = true;
    this.#afterStep();
  }

  /** Safety only from now on: some hostname is run by two processes. */
  sharedHostnames(hostnames: Iterable<string>): void {
    this.phase = 'shared-hostname';
    this.#shared = new Set(hostnames);
    this.#dirty = true;
  }

  /** From now on (T_quiet), each new master's term must be above every master's before it. */
  watchTerms(): void {
    this.#lastAgreed = { hostname: '', term: 0 };
  }

  /** The cluster agrees on `hostname`: its term must not go back, nor repeat for another master. */
  #checkAgreedTerm(hostname: string): void {
    const last = this.#lastAgreed;
    if (last === null || hostname === '') return;
    let term = -1;
    for (const node of this.#sim.nodes.values()) {
      if (node.alive && node.core.master && node.hostname === hostname && (node.options.clusterId ?? '') === this.mainCluster)
        term = node.core.term;
    }
    if (term < 0) return;
    if (term < last.term || (term === last.term && hostname !== last.hostname)) {
      this.fail(
        'term-increases',
        `the cluster agrees on ${hostname} with term ${term}, after ${last.hostname} with term ${last.term}; ${this.describe()}`,
      );
    }
    this.#lastAgreed = { hostname, term };
  }

  /** Every master's term is its own: never held by another hostname, before or since. */
  #checkTerms(): void {
    for (const node of this.#masters) {
      if (!node.alive || !node.core.master) {
        this.#masters.delete(node);
        continue;
      }
      const key = `${node.options.clusterId ?? ''} ${node.core.term}`;
      const holder = this.#termHolders.get(key);
      if (holder === undefined) this.#termHolders.set(key, node.hostname);
      else if (holder !== node.hostname)
        this.fail('term-unique', `${node.id} is master with term ${node.core.term}, which ${holder} held as master; ${this.describe()}`);
    }
  }

  /** A handoff is in progress somewhere: one master at most, and no table that shows two. */
  #checkHandoffStep(): void {
    let inFlight = false;
    for (const node of this.#sim.nodes.values()) {
      if (node.alive && node.core.handoffTarget !== null && (node.options.clusterId ?? '') === this.mainCluster) {
        inFlight = true;
        break;
      }
    }
    if (!inFlight) return;
    let masters = 0;
    for (const node of this.#masters) if (node.alive && node.core.master && (node.options.clusterId ?? '') === this.mainCluster) masters++;
    if (masters > 1) this.fail('handoff-no-two-masters', `two masters during a handoff; ${this.describe()}`);
    const stepped = this.#sim.stepNode;
    if (stepped?.alive && (stepped.options.clusterId ?? '') === this.mainCluster) {
      const shown = stepped.core.mastersShown();
      if (shown.length > 1)
        this.fail('handoff-no-two-masters', `${stepped.id}'s table shows ${shown.join(', ')} as master during a handoff`);
    }
  }

  /** Let `id` (a joiner) move from no master to `master` while the rest stays stable. */
  exempt(id: string, master: string): void {
    this.#exempt = { id, master };
  }

  /** Called at the deadline and at T_fresh: throws if agreement is overdue. */
  checkDeadline(): void {
    if (this.phase === 'shared-hostname') {
      this.#dirty = true;
      this.#afterStep();
      return;
    }
    if (this.phase !== 'converging') return;
    this.#dirty = true;
    this.#afterStep();
  }

  fail(invariant: InvariantName, detail: string): never {
    throw new Violation(invariant, this.#sim.now, detail);
  }

  /** The network changed (a cut began or ended): who can reach whom is recomputed. */
  networkChanged(): void {
    this.#reachDirty = true;
    this.#dirty = true;
  }

  /**
   * Every namespace agreed; `master` is the main namespace's. Without any server that may be
   * master (none eligible, or fewer live eligible servers than the quorum), agreed means
   * no master at all.
   */
  agreement(): Agreement {
    let main: Agreement = { agreed: true, master: '' };
    let others: Map<string, SimNode[]> | null = null;
    const mainNodes: SimNode[] = [];
    for (const node of this.#sim.nodes.values()) {
      if (!node.alive) continue;
      const cid = node.options.clusterId ?? '';
      if (cid === this.mainCluster) {
        mainNodes.push(node);
        continue;
      }
      others ??= new Map();
      const group = others.get(cid);
      if (group) group.push(node);
      else others.set(cid, [node]);
    }
    main = agreementOf(mainNodes);
    if (!main.agreed) return main;
    if (others) {
      for (const group of others.values()) if (!agreementOf(group).agreed) return { agreed: false, master: '' };
    }
    return main;
  }

  /** One line per live server: who it thinks is master. */
  describe(): string {
    const views: string[] = [];
    for (const node of this.#sim.nodes.values()) {
      if (!node.alive) continue;
      views.push(`${node.id}${node.core.master ? '*' : ''}${node.core.eligible ? '' : '(inel)'}→${node.core.masterHostname || '?'}`);
    }
    const shown = views.length > 24 ? [...views.slice(0, 24), `… ${views.length - 24} more`] : views;
    return `views: ${shown.join(' ')}`;
  }

  #onEvent(record: SimEventRecord, node: SimNode): void {
    const event = record.event;
    switch (event.type) {
      case 'addserver':
        // The application locks a record as soon as it appears (SPEC 3: `locked: true`).
        if (this.lockedHosts.has(event.server.hostname)) this.#sim.lock(node.id, event.server.hostname);
        this.#checkNamespace(event.server.hostname, node);
        return;
      case 'masterchange':
        if (this.handoff && event.hostname === '' && (node.options.clusterId ?? '') === this.mainCluster) this.#checkClaimants(node);
        break;
      case 'deleteserver':
        this.#onDelete(event, node);
        return;
      case 'master':
        if (!node.core.eligible) this.fail('ineligible-never-master', `${node.id} became master while ineligible`);
        this.#masters.add(node);
        this.#checkTerms();
        if (this.quorumNetwork) this.#checkClaim(node);
        if (this.quorumStrict && (node.options.quorum ?? 0) > 0) {
          for (const other of this.#sim.nodes.values()) {
            if (other !== node && other.alive && other.core.master && sameCluster(other, node)) {
              this.fail('quorum-no-two-masters', `${node.id} became master while ${other.id} still is; ${this.describe()}`);
            }
          }
        }
        if (this.handoff && (node.options.clusterId ?? '') === this.mainCluster) {
          for (const other of this.#sim.nodes.values()) {
            if (other !== node && other.alive && other.core.master && sameCluster(other, node)) {
              this.fail('handoff-no-two-masters', `${node.id} became master while ${other.id} still is; ${this.describe()}`);
            }
          }
        }
        break;
      case 'slave':
      case 'exit':
        break;
      default:
        // conflict, duplicate, members, message, stepdown, promote: no change of role.
        return;
    }
    // master, slave, masterchange, exit: the agreement may have changed.
    this.#dirty = true;
    if (this.phase !== 'stable') return;
    const exempt = this.#exempt;
    if (exempt && node.id === exempt.id) {
      if (event.type === 'master')
        this.fail('joiner-never-master', `${node.id} joined a stable cluster (master ${exempt.master}) and took the master role`);
      if (event.type === 'slave') return;
      if (event.type === 'masterchange' && event.hostname === exempt.master) return;
      if (event.type === 'masterchange' && event.hostname === '' && event.previous === '') return;
    }
    this.fail('stable-no-flap', `${node.id}: ${describe(event)} in a stable cluster (master ${this.agreedMaster || 'none'})`);
  }

  #onDelete(event: Extract<CoreEvent, { type: 'deleteserver' }>, node: SimNode): void {
    const hostname = event.server.hostname;
    if (event.server.locked || this.lockedHosts.has(hostname)) {
      this.fail('locked-never-removed', `${node.id} removed locked server ${hostname}`);
    }
    this.#checkLiveRemoval(hostname, node);
    if (this.phase !== 'stable') return;
    for (const other of this.#sim.nodes.values()) {
      // A cut that stays (SPEC 4.13) is part of the stable network: across it, servers are silent to each other.
      if (other.alive && other.hostname === hostname && other !== node && sameCluster(other, node) && this.#sim.link(other.id, node.id)) {
        this.fail('stable-no-live-removal', `${node.id} removed ${hostname}, which is alive, in a stable cluster`);
      }
    }
  }

  /** `remover` removed `hostname`: it must not be alive and reaching `remover` undisturbed. */
  #checkLiveRemoval(hostname: string, remover: SimNode): void {
    const sim = this.#sim;
    if (sim.now < this.forgedUntil || this.#shared.has(hostname)) return;
    let removed: SimNode | null = null;
    for (const other of sim.nodes.values()) {
      if (other.hostname !== hostname || !sameCluster(other, remover)) continue;
      if (removed) return; // two processes with this hostname: the duplicate rules' business
      removed = other;
    }
    if (!removed?.alive || removed.id !== removed.hostname) return;
    const heard = remover.heardFrom.get(removed.id);
    // Its current process, heard here; since then nothing of it lost or delayed on the way, no stall on either side.
    if (!heard || heard.iid !== removed.instance.iid) return;
    if ((remover.troubleFrom.get(removed.id) ?? -Infinity) >= heard.at) return;
    if (removed.stalledUntil >= heard.at || remover.stalledUntil >= heard.at) return;
    // SPEC 4.12's one exception: a server that joins a remover configured faster, with
    // check_beats 1, before it has shown the remover's pace (its second heartbeat comes a
    // round trip after it first heard the remover; with a round trip beyond a quarter tick
    // it is removed once, and re-added at once).
    const tick = remover.core.tickMs;
    const slower = (removed.options.tickMs ?? sim.tickMs) > tick;
    if (remover.core.tockMs === tick && slower && sim.now - heard.since <= 3.25 * tick) return;
    // A server configured slower keeps the remover's pace only while it hears the remover: when
    // the remover's datagrams to it were lost lately (within two of its own tocks), it cannot.
    if (slower && sim.now - (removed.troubleFrom.get(remover.id) ?? -Infinity) <= 2 * removed.core.tockMs + removed.core.tickMs) return;
    this.fail(
      'no-live-removal',
      `${remover.id} removed ${hostname}, which is alive and whose heartbeats reach it undisturbed (last read ${heard.at.toFixed(1)} ms, ${(sim.now - heard.at).toFixed(1)} ms ago)`,
    );
  }

  /** A server of another namespace only (not a namespace-mate of the same name) was added. */
  #checkNamespace(hostname: string, node: SimNode): void {
    // One namespace (nearly every run): nothing to check, and no walk over a 1000-server table per join.
    if (!this.#namespaces) return;
    let elsewhere = false;
    for (const other of this.#sim.nodes.values()) {
      if (other.hostname !== hostname) continue;
      if (sameCluster(other, node)) return;
      elsewhere = true;
    }
    // A name no simulated server has came from outside (a forged or injected packet): not a namespace matter.
    if (elsewhere)
      this.fail(
        'namespace-isolated',
        `${node.id} (cluster_id '${node.options.clusterId ?? ''}') added ${hostname}, which runs only in another namespace`,
      );
  }

  /** During a handoff, `node` named no master: because it saw none, never because it saw two. */
  #checkClaimants(node: SimNode): void {
    const claimants: string[] = node.core.master ? [node.hostname] : [];
    for (const record of Object.values(node.core.table)) {
      if (record.hostname !== node.hostname && record.master) claimants.push(record.hostname);
    }
    if (claimants.length > 1) this.fail('handoff-no-two-masters', `${node.id} sees two masters during a handoff: ${claimants.join(', ')}`);
  }

  #checkClaim(node: SimNode): void {
    this.#checkQuorum();
    const since = this.#shortSince.get(node);
    if (since === undefined) return;
    const sim = this.#sim;
    const bound = Math.max(since, node.stalledUntil + 0.001, node.backlog.end) + Math.min(quorumWindow(sim), 1.5 * sim.tickMs) + 0.01;
    if (sim.now > bound) {
      this.fail(
        'quorum-minority-never-claims',
        `${node.id} became master hearing only ${this.quorumNetwork?.reach(node)} of the ${node.options.quorum} eligible servers its quorum needs, since ${since.toFixed(1)} ms`,
      );
    }
  }

  /** Quorum: a master the network has cut below quorum must have stepped down a tock after its last datagrams landed. */
  #checkQuorum(): void {
    const network = this.quorumNetwork;
    if (!network) return;
    const now = this.#sim.now;
    if (this.#reachDirty) {
      this.#reachDirty = false;
      for (const node of this.#sim.nodes.values()) {
        const quorum = node.options.quorum ?? 0;
        const reach = node.alive && quorum > 0 ? network.reach(node) : Infinity;
        const before = this.#reach.get(node) ?? 0;
        this.#reach.set(node, reach);
        if (reach >= quorum) {
          this.#shortSince.delete(node);
        } else if (!this.#shortSince.has(node) || reach < before) {
          // The bound runs from the latest loss: a server it has just been cut from was
          // heard until now (short before, say, only because others had not started yet).
          this.#shortSince.set(node, Math.max(now, network.deliveredBy()));
        }
      }
    }
    for (const [node, since] of this.#shortSince) {
      if (!node.alive || !node.core.master) continue;
      // Datagrams held back by its own stall are read (and counted as heard) when it wakes.
      const bound = Math.max(since, node.stalledUntil + 0.001, node.backlog.end) + quorumWindow(this.#sim) + 0.01;
      if (now > bound) {
        this.fail(
          'quorum-minority-steps-down',
          `${node.id} is master, but since ${since.toFixed(1)} ms it hears only ${network.reach(node)} of the ${node.options.quorum} eligible servers its quorum needs (bound ${bound.toFixed(1)} ms)`,
        );
      }
    }
  }

  #afterStep(): void {
    if (this.#masters.size > 0) this.#checkTerms();
    if (this.handoffStrict && this.#masters.size > 0) this.#checkHandoffStep();
    if (this.quorumNetwork) this.#checkQuorum();
    if (!this.#dirty) return;
    this.#dirty = false;
    switch (this.phase) {
      case 'faulty':
        return;
      case 'shared-hostname': {
        if (this.#sim.now < this.deadline) return;
        const masters: string[] = [];
        for (const node of this.#sim.nodes.values()) {
          if (node.alive && node.core.master && !this.#shared.has(node.hostname)) masters.push(node.id);
        }
        if (masters.length > 1)
          this.fail('duplicate-hostname-single-master', `two masters at once: ${masters.join(', ')}; ${this.describe()}`);
        return;
      }
      case 'converging': {
        const now = this.#sim.now;
        const agreement = this.agreement();
        if (this.expectMaster !== null && agreement.master !== this.expectMaster) agreement.agreed = false;
        if (!agreement.agreed) {
          this.#agreedSince = null;
          if (now >= this.deadline) {
            throw new Violation(
              this.deadlineInvariant,
              now,
              `not agreed at ${now.toFixed(1)} ms, due by ${this.deadline.toFixed(1)} ms${this.deadlineDetail ? ` (${this.deadlineDetail})` : ''}; ${this.describe()}`,
            );
          }
          return;
        }
        if (this.#agreedSince === null || agreement.master !== this.agreedMaster) this.#agreedSince = now;
        this.agreedMaster = agreement.master;
        this.#checkAgreedTerm(agreement.master);
        if (now < this.freshAt) return;
        this.phase = 'stable';
        this.convergedAt = this.#agreedSince;
        this.onConverged?.(this.#agreedSince, agreement.master);
        return;
      }
      case 'stable': {
        const agreement = this.agreement();
        if (!agreement.agreed || agreement.master !== this.agreedMaster) {
          const exempt = this.#exempt;
          // A joiner that has not yet heard the master is the one server allowed to disagree.
          if (exempt && this.#agreedBut(exempt.id)) return;
          this.fail('stable-stays-agreed', `was agreed on ${this.agreedMaster || 'no master'}; ${this.describe()}`);
        }
        this.#checkAgreedTerm(agreement.master);
        return;
      }
    }
  }

  /** Agreed on the same master if server `id` (still learning) is left out. */
  #agreedBut(id: string): boolean {
    const joiner = this.#sim.nodes.get(id);
    if (!joiner || joiner.core.master) return false;
    for (const node of this.#sim.nodes.values()) {
      if (!node.alive || node.id === id || !sameCluster(node, joiner)) continue;
      if (node.core.masterHostname !== this.agreedMaster) return false;
      if (node.core.master !== (node.hostname === this.agreedMaster)) return false;
    }
    return true;
  }
}

/** How long a server counts a peer toward its quorum: a tock, at least a tick and a quarter (as the core). */
function quorumWindow(sim: SimCluster): number {
  return Math.max(sim.tockMs, 1.25 * sim.tickMs);
}

function sameCluster(a: SimNode, b: SimNode): boolean {
  return (a.options.clusterId ?? '') === (b.options.clusterId ?? '');
}

/** Agreement within one namespace (see `agreement`). */
function agreementOf(nodes: SimNode[]): Agreement {
  let name: string | null = null;
  let masters = 0;
  let holder = '';
  let eligible = 0;
  let quorum = 0;
  for (const node of nodes) {
    const core = node.core;
    if (name === null) name = core.masterHostname;
    else if (core.masterHostname !== name) return { agreed: false, master: '' };
    if (core.master) {
      masters++;
      holder = node.hostname;
    }
    if (core.eligible) eligible++;
    quorum = Math.max(quorum, node.options.quorum ?? 0);
  }
  if (nodes.length === 0) return { agreed: true, master: '' };
  if (eligible === 0 || eligible < quorum) return { agreed: masters === 0 && name === '', master: '' };
  return { agreed: masters === 1 && holder === name, master: holder };
}

function describe(event: CoreEvent): string {
  switch (event.type) {
    case 'masterchange':
      return `masterchange ${event.previous || '(none)'} → ${event.hostname || '(none)'}`;
    case 'exit':
      return `exit (${event.reason})`;
    default:
      return event.type;
  }
}
