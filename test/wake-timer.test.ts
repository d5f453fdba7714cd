/**
 * The election's one timer (src/util/wake-timer.ts): never early, kept when asked again for
 * the same time or later, and so armed about once a tick by an idle server, not once per
 * datagram. Driven by a fake clock; the last test runs real cores and drivers on it.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_TIMER_DELAY_MS, WakeTimer, type TimerClock } from '../src/util/wake-timer';
import { ElectionCore } from '../src/core/election';
import { Driver } from '../src/driver/driver';
import { decode } from '../src/wire/codec';

/** Timers on a clock that moves only when told; `run` fires what is due, in order. */
class FakeClock implements TimerClock {
  time = 0;
  armed = 0;
  cleared = 0;
  #next = 1;
  #timers = new Map<number, { at: number; callback: () => void }>();

  now(): number {
    return this.time;
  }
  set(callback: () => void, delayMs: number): unknown {
    assert.ok(Number.isInteger(delayMs) && delayMs >= 0 && delayMs <= MAX_TIMER_DELAY_MS, `delay ${delayMs}`);
    this.armed++;
    const id = this.#next++;
    this.#timers.set(id, { at: this.time + delayMs, callback });
    return id;
  }
  clear(handle: unknown): void {
    if (this.#timers.delete(handle as number)) this.cleared++;
  }
  get pending(): number {
    return this.#timers.size;
  }
  /** The earliest timer due by `until`, or null. */
  due(until: number): [number, { at: number; callback: () => void }] | null {
    let best: [number, { at: number; callback: () => void }] | null = null;
    for (const entry of this.#timers) if (entry[1].at <= until && (!best || entry[1].at < best[1].at)) best = entry;
    return best;
  }
  fire(id: number): void {
    const timer = this.#timers.get(id);
    this.#timers.delete(id);
    timer?.callback();
  }
}

describe('WakeTimer', () => {
  test('fires no earlier than the time asked for: the delay is rounded up', () => {
    const clock = new FakeClock();
    const woken: number[] = [];
    const timer = new WakeTimer(() => woken.push(clock.time), clock);
    clock.time = 10.25;
    timer.schedule(510);
    const [id, pending] = clock.due(Infinity) ?? assert.fail('no timer');
    assert.equal(pending.at, 510.25, 'ceil(499.75) ms from now');
    assert.ok(pending.at >= 510);
    clock.time = pending.at;
    clock.fire(id);
    assert.deepEqual(woken, [510.25]);
    assert.equal(timer.pendingFor, Infinity, 'nothing pending after it fired');
  });

  test('asked again for the same time, or a later one, it keeps the timer; an earlier time re-arms', () => {
    const clock = new FakeClock();
    const timer = new WakeTimer(() => undefined, clock);
    clock.time = 0.25;
    timer.schedule(500);
    // An idle server reads three datagrams before its heartbeat, each at a fractional time.
    for (const t of [0.51, 0.57, 120.3, 499.9]) {
      clock.time = t;
      timer.schedule(500);
      timer.schedule(1500);
    }
    assert.equal(clock.armed, 1);
    assert.equal(clock.cleared, 0);
    timer.schedule(499);
    assert.equal(clock.armed, 2, 'an earlier time must not wait for the later timer');
    assert.equal(clock.cleared, 1);
    assert.equal(clock.pending, 1, 'one timer at a time');
    assert.equal(timer.pendingFor, 499);
  });

  test('a time already past fires at once; Infinity, NaN and clear() leave nothing pending', () => {
    const clock = new FakeClock();
    const timer = new WakeTimer(() => undefined, clock);
    clock.time = 1000;
    timer.schedule(900);
    assert.equal(clock.due(1000)?.[1].at, 1000);
    for (const never of [Infinity, NaN, -Infinity]) {
      timer.schedule(never);
      assert.equal(clock.pending, 0, String(never));
      timer.schedule(1200);
      assert.equal(clock.pending, 1);
    }
    timer.clear();
    assert.equal(clock.pending, 0);
    assert.equal(timer.pendingFor, Infinity);
  });

  test("a wake-up beyond setTimeout's limit is clamped (an early wake-up asks again), never sent as an overflowing delay", () => {
    const clock = new FakeClock();
    const timer = new WakeTimer(() => undefined, clock);
    timer.schedule(1e300);
    assert.equal(clock.due(Infinity)?.[1].at, MAX_TIMER_DELAY_MS);
  });

  test('a listener that schedules from inside the wake-up gets its own timer', () => {
    const clock = new FakeClock();
    let timer: WakeTimer | null = null;
    const wake = new WakeTimer(() => timer?.schedule(clock.time + 500), clock);
    timer = wake;
    wake.schedule(100);
    const [id] = clock.due(Infinity) ?? assert.fail('no timer');
    clock.time = 100;
    clock.fire(id);
    assert.equal(clock.pending, 1);
    assert.equal(wake.pendingFor, 600);
  });
});

test('three idle servers (real cores and drivers, loopback on a fake clock) arm about one timer a tick each, and keep the heartbeat grid', () => {
  const clock = new FakeClock();
  const TICK = 500;
  const hosts = ['alpha', 'bravo', 'charlie'];
  const inbox: Array<{ at: number; to: number; datagram: Buffer }> = [];
  const sent = hosts.map(() => 0);
  const drivers: Array<Driver<ElectionCore>> = [];
  const timers: WakeTimer[] = [];
  hosts.forEach((hostname, index) => {
    const core = new ElectionCore({ hostname, ip: '127.0.0.1', instanceId: `0000000${index}aaaaaaaa`, tickMs: TICK, checkBeats: 3 });
    const timer = new WakeTimer(() => drivers[index]?.tick(), clock);
    timers.push(timer);
    const driver = new Driver(
      core,
      {
        now: () => ({ mono: clock.time, wall: 1.8e12 + clock.time }),
        send: (datagram, _message, _to, done) => {
          sent[index] = (sent[index] ?? 0) + 1;
          // Broadcast with loopback: every server, the sender too, a fraction of a ms later.
          hosts.forEach((_, to) => inbox.push({ at: clock.time + 0.2 + 0.05 * to + 0.01 * index, to, datagram }));
          done();
        },
        schedule: (wakeAt) => timer.schedule(wakeAt),
        log: () => undefined,
        emit: () => undefined,
      },
      { keyring: null, maxPacketBytes: 1024, maxDataBytes: 0 },
    );
    drivers.push(driver);
  });
  const runUntil = (until: number): void => {
    for (;;) {
      inbox.sort((a, b) => a.at - b.at);
      const datagram = inbox[0] && inbox[0].at <= until ? inbox[0] : null;
      const timer = clock.due(until);
      if (!datagram && !timer) break;
      if (datagram && (!timer || datagram.at <= timer[1].at)) {
        inbox.shift();
        clock.time = Math.max(clock.time, datagram.at);
        const result = decode(datagram.datagram);
        assert.ok(result.ok);
        drivers[datagram.to]?.receive(result.message, { address: '127.0.0.1', port: 3014 });
      } else if (timer) {
        clock.time = Math.max(clock.time, timer[1].at);
        clock.fire(timer[0]);
      }
    }
    clock.time = until;
  };
  drivers.forEach((driver) => driver.run((core, now) => core.start(now)));
  runUntil(10 * TICK);
  assert.deepEqual(
    drivers.map((driver) => driver.core.masterHostname),
    ['alpha', 'alpha', 'alpha'],
  );
  const armedBefore = clock.armed;
  const sentBefore = [...sent];
  const TICKS = 40;
  runUntil(clock.time + TICKS * TICK);
  // Each server reads three datagrams a tick; re-arming on each would be 3 or 4 a tick.
  assert.ok(
    clock.armed - armedBefore <= hosts.length * (TICKS + 2),
    `${clock.armed - armedBefore} timers armed by ${hosts.length} servers over ${TICKS} ticks`,
  );
  sent.forEach((count, index) =>
    assert.ok(
      Math.abs(count - (sentBefore[index] as number) - TICKS) <= 1,
      `${hosts[index]} sent ${count - (sentBefore[index] as number)} heartbeats in ${TICKS} ticks`,
    ),
  );
  assert.deepEqual(
    drivers.map((driver) => driver.core.masterHostname),
    ['alpha', 'alpha', 'alpha'],
  );
  for (const timer of timers) timer.clear();
});
