/**
 * The simulator's socket, which every stall run leans on: a process reads its socket first in,
 * first out, as a kernel's receive queue is, whatever happens while a backlog waits. The core's
 * stall rules (SPEC 4.11: decide nothing until our own marker comes back behind the backlog)
 * assume that order; a simulator that broke it made up reorderings no network makes, and the
 * core was blamed for them (work seeds 1071, 1177, 1559, 1580 and 2758: a restarted peer's
 * newer heartbeats read before its old instance's, whose shutdown notice then removed it alive).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { SimCluster } from '../sim/cluster';
import type { Message } from '../src/protocol/messages';

const TICK = 1000;
const TOCK = 3000;

/** One datagram as its sender's instance numbered it. */
interface Sent {
  from: string;
  iid: string;
  seq: number;
  action: string;
}

/**
 * Watch `reader`: every datagram each other server sent (every one reaches it: no loss, no
 * jitter, so the network keeps each sender's order), and every one `reader` read.
 */
function watch(sim: SimCluster, reader: string): { sent: Sent[]; read: Sent[] } {
  const sent: Sent[] = [];
  const read: Sent[] = [];
  sim.onDatagram = (from, datagram) => {
    if (from === reader) return;
    const message = JSON.parse(datagram.toString('utf8')) as Message;
    sent.push({ from, iid: message.iid ?? '', seq: message.seq ?? -1, action: message.action });
  };
  const driver = sim.node(reader).driver;
  const receive = driver.receive.bind(driver);
  driver.receive = (message, from, after) => {
    if (message.hostname !== reader)
      read.push({ from: message.hostname, iid: message.iid ?? '', seq: message.seq ?? -1, action: message.action });
    receive(message, from, after);
  };
  return { sent, read };
}

/** Every datagram read is one that was sent, each once, and in the order its sender sent them. */
function assertReadInOrder(sent: Sent[], read: Sent[]): void {
  const key = (s: Sent): string => `${s.from}/${s.iid}/${s.seq}/${s.action}`;
  const order = new Map(sent.map((s, index) => [key(s), index]));
  const last = new Map<string, number>();
  for (const datagram of read) {
    const index = order.get(key(datagram));
    assert.notEqual(index, undefined, `${key(datagram)} was read but never sent`);
    const before = last.get(datagram.from) ?? -1;
    if ((index as number) <= before)
      assert.fail(`${key(datagram)} read after ${key(sent[before] as Sent)}, which ${datagram.from} sent later`);
    last.set(datagram.from, index as number);
  }
}

describe('the simulated socket reads first in, first out', () => {
  test('through a stall that grows while datagrams queue, a restarted peer included', () => {
    const sim = new SimCluster({ tickMs: TICK, checkBeats: 3, latencyMs: 1 });
    sim.add('a');
    sim.add('b');
    assert.notEqual(
      sim.runUntilTrue(() => sim.agreedMaster() === 'a', 3 * TOCK),
      null,
    );
    sim.runFor(TICK / 2); // nothing sent before the watch is still on its way
    const { sent, read } = watch(sim, 'a');
    sim.stall('a', 5 * TICK);
    sim.runFor(2 * TICK);
    // The old b leaves with a notice and a new b starts: both queue on a's socket.
    sim.restart('b', { graceful: true });
    sim.runFor(1.5 * TICK);
    // Before the first part is read, the stall grows: the new b's next heartbeats queue
    // behind the old b's, and all of them are read, in that order, when it ends.
    sim.stall('a', 4 * TICK);
    sim.runFor(4 * TICK + TOCK);
    const fromB = read.filter((datagram) => datagram.from === 'b');
    const newIid = sim.node('b').instance.iid;
    assert.ok(
      fromB.some((datagram) => datagram.iid === newIid) && fromB.some((datagram) => datagram.iid !== newIid),
      'a read nothing of the old b, or nothing of the new one: the case tests nothing',
    );
    assertReadInOrder(sent, read);
    const firstNew = fromB.findIndex((datagram) => datagram.iid === newIid);
    assert.ok(
      fromB.slice(firstNew).every((datagram) => datagram.iid === newIid),
      'the old b was read after the new one',
    );
    // Read in order, the old b's notice comes before the new b: a ends following the new one.
    assert.equal(sim.node('a').core.instanceOf('b'), newIid);
  });

  test('what arrives while a woken server reads its backlog (the answers to its hello) waits behind it', () => {
    // Answers come a round trip (0.2 ms) after the woken server's hello, before the backlog's
    // first read (2 ms): read at once, they overtook every datagram queued before them.
    const sim = new SimCluster({ tickMs: TICK, checkBeats: 3, latencyMs: 0.1 });
    const hosts = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
    for (const host of hosts) sim.add(host);
    assert.notEqual(
      sim.runUntilTrue(() => sim.agreedMaster() === 'a', 3 * TOCK),
      null,
    );
    sim.runFor(TICK / 2);
    const { sent, read } = watch(sim, 'h');
    sim.stall('h', 10 * TICK);
    sim.runFor(10 * TICK + TOCK);
    assert.ok(read.length > 7 * 10, `${read.length} datagrams read: the backlog is not the case tested`);
    assertReadInOrder(sent, read);
    assert.equal(sim.eventsOf('deleteserver', 'h').length, 0, 'h removed a server whose heartbeats were queued');
  });

  test('on a busy machine: stalls of every length, new ones beginning while a backlog is still being read', () => {
    const sim = new SimCluster({ tickMs: 100, checkBeats: 3, latencyMs: 0.1, seed: 7 });
    const hosts = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l'];
    for (const host of hosts) sim.add(host);
    assert.notEqual(
      sim.runUntilTrue(() => sim.agreedMaster() === 'a', 3 * 300),
      null,
    );
    sim.runFor(50);
    const { sent, read } = watch(sim, 'l');
    // Blocks of up to 3 ms, gaps of up to 6 ms: shorter than a backlog of 11 servers takes to
    // read, so new stalls begin while one is still read; and one long stall in the middle.
    sim.busy('l', 3, sim.now + 3000);
    sim.runFor(1000);
    sim.stall('l', 400);
    sim.runFor(3000);
    assert.ok(read.length > 11 * 40, `${read.length} datagrams read`);
    assertReadInOrder(sent, read);
  });
});
