/**
 * The test files `npm test` runs, in the order it starts them: `node --test` given a folder
 * also runs test/helpers/ as tests (a process each, for nothing), and starts files in
 * alphabetical order, so the longest (the simulator's, at "s") started last and ran on alone
 * at the end of the run. The longest go first; the rest, mostly waiting on their clusters'
 * clocks, fill the other slots beside them.
 *
 * `node dist/tools/test-files.js [folder]` prints the paths, one a line (default dist/test).
 */
import { readdirSync } from 'node:fs';
import * as path from 'node:path';

/** Longest first, by CPU (as measured by `npm test`'s own durations; CONTRIBUTING.md, Tests). */
export const FIRST = ['sim.seeds', 'sim.regressions', 'types', 'cli', 'run', 'run.guardian', 'exclusive.process', 'faults.process'];

export function testFiles(folder: string): string[] {
  const files = readdirSync(folder)
    .filter((file) => file.endsWith('.test.js'))
    .sort();
  const rank = (file: string): number => {
    const index = FIRST.indexOf(file.slice(0, -'.test.js'.length));
    return index < 0 ? FIRST.length : index;
  };
  return files.sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0)).map((file) => path.join(folder, file));
}

if (require.main === module) process.stdout.write(`${testFiles(process.argv[2] ?? path.join('dist', 'test')).join('\n')}\n`);
