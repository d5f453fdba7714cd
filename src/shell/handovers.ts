/**
 * stepDown() and promote(): each runs through the driver, and its promise settles with the
 * election's outcome (the `stepdown` or `promote` event, events.ts).
 */
import type { Driver } from '../driver/driver';
import type { Elector } from '../elector/elector';
import type { ShellEvents } from './events';

export interface HandoversHost {
  /** The running driver, or null (not started, or shut down). */
  driver(): Driver<Elector> | null;
  readonly events: ShellEvents;
}

export class Handovers {
  readonly #host: HandoversHost;

  constructor(host: HandoversHost) {
    this.#host = host;
  }

  stepDown(): Promise<void> {
    return this.#run('stepdown', (core, now) => core.stepDown(now));
  }

  promote(): Promise<void> {
    return this.#run('promote', (core, now) => core.promote(now));
  }

  #run(type: 'stepdown' | 'promote', step: Parameters<Driver<Elector>['run']>[0]): Promise<void> {
    const driver = this.#host.driver();
    if (!driver) return Promise.reject(new Error('MultiServer is not running'));
    const outcome = this.#host.events.outcome(type);
    driver.run(step);
    return outcome;
  }
}
