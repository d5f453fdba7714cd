/**
 * Waiting in tests: on a condition, never for a fixed time. A fixed pause is only for a window
 * in which nothing may happen, and says so where it is used (`pause`).
 */

/** The deadline of a wait when none is given: generous, for a loaded machine. */
export const WAIT_MS = 10_000;

/**
 * Resolve once `predicate` holds (checked every `everyMs`: more than the default 5 ms for a
 * predicate that reads files); reject naming `what` after `timeoutMs` (a function: what it
 * says at the deadline, such as what was seen instead).
 */
export async function waitFor(predicate: () => boolean, what: string | (() => string), timeoutMs = WAIT_MS, everyMs = 5): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** A window in which nothing may happen (its caller asserts what was reported in it). */
export function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The rest of a window in which nothing may happen, which began earlier and ends at `endMs` (Date.now() time). */
export function pauseUntil(endMs: number): Promise<void> {
  return pause(Math.max(0, endMs - Date.now()));
}
