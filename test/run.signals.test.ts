/**
 * `pixl-server-multi run` and the signals a user sends it (src/run/signals.ts), with a real
 * wrapper on loopback whose command ignores SIGTERM and whose grace is long: the first SIGTERM
 * stops the command with its full grace before the wrapper leaves (so it still runs), the
 * second kills it now, the third exits the wrapper at once. Waits are for conditions, with
 * generous deadlines; no elapsed time is asserted.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { RunWrappers, starts } from '../tools/run-wrappers';

/** Generous: a loaded machine runs these too. */
const DEADLINE_MS = 20_000;

const open: RunWrappers[] = [];
after(async () => {
  await Promise.all(open.map((w) => w.close()));
});

/** A wrapper whose command ignores SIGTERM and gets 600 s of grace: only a second signal ends it early. */
async function stubbornRun(
  args: (dir: string) => string[] = () => [],
): Promise<{ w: RunWrappers; run: ReturnType<RunWrappers['commandProcesses']> }> {
  const w = new RunWrappers({ heartbeatFreq: 0.5, args: ['--grace', '600'], childArgs: ['--ignore-term', '--grandchild', 'none'] });
  open.push(w);
  await w.start('solo', { args: args(w.dir) });
  await w.waitFor(() => starts(w).length === 1 && w.commandProcesses().length === 1, DEADLINE_MS, 'the command to start');
  const run = w.commandProcesses();
  w.kill('solo', 'SIGTERM');
  // The command's line and the wrapper's log come by different pipes: wait for both.
  await w.waitFor(
    () => w.lines().some((l) => l.event === 'term') && w.logged('solo', /Caught SIGTERM: stopping the command, then leaving the cluster/),
    DEADLINE_MS,
    'the command to be sent SIGTERM',
  );
  assert.ok(
    run.every((p) => RunWrappers.exists(p)),
    'after the first SIGTERM the command has its grace (600 s): it still runs',
  );
  assert.ok(w.wrapper('solo').alive, 'the wrapper leaves only once the command is gone');
  return { w, run };
}

test('a second SIGTERM kills the command at once; the wrapper then leaves with exit code 0', async () => {
  const { w, run } = await stubbornRun();
  w.kill('solo', 'SIGTERM');
  await w.waitFor(() => !w.wrapper('solo').alive, DEADLINE_MS, 'the wrapper to leave');
  const { code } = await w.wrapper('solo').exited;
  // The exit may be seen before the last of its stderr is read.
  await w.waitFor(() => w.logged('solo', /Caught SIGTERM again: killing the command now/), DEADLINE_MS, 'the second signal logged');
  assert.equal(code, 0);
  assert.ok(
    run.every((p) => !RunWrappers.exists(p)),
    'the command is gone before the wrapper exits',
  );
});

test('a third SIGTERM exits the wrapper at once (code 1), while it waits for a hook; the guardian has ended the command', async () => {
  // Leaving runs on-slave (the command is stopped) and waits for it: a hook that hangs keeps the wrapper here.
  const hook = (dir: string): string => path.join(dir, 'on-slave');
  const { w, run } = await stubbornRun((dir) => ['--on-slave', `echo "$MULTI_REASON" >> ${hook(dir)}; sleep 600`, '--hook-timeout', '600']);
  const marker = hook(w.dir);
  w.kill('solo', 'SIGTERM');
  await w.waitFor(
    () => existsSync(marker) && readFileSync(marker, 'utf8').includes('leaving'),
    DEADLINE_MS,
    'the on-slave hook of leaving',
  );
  assert.ok(
    run.every((p) => !RunWrappers.exists(p)),
    'the second SIGTERM killed the command',
  );
  assert.ok(w.wrapper('solo').alive, 'the wrapper waits for its on-slave hook');
  w.kill('solo', 'SIGTERM');
  await w.waitFor(() => !w.wrapper('solo').alive, DEADLINE_MS, 'the wrapper to exit');
  const { code } = await w.wrapper('solo').exited;
  assert.equal(code, 1);
  await w.waitFor(() => w.logged('solo', /Caught SIGTERM a third time: exiting now/), DEADLINE_MS, 'the third signal logged');
  // The hook runs in a session of its own and no guardian watches it: a forced exit leaves it
  // running (up to its sleep). Not the command's; ended here so the test leaves nothing behind.
  for (const p of w.processes()) if (p.role === 'other') process.kill(p.pid, 'SIGKILL');
});
