/**
 * What an application can do to the component, and what it cannot break: listeners that
 * throw anything or call back in, data JSON cannot carry, a frozen `servers` table, odd
 * arguments, a null config section on reload, calls after shutdown. Each case failed (a
 * crash, a wrong event order, a silent misbehaviour) before the driver and these checks.
 * Real pixl-server instances in this process, on loopback.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type PixlServer = require('pixl-server');
import { freeUdpPort } from '../tools/loopback';
import { logFolder, makeServer, multi, start, stop, until } from './helpers/pixl';
import { nextTerm, termSlot } from '../src/protocol/terms';

const logs = logFolder('psm-edges-');
after(() => logs.remove());

async function lone(hostname: string, options: Record<string, unknown> = {}): Promise<PixlServer> {
  const server = makeServer(hostname, await freeUdpPort(), logs.dir, options);
  return server;
}

function logText(hostname: string): string {
  return readFileSync(path.join(logs.dir, `${hostname}.log`), 'utf8');
}

describe('listeners cannot hurt the component', () => {
  const throws: Array<[string, () => unknown]> = [
    ['null', () => null],
    ['undefined', () => undefined],
    ['a prototype-free object', () => Object.create(null) as object],
    [
      'an Error whose stack getter throws',
      () => {
        const err = new Error('boom');
        Object.defineProperty(err, 'stack', {
          get() {
            throw new Error('no stack for you');
          },
        });
        return err;
      },
    ],
    ['a number', () => 42],
  ];
  for (const [what, make] of throws) {
    test(`a listener that throws ${what} is logged, and the election goes on`, async () => {
      const server = await lone(`throw${throws.findIndex(([w]) => w === what)}`);
      let thrown = 0;
      const thrower = (): void => {
        thrown++;
        throw make();
      };
      server.on('masterchange', thrower);
      multi(server).on('master', thrower);
      try {
        await start(server);
        await until(() => multi(server).master, 'master despite throwing listeners', [server]);
        assert.ok(thrown >= 2, 'both listeners ran');
        multi(server).eligible = false;
        await until(() => !multi(server).master && multi(server).slave, 'the step down after eligible = false', [server]);
      } finally {
        await stop(server);
      }
      assert.match(logText(server.hostname), /listener threw/);
    });
  }

  test('a listener that calls back in sees events in causal order; the last event matches the state', async () => {
    const server = await lone('reentry');
    const seen: string[] = [];
    const component = multi(server);
    component.on('masterchange', (hostname) => {
      seen.push(`masterchange(${hostname})`);
      // The finding: setting eligible here used to deliver the step-down before `master`.
      if (hostname === 'reentry') component.eligible = false;
    });
    component.on('master', (term) => seen.push(`master(${term})`));
    component.on('slave', () => seen.push('slave'));
    try {
      await start(server);
      await until(() => seen.includes('slave'), 'the step-down caused by the listener', [server]);
      // The first term in reentry's slot (protocol/terms.ts): a term belongs to one claimant.
      assert.deepEqual(seen, ['masterchange(reentry)', `master(${nextTerm(0, termSlot('reentry'))})`, 'masterchange()', 'slave']);
      assert.equal(component.master, false);
      assert.equal(component.slave, true);
    } finally {
      await stop(server);
    }
  });

  test('every call a listener can make back into the component queues behind the events of the step', async () => {
    const server = await lone('callbacks');
    const component = multi(server);
    const seen: string[] = [];
    component.on('master', () => {
      seen.push('master');
      component.data = { from: 'listener' };
      void component.setCheckpoint({ step: 1 });
      component.send('*', 'hello', { n: 1 });
      void component.stepDown().catch((err: Error) => seen.push(`stepDown rejected: ${err.message}`));
      component.lock('nobody');
      seen.push('listener done');
    });
    component.on('masterchange', (hostname) => seen.push(`masterchange(${hostname})`));
    try {
      await start(server);
      await until(() => seen.some((line) => line.startsWith('stepDown rejected')), 'the stepDown outcome', [server]);
      assert.deepEqual(seen.slice(0, 3), ['masterchange(callbacks)', 'master', 'listener done']);
      assert.match(seen[3] ?? '', /no other eligible server/);
      assert.equal(component.master, true, 'alone, it stays master');
      assert.deepEqual(component.checkpoint, { step: 1 });
    } finally {
      await stop(server);
    }
  });
});

describe('data JSON cannot carry is refused at the caller', () => {
  test('BigInt, cycles, throwing toJSON, functions and non-objects throw a TypeError; the old data stays', async () => {
    const server = await lone('baddata');
    const component = multi(server);
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    const bad: unknown[] = [
      { big: 1n },
      cycle,
      {
        toJSON() {
          throw new Error('no');
        },
      },
      'a string',
      [1, 2],
      () => 1,
    ];
    try {
      await start(server);
      component.data = { good: true };
      for (const value of bad) assert.throws(() => (component.data = value as never), TypeError);
      assert.deepEqual(component.data, { good: true });
      await until(() => multi(server).master, 'the election to go on', [server]);
    } finally {
      await stop(server);
    }
  });

  test('data mutated later into something JSON cannot carry: heartbeats go on without it, with one error logged', async () => {
    const port = await freeUdpPort();
    const a = makeServer('mutator', port, logs.dir);
    const b = makeServer('watcher', port, logs.dir);
    try {
      await start(a);
      await start(b);
      await until(() => !!multi(b).servers.mutator, 'the two to meet', [a, b]);
      (multi(a).data as Record<string, unknown>).big = 2n;
      const packets = multi(b).stats.packetsIn;
      await until(() => multi(b).stats.packetsIn > packets + 5, 'heartbeats to keep coming', [a, b]);
      assert.deepEqual(multi(b).servers.mutator?.data, {});
      assert.ok(multi(a).stats.oversizedData > 0);
    } finally {
      await stop(a);
      await stop(b);
    }
    assert.equal(logText('mutator').match(/cannot be encoded as JSON/g)?.length, 1, 'one line, not one per heartbeat');
  });
});

describe('the servers table is the application’s to mangle', () => {
  test('a frozen table, frozen rows and getter-only properties do not stop joins, updates or removals', async () => {
    const port = await freeUdpPort();
    const a = makeServer('alpha', port, logs.dir);
    const b = makeServer('bravo', port, logs.dir);
    const c = makeServer('charlie', port, logs.dir);
    try {
      await start(a);
      await start(b);
      await until(() => !!multi(a).servers.bravo, 'alpha to see bravo', [a, b]);
      const servers = multi(a).servers;
      Object.freeze(servers.bravo);
      Object.defineProperty(servers, 'ghost', { get: () => 1, enumerable: false });
      Object.freeze(servers);
      await start(c);
      await until(() => !!multi(a).servers.charlie, 'a join after the freeze', [a, b, c]);
      const uptime = multi(a).servers.bravo?.uptime ?? -1;
      await until(() => (multi(a).servers.bravo?.uptime ?? -1) > uptime, 'updates after the freeze', [a, b, c], 5000);
      await stop(c);
      await until(() => !multi(a).servers.charlie, 'a removal after the freeze', [a, b]);
    } finally {
      await stop(a);
      await stop(b);
    }
  });

  test('setting locked on a row (the original way) is an input: a locked server is kept after it leaves', async () => {
    const port = await freeUdpPort();
    const a = makeServer('keeper', port, logs.dir);
    const b = makeServer('leaver', port, logs.dir);
    try {
      await start(a);
      await start(b);
      await until(() => !!multi(a).servers.leaver, 'keeper to see leaver', [a, b]);
      const row = multi(a).servers.leaver;
      assert.ok(row);
      row.locked = true;
      await stop(b);
      await until(() => multi(a).members.join() === 'keeper', 'the departure to be noticed', [a]);
      assert.ok(multi(a).servers.leaver, 'a locked server was removed');
      assert.equal(multi(a).servers.leaver?.locked, true);
      multi(a).lock('leaver', false);
      assert.equal(multi(a).servers.leaver, undefined, 'unlocking a departed server removes it at once');
    } finally {
      await stop(a);
    }
  });
});

describe('small ones', () => {
  test('request() refuses a timeout setTimeout cannot honour; send() refuses a payload JSON cannot carry', async () => {
    const server = await lone('small');
    const component = multi(server);
    try {
      await start(server);
      await assert.rejects(component.request('*', 'x', 1, { timeoutMs: 2 ** 31 }), RangeError);
      await assert.rejects(component.request('*', 'x', 1, { timeoutMs: Number.NaN }), RangeError);
      assert.throws(() => component.send('*', 'x', (() => 1) as never), TypeError);
      assert.throws(() => component.send('*', 'x', Symbol('s') as never), TypeError);
      assert.throws(() => component.send('*', 'x', { n: 1n } as never), TypeError);
      assert.throws(() => component.send('*', 'x', undefined as never), TypeError);
    } finally {
      await stop(server);
    }
  });

  test('a reload that sets the MultiServer section to null is refused, not taken as all defaults', async () => {
    const server = await lone('reloader');
    const component = multi(server);
    try {
      await start(server);
      const config = server.config as unknown as { set(key: string, value: unknown): void; refreshSubs(): void };
      config.set('MultiServer', null);
      config.refreshSubs();
      assert.equal(component.settings?.heartbeat_freq, 0.05, 'the heartbeat became the 20 s default');
      assert.equal(component.broadcastIP, '127.255.255.255');
    } finally {
      await stop(server);
    }
    assert.match(logText('reloader'), /Config reload ignored: .*`MultiServer`.*`null`/);
  });

  test('after shutdown, masterFor() names nobody and members is empty', async () => {
    const port = await freeUdpPort();
    const a = makeServer('one', port, logs.dir);
    const b = makeServer('two', port, logs.dir);
    try {
      await start(a);
      await start(b);
      await until(() => multi(a).members.length === 2, 'two members', [a, b]);
      assert.notEqual(multi(a).masterFor('job'), null);
    } finally {
      await stop(a);
      await stop(b);
    }
    assert.equal(multi(a).masterFor('job'), null);
    assert.deepEqual(multi(a).members, []);
    assert.equal(multi(a).master, false);
  });
});
