/**
 * Golden timelines (test/testdata/timelines/*.txt), as etcd-io/raft's interaction tests:
 * each file is a short script, and under each command the exact timeline lines the
 * simulator prints for it (sim/interaction.ts). A change of behaviour fails with the diff
 * at the command where the story changed; when the change is meant,
 * `UPDATE_TIMELINES=1 npm test` rewrites the files, and the diff is reviewed in git. A
 * command with no `----` under it yet (a new one) is written out and the test fails, so
 * that a new story is always read before it is committed.
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

describe('the interaction format', () => {
  const text = [
    '# a story',
    'cluster tick=1000 beats=3 latency=1',
    '----',
    'ok',
    '',
    'start alpha bravo',
    '----',
    'ok',
    '',
    'run 3500',
    '----',
    '       0.0 ms  alpha    START',
    '',
  ].join('\n');

  test('parses each command with the output under it, and writes it back as it was', () => {
    const interaction = parseInteraction(text);
    assert.deepEqual(
      interaction.steps.map((step) => [step.command, step.expected]),
      [
        ['cluster tick=1000 beats=3 latency=1', []],
        ['start alpha bravo', []],
        ['run 3500', ['       0.0 ms  alpha    START']],
      ],
    );
    assert.deepEqual(interaction.steps[0]?.comments, ['# a story']);
    assert.equal(formatInteraction(interaction, [[], [], ['       0.0 ms  alpha    START']]), text);
  });

  test('output lands under the command that produced it, and a command new to the file has none recorded', () => {
    const steps = parseInteraction('# s\ncluster\nstart alpha\nrun 3500\ncrash alpha\nrun 10\n').steps;
    assert.ok(steps.every((step) => step.expected === null));
    const outputs = playInteraction(steps.map((step) => step.command));
    assert.deepEqual(outputs[1], [], 'start only schedules the start');
    assert.ok(outputs[2]?.some((line) => line.endsWith('alpha    START')));
    assert.deepEqual(outputs[3], ['    3500.0 ms  alpha    CRASH']);
    assert.ok(!outputs.flat().some((line) => line.endsWith(' event members')), 'noise is left out');
  });

  test('a command of the other mode, or none, is refused by name', () => {
    assert.throws(() => playInteraction(['cluster mode=etcd', 'partition a | b']), /unknown command "partition" in etcd mode/);
    assert.throws(() => playInteraction(['cluster', 'store down']), /unknown command "store" in udp mode/);
    assert.throws(() => playInteraction(['run 10']), /must start with a "cluster" line/);
    assert.throws(() => playInteraction(['cluster mode=etcd', 'store sideways']), /store sideways/);
  });
});

describe('golden timelines', () => {
  const files = readdirSync(DIR)
    .filter((file) => file.endsWith('.txt'))
    .sort();

  test('the stories of both modes are there', () => {
    for (const name of [
      'cold-start',
      'crash-failover',
      'graceful-handoff',
      'stepdown-promote',
      'quorum-split-heal',
      'duplicate-hostname',
      'etcd-cold-start',
      'etcd-crash-lease-expiry',
      'etcd-stepdown-handoff',
      'etcd-promote',
      'etcd-leader-change-stall',
      'etcd-member-cut-from-store',
    ]) {
      assert.ok(files.includes(`${name}.txt`), `${name}.txt is missing`);
    }
  });

  for (const file of files) {
    test(file, () => {
      const full = path.join(DIR, file);
      const interaction = parseInteraction(readFileSync(full, 'utf8'));
      assert.ok(interaction.steps[0]?.comments.length, `${file} opens with a comment saying what its story shows`);
      const actual = playInteraction(interaction.steps.map((step) => step.command));
      const unrecorded = interaction.steps.filter((step) => step.expected === null).length;
      if (UPDATE || unrecorded > 0) {
        writeFileSync(full, formatInteraction(interaction, actual));
        if (!UPDATE) assert.fail(`${file} had ${unrecorded} command(s) with no recorded output: written; review it and commit`);
        return;
      }
      assert.ok(
        actual.some((lines) => lines.length > 0),
        'an empty timeline proves nothing',
      );
      interaction.steps.forEach((step, index) => {
        const got = actual[index] ?? [];
        const want = step.expected ?? [];
        if (got.join('\n') !== want.join('\n'))
          assert.fail(
            `${file}: the output of "${step.command}" (command ${index + 1}) changed (UPDATE_TIMELINES=1 npm test rewrites it):\n${diff(want, got)}`,
          );
      });
    });
  }
});
