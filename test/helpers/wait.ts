/**
 * Waiting in tests: on a condition, never for a fixed time. A fixed pause is only for a window
 * in which nothing may happen, and says so where it is used (`pause`).
 */

/** The deadline of a wait when none is given: generous, for a loaded machine. */
export const WAIT_MS = 10_000;

/** Resolve once `predicate` holds (checked every 5 ms); reject naming `what` after `timeoutMs`. */
export async function waitFor(predicate: () => boolean, what: string, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A window in which nothing may happen (its caller asserts what was reported in it). */
export function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
