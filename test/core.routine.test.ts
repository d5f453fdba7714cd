/**
 * The routine heartbeat's fast path (src/core/routine.ts): a heartbeat that says what the last
 * one said skips the election rules, and one that changes anything a rule reads takes the full
 * path. Every core here runs beside a twin without the fast path (sim/checked-core.ts), which
 * throws on the first Output or state that differs: each case is also a proof of equality.
 * Three cores on a hand-driven simulated clock; the messages are the ones the cores send.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { HeartbeatMessage, Message } from '../src/protocol/messages';
import type { Instant, Output } from '../src/elector/types';
import { CheckedCore } from '../sim/checked-core';

const TICK = 500;
const HOSTS = ['alpha', 'bravo', 'charlie'];

class Trio {
  mono = 0;
  readonly cores = new Map<string, CheckedCore>();
  readonly #wake = new Map<string, number>();
  readonly #queue: { to: string; message: Message; from: string }[] = [];
  /** What each server last broadcast as its heartbeat. */
  readonly lastHeartbeat = new Map<string, HeartbeatMessage>();

  constructor(options: { quorum?: number } = {}) {
    HOSTS.forEach((hostname, i) => {
      const core = new CheckedCore({
        hostname,
        ip: `127.0.0.${i + 1}`,
        instanceId: `iid-${hostname}`,
        tickMs: TICK,
        checkBeats: 3,
        ...options,
      });
      this.cores.set(hostname, core);
    });
    for (const [hostname, core] of this.cores) this.#carry(hostname, core.start(this.now));
  }

  get now(): Instant {
    return { mono: this.mono, wall: 1_800_000_000_000 + this.mono };
  }

  core(hostname: string): CheckedCore {
    return this.cores.get(hostname) as CheckedCore;
  }

  #carry(from: string, out: Output): void {
    this.#wake.set(from, out.wakeAt);
    for (const { message } of out.send) {
      if (message.action === 'heartbeat') this.lastHeartbeat.set(from, message);
      for (const to of HOSTS) if (to !== from) this.#queue.push({ to, message, from });
    }
  }

  deliver(to: string, message: Message, from: string): Output {
    const out = this.core(to).receive(message, { address: `127.0.0.${HOSTS.indexOf(from) + 1}`, port: 4000 }, this.now);
    this.#carry(to, out);
    return out;
  }

  /** Advance ms by ms: deliver what is queued (1 ms on the wire), fire what is due. */
  run(ms: number): void {
    for (const end = this.mono + ms; this.mono < end; this.mono++) {
      for (const item of this.#queue.splice(0)) this.deliver(item.to, item.message, item.from);
      for (const [hostname, core] of this.cores)
        if (this.mono >= (this.#wake.get(hostname) as number)) this.#carry(hostname, core.tick(this.now));
    }
  }

  /** Run until `hostname` has just sent a heartbeat; it stays undelivered, the queue empty. */
  nextHeartbeatOf(hostname: string): HeartbeatMessage {
    const before = this.lastHeartbeat.get(hostname);
    for (let i = 0; i < 10 * TICK && this.lastHeartbeat.get(hostname) === before; i++) this.run(1);
    const message = this.lastHeartbeat.get(hostname);
    assert.ok(message && message !== before, `${hostname} sent no heartbeat`);
    this.#queue.length = 0;
    return message;
  }
}

function settled(options: { quorum?: number } = {}): Trio {
  const trio = new Trio(options);
  trio.run(20 * TICK);
  assert.equal(trio.core('alpha').master, true, 'alpha ranks first and is master');
  for (const host of ['bravo', 'charlie']) assert.equal(trio.core(host).masterHostname, 'alpha');
  return trio;
}

/** Every field a rule reads, changed one at a time (from the message as sent). */
const CHANGES: [string, (message: HeartbeatMessage) => void][] = [
  ['master', (m) => (m.master = !m.master)],
  ['eligible', (m) => (m.eligible = !m.eligible)],
  ['priority', (m) => (m.prio = (m.prio ?? 0) + 1)],
  ['term, one up', (m) => (m.term = (m.term ?? 0) + 1)],
  ['term, one down', (m) => (m.term = (m.term ?? 0) - 1)],
  ['handoff named', (m) => (m.handoff = 'charlie')],
  ['drain named', (m) => (m.drain = 'charlie')],
  ['a checkpoint', (m) => (m.ckpt = { t: m.term ?? 0, v: 1, d: { at: 1 } })],
  ['a shorter tick', (m) => (m.tick = TICK / 2)],
  ['a sequence number skipped', (m) => (m.seq = (m.seq ?? 0) + 2)],
  ['the same sequence number again', (m) => (m.seq = (m.seq ?? 0) - 1)],
  ['another instance', (m) => (m.iid = 'iid-restarted')],
  ['no instance', (m) => delete m.iid],
];

describe('routine heartbeat', () => {
  for (const [sender, receiver] of [
    ['alpha', 'bravo'],
    ['bravo', 'alpha'],
    ['charlie', 'bravo'],
  ] as const) {
    test(`${sender} → ${receiver}: its next heartbeat, unchanged, takes the fast path, and so does every one after it`, () => {
      const trio = settled();
      const before = trio.core(receiver).routineHeartbeats;
      const out = trio.deliver(receiver, trio.nextHeartbeatOf(sender), sender);
      assert.deepEqual([out.send, out.events, out.logs.filter((line) => line.level < 10)], [[], [], []]);
      assert.equal(trio.core(receiver).routineHeartbeats, before + 1);
      trio.run(10 * TICK);
      // Two peers, one heartbeat a tick each, for 10 ticks: nearly all of them (one read
      // after a wake-up time that came due, a deadline of ours, takes the full rules).
      const taken = trio.core(receiver).routineHeartbeats - before - 1;
      assert.ok(taken >= 15 && taken <= 20, `${taken} of 20`);
    });

    for (const [field, change] of CHANGES) {
      test(`${sender} → ${receiver}: a heartbeat with ${field} takes the full rules`, () => {
        const trio = settled();
        const message = structuredClone(trio.nextHeartbeatOf(sender));
        change(message);
        const before = trio.core(receiver).routineHeartbeats;
        trio.deliver(receiver, message, sender);
        assert.equal(trio.core(receiver).routineHeartbeats, before, 'took the fast path');
        // And the cluster goes on equal to its twins (CheckedCore throws otherwise).
        trio.run(10 * TICK);
      });
    }
  }

  test('with a quorum, the fast path is taken and the twins stay equal through a master crash', () => {
    const trio = settled({ quorum: 2 });
    trio.run(4 * TICK);
    assert.ok(trio.core('bravo').routineHeartbeats > 0);
    trio.cores.delete('alpha');
    HOSTS.splice(0, 1);
    try {
      trio.run(10 * TICK);
      assert.equal(trio.core('bravo').master, true, 'bravo took over');
      assert.equal(trio.core('charlie').masterHostname, 'bravo');
    } finally {
      HOSTS.unshift('alpha');
    }
  });

  test("while a rival claims master, another server's routine heartbeat takes the full rules: the conflict is answered every step", () => {
    const trio = settled();
    const fromBravo = trio.nextHeartbeatOf('bravo');
    const claim = structuredClone(trio.lastHeartbeat.get('charlie') as HeartbeatMessage);
    claim.master = true;
    claim.seq = (claim.seq ?? 0) + 1;
    trio.deliver('alpha', claim, 'charlie');
    const before = trio.core('alpha').routineHeartbeats;
    const out = trio.deliver('alpha', fromBravo, 'bravo');
    assert.equal(trio.core('alpha').routineHeartbeats, before, 'took the fast path');
    assert.deepEqual(
      out.events.map((event) => event.type),
      ['conflict'],
    );
  });

  test('a heartbeat after the wake-up time asked for (a deadline due) takes the full rules', () => {
    const trio = settled();
    const message = trio.nextHeartbeatOf('alpha');
    // Late enough that bravo's own heartbeat (a deadline) is due before this one is read.
    trio.mono += TICK;
    const before = trio.core('bravo').routineHeartbeats;
    trio.deliver('bravo', message, 'alpha');
    assert.equal(trio.core('bravo').routineHeartbeats, before);
  });
});
