/**
 * "Did you mean …?": the known name a mistyped one was most likely meant to be.
 *
 * Names are compared as a person reads them: case, `_` and `-` ignored. A name counts as a
 * likely mistake for a known one when the two are a few edits apart (a typo, a swapped pair),
 * when one contains the other (`heartbeat_frequency` for `heartbeat_freq`, `timeout` for
 * `request_timeout_ms`, `ttl_seconds` for `ttl`), or when they share a long prefix (`broadcast_address` for
 * `broadcast_ip`). Of several, the fewest edits away wins, then the first in `known`.
 */

/** Case, `_`, `-` and spaces do not tell two names apart for a reader. */
export function normalizeName(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, '');
}

/** Names longer than this are not compared (a hostile config key could be megabytes). */
const MAX_COMPARED = 64;

/**
 * Edits (insert, delete, substitute, swap two neighbours) between `a` and `b`: the optimal
 * string alignment distance, O(|a|·|b|), keeping three rows (a swap looks two rows back).
 */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  let before = new Array<number>(b.length + 1).fill(0);
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  let current = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    current[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, (previous[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, (before[j - 2] as number) + 1);
      current[j] = best;
    }
    [before, previous, current] = [previous, current, before];
  }
  return previous[b.length] as number;
}

/** How many edits a name of this length may be off and still be a typo, not another word. */
function typoAllowance(length: number): number {
  return length <= 4 ? 1 : length <= 8 ? 2 : 3;
}

function commonPrefix(a: string, b: string): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

/** The known name `name` was most likely meant to be, or null when none is close. */
export function nearestName(name: string, known: readonly string[]): string | null {
  const wanted = normalizeName(name.slice(0, MAX_COMPARED));
  if (wanted.length === 0) return null;
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const norm = normalizeName(candidate);
    const distance = editDistance(wanted, norm);
    const shorter = Math.min(wanted.length, norm.length);
    const likely =
      distance <= typoAllowance(norm.length) ||
      (shorter >= 4 && (norm.includes(wanted) || wanted.includes(norm))) ||
      (shorter >= 3 && (norm.startsWith(wanted) || wanted.startsWith(norm))) ||
      commonPrefix(wanted, norm) >= Math.max(5, Math.ceil(shorter * 0.6));
    if (likely && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}
