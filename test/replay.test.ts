/**
 * An authenticated cluster against replays, restarts and key rotation, on the simulator:
 * what an eavesdropper captured changes nothing later, a restarted server is admitted at
 * once, and rotating the key across the running cluster loses no master.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { SimCluster, type SimClusterOptions } from '../sim/cluster';
import { createKeyring } from '../src/wire/auth';
import { decode, encode } from '../src/wire/codec';

const SECRET = 'replay-suite cluster secret, long and random';
const LATENCY = 1;
const KEYRING = createKeyring(SECRET);

function cluster(hosts: string[], options: SimClusterOptions): SimCluster {
  const sim = new SimCluster({ checkBeats: 3, latencyMs: LATENCY, secret: SECRET, ...options });
  for (const host of hosts) sim.add(host);
  return sim;
}

/**
 * What an application can observe on every server. The own row's `now` and `uptime` are
 * left out: they are refreshed whenever the server sends a heartbeat, and a replayed hello
 * of an unknown instance is still answered (rate-limited), since a joiner's hello must be.
 */
function observable(sim: SimCluster): string {
  return JSON.stringify(
    sim
      .live()
      .map((n) => [
        n.hostname,
        n.core.master,
        n.core.masterHostname,
        Object.values(n.core.table).map((record) => (record.self ? { ...record, now: 0, uptime: 0 } : record)),
      ]),
  );
}

describe('replay: captured authentic packets change nothing, a second, a minute or a day later', () => {
  const TICK = 20_000; // the default heartbeat_freq
  const TOCK = 3 * TICK;
  for (const [label, delay] of [
    ['a second', 1000],
    ['a minute', 60_000],
    ['a day', 86_400_000],
  ] as const) {
    test(`replayed ${label} later: every packet stale or unverified, no state change, no event`, () => {
      const sim = cluster(['a', 'b', 'c'], { tickMs: TICK, jitterMs: 2 });
      const capture: Buffer[] = [];
      sim.onDatagram = (_from, datagram) => capture.push(datagram);
      assert.notEqual(
        sim.runUntilTrue(() => sim.agreedMaster() === 'a', 2 * TOCK),
        null,
      );
      sim.runFor(TOCK);
      // A graceful restart (its shutdown notice is captured too), then the master dies.
      sim.shutdown('c');
      sim.restart('c');
      sim.runFor(TOCK);
      sim.crash('a');
      assert.notEqual(
        sim.runUntilTrue(() => sim.agreedMaster() === 'b', 2 * TOCK),
        null,
      );
      // A server that never heard any of the captured instances.
      sim.add('d');
      sim.runFor(TOCK);
      sim.onDatagram = null;
      assert.ok(capture.length > 20);

      sim.runFor(delay);
      assert.equal(sim.agreedMaster(), 'b');
      const before = observable(sim);
      const events = sim.events.length;
      const drops = { ...sim.drops };
      for (const datagram of capture) sim.inject(datagram);
      assert.equal(observable(sim), before, 'a replay changed state');
      assert.equal(sim.events.length, events, 'a replay emitted an event');
      const refused = (sim.drops.stale ?? 0) - (drops.stale ?? 0) + (sim.drops.unverified ?? 0) - (drops.unverified ?? 0);
      // A server's own packets come back to it on every broadcast; it ignores them silently.
      const own = capture.filter((datagram) => {
        const result = decode(datagram, { keyring: KEYRING });
        return result.ok && sim.live().some((n) => n.core.instanceId === result.message.iid);
      }).length;
      assert.equal(refused, capture.length * sim.live().length - own, 'every replayed packet refused by every other server');
      // Nor later: the challenges sent to the dead instances go unanswered.
      sim.runFor(TOCK);
      assert.equal(sim.agreedMaster(), 'b');
      assert.deepEqual(
        sim.events.slice(events).map((e) => `${e.host}:${e.event.type}`),
        [],
      );
    });
  }

  test('a flood of replays from 2,000 dead instances costs a bounded number of challenges and no memory', () => {
    const TICK_MS = 1000;
    const sim = cluster(['a', 'b'], { tickMs: TICK_MS });
    assert.notEqual(
      sim.runUntilTrue(() => sim.agreedMaster() === 'a', 10 * TICK_MS),
      null,
    );
    const known = sim.node('b').core.knownInstances;
    let sent = 0;
    sim.onDatagram = (from) => {
      if (from === 'b') sent++;
    };
    for (let i = 0; i < 2000; i++) {
      const iid = i.toString(16).padStart(16, '0');
      sim.inject(
        encode(
          { action: 'heartbeat', hostname: `dead-${i}`, ip: '', master: true, eligible: true, uptime: 1, data: {}, iid, seq: 5 },
          KEYRING,
        ),
        { to: ['b'] },
      );
    }
    assert.ok(sent <= 130, `${sent} datagrams sent for 2000 replays`);
    assert.equal(sim.node('b').core.knownInstances, known, 'unverified instances were remembered');
    assert.equal(sim.node('b').core.size, 2);
    sim.runFor(10 * TICK_MS);
    assert.equal(sim.agreedMaster(), 'a');
  });
});

describe('late but not replayed: a command overtaken on the way', () => {
  test("a message that arrives after its sender's next heartbeat is delivered once; a replay of it is stale", () => {
    const TICK = 1000;
    const sim = cluster(['a', 'b'], { tickMs: TICK });
    assert.notEqual(
      sim.runUntilTrue(() => sim.agreedMaster() === 'a', 4 * 3 * TICK),
      null,
    );
    let captured: Buffer | null = null;
    sim.onDatagram = (from, datagram) => {
      if (from === 'a' && captured === null) captured = datagram;
    };
    // The message is held back on the way to b (a queue, a congested switch) ...
    sim.link = (from, to) => !(from === 'a' && to === 'b');
    sim.sendMessage('a', 'b', 'job', { n: 1 });
    sim.onDatagram = null;
    sim.link = () => true;
    // ... while a's next heartbeat, numbered after it, gets through.
    sim.runFor(TICK + 5);
    assert.ok(captured, 'the message datagram');
    const late = captured as Buffer;
    assert.equal(sim.eventsOf('message', 'b').length, 0);
    const stale = sim.drops.stale ?? 0;
    sim.inject(late, { to: ['b'], address: sim.node('a').address });
    sim.runFor(1);
    assert.deepEqual(
      sim.eventsOf('message', 'b').map((e) => e.event),
      [{ type: 'message', from: 'a', to: 'b', messageType: 'job', payload: { n: 1 } }],
    );
    // The same datagram again, at once and a tock later: stale both times.
    sim.inject(late, { to: ['b'], address: sim.node('a').address });
    sim.runFor(3 * TICK);
    sim.inject(late, { to: ['b'], address: sim.node('a').address });
    sim.runFor(1);
    assert.equal(sim.eventsOf('message', 'b').length, 1);
    assert.equal((sim.drops.stale ?? 0) - stale, 2);
  });
});

describe('restarts and SPEC bounds with a secret', () => {
  const TICK = 1000;
  const TOCK = 3000;

  test('a restarted server (new process, same hostname) is followed by every peer within a round trip and a quarter tick', () => {
    for (const graceful of [false, true]) {
      const sim = cluster(['a', 'b', 'c'], { tickMs: TICK });
      assert.notEqual(
        sim.runUntilTrue(() => sim.agreedMaster() === 'a', 2 * TOCK),
        null,
      );
      sim.runFor(1234);
      if (graceful) sim.shutdown('c');
      sim.restart('c');
      const startedAt = sim.now;
      const fresh = sim.node('c').core.instanceId;
      const at = sim.runUntilTrue(() => ['a', 'b'].every((h) => sim.node(h).core.instanceOf('c') === fresh), TICK);
      assert.notEqual(at, null, 'the new process was not admitted');
      // Challenge and answer take a round trip; an answer to a second challenger waits out
      // the holdoff that keeps a hello flood from becoming a heartbeat flood (a quarter tick).
      assert.ok((at as number) - startedAt <= TICK / 4 + 3 * LATENCY, `admitted after ${(at as number) - startedAt} ms`);
      sim.runFor(10 * TICK);
      assert.equal(sim.agreedMaster(), 'a');
    }
  });

  test('a joiner learns the master in one round trip; the others admit it within a round trip and a quarter tick', () => {
    const sim = cluster(['b', 'c', 'd'], { tickMs: TICK });
    assert.notEqual(
      sim.runUntilTrue(() => sim.agreedMaster() === 'b', 2 * TOCK),
      null,
    );
    sim.runFor(TICK / 2);
    const joinedAt = sim.now;
    sim.add('a');
    const learned = sim.runUntilTrue(() => sim.node('a').core.masterHostname === 'b', TICK);
    assert.notEqual(learned, null);
    assert.ok((learned as number) - joinedAt <= 2, `learned after ${(learned as number) - joinedAt} ms`);
    const admitted = sim.runUntilTrue(() => ['b', 'c', 'd'].every((h) => sim.node(h).core.table.a !== undefined), TICK);
    assert.ok(admitted !== null && admitted - joinedAt <= TICK / 4 + 3 * LATENCY, `admitted after ${(admitted ?? NaN) - joinedAt} ms`);
    sim.runFor(20 * TICK);
    assert.equal(sim.agreedMaster(), 'b');
  });

  test('cold start, crash failover and graceful shutdown keep their SPEC bounds', () => {
    const sim = cluster(['a', 'b', 'c', 'd'], { tickMs: TICK, jitterMs: 3, seed: 3 });
    const agreed = sim.runUntilTrue(() => sim.agreedMaster() === 'a', 3 * TOCK);
    assert.ok(agreed !== null && agreed <= TOCK + TICK, `cold start agreed at ${agreed}`);
    sim.runFor(2500);
    sim.crash('a');
    sim.runFor(10);
    const lastHeard = sim.node('b').core.lastHeard('a') as number;
    const failover = sim.runUntilTrue(() => sim.node('b').core.master, 2 * TOCK);
    assert.ok(failover !== null && failover <= lastHeard + TOCK + TICK, `failover at ${failover}`);
    assert.notEqual(
      sim.runUntilTrue(() => sim.agreedMaster() === 'b', TICK),
      null,
    );
    sim.runFor(1500);
    const leftAt = sim.now;
    sim.shutdown('b');
    const elected = sim.runUntilTrue(() => sim.agreedMaster() === 'c', TOCK);
    assert.ok(elected !== null && elected - leftAt <= 100, `elected ${(elected ?? NaN) - leftAt} ms after the shutdown`);
    assert.equal(sim.eventsOf('conflict').length, 0);
  });
});

describe('key rotation across a running cluster', () => {
  const TICK = 1000;
  const OLD = 'the old secret, before the rotation';
  const NEW = 'the new secret, after the rotation!';

  test('add the new key, make it sign, drop the old one, one server at a time: no master change, no refused packet', () => {
    const hosts = ['a', 'b', 'c', 'd'];
    const sim = new SimCluster({ tickMs: TICK, checkBeats: 3, latencyMs: 1, jitterMs: 2, secret: OLD });
    for (const host of hosts) sim.add(host);
    assert.notEqual(
      sim.runUntilTrue(() => sim.agreedMaster() === 'a', 10 * TICK),
      null,
    );
    let oldPacket: Buffer | null = null;
    sim.onDatagram = (from, datagram) => {
      if (from === 'a') oldPacket = datagram;
    };
    sim.runFor(TICK);
    sim.onDatagram = null;
    const events = sim.events.length;
    let ticksWithoutMaster = 0;
    // 1. everyone verifies NEW too; 2. NEW signs; 3. OLD is dropped.
    const steps: Array<string[]> = [[OLD, NEW], [NEW, OLD], [NEW]];
    for (const keys of steps) {
      for (const host of hosts) {
        sim.setKeys(host, keys);
        // A reload lands at a random moment between heartbeats; check every 50 ms.
        for (let t = 0; t < 1700; t += 50) {
          sim.runFor(50);
          if (sim.agreedMaster() !== 'a') ticksWithoutMaster++;
        }
      }
    }
    assert.equal(ticksWithoutMaster, 0, 'the cluster lost its agreed master during the rotation');
    assert.deepEqual(
      sim.events.slice(events).map((e) => `${e.host}:${e.event.type}`),
      [],
    );
    assert.equal(sim.drops['unknown-key'] ?? 0, 0);
    assert.equal(sim.drops['bad-mac'] ?? 0, 0);
    // Afterwards a packet under the old key is refused by everyone.
    assert.ok(oldPacket);
    sim.inject(oldPacket);
    assert.equal(sim.drops['unknown-key'], hosts.length);
    assert.equal(decode(oldPacket, { keyring: createKeyring([NEW]) }).ok, false);
  });

  test('skipping the middle step (signing with a key others cannot verify yet) is refused as unknown-key', () => {
    const sim = new SimCluster({ tickMs: TICK, checkBeats: 3, latencyMs: 1, secret: OLD });
    for (const host of ['a', 'b']) sim.add(host);
    assert.notEqual(
      sim.runUntilTrue(() => sim.agreedMaster() === 'a', 10 * TICK),
      null,
    );
    sim.setKeys('b', [NEW]);
    sim.runFor(2 * TICK);
    assert.ok((sim.drops['unknown-key'] ?? 0) > 0, 'why the README orders the steps');
  });
});
