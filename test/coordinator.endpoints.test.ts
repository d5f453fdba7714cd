/**
 * Which etcd member an op goes to (src/coordinator/endpoints.ts): keep to the one that
 * answered, leave a failed one at once and avoid it for a while (longer after each failure in
 * a row), send a second keep-alive elsewhere than the pending one, and always pick something.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AVOID_MAX_MS, AVOID_MS, Endpoints } from '../src/etcd/endpoints';

test('keeps to the member that answered; after a failure, moves on at once and avoids it, 1 s doubling to 10 s', () => {
  const endpoints = new Endpoints(3, () => 0);
  assert.equal(endpoints.pick(0), 0);
  endpoints.failed(0, 1000);
  const next = endpoints.pick(1000);
  assert.notEqual(next, 0, 'another member at once');
  endpoints.succeeded(next);
  assert.equal(endpoints.pick(1500), next, 'and keeps to it');
  assert.ok(endpoints.avoided(0, 1000 + AVOID_MS - 1) && !endpoints.avoided(0, 1000 + AVOID_MS));
  // Failures in a row: longer each time, up to the cap.
  let at = 10_000;
  const spans: number[] = [];
  for (let i = 0; i < 6; i++) {
    endpoints.failed(2, at);
    let until = at;
    while (endpoints.avoided(2, until)) until += 100;
    spans.push(until - at);
    at = until;
  }
  assert.deepEqual(spans, [1000, 2000, 4000, 8000, AVOID_MAX_MS, AVOID_MAX_MS]);
  endpoints.succeeded(2);
  assert.equal(endpoints.avoided(2, at), false, 'an answer ends it');
});

test('a second keep-alive goes to a member with none pending; with every member excluded or avoided, the one back soonest', () => {
  const endpoints = new Endpoints(3, () => 0.5);
  const first = endpoints.pick(0);
  const second = endpoints.pick(0, new Set([first]));
  assert.notEqual(second, first);
  const third = endpoints.pick(0, new Set([first, second]));
  assert.equal(new Set([first, second, third]).size, 3);
  // All avoided: the one whose avoidance ends first.
  endpoints.failed(0, 0);
  endpoints.failed(1, 500);
  endpoints.failed(2, 200);
  assert.equal(endpoints.pick(600), 0);
  // A single member is always the answer.
  const one = new Endpoints(1);
  one.failed(0, 0);
  assert.equal(one.pick(0, new Set([0])), 0);
});

test('servers spread over the members: the first pick is random', () => {
  const picks = new Set([0, 0.34, 0.67, 0.99].map((r) => new Endpoints(3, () => r).pick(0)));
  assert.deepEqual([...picks].sort(), [0, 1, 2]);
});
