/**
 * The component's events: each goes to the component and to the parent server (as in the
 * original), a throwing listener is logged and never stops the election; and the election's
 * events that need the shell are settled here: a message (to the messaging), the outcome of a
 * stepDown() or promote() (its waiting promises), a checkpoint's (to the mode), a duplicate
 * hostname (an `error` event, only for those who listen), an exit (the server shuts down), and
 * the master work's hooks (app/master-work.ts): a role change, a promote request held while
 * the work drains, a handoff that failed, a preemption counted.
 */
import type { CoreEvent } from '../elector/types';
import type { EventName, HandoffResult, MultiServerEvents } from '../driver/events';
import { DuplicateHostnameError } from '../errors';
import { describeThrown } from '../util/describe';
import type { MasterWork } from '../app/master-work';
import type { Messaging } from './messaging';
import type { Mode } from './mode';
import type { ShellCounters } from './stats';

interface Emitter {
  emit(name: string, ...args: unknown[]): boolean;
}

export interface EventsHost {
  readonly component: Emitter & { listenerCount(name: string): number };
  server(): Emitter & { shut?: unknown; shutdown(): void };
  readonly counters: ShellCounters;
  readonly messaging: Messaging;
  /** exclusive() work, its drain before a handover, the health check (app/master-work.ts). */
  readonly work: MasterWork;
  mode(): Mode | null;
  debug(level: number, message: string): void;
  error(code: string, message: string): void;
}

type Waiter = (err: Error | null) => void;

export class ShellEvents {
  readonly #host: EventsHost;
  #waiters: Record<'stepdown' | 'promote', Waiter[]> = { stepdown: [], promote: [] };

  constructor(host: EventsHost) {
    this.#host = host;
  }

  /** Events go to the component and to the parent server, as in the original. */
  emitBoth<E extends EventName>(name: E, ...args: MultiServerEvents[E]): void {
    // Before any listener: `master` opens exclusive() to the new term, `slave` aborts what runs.
    if (name === 'master') this.#host.work.onMaster();
    else if (name === 'slave') this.#host.work.onSlave();
    this.emitOne(this.#host.component, name, args);
    this.emitOne(this.#host.server(), name, args);
  }

  emitOne(target: Emitter, name: string, args: readonly unknown[]): void {
    try {
      target.emit(name, ...args);
    } catch (err) {
      // A throwing listener is the app's bug, but it must not stop the election, whatever it threw.
      try {
        this.#host.error('listener', `A "${name}" listener threw: ${describeThrown(err)}`);
      } catch {
        // The logger itself failed; there is nothing left to tell.
      }
    }
  }

  /** An `error` event on the component, for those who listen (an unhandled one would throw). */
  emitError(err: Error): void {
    if (this.#host.component.listenerCount('error') > 0) this.emitOne(this.#host.component, 'error', [err]);
  }

  /** A promise settled by the next outcome of stepDown() or promote(). */
  outcome(type: 'stepdown' | 'promote'): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#waiters[type].push((err) => (err ? reject(err) : resolve()));
    });
  }

  /** Shutting down: every stepDown() and promote() still waiting fails with `err`. */
  failAll(err: Error): void {
    for (const waiter of [...this.#waiters.stepdown.splice(0), ...this.#waiters.promote.splice(0)]) waiter(err);
  }

  /** Election events that need the shell. */
  handle(event: CoreEvent): void {
    const host = this.#host;
    switch (event.type) {
      case 'message':
        host.messaging.deliver(event);
        break;
      case 'drain': {
        // A promote request the election holds until our exclusive() work has drained.
        const driver = host.mode()?.driver;
        void host.work.handOver(`handing over to ${event.target}`, () => driver?.run((core, now) => core.drained?.(now) ?? null));
        break;
      }
      case 'stepdown':
      case 'promote': {
        const settle = this.#waiters[event.type].splice(0);
        if (event.type === 'stepdown' && !event.ok) host.work.handoverFailed();
        if (event.type === 'stepdown' && event.ok) host.counters.handoffs++;
        host.debug(
          event.ok ? 4 : 3,
          `${event.type === 'stepdown' ? 'Step down' : 'Promote'}: ${event.ok ? 'done' : 'failed'} (${event.reason})`,
        );
        for (const waiter of settle) waiter(event.ok ? null : new Error(event.reason));
        const result: HandoffResult = { ok: event.ok, reason: event.reason };
        this.emitBoth(event.type, result);
        break;
      }
      case 'checkpoint':
        host.mode()?.settleCheckpoints(event);
        break;
      case 'preempt':
        host.counters.preemptions++;
        break;
      case 'duplicate':
        this.emitError(new DuplicateHostnameError(event.hostname, event.keeper, event.yielder));
        break;
      case 'exit':
        host.debug(1, `Shutting down the server: ${event.reason}`);
        setImmediate(() => {
          const server = host.server();
          if (!server.shut) server.shutdown();
        });
        break;
      default:
        break;
    }
  }
}
