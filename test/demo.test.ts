/**
 * `npm run demo` as a newcomer runs it: five processes on loopback, exit 0, and its narration
 * in time order (lines are stamped with the instant they tell of, and many are composed
 * after the fact from the members' reports).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as path from 'node:path';

const DEMO = path.resolve(__dirname, '..', 'tools', 'demo.js');

test('the demo runs, and every stamped line comes after the one before it', async () => {
  const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    // A tick of 0.3 s: the demo's own 0.1 s leaves a busy machine's stalls too little room.
    execFile(process.execPath, [DEMO, '--heartbeat', '0.3'], { timeout: 120_000 }, (err, out, errText) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout: out, stderr: errText }),
    );
  });
  assert.equal(code, 0, stdout + stderr);
  const stamps = [...stdout.matchAll(/^\[\s*(\d+\.\d{3}) s\] (.*)$/gm)].map((m) => ({ at: Number(m[1]), line: m[0] }));
  assert.ok(stamps.length >= 15, `only ${stamps.length} stamped lines:\n${stdout}`);
  for (let i = 1; i < stamps.length; i++) {
    assert.ok(
      (stamps[i] as { at: number }).at >= (stamps[i - 1] as { at: number }).at,
      `out of order:\n${stamps[i - 1]?.line}\n${stamps[i]?.line}`,
    );
  }
  for (const step of [
    'became MASTER',
    'SIGKILL alpha',
    'survivors agree on bravo',
    'alpha learned the master',
    'charlie.promote()',
    'SIGTERM charlie',
  ]) {
    assert.ok(stdout.includes(step), `missing: ${step}`);
  }
});
