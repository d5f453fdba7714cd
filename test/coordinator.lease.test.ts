/**
 * The lease election (src/coordinator/, the etcd mode's machine) on its own, driven as raft's
 * tests drive one node: explicit instants and explicit store results (the lease granted, a read,
 * a watch event, a transaction lost or failed, the lease gone), asserting the store ops it emits
 * and the events. No store model answers for it: each test says what the store said. The rules
 * are SPEC 15 and docs/ETCD.md's "What it promises" and "Rules"; the machine among others, on
 * the simulated store, is coordinator.sim.test.ts.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { LeaseElection, safetyMarginMs, type LeaseElectionOptions } from '../src/coordinator/lease-election';
import type { CoreEvent, Instant, Output } from '../src/elector/types';
import type { KeyValue, StoreOp, StoreResult } from '../src/protocol/store';

const TICK = 1000;
const TTL_S = 5;
const TTL = TTL_S * 1000;
const PREFIX = '/p/';
const at = (mono: number): Instant => ({ mono, wall: 1_700_000_000_000 + mono });

type OpOf<T extends StoreOp['type']> = Extract<StoreOp, { type: T }>;

/** One server's lease election and what it asked of the store, in order. */
class Node {
  readonly e: LeaseElection;
  readonly ops: StoreOp[] = [];
  readonly events: CoreEvent[] = [];
  revision = 10;

  constructor(options: Partial<LeaseElectionOptions> = {}) {
    this.e = new LeaseElection({
      hostname: 'alpha',
      ip: '127.0.0.1',
      port: 3012,
      instanceId: 'a1a1a1a1',
      prefix: PREFIX,
      tickMs: TICK,
      checkBeats: 3,
      ttlSeconds: TTL_S,
      ...options,
    });
  }

  #take(out: Output): Output {
    this.ops.push(...out.store);
    this.events.push(...out.events);
    return out;
  }

  start(mono: number): Output {
    return this.#take(this.e.start(at(mono)));
  }
  tick(mono: number): Output {
    return this.#take(this.e.tick(at(mono)));
  }
  answer(op: StoreOp, result: StoreResult, mono: number): Output {
    return this.#take(this.e.onResult(op.id, result, at(mono)));
  }
  watch(op: StoreOp, kvs: Array<{ type: 'put' | 'delete'; kv: KeyValue }>, mono: number): Output {
    return this.#take(this.e.onWatch(op.id, { events: kvs }, at(mono)));
  }
  /** Tick every `stepMs` from `from` to before `to`, the store acknowledging every keep-alive at once. */
  run(from: number, to: number, stepMs = 250): void {
    for (let t = from; t < to; t += stepMs) {
      const asked = this.ops.length;
      this.tick(t);
      for (const op of this.ops.slice(asked)) if (op.type === 'keepAlive') this.answer(op, { type: 'keepAlive', ttlSeconds: TTL_S }, t);
    }
  }
  do(call: (e: LeaseElection) => Output | null): Output | null {
    const out = call(this.e);
    return out ? this.#take(out) : null;
  }

  /** The last op of `type` asked for (failing the test when there is none). */
  last<T extends StoreOp['type']>(type: T): OpOf<T> {
    const op = [...this.ops].reverse().find((o): o is OpOf<T> => o.type === type);
    assert.ok(op, `no ${type} op among ${this.ops.map((o) => o.type).join(', ')}`);
    return op;
  }
  count(type: StoreOp['type']): number {
    return this.ops.filter((o) => o.type === type).length;
  }
  types(events = this.events): string[] {
    return events.map((event) => event.type);
  }

  /**
   * Started at 0, lease 77 granted at 10, our record written, the prefix read at 30 with
   * `kvs`, and the watch established: in contact, listening for a tick from the read.
   */
  connect(kvs: KeyValue[] = []): void {
    this.start(0);
    this.answer(this.last('grant'), { type: 'grant', lease: '77', ttlSeconds: TTL_S }, 10);
    this.answer(this.last('put'), { type: 'put', revision: ++this.revision }, 20);
    this.answer(this.last('sync'), { type: 'sync', revision: ++this.revision, kvs }, 30);
  }

  /** Connected alone and elected: the campaign of term `term` won at `mono`. */
  elect(mono = 1030): OpOf<'campaign'> {
    this.connect();
    this.tick(mono);
    const campaign = this.last('campaign');
    this.answer(campaign, { type: 'campaign', won: true, revision: ++this.revision, holder: null, guard: null }, mono + 5);
    return campaign;
  }
}

/** An instance id for `hostname` (16 hex digits, as a process makes one). */
function hexId(hostname: string): string {
  return Buffer.from(hostname).toString('hex').padEnd(16, '0').slice(0, 16);
}

/** A member's record as the store holds it: its heartbeat, under its lease. */
function member(hostname: string, fields: Record<string, unknown> = {}, revision = 5): KeyValue {
  const value = {
    hostname,
    ip: '127.0.0.9',
    master: 0,
    eligible: 1,
    uptime: 1,
    data: {},
    action: 'heartbeat',
    iid: hexId(hostname),
    port: 3012,
    ...fields,
  };
  return {
    key: `${PREFIX}members/${hostname}`,
    value: JSON.stringify(value),
    createRevision: revision,
    modRevision: revision,
    lease: '88',
  };
}

/** The election key held by `hostname` with `term`. */
function masterKey(hostname: string, term: number, revision = 6): KeyValue {
  const value = { hostname, ip: '127.0.0.9', master: 1, eligible: 1, uptime: 1, data: {}, action: 'heartbeat', iid: hexId(hostname), term };
  return { key: `${PREFIX}master`, value: JSON.stringify(value), createRevision: revision, modRevision: revision, lease: '88' };
}

function kv(key: string, value: string, revision = 4, lease = '0'): KeyValue {
  return { key: `${PREFIX}${key}`, value, createRevision: revision, modRevision: revision, lease };
}

describe('the session (SPEC 15.1–15.2): a lease, our record under it, a read, then a watch from the revision read', () => {
  test('start asks for a lease of the TTL; once granted, our record goes under it and the prefix is read', () => {
    const n = new Node();
    n.start(0);
    assert.deepEqual(
      n.ops.map((op) => op.type),
      ['grant'],
    );
    assert.equal(n.last('grant').ttlSeconds, TTL_S);
    n.answer(n.last('grant'), { type: 'grant', lease: '77', ttlSeconds: TTL_S }, 10);
    const put = n.last('put');
    assert.equal(put.key, `${PREFIX}members/alpha`);
    assert.equal(put.lease, '77', 'the record lives and dies with the lease');
    assert.equal(JSON.parse(put.value).hostname, 'alpha');
    assert.equal(n.last('sync').prefix, PREFIX);
    n.answer(put, { type: 'put', revision: 11 }, 20);
    n.answer(n.last('sync'), { type: 'sync', revision: 12, kvs: [] }, 30);
    assert.equal(n.last('watch').fromRevision, 13, 'the watch starts right after the read: no change is missed');
    assert.equal(n.e.connected, true);
  });

  test('keep-alives every TTL/3 (the RetryPeriod of the timing rule)', () => {
    const n = new Node();
    n.connect();
    const before = n.count('keepAlive');
    // Counted from when the grant was asked for (0): the lease runs at the store from about then.
    n.tick(TTL / 3 - 1);
    assert.equal(n.count('keepAlive'), before, 'not before a third of the TTL');
    n.tick(TTL / 3);
    assert.equal(n.count('keepAlive'), before + 1);
  });
});

describe('the campaign (SPEC 15.1, 15.4; ETCD.md rank as before)', () => {
  test('alone: listens a tick after its first read, then campaigns for term 1, guarded by last-term', () => {
    const n = new Node();
    n.connect();
    n.tick(1029);
    assert.equal(n.count('campaign'), 0, 'listening: servers starting together elect by rank');
    n.tick(1030);
    const campaign = n.last('campaign');
    assert.equal(campaign.key, `${PREFIX}master`);
    assert.equal(campaign.lease, '77');
    assert.equal(JSON.parse(campaign.value).term, 1);
    assert.deepEqual(campaign.guard, { key: `${PREFIX}last-term`, modRevision: 0 });
    assert.deepEqual(campaign.alsoPut, [
      { key: `${PREFIX}term`, value: '1', lease: '77' },
      { key: `${PREFIX}last-term`, value: '1', lease: '0' },
    ]);
  });

  test('won: master with that term, and master only while the lease is certainly alive', () => {
    const n = new Node();
    n.elect();
    assert.deepEqual(
      n.events.filter((event) => event.type === 'master'),
      [{ type: 'master', term: 1, checkpoint: null }],
    );
    assert.equal(n.e.term, 1);
    assert.equal(n.e.isMasterAt(at(1100)), true);
    // Granted on a request sent at 0: etcd may expire it from TTL after that; we stop a margin before.
    assert.equal(n.e.leaseValidUntil, TTL - safetyMarginMs(TTL));
  });

  test('the new term is above every term known: last-term, a member record, the master key read', () => {
    const n = new Node();
    n.connect([kv('last-term', '40', 4), member('zulu', { term: 75 })]);
    n.tick(1030);
    const term = JSON.parse(n.last('campaign').value).term as number;
    assert.ok(term > 75, `term ${term}`);
    assert.deepEqual(n.last('campaign').guard, { key: `${PREFIX}last-term`, modRevision: 4 });
  });

  test('an eligible member that ranks first is left to campaign: we wait (patience), it does', () => {
    const n = new Node({ hostname: 'bravo', instanceId: 'b2b2b2b2' });
    n.connect([member('alpha')]);
    n.tick(1030);
    n.tick(2500);
    assert.equal(n.count('campaign'), 0);
  });

  test('an ineligible server never campaigns, and a higher priority outranks a name', () => {
    const ineligible = new Node({ eligible: false });
    ineligible.connect();
    ineligible.run(1030, 6 * TTL);
    assert.equal(ineligible.count('campaign'), 0);

    const first = new Node({ hostname: 'zulu', instanceId: 'z9z9z9z9', priority: 5 });
    first.connect([member('alpha', { prio: 0 })]);
    first.tick(1030);
    assert.equal(first.count('campaign'), 1, 'priority 5 ranks above alpha at 0');
  });

  test('a running master is never displaced by a joiner: the key held, we follow it', () => {
    const n = new Node();
    n.connect([member('zulu', { term: 9 }), masterKey('zulu', 9), kv('last-term', '9')]);
    n.run(1030, 3 * TTL);
    assert.equal(n.count('campaign'), 0);
    assert.equal(n.e.masterHostname, 'zulu');
    assert.equal(n.e.slave, true);
    assert.deepEqual(
      n.types().filter((t) => t === 'slave' || t === 'masterchange' || t === 'master'),
      ['masterchange', 'slave'],
    );
  });

  test('a campaign lost (another server created the key first): slave, following the holder', () => {
    const n = new Node();
    n.connect();
    n.tick(1030);
    n.answer(n.last('campaign'), { type: 'campaign', won: false, revision: 20, holder: masterKey('zulu', 3, 19), guard: null }, 1040);
    assert.equal(n.e.master, false);
    assert.equal(n.e.masterHostname, 'zulu');
    assert.equal(n.types().includes('master'), false);
  });

  test('the master key deleted (watched): the first in rank campaigns at once, no listening again', () => {
    const n = new Node();
    n.connect([member('zulu', { term: 9 }), masterKey('zulu', 9)]);
    n.tick(1030);
    const watch = n.last('watch');
    n.watch(watch, [{ type: 'delete', kv: { ...masterKey('zulu', 9), modRevision: 30 } }], 2000);
    n.tick(2000);
    assert.equal(n.count('campaign'), 1);
    assert.ok(JSON.parse(n.last('campaign').value).term > 9);
  });
});

describe('the lease deadline (SPEC 15.1, 15.3): act as master only while the lease cannot have expired at the store', () => {
  test('no keep-alive acknowledged: slave at the deadline, not a millisecond later; the lease is kept and renewed', () => {
    const n = new Node();
    n.elect();
    const deadline = n.e.leaseValidUntil;
    // Every keep-alive fails (etcd unreachable).
    for (let t = 1100; t < deadline; t += 100) {
      n.tick(t);
      for (const op of n.ops.filter((o) => o.type === 'keepAlive'))
        n.answer(op, { type: 'error', error: 'unreachable', kind: 'unreachable' }, t);
    }
    assert.equal(n.e.isMasterAt(at(deadline - 1)), true);
    assert.equal(n.types().includes('slave'), false);
    n.tick(deadline);
    assert.equal(n.e.master, false);
    assert.equal(n.types().at(-1) === 'slave' || n.types().includes('slave'), true);
    assert.equal(n.e.lapsed, true, 'past its deadline the lease is not given up: etcd may still hold it');
    assert.equal(n.count('revoke'), 0);
    const keepAlives = n.count('keepAlive');
    n.tick(deadline + 2000);
    assert.ok(n.count('keepAlive') > keepAlives, 'renewing goes on');
  });

  test('a process resumed after a freeze past its deadline steps down before it does anything else', () => {
    const n = new Node();
    n.elect();
    // Asked before its timer has run (multi.master reads this): no longer master already.
    assert.equal(n.e.isMasterAt(at(60_000)), false);
    assert.equal(n.e.master, true, 'the role itself changes at the next step');
    const out = n.tick(60_000);
    assert.deepEqual(
      n.types(out.events),
      ['masterchange', 'slave'],
      'the first step after the freeze: no longer master, nobody known as master',
    );
    assert.deepEqual(
      out.store.filter((op) => op.type !== 'keepAlive' && op.type !== 'unwatch'),
      [],
      'no write in that step: a deposed master changes nothing at the store',
    );
  });

  test('a keep-alive acknowledged extends the deadline from when it was SENT, not when it was answered', () => {
    const n = new Node();
    n.elect();
    n.tick(1700);
    const keepAlive = n.last('keepAlive');
    n.answer(keepAlive, { type: 'keepAlive', ttlSeconds: TTL_S }, 3900);
    const sentAt = 1700;
    assert.ok(n.e.leaseValidUntil <= sentAt + TTL - safetyMarginMs(TTL), `valid until ${n.e.leaseValidUntil}`);
    assert.ok(n.e.leaseValidUntil > TTL - safetyMarginMs(TTL), 'extended');
  });

  test('the store no longer knows the lease (ttl 0): slave at once, a new lease asked for', () => {
    const n = new Node();
    n.elect();
    n.tick(1700);
    const grants = n.count('grant');
    n.answer(n.last('keepAlive'), { type: 'keepAlive', ttlSeconds: 0 }, 1710);
    assert.equal(n.e.master, false);
    assert.ok(n.types().includes('slave'));
    n.tick(1800);
    assert.ok(n.count('grant') > grants, 'a new lease');
  });
});

describe('handovers and checkpoints (SPEC 9.1, 15.5; ETCD.md fencing)', () => {
  test('stepDown(): one fenced transaction deletes our key and term and names the next in rank', () => {
    const n = new Node();
    n.elect();
    n.answer(n.last('sync'), { type: 'sync', revision: 40, kvs: [] }, 1040);
    n.watch(
      n.last('watch'),
      [
        { type: 'put', kv: member('bravo', {}, 41) },
        { type: 'put', kv: member('charlie', {}, 42) },
      ],
      1050,
    );
    n.do((e) => e.stepDown(at(1100)));
    const fenced = n.last('fenced');
    assert.equal(fenced.fenceKey, `${PREFIX}term`);
    assert.equal(fenced.fenceValue, '1', 'fenced by the term we hold: a deposed master changes nothing');
    assert.deepEqual([...(fenced.deleteKeys ?? [])].sort(), [`${PREFIX}master`, `${PREFIX}term`]);
    assert.ok(
      fenced.puts?.some((put) => put.key === `${PREFIX}handoff` && put.value.includes('bravo')),
      JSON.stringify(fenced.puts),
    );
  });

  test('stepDown() with nobody else eligible is refused, and nothing is written', () => {
    const n = new Node();
    n.elect();
    const fenced = n.count('fenced');
    n.do((e) => e.stepDown(at(1100)));
    assert.equal(n.count('fenced'), fenced);
    const stepdown = n.events.find((event) => event.type === 'stepdown');
    assert.ok(stepdown && stepdown.type === 'stepdown' && !stepdown.ok);
  });

  test('a checkpoint on the master is written fenced by its term; stored, it is reported ok', () => {
    const n = new Node();
    n.elect();
    n.do((e) => e.setCheckpoint({ job: 7 }, at(1100), 1));
    const fenced = n.last('fenced');
    assert.equal(fenced.fenceKey, `${PREFIX}term`);
    assert.equal(fenced.fenceValue, '1');
    assert.ok(
      fenced.puts?.some((put) => put.key === `${PREFIX}checkpoint` && put.value.includes('"job":7')),
      JSON.stringify(fenced.puts),
    );
    n.answer(fenced, { type: 'fenced', succeeded: true, revision: 50 }, 1110);
    const outcome = n.events.find((event) => event.type === 'checkpoint');
    assert.deepEqual(outcome && { ...outcome, reason: '' }, { type: 'checkpoint', ok: true, ticket: 1, reason: '' });
  });

  test('a checkpoint the store refused (the fence failed: our term is gone) is reported failed, not retried', () => {
    const n = new Node();
    n.elect();
    n.do((e) => e.setCheckpoint({ job: 7 }, at(1100), 1));
    const fenced = n.last('fenced');
    n.answer(fenced, { type: 'fenced', succeeded: false, revision: 50 }, 1110);
    const outcome = n.events.find((event) => event.type === 'checkpoint');
    assert.ok(outcome && outcome.type === 'checkpoint' && !outcome.ok, JSON.stringify(n.events));
  });

  test('setCheckpoint() on a slave is refused', () => {
    const n = new Node();
    n.connect([member('zulu', { term: 9 }), masterKey('zulu', 9)]);
    assert.equal(
      n.do((e) => e.setCheckpoint({ job: 7 }, at(1100), 1)),
      null,
    );
  });
});

describe('store data is hostile (SPEC 13.1, 15)', () => {
  test('a record that does not decode is dropped from the table, never crashes, never becomes master', () => {
    const n = new Node();
    const bad: KeyValue[] = [
      kv('members/evil', '{"hostname":"evil","__proto__":{"x":1}}', 5, '88'),
      kv('members/junk', 'not json', 5, '88'),
      kv('master', '{"hostname":"evil","term":"NaN"}', 6, '88'),
    ];
    n.connect(bad);
    assert.equal(n.e.record('evil'), undefined);
    assert.equal(n.e.record('junk'), undefined);
    assert.equal(({} as Record<string, unknown>).x, undefined);
    assert.notEqual(n.e.masterHostname, 'evil');
  });
});
