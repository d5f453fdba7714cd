/**
 * A forger on the LAN of an open cluster: it sends packets the decoder accepts, with every
 * field drawn from the whole accepted range (its extremes above all), under forged and real
 * hostnames, with real instance ids it has sniffed, in bursts and as replays of what it
 * sent before; then it stops. What it does while it speaks is the open protocol's (anyone
 * may claim anything); what it must not do is leave anything behind.
 */
import { MAX_PRIORITY, MAX_TERM, MAX_UPTIME_S, TERM_CEILING } from '../src/protocol/limits';
import type { Checkpoint, HeartbeatMessage, Message } from '../src/protocol/messages';
import { encode } from '../src/wire/codec';
import { Random } from './random';

export interface ForgerView {
  /** Hostnames of the cluster (the forger has listened). */
  hostnames: readonly string[];
  /** The instance id a hostname's process sends now, if the forger sniffed it. */
  iidOf(hostname: string): string | undefined;
  tickMs: number;
}

const SAFE = Number.MAX_SAFE_INTEGER;

function counter(r: Random): number {
  return r.pick([0, 1, 2, 7, SAFE, SAFE - 1, 2 ** 32, 2 ** 31 - 1, r.int(0, 1000), Math.floor(r.next() * SAFE)]);
}

function term(r: Random): number {
  return r.pick([
    0,
    1,
    2,
    TERM_CEILING - 1,
    TERM_CEILING,
    TERM_CEILING + 1,
    MAX_TERM - 1,
    MAX_TERM,
    r.int(0, 100),
    Math.floor(r.next() * MAX_TERM),
  ]);
}

export class Forger {
  readonly #r: Random;
  readonly #view: ForgerView;
  readonly #sent: Buffer[] = [];
  #ownIid: string;
  #seq = 0;
  /**
   * Draws for the fields added since the forger was written (pace, lead): a stream of its
   * own, so that the packets of saved scenarios stay what they were, with these on top.
   */
  readonly #extra: Random;

  constructor(random: Random, view: ForgerView) {
    this.#r = random;
    this.#view = view;
    this.#ownIid = random.hex(16);
    this.#extra = new Random(Number.parseInt(this.#ownIid.slice(0, 8), 16));
  }

  /** The next datagram: new (usually), or a replay of one sent before. */
  next(): Buffer {
    const r = this.#r;
    if (this.#sent.length > 0 && r.chance(0.15)) return r.pick(this.#sent);
    const datagram = encode(this.#message());
    if (this.#sent.length < 64) this.#sent.push(datagram);
    else this.#sent[r.int(0, 63)] = datagram;
    return datagram;
  }

  #message(): Message {
    const r = this.#r;
    const real = r.chance(0.5) && this.#view.hostnames.length > 0;
    const hostname = real ? r.pick(this.#view.hostnames) : `zz${r.hex(r.int(1, 6))}`;
    const sniffed = real && r.chance(0.6) ? this.#view.iidOf(hostname) : undefined;
    const iid = sniffed ?? (r.chance(0.3) ? r.hex(16) : this.#ownIid);
    const seq = r.chance(0.5) ? ++this.#seq : counter(r);
    const base = { hostname, iid, seq };
    const action = r.pick(['heartbeat', 'heartbeat', 'heartbeat', 'heartbeat', 'shutdown', 'hello', 'promote', 'message'] as const);
    switch (action) {
      case 'shutdown':
        return { action, ...base };
      case 'hello':
        return r.chance(0.3) ? { action, ...base, for: r.hex(16) } : { action, ...base };
      case 'promote':
        return { action, ...base, target: r.pick([...this.#view.hostnames, 'zz']) };
      case 'message':
        return {
          action,
          ...base,
          to: r.chance(0.5) ? '*' : r.pick([...this.#view.hostnames, 'zz']),
          type: 'forged',
          payload: { n: counter(r) },
        };
      case 'heartbeat':
        return this.#heartbeat(base);
    }
  }

  #heartbeat(base: { hostname: string; iid: string; seq: number }): HeartbeatMessage {
    const r = this.#r;
    const heartbeat: HeartbeatMessage = {
      action: 'heartbeat',
      ...base,
      ip: r.pick(['', '10.6.6.6', '::1', '255.255.255.255']),
      master: r.chance(0.5),
      eligible: r.chance(0.7),
      uptime: r.pick([0, MAX_UPTIME_S, r.next() * 1000]),
      data: r.chance(0.8) ? {} : { forged: true, n: counter(r) },
    };
    if (r.chance(0.8)) heartbeat.term = term(r);
    if (r.chance(0.3)) heartbeat.prio = r.pick([-MAX_PRIORITY, MAX_PRIORITY, 0, 1, r.next() * 10]);
    if (r.chance(0.6)) {
      heartbeat.tick = r.pick([10, 86_400_000, this.#view.tickMs, r.int(10, 100_000)]);
      heartbeat.beats = r.pick([1, 1000, 3, r.int(1, 10)]);
    }
    if (r.chance(0.1)) heartbeat.handoff = r.pick([...this.#view.hostnames, 'zz']);
    if (r.chance(0.2)) {
      const ckpt: Checkpoint = { t: term(r), v: counter(r), d: { planted: true } };
      heartbeat.ckpt = ckpt;
    }
    const x = this.#extra;
    if (x.chance(0.2)) heartbeat.pace = x.pick([10, 86_400_000, this.#view.tickMs, x.int(10, 100_000)]);
    if (x.chance(0.3)) {
      // A word for a master, real or not, as fresh or as old as the decoder allows, passed on or not.
      heartbeat.lead = {
        h: x.pick([...this.#view.hostnames, 'zz', `zz${x.hex(2)}`]),
        age: x.pick([0, 86_400_000, x.int(0, 10_000)]),
        t: term(x),
      };
      if (x.chance(0.3)) heartbeat.lead.p = x.pick([-MAX_PRIORITY, MAX_PRIORITY, 1]);
      if (x.chance(0.3)) heartbeat.lead.n = x.pick([0, 1, 15]);
    }
    return heartbeat;
  }
}
