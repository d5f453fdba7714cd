/**
 * stepDown() and promote(): each runs through the driver, and its promise settles with the
 * election's outcome (the `stepdown` or `promote` event, events.ts). A master's stepDown()
 * first drains its exclusive() work (app/master-work.ts); a second call while one is under
 * way gets the same promise.
 */
import type { MasterWork } from '../app/master-work';
import type { Driver } from '../driver/driver';
import type { Elector } from '../elector/elector';
import type { ShellEvents } from './events';

export interface HandoversHost {
  /** The running driver, or null (not started, or shut down). */
  driver(): Driver<Elector> | null;
  readonly events: ShellEvents;
  readonly work: MasterWork;
  /** We are master and another live eligible server could take over (else there is nothing to drain for). */
  canHandOver(): boolean;
}

export class Handovers {
  readonly #host: HandoversHost;
  #stepping: Promise<void> | null = null;

  constructor(host: HandoversHost) {
    this.#host = host;
  }

  stepDown(): Promise<void> {
    if (this.#stepping) return this.#stepping;
    const host = this.#host;
    const stepDown = (): Promise<void> => this.#run('stepdown', (core, now) => core.stepDown(now));
    // Nobody to hand to, or not master: fail now, without draining the work for nothing.
    if (!host.driver() || !host.canHandOver()) return stepDown();
    const stepping = Promise.resolve(host.work.handOver('stepping down', stepDown))
      .catch((err: unknown) => {
        host.work.handoverFailed();
        throw err;
      })
      .finally(() => {
        if (this.#stepping === stepping) this.#stepping = null;
      });
    this.#stepping = stepping;
    return stepping;
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
