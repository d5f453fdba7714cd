/**
 * The simulator's regressions saved as scenario files (test/testdata/scenarios): their faults
 * are written out, so no change of the generator can stop them reproducing their bug.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { runScenario, type Scenario } from '../../sim/scenario';

export const SCENARIOS = path.join(__dirname, '..', '..', '..', 'test', 'testdata', 'scenarios');

export function saved(name: string): Scenario & { regression: string } {
  return JSON.parse(readFileSync(path.join(SCENARIOS, `${name}.json`), 'utf8')) as Scenario & { regression: string };
}

export function assertFileClean(name: string): void {
  const scenario = saved(name);
  const result = runScenario(scenario);
  if (result.violation)
    assert.fail(`${name}: ${result.violation.message}\n  replay: npm run sim -- --scenario test/testdata/scenarios/${name}.json --trace`);
}
