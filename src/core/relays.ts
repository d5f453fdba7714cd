/**
 * Masters we hear of through one other server: partial connectivity.
 *
 * When two servers stop hearing each other while both still hear a third (a non-transitive
 * cut: a firewall rule, a one-way link, a flaky switch port), the one that no longer hears
 * the master must not take it for dead: it would claim, the third would follow the newer
 * claim, the old master would learn of a higher term through the third, and so on, for the
 * whole cut. Raft answers the same problem with PreVote (a candidate gets no vote from a
 * server that hears a leader) and CheckQuorum. Here a slave says in every heartbeat which
 * master it follows and hears itself, how long ago it heard it, and that master's term
 * and priority (`lead`). A server that does not hear that master itself counts it as a
 * live master on that word:
 *  - it neither removes it nor claims against it, and names it as its master;
 *  - a master that learns of another master this way resolves the conflict as if it heard
 *    it: by rank.
 * A slave that follows a master on such a word passes it on once more (MAX_HOPS), so a
 * chain of three servers is covered, and no word goes round in circles for longer than two
 * passes: each pass makes it look fresher by a transit, and without a bound a loop of
 * fast heartbeats could keep a dead master alive. A word counts only while the server that
 * said it still says it, until its evidence is a tock, the grace and a tick old (the tick:
 * a slave repeats its word once a tick, and what it heard is up to a tick old when it says it).
 */

/** A word passes through at most this many servers before it is not passed on (0: heard directly). */
export const MAX_HOPS = 2;

/** What one server last said of its master. */
interface Statement {
  lead: string;
  /** When it heard the master, on our clock: arrival − age (the transit makes it look a little fresher). */
  at: number;
  term: number;
  priority: number;
  /** Servers the word passed through before the one that told us (0: it heard the master itself). */
  hops: number;
}

/** The freshest word about one master. */
export interface WordOf {
  at: number;
  term: number;
  priority: number;
  hops: number;
}

/** All servers that name one master, and the freshest of their words. */
interface Word extends WordOf {
  by: Set<string>;
}

/** Departures remembered (hostnames whose shutdown notice we heard), oldest forgotten first. */
const MAX_DEPARTED = 1024;

export class Relays {
  #said = new Map<string, Statement>();
  #of = new Map<string, Word>();
  /** Masters that left by notice: words about them heard before the notice plus a holdoff are old news. */
  #departed = new Map<string, number>();
  /** Servers we removed from the table, and when we last heard them ourselves. */
  #removed = new Map<string, number>();
  /** A master's word changed or went away: liveness must be looked at again. */
  changed = false;

  /**
   * `relayer`'s heartbeat named `lead` (or none) as the master it follows and hears, at
   * monotonic `now`. Returns true when `lead` is a master nobody named before.
   */
  note(relayer: string, lead: { h: string; age: number; t: number; p?: number; n?: number } | undefined, now: number): boolean {
    const before = this.#said.get(relayer);
    const hops = lead?.n ?? 0;
    if (!lead || lead.h === relayer || hops >= MAX_HOPS || now - lead.age <= (this.#departed.get(lead.h) ?? -Infinity)) {
      if (before) this.forget(relayer);
      return false;
    }
    let statement: Statement;
    if (before && before.lead === lead.h) {
      // The common case, every heartbeat of every slave: no allocation.
      statement = before;
      statement.at = now - lead.age;
      statement.term = lead.t;
      statement.priority = lead.p ?? 0;
      statement.hops = hops;
    } else {
      if (before) this.forget(relayer);
      statement = { lead: lead.h, at: now - lead.age, term: lead.t, priority: lead.p ?? 0, hops };
      this.#said.set(relayer, statement);
    }
    let word = this.#of.get(statement.lead);
    const fresh = word === undefined;
    if (!word) {
      word = { by: new Set(), at: -Infinity, term: 0, priority: 0, hops: 0 };
      this.#of.set(statement.lead, word);
      this.changed = true;
    }
    word.by.add(relayer);
    if (statement.at >= word.at) take(word, statement);
    return fresh;
  }

  /**
   * We heard `lead`'s shutdown notice: what anyone says of it as master, from what they
   * heard before the notice (and up to `slackMs` after, for the transit that makes a word
   * look fresher than it is), is old news. A new process of that name is heard of again once
   * a follower hears it as master, a tock after its start at the earliest.
   */
  departed(lead: string, now: number, slackMs: number): void {
    this.#departed.delete(lead);
    this.#departed.set(lead, now + slackMs);
    if (this.#departed.size > MAX_DEPARTED) this.#departed.delete(this.#departed.keys().next().value as string);
    const word = this.#of.get(lead);
    if (!word) return;
    for (const relayer of word.by) this.#said.delete(relayer);
    this.#of.delete(lead);
    this.changed = true;
  }

  /** `relayer` left the table: what it said no longer counts. */
  forget(relayer: string): void {
    const statement = this.#said.get(relayer);
    if (!statement) return;
    this.#said.delete(relayer);
    const word = this.#of.get(statement.lead);
    if (!word) return;
    word.by.delete(relayer);
    this.changed = true;
    if (word.by.size === 0) {
      this.#of.delete(statement.lead);
      return;
    }
    // Rare (a relayer changed masters or left): the freshest of those still naming it.
    word.at = -Infinity;
    for (const name of word.by) {
      const other = this.#said.get(name) as Statement;
      if (other.at >= word.at) take(word, other);
    }
  }

  /**
   * We removed `hostname` (silent, or gone), last heard at `lastHeard`: only a word fresher
   * than that may bring it back as a master (see Roles), not one its followers are about
   * to drop too.
   */
  removed(hostname: string, lastHeard: number): void {
    this.#removed.delete(hostname);
    this.#removed.set(hostname, lastHeard);
    if (this.#removed.size > MAX_DEPARTED) this.#removed.delete(this.#removed.keys().next().value as string);
  }

  /** When we last heard `hostname` ourselves before removing it, if we did. */
  lastHeardBeforeRemoval(hostname: string): number | undefined {
    return this.#removed.get(hostname);
  }

  /** The freshest word that `lead` is a live master, if anyone still says so. */
  word(lead: string): WordOf | undefined {
    return this.#of.get(lead);
  }

  /** Masters named by anyone, with the freshest word of each. */
  leads(): IterableIterator<[string, WordOf]> {
    return this.#of.entries();
  }

  get size(): number {
    return this.#of.size;
  }
}

function take(word: WordOf, statement: Statement): void {
  word.at = statement.at;
  word.term = statement.term;
  word.priority = statement.priority;
  word.hops = statement.hops;
}
