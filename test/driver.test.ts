/**
 * The driver (src/driver/driver.ts) on its own: a scripted election machine and a host that
 * writes down everything the driver does, in order. What the component and the simulator
 * rely on: an Output carried out in a fixed order (datagrams, store ops, log lines, the
 * wake-up, then events); one step at a time, a listener's call back into the driver queued
 * behind every event of the current step; a heartbeat whose data is too large or not JSON
 * sent without it; a throwing listener that stops neither the step's other events nor the
 * steps after it.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { Driver, type DriverHost } from '../src/driver/driver';
import type { Elector } from '../src/elector/elector';
import type { CoreEvent, Instant, Output, ServerRecord } from '../src/elector/types';
import type { Address, HeartbeatMessage, JsonValue, Message } from '../src/protocol/messages';
import type { StoreOp } from '../src/protocol/store';
import { decode } from '../src/wire/codec';
import { ShellEvents, type EventsHost } from '../src/shell/events';

/** What a scripted step produces (the fields of an Output; absent: none). */
type Script = Partial<Pick<Output, 'send' | 'store' | 'events' | 'logs' | 'wakeAt'>>;

/** An election machine that returns what the test scripted for each input, and notes each input it was given. */
class ScriptedElector implements Elector {
  readonly hostname = 'alpha';
  readonly instanceId = 'a1a1a1a1a1a1a1a1';
  master = false;
  slave = false;
  masterHostname = '';
  eligible = true;
  term = 0;
  checkpoint = null;
  table: Record<string, ServerRecord> = {};
  /** Every input, in the order the driver made it. */
  readonly inputs: string[] = [];
  /** What the next inputs return, in order (an empty Output when none is left). */
  readonly scripts: Script[] = [];

  record(hostname: string): ServerRecord | undefined {
    return this.table[hostname];
  }
  takeChanged(): Set<string> {
    return new Set();
  }
  #step(input: string): Output {
    this.inputs.push(input);
    const script = this.scripts.shift() ?? {};
    return {
      send: script.send ?? [],
      store: script.store ?? [],
      events: script.events ?? [],
      logs: script.logs ?? [],
      wakeAt: script.wakeAt ?? Infinity,
    };
  }
  start(_now: Instant): Output {
    return this.#step('start');
  }
  tick(_now: Instant, lateMs = 0): Output {
    return this.#step(`tick(late ${lateMs})`);
  }
  receive(message: Message, _from: Address, _now: Instant): Output {
    return this.#step(`receive(${message.action} from ${message.hostname})`);
  }
  sendMessage(to: string, messageType: string, _payload: JsonValue, _now: Instant): Output {
    return this.#step(`sendMessage(${to}, ${messageType})`);
  }
  setCheckpoint(_data: JsonValue, _now: Instant): Output {
    return this.#step('setCheckpoint');
  }
  setEligible(eligible: boolean, _now: Instant): Output {
    return this.#step(`setEligible(${eligible})`);
  }
  setHealth(): void {
    this.inputs.push('setHealth');
  }
  setData(): void {
    this.inputs.push('setData');
  }
  setLocked(hostname: string, locked: boolean, _now: Instant): Output {
    return this.#step(`setLocked(${hostname}, ${locked})`);
  }
  setTiming(_timing: { tickMs: number; checkBeats: number }, _now: Instant): Output {
    return this.#step('setTiming');
  }
  setPolicy(_policy: { exitOnConflict: boolean; priority: number; quorum: number }, _now: Instant): Output {
    return this.#step('setPolicy');
  }
  stepDown(_now: Instant): Output {
    return this.#step('stepDown');
  }
  promote(_now: Instant): Output {
    return this.#step('promote');
  }
  shutdown(_now: Instant): Output {
    return this.#step('shutdown');
  }
}

/** A host that writes down, in one list, everything the driver asks of it. */
class RecordingHost implements DriverHost {
  readonly trace: string[] = [];
  mono = 1000;
  /** Sends whose `done` the test calls itself (to see when a step's `sent` runs). */
  readonly unsent: Array<() => void> = [];
  holdSends = false;
  /** Called on each emitted event, after it is written down: the application's listener. */
  listener: (name: string, args: unknown[]) => void = () => undefined;
  readonly datagrams: Buffer[] = [];

  now(): Instant {
    return { mono: this.mono, wall: 1_700_000_000_000 + this.mono };
  }
  send(datagram: Buffer, message: Message, to: { address: string; port: number } | undefined, done: () => void): void {
    this.trace.push(`send ${message.action}${to ? ` to ${to.address}` : ''}`);
    this.datagrams.push(datagram);
    if (this.holdSends) this.unsent.push(done);
    else done();
  }
  store(op: StoreOp): void {
    this.trace.push(`store ${op.type} ${op.id}`);
  }
  schedule(wakeAt: number): void {
    this.trace.push(`schedule ${wakeAt}`);
  }
  log(level: number, message: string): void {
    this.trace.push(`log ${level} ${message}`);
  }
  observe(event: CoreEvent): void {
    this.trace.push(`observe ${event.type}`);
  }
  handle(event: CoreEvent): void {
    this.trace.push(`handle ${event.type}`);
  }
  emit = (name: string, ...args: unknown[]): void => {
    this.trace.push(`emit ${name}`);
    this.listener(name, args);
  };
}

function heartbeat(data: HeartbeatMessage['data'] = {}): HeartbeatMessage {
  return { action: 'heartbeat', hostname: 'alpha', ip: '127.0.0.1', master: false, eligible: true, uptime: 1, data };
}

function row(hostname: string): ServerRecord {
  return {
    hostname,
    ip: '127.0.0.2',
    master: false,
    eligible: true,
    self: false,
    health: null,
    now: 0,
    data: {},
    uptime: 0,
    locked: false,
    priority: 0,
    term: 0,
  };
}

const PUT: StoreOp = { type: 'put', id: 7, key: 'k', value: 'v', lease: '1', timeoutMs: 100 };
const WIRE = { keyring: null, maxPacketBytes: 512, maxDataBytes: 0 };

function setup(): { machine: ScriptedElector; host: RecordingHost; driver: Driver<ScriptedElector> } {
  const machine = new ScriptedElector();
  const host = new RecordingHost();
  const driver = new Driver(machine, host, WIRE);
  return { machine, host, driver };
}

describe('driver: an Output carried out', () => {
  test('in a fixed order: datagrams, store ops, log lines, the wake-up, then each event (observed, then emitted or handed to the host)', () => {
    const { machine, host, driver } = setup();
    machine.scripts.push({
      events: [
        { type: 'master', term: 3, checkpoint: null },
        { type: 'addserver', server: row('bravo') },
        { type: 'stepdown', ok: true, hostname: 'bravo', reason: 'done' },
      ],
      logs: [
        { level: 4, message: 'first' },
        { level: 5, message: 'second' },
      ],
      wakeAt: 1500,
      store: [PUT, { ...PUT, id: 8 }],
      send: [{ message: heartbeat() }, { message: { action: 'hello', hostname: 'alpha' }, to: { address: '127.0.0.2', port: 3014 } }],
    });
    driver.run((core, now) => core.start(now));
    assert.deepEqual(host.trace, [
      'send heartbeat',
      'send hello to 127.0.0.2',
      'store put 7',
      'store put 8',
      'log 4 first',
      'log 5 second',
      'schedule 1500',
      'observe master',
      'emit master',
      'observe addserver',
      'emit addserver',
      'observe stepdown',
      'handle stepdown',
    ]);
    assert.equal(driver.stats.packetsOut, 2);
    assert.equal(driver.stats.elections, 1);
  });

  test("a step's `sent` runs once every datagram of it has been sent, not before", () => {
    const { machine, host, driver } = setup();
    host.holdSends = true;
    machine.scripts.push({ send: [{ message: heartbeat() }, { message: { action: 'shutdown', hostname: 'alpha' } }] });
    let sent = 0;
    driver.run((core, now) => core.shutdown(now), { sent: () => sent++ });
    assert.equal(host.unsent.length, 2);
    host.unsent[1]?.();
    assert.equal(sent, 0, 'one of two datagrams is not sent yet');
    host.unsent[0]?.();
    assert.equal(sent, 1);
  });

  test('a step that sends nothing settles `sent` at once; one that returns no Output too, and leaves no trace', () => {
    const { host, driver } = setup();
    let sent = 0;
    driver.run((core, now) => core.tick(now), { sent: () => sent++ });
    assert.equal(sent, 1);
    driver.run(() => null, { sent: () => sent++ });
    assert.equal(sent, 2);
    assert.deepEqual(host.trace, ['schedule Infinity']);
  });

  test('masterchange events of one step are delivered as one, from the master before it to the master after it', () => {
    const { machine, host, driver } = setup();
    const seen: unknown[][] = [];
    host.listener = (name, args) => {
      if (name === 'masterchange') seen.push(args);
    };
    machine.scripts.push({
      events: [
        { type: 'masterchange', hostname: '', previous: 'charlie', lostAt: 900 },
        { type: 'master', term: 4, checkpoint: null },
        { type: 'masterchange', hostname: 'alpha', previous: '' },
      ],
    });
    host.mono = 1300;
    driver.run((core, now) => core.tick(now));
    assert.deepEqual(seen, [['alpha', 'charlie']]);
    assert.deepEqual(
      host.trace.filter((line) => line.startsWith('emit')),
      ['emit masterchange', 'emit master'],
    );
    assert.equal(driver.stats.failovers, 1);
    assert.equal(driver.stats.lastFailoverMs, 400, 'from when charlie was last heard to now');
  });

  test('the timer: lateness is measured against the earliest wake-up asked since it last fired, and a past deadline is no lateness', () => {
    const { machine, host, driver } = setup();
    machine.scripts.push({ wakeAt: 1200 }, { wakeAt: 1100 }, { wakeAt: 5000 });
    driver.run((core, now) => core.start(now));
    driver.run((core, now) => core.setEligible(false, now));
    host.mono = 1150;
    driver.tick();
    assert.equal(machine.inputs.at(-1), 'tick(late 50)');
    // A wake-up asked for a time already past counts from now: the timer was not late.
    machine.scripts.push({ wakeAt: 100 });
    driver.run((core, now) => core.promote(now));
    host.mono = 1160;
    driver.tick();
    assert.equal(machine.inputs.at(-1), 'tick(late 10)');
  });
});

describe('driver: one step at a time', () => {
  test("a listener's call back into the driver runs after every event of the current step, and its Output after them too", () => {
    const { machine, host, driver } = setup();
    machine.scripts.push(
      {
        events: [
          { type: 'master', term: 1, checkpoint: null },
          { type: 'addserver', server: row('bravo') },
        ],
      },
      { send: [{ message: heartbeat() }], logs: [{ level: 4, message: 'from the nested step' }] },
    );
    host.listener = (name) => {
      if (name !== 'master') return;
      host.trace.push('listener calls stepDown()');
      driver.run((core, now) => core.stepDown(now));
      host.trace.push('listener returns');
    };
    driver.run((core, now) => core.start(now));
    assert.deepEqual(machine.inputs, ['start', 'stepDown']);
    assert.deepEqual(host.trace, [
      'schedule Infinity',
      'observe master',
      'emit master',
      'listener calls stepDown()',
      'listener returns',
      'observe addserver',
      'emit addserver',
      'send heartbeat',
      'log 4 from the nested step',
      'schedule Infinity',
    ]);
  });

  test('steps queued during a step run in the order they were queued (received datagrams and calls alike), each whole before the next', () => {
    const { machine, host, driver } = setup();
    machine.scripts.push(
      { events: [{ type: 'slave' }] },
      { logs: [{ level: 4, message: 'one' }] },
      {},
      { logs: [{ level: 4, message: 'three' }] },
    );
    host.listener = () => {
      driver.run((core, now) => core.setEligible(true, now));
      driver.receive({ action: 'hello', hostname: 'bravo' }, { address: '127.0.0.2', port: 3014 });
      driver.run((core, now) => core.promote(now));
      assert.deepEqual(machine.inputs, ['start'], 'nothing runs inside the listener');
    };
    driver.run((core, now) => core.start(now));
    assert.deepEqual(machine.inputs, ['start', 'setEligible(true)', 'receive(hello from bravo)', 'promote']);
    assert.deepEqual(
      host.trace.filter((line) => line.startsWith('log')),
      ['log 4 one', 'log 4 three'],
    );
  });

  test('once the queue is drained, the next call runs at once', () => {
    const { machine, driver } = setup();
    driver.run((core, now) => core.start(now));
    driver.run((core, now) => core.promote(now));
    assert.deepEqual(machine.inputs, ['start', 'promote']);
  });
});

describe('driver: data a heartbeat cannot carry', () => {
  function sentData(host: RecordingHost): unknown {
    const decoded = decode(host.datagrams.at(-1) as Buffer, { maxBytes: 65_507 });
    assert.ok(decoded.ok, 'the heartbeat sent decodes');
    return (decoded.message as HeartbeatMessage).data;
  }

  test('over max_packet_bytes: the heartbeat goes without its data, counted and logged; within it, with', () => {
    const { machine, host, driver } = setup();
    machine.scripts.push({ send: [{ message: heartbeat({ blob: 'x'.repeat(600) }) }] }, { send: [{ message: heartbeat({ small: 1 }) }] });
    driver.run((core, now) => core.tick(now));
    assert.deepEqual(sentData(host), {});
    assert.equal(driver.stats.oversizedData, 1);
    assert.ok(
      host.trace.some((line) => /^log 1 Heartbeat with user data is \d+ bytes, over max_packet_bytes \(512\)/.test(line)),
      host.trace.join('\n'),
    );
    driver.run((core, now) => core.tick(now));
    assert.deepEqual(sentData(host), { small: 1 });
    assert.equal(driver.stats.oversizedData, 1);
  });

  test('over max_data_bytes, though the datagram fits: without its data', () => {
    const { machine, host, driver } = setup();
    driver.wire = { keyring: null, maxPacketBytes: 65_507, maxDataBytes: 100 };
    machine.scripts.push({ send: [{ message: heartbeat({ blob: 'y'.repeat(200) }) }] });
    driver.run((core, now) => core.tick(now));
    assert.deepEqual(sentData(host), {});
    assert.ok(host.trace.some((line) => line.includes('over max_data_bytes (100)')));
  });

  test('data an application broke after setting it (a BigInt, a cycle): without its data, and the step goes on', () => {
    for (const data of [
      { n: 10n },
      (() => {
        const cyclic: Record<string, unknown> = {};
        cyclic.self = cyclic;
        return cyclic;
      })(),
    ]) {
      const { machine, host, driver } = setup();
      machine.scripts.push({ send: [{ message: heartbeat(data as never) }], events: [{ type: 'slave' }] });
      driver.run((core, now) => core.tick(now));
      assert.deepEqual(sentData(host), {});
      assert.ok(host.trace.some((line) => line.startsWith('log 1 Heartbeat data cannot be encoded as JSON')));
      assert.ok(host.trace.includes('emit slave'), 'the rest of the step is carried out');
    }
  });

  test('a message other than a heartbeat that cannot be encoded is not sent without its payload: the error reaches the caller', () => {
    const { machine, host, driver } = setup();
    machine.scripts.push({
      send: [{ message: { action: 'message', hostname: 'alpha', to: 'bravo', type: 't', payload: { n: 1n } as never } }],
    });
    assert.throws(() => driver.run((core, now) => core.sendMessage('bravo', 't', null, now)));
    assert.equal(host.datagrams.length, 0);
  });
});

describe('driver: a throwing listener', () => {
  /** The component's events (src/shell/events.ts) as the host's emit: a listener that throws is logged, and the step goes on. */
  function shellHost(): { host: RecordingHost; component: EventEmitter; errors: string[] } {
    const host = new RecordingHost();
    const component = new EventEmitter();
    const server = Object.assign(new EventEmitter(), { shutdown: () => undefined });
    const errors: string[] = [];
    const events = new ShellEvents({
      component,
      server: () => server,
      counters: {},
      messaging: {},
      work: { onMaster: () => undefined, onSlave: () => undefined },
      mode: () => null,
      debug: () => undefined,
      error: (code: string, message: string) => errors.push(`${code}: ${message}`),
    } as unknown as EventsHost);
    host.emit = (name: string, ...args: unknown[]): void => {
      host.trace.push(`emit ${name}`);
      (events.emitBoth as (name: string, ...rest: unknown[]) => void).call(events, name, ...args);
    };
    return { host, component, errors };
  }

  for (const [what, thrown] of [
    ['an Error', new Error('app bug')],
    ['null', null],
    [
      'an object whose toString throws',
      {
        toString: () => {
          throw new Error('no');
        },
      },
    ],
  ] as const) {
    test(`one that throws ${what}: logged, the step's other events delivered, the next step runs`, () => {
      const machine = new ScriptedElector();
      const { host, component, errors } = shellHost();
      const driver = new Driver(machine, host, WIRE);
      const heard: string[] = [];
      component.on('master', () => {
        throw thrown;
      });
      component.on('addserver', (server: ServerRecord) => heard.push(`addserver ${server.hostname}`));
      component.on('slave', () => heard.push('slave'));
      machine.scripts.push(
        {
          events: [
            { type: 'master', term: 2, checkpoint: null },
            { type: 'addserver', server: row('bravo') },
          ],
        },
        { events: [{ type: 'slave' }] },
      );
      driver.run((core, now) => core.start(now));
      assert.deepEqual(heard, ['addserver bravo']);
      assert.equal(errors.length, 1);
      assert.match(errors[0] as string, /^listener: A "master" listener threw: /);
      driver.run((core, now) => core.stepDown(now));
      assert.deepEqual(heard, ['addserver bravo', 'slave']);
    });
  }

  test('a host whose emit itself throws: the error reaches the caller, and the driver is not wedged (steps queued before it run next, in order)', () => {
    const { machine, host, driver } = setup();
    machine.scripts.push({ events: [{ type: 'master', term: 1, checkpoint: null }, { type: 'slave' }] });
    host.listener = (name) => {
      if (name !== 'master') return;
      driver.run((core, now) => core.setEligible(false, now));
      throw new Error('host bug');
    };
    assert.throws(() => driver.run((core, now) => core.start(now)), /host bug/);
    assert.deepEqual(machine.inputs, ['start']);
    host.listener = () => undefined;
    driver.run((core, now) => core.promote(now));
    assert.deepEqual(machine.inputs, ['start', 'setEligible(false)', 'promote']);
  });
});
