/**
 * `--health-cmd`: the wrapper's health check is a shell command. Exit status 0 passes;
 * anything else fails, with the end of its stderr as the reason. It runs through
 * `/bin/sh -c` in a session of its own, so a check that overruns its timeout is ended with
 * its whole process group (SIGTERM, SIGKILL a second later), not just the shell.
 */
import { spawn } from 'node:child_process';

const KILL_AFTER_TERM_MS = 1000;
/** The end of a failing check's stderr that its reason shows. */
const MAX_REASON_CHARS = 200;

export function runHealthCommand(command: string, env: NodeJS.ProcessEnv, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    const child = spawn('/bin/sh', ['-c', command], { stdio: ['ignore', 'ignore', 'pipe'], detached: true, env });
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-MAX_REASON_CHARS * 4);
    });
    const group = (sig: NodeJS.Signals): void => {
      try {
        if (child.pid) process.kill(-child.pid, sig);
      } catch {
        // already gone
      }
    };
    const onAbort = (): void => {
      group('SIGTERM');
      setTimeout(() => group('SIGKILL'), KILL_AFTER_TERM_MS).unref();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    child.once('error', (err) => {
      signal.removeEventListener('abort', onAbort);
      reject(new Error(`could not run the health command: ${err.message}`));
    });
    child.once('close', (code, sig) => {
      signal.removeEventListener('abort', onAbort);
      if (code === 0) return resolve();
      const said = stderr.replace(/\s+/g, ' ').trim().slice(-MAX_REASON_CHARS);
      reject(new Error(`${sig ? `killed by ${sig}` : `exit code ${code}`}${said ? `: ${said}` : ''}`));
    });
  });
}
