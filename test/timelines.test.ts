/**
 * Golden timelines (test/testdata/timelines/*.txt), as etcd-io/raft's interaction tests:
 * each file is a short script and the exact timeline the simulator prints for it. A
 * change of behaviour fails with the diff of the two stories; when the change is meant,
 * `UPDATE_TIMELINES=1 npm test` rewrites the files, and the diff is reviewed in git.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { formatInteraction, parseInteraction, playInteraction } from '../sim/interaction';

const DIR = path.join(__dirname, '..', '..', 'test', 'testdata', 'timelines');
const UPDATE = process.env.UPDATE_TIMELINES === '1';

function diff(expected: string[], actual: string[]): string {
  const out: string[] = [];
  const max = Math.max(expected.length, actual.length);
  for (let i = 0; i < max; i++) {
    if (expected[i] === actual[i]) continue;
    if (expected[i] !== undefined) out.push(`- ${expected[i]}`);
    if (actual[i] !== undefined) out.push(`+ ${actual[i]}`);
    if (out.length > 40) {
      out.push('…');
      break;
    }
  }
  return out.join('\n');
}

describe('golden timelines', () => {
  const files = readdirSync(DIR)
    .filter((file) => file.endsWith('.txt'))
    .sort();

  test('the six stories are there', () => {
    for (const name of [
      'cold-start',
      'crash-failover',
      'graceful-handoff',
      'stepdown-promote',
      'quorum-split-heal',
      'duplicate-hostname',
    ]) {
      assert.ok(files.includes(`${name}.txt`), `${name}.txt is missing`);
    }
  });

  for (const file of files) {
    test(file, () => {
      const full = path.join(DIR, file);
      const text = readFileSync(full, 'utf8');
      const hasTimeline = text.split('\n').some((line) => line.trim() === '----');
      const { script, expected } = hasTimeline ? parseInteraction(text) : { script: text.replace(/\n+$/, '').split('\n'), expected: [] };
      const actual = playInteraction(script);
      if (UPDATE || !hasTimeline) {
        writeFileSync(full, formatInteraction(script, actual));
        if (!hasTimeline) assert.fail(`${file} had no timeline: written; review it and commit`);
        return;
      }
      assert.ok(actual.length > 0, 'an empty timeline proves nothing');
      if (actual.join('\n') !== expected.join('\n'))
        assert.fail(`${file}: the timeline changed (UPDATE_TIMELINES=1 npm test rewrites it):\n${diff(expected, actual)}`);
    });
  }
});
