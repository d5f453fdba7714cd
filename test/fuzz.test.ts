/**
 * A fixed-seed slice of the fuzzer (sim/fuzz.ts; `npm run fuzz -- --count N` runs more).
 * The fuzzer itself throws on any violated oracle; this also checks that the slice reached
 * every part it is meant to: each generator, the open core's state machine up to a full
 * table, and replays that pass the MAC and are refused by the authenticated core.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzz } from '../sim/fuzz';

const SEED = 20260101;
const COUNT = 30_000;

test(`fuzz slice: ${COUNT} hostile datagrams (seed ${SEED}) against codec and live cores, no violation`, () => {
  const report = fuzz({ seed: SEED, count: COUNT });
  assert.equal(
    Object.values(report.generators).reduce((a, b) => a + b, 0),
    COUNT,
  );
  assert.ok(Object.keys(report.generators).length >= 12);
  // The open core was exercised, not just the parser: accepted packets, state changes, a full table.
  assert.ok((report.openCodec.accepted ?? 0) > 1000, JSON.stringify(report.openCodec));
  assert.ok((report.openCore.events ?? 0) > 0);
  assert.equal(report.peakTable, 24, 'max_servers was never reached');
  // Authentic replays got through the codec and were each refused by the core.
  assert.ok((report.authCodec.accepted ?? 0) > 0);
  assert.ok((report.authCore.stale ?? 0) > 0 && (report.authCore.unverified ?? 0) > 0, JSON.stringify(report.authCore));
  for (const reason of ['unauthenticated', 'bad-mac', 'unknown-key']) assert.ok((report.authCodec[reason] ?? 0) > 0, reason);
});
