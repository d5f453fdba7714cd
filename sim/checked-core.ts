/**
 * The routine heartbeat's check (src/core/routine.ts): a core that takes the fast path, and
 * beside it a twin made with the same options that never does. Every input goes to both, and
 * the first Output, role, term, master or table row that differs throws, naming the input. Over
 * a sweep (`npm run sim -- --seeds N --check-routine`) this holds the fast path to the full
 * rules in every scenario the simulator has: partitions, loss, stalls, restarts, handoffs.
 *
 * Off unless asked for (`PIXL_SIM_CHECK_ROUTINE=1`, which `--check-routine` sets, so worker
 * threads see it too): it doubles the cost of every step.
 */
import type { Address, HealthWord, JsonObject, JsonValue, Message } from '../src/protocol/messages';
import type { Instant, Output } from '../src/elector/types';
import { ElectionCore, type CoreOptions, type CoreTiming } from '../src/core/election';

export const CHECK_ROUTINE_ENV = 'PIXL_SIM_CHECK_ROUTINE';

export function routineChecked(): boolean {
  return process.env[CHECK_ROUTINE_ENV] === '1';
}

export class CheckedCore extends ElectionCore {
  readonly #twin: ElectionCore;

  constructor(options: CoreOptions) {
    super(options);
    this.#twin = new ElectionCore({ ...options, routine: false });
  }

  /** Compare what both produced (the Output as JSON, then the state a user can read). */
  #same(what: string, fast: Output | null, full: Output | null): Output | null {
    const twin = this.#twin;
    const a = JSON.stringify([fast, this.master, this.slave, this.masterHostname, this.term, this.checkpoint, this.table]);
    const b = JSON.stringify([full, twin.master, twin.slave, twin.masterHostname, twin.term, twin.checkpoint, twin.table]);
    if (a !== b) throw new Error(`routine check: ${this.hostname}: ${what} differs from the full rules\nfast: ${a}\nfull: ${b}`);
    return fast;
  }

  override set logLevel(level: number) {
    super.logLevel = level;
    this.#twin.logLevel = level;
  }
  override start(now: Instant): Output {
    return this.#same('start', super.start(now), this.#twin.start(now)) as Output;
  }
  override receive(message: Message, from: Address, now: Instant): Output {
    const what = `${message.action} from ${message.hostname} at ${now.mono}`;
    return this.#same(what, super.receive(message, from, now), this.#twin.receive(message, from, now)) as Output;
  }
  override tick(now: Instant, lateMs = 0): Output {
    return this.#same(`tick at ${now.mono}`, super.tick(now, lateMs), this.#twin.tick(now, lateMs)) as Output;
  }
  override sendMessage(to: string, type: string, payload: JsonValue, now: Instant, ids: { rid?: string; re?: string } = {}): Output {
    const fast = super.sendMessage(to, type, payload, now, ids);
    return this.#same('sendMessage', fast, this.#twin.sendMessage(to, type, payload, now, ids)) as Output;
  }
  override setCheckpoint(data: JsonValue, now: Instant): Output | null {
    return this.#same('setCheckpoint', super.setCheckpoint(data, now), this.#twin.setCheckpoint(data, now));
  }
  override setEligible(eligible: boolean, now: Instant): Output {
    return this.#same('setEligible', super.setEligible(eligible, now), this.#twin.setEligible(eligible, now)) as Output;
  }
  override setData(data: JsonObject): void {
    super.setData(data);
    this.#twin.setData(data);
  }
  override setHealth(health: HealthWord | null): void {
    super.setHealth(health);
    this.#twin.setHealth(health);
  }
  override setLocked(hostname: string, locked: boolean, now: Instant): Output {
    const fast = super.setLocked(hostname, locked, now);
    return this.#same('setLocked', fast, this.#twin.setLocked(hostname, locked, now)) as Output;
  }
  override setTiming(timing: CoreTiming, now: Instant): Output {
    return this.#same('setTiming', super.setTiming(timing, now), this.#twin.setTiming(timing, now)) as Output;
  }
  override setPolicy(policy: Parameters<ElectionCore['setPolicy']>[0], now: Instant): Output {
    return this.#same('setPolicy', super.setPolicy(policy, now), this.#twin.setPolicy(policy, now)) as Output;
  }
  override stepDown(now: Instant): Output {
    return this.#same('stepDown', super.stepDown(now), this.#twin.stepDown(now)) as Output;
  }
  override drained(now: Instant): Output {
    return this.#same('drained', super.drained(now), this.#twin.drained(now)) as Output;
  }
  override promote(now: Instant): Output {
    return this.#same('promote', super.promote(now), this.#twin.promote(now)) as Output;
  }
  override shutdown(now: Instant): Output {
    return this.#same('shutdown', super.shutdown(now), this.#twin.shutdown(now)) as Output;
  }
  override takeChanged(): Set<string> | 'all' {
    const fast = super.takeChanged();
    const full = this.#twin.takeChanged();
    const a = fast === 'all' ? 'all' : [...fast].sort().join(',');
    const b = full === 'all' ? 'all' : [...full].sort().join(',');
    if (a !== b) throw new Error(`routine check: ${this.hostname}: changed rows ${a} differ from the full rules' ${b}`);
    return fast;
  }
}
