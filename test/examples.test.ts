/**
 * The runnable examples under examples/ work as documented: each starts real pixl-server
 * processes on loopback and checks its own outcome (exit code 0 means it held).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');

function run(script: string): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'examples', script)], { cwd: ROOT, timeout: 60_000 }, (err, stdout) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout });
    });
  });
}

test('scheduler: jobs run only on the master and resume from the checkpoint after SIGKILL', async () => {
  const { code, stdout } = await run('scheduler.js');
  assert.equal(code, 0, stdout);
  // Terms are each master's own (protocol/terms.ts): not 1, 2, 3, but always rising.
  const terms = [...stdout.matchAll(/became master \(term (\d+)\)/g)].map((m) => Number(m[1]));
  assert.ok(terms.length >= 2 && terms.every((term, i) => i === 0 || term > (terms[i - 1] as number)), stdout);
  assert.match(stdout, /became master \(term \d+\), resuming at job 6/);
  assert.match(stdout, /jobs run: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12\n/);
  assert.match(stdout, /no job skipped/);
});

test('workers: every queue owned exactly once; joins and leaves move only their share', async () => {
  const { code, stdout } = await run('workers.js');
  assert.equal(code, 0, stdout);
  const moves = stdout.split('\n').filter((line) => line.includes('moved:'));
  assert.equal(moves.length, 2);
  for (const move of moves[0]?.match(/-> [\w-]+/g) ?? []) assert.equal(move, '-> work-4');
  assert.doesNotMatch(moves[1] ?? '', /work-[134] ->/);
});
