/**
 * The component's modules wired together, once per component, as coordinator/parts.ts wires
 * the lease election's: what each needs of the others and of the component. The component
 * (src/component.ts) is then the original's API and the pixl-server hooks over these parts,
 * and this file is the one place that says who calls whom.
 *
 * Each module reads the component through its public surface (`ShellHost`), late: a closure
 * here runs only once the component is built, so the order of the fields there is free.
 */
import { MasterWork } from '../app/master-work';
import type { JsonObject } from '../protocol/messages';
import { ShellEvents } from './events';
import { Handovers } from './handovers';
import { Messaging } from './messaging';
import { Runner } from './runner';
import { Section, type SectionHost } from './section';
import { EMPTY_DRIVER_STATS, liveStats, ShellCounters, type MultiServerStats } from './stats';

interface Emitter {
  emit(name: string, ...args: unknown[]): boolean;
  listenerCount(name: string): number;
}

/** The component as its modules see it: its public state, its logs, its server. */
export interface ShellHost extends Emitter, Omit<SectionHost, 'server'> {
  readonly hostname: string;
  readonly instanceId: string;
  readonly master: boolean;
  readonly members: string[];
  readonly term: number;
  /** What the app set (the health check may still keep the election from it). */
  readonly eligible: boolean;
  readonly data: JsonObject;
  readonly server: Omit<Emitter, 'listenerCount'> & SectionHost['server'] & { ip: string; shut?: unknown; shutdown(): void };
  logDebug(level: number, message: string, data?: unknown): void;
  logError(code: string, message: string): void;
  debugLevel(level: number): boolean;
}

export interface ShellParts {
  /** The config section: validated, its unknown keys reported, a reload's read. */
  readonly section: Section;
  /** The component's logs, for modules that take them as an object. */
  readonly log: { debug(level: number, message: string, data?: unknown): void; error(code: string, message: string): void };
  readonly counters: ShellCounters;
  /** The component's `stats`: a live object (each property reads the current value). */
  readonly stats: MultiServerStats;
  /** exclusive() calls, the drain before a handover, the health check (src/app/master-work.ts). */
  readonly work: MasterWork;
  readonly messaging: Messaging;
  readonly events: ShellEvents;
  /** stepDown() and promote(), settled by the election's outcome. */
  readonly handovers: Handovers;
  /** The election while it runs: its mode, timer, datagram intake, reload and leaving. */
  readonly runner: Runner;
  /**
   * Shutdown: the master's exclusive() work ends (or drain_timeout passes) before anyone may
   * take over; then the election stops (`closing` runs), what waits on it fails, and the mode
   * closes. `done` runs once it is closed, or at once if it never ran.
   */
  leave(closing: () => void, done: () => void): void;
}

export function shellParts(component: ShellHost): ShellParts {
  const counters = new ShellCounters();
  const debug = (level: number, message: string, data?: unknown): void => component.logDebug(level, message, data);
  const error = (code: string, message: string): void => component.logError(code, message);
  const settings = (): Runner['settings'] => runner.settings;
  const work = new MasterWork({
    isMaster: () => component.master,
    term: () => component.term,
    drainTimeoutMs: () => (settings()?.drain_timeout ?? 10) * 1000,
    appEligible: () => component.eligible,
    applyEligible: (eligible) => runner.run((core, now) => core.setEligible(eligible, now)),
    applyHealth: (health) => runner.mode?.driver.core.setHealth(health),
    log: debug,
  });
  const messaging = new Messaging({
    hostname: () => component.hostname,
    driver: () => runner.driver,
    requestTimeoutMs: () => settings()?.request_timeout_ms ?? 5000,
    maxPacketBytes: () => settings()?.max_packet_bytes ?? Infinity,
    emit: (type, payload, from, reply) => events.emitBoth('message', type, payload, from, reply),
  });
  const events: ShellEvents = new ShellEvents({
    component,
    server: () => component.server,
    counters,
    messaging,
    work,
    mode: () => runner.mode,
    debug,
    error,
  });
  const handovers = new Handovers({
    driver: () => runner.driver,
    events,
    work,
    canHandOver: () => component.master && component.members.some((host) => host !== component.hostname),
  });
  const runner: Runner = new Runner({
    hostname: () => component.hostname,
    serverIp: () => component.server.ip,
    instanceId: component.instanceId,
    eligible: () => work.eligible,
    data: () => component.data,
    health: () => work.healthWord,
    counters,
    events,
    debug,
    logs: (level) => component.debugLevel(level),
    error,
  });
  const stats = liveStats(
    () => runner.mode?.driver.stats ?? EMPTY_DRIVER_STATS,
    counters,
    () => runner.mode?.driver.core.term ?? 0,
  );
  const leave = (closing: () => void, done: () => void): void => {
    const close = (): void => {
      if (!runner.halt()) {
        done();
        return;
      }
      closing();
      messaging.rejectAll(() => new Error('MultiServer shut down'));
      events.failAll(new Error('MultiServer shut down'));
      void runner.close().then(() => done());
    };
    const draining = work.leave();
    if (draining) void draining.then(close);
    else close();
  };
  return { section: new Section(component), log: { debug, error }, counters, stats, work, messaging, events, handovers, runner, leave };
}
