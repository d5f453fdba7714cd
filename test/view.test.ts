/**
 * The state an operator reads for each server (CLI and status page), from what was heard
 * and when: pure rules, checked at their edges.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { judge, masterOf, type Sighting } from '../src/shell/view';

const TICK = 1000;
const at = (fields: Partial<Sighting>): Sighting => ({
  claimsMaster: false,
  term: 1,
  silentMs: 0,
  tickMs: TICK,
  checkBeats: 3,
  departed: false,
  ...fields,
});

test("a slave carries the live master's term; without one, or behind it, it is listening", () => {
  assert.deepEqual(judge([at({ claimsMaster: true, term: 4 }), at({ term: 4 }), at({ term: 3 })]), ['master', 'slave', 'listening']);
  assert.deepEqual(judge([at({ term: 0 }), at({ term: 0 })]), ['listening', 'listening'], 'a cold cluster');
  assert.deepEqual(judge([at({ claimsMaster: true, term: 0 }), at({ term: 0 })]), ['master', 'slave'], 'original servers send no term');
});

test('suspect after a tick and a half of silence, left past the tock plus a quarter tick', () => {
  const silent = (ms: number): string => judge([at({ silentMs: ms })])[0] as string;
  assert.equal(silent(1500), 'listening');
  assert.equal(silent(1501), 'suspect');
  assert.equal(silent(3250), 'suspect');
  assert.equal(silent(3251), 'left');
  assert.equal(judge([at({ departed: true })])[0], 'left', 'a shutdown notice');
  assert.equal(judge([at({ silentMs: 200, tickMs: 100, checkBeats: 1 })])[0], 'left', 'each judged by its own timing');
});

test('a dead master is left, and its slaves are listening; a suspect master is still followed', () => {
  assert.deepEqual(judge([at({ claimsMaster: true, silentMs: 4000 }), at({})]), ['left', 'listening']);
  assert.deepEqual(judge([at({ claimsMaster: true, silentMs: 2000 }), at({})]), ['suspect', 'slave']);
});

test('the master is the one claimant that has not left; several are a conflict', () => {
  const rows = (states: Array<[string, boolean, string]>) =>
    states.map(([hostname, claimsMaster, state]) => ({ hostname, claimsMaster, state: state as never }));
  assert.deepEqual(
    masterOf(
      rows([
        ['a', true, 'left'],
        ['b', true, 'master'],
        ['c', false, 'slave'],
      ]),
    ),
    { hostname: 'b', conflict: [] },
  );
  assert.deepEqual(
    masterOf(
      rows([
        ['a', true, 'master'],
        ['b', true, 'suspect'],
      ]),
    ),
    { hostname: '', conflict: ['a', 'b'] },
  );
  assert.deepEqual(masterOf(rows([['a', false, 'listening']])), { hostname: '', conflict: [] });
});
