/**
 * What the component checks of the values an application hands it (data, payloads,
 * checkpoints), so a value JSON cannot carry fails at the caller, not later in a timer.
 */
import type { JsonObject } from '../protocol/messages';
import { describeThrown } from '../util/describe';

/**
 * The JSON text of `value`, or a TypeError naming `what` when JSON cannot carry it (a
 * function, a symbol, undefined, a BigInt, a cycle, a throwing toJSON): it is thrown at
 * the caller, not later in a timer far from the cause.
 */
export function jsonProblem(value: unknown, what: string): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new TypeError(`${what} must be JSON-encodable: ${describeThrown(err)}`);
  }
  if (typeof text !== 'string') throw new TypeError(`${what} must be a JSON value, got ${describeValue(value)}`);
  return text;
}

/** A value as an error message names it. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n (bigint)`;
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'symbol') return 'a symbol';
  if (value === null || typeof value !== 'object') return `${String(value)} (${typeof value})`;
  return Array.isArray(value) ? 'an array' : 'an object';
}

/** What `multi.data` may be set to: a plain object that JSON can carry (null and undefined: `{}`). */
export function checkedData(value: unknown): JsonObject {
  const data = value === undefined || value === null ? {} : value;
  if (typeof data !== 'object' || Array.isArray(data))
    throw new TypeError(`MultiServer data must be a plain object, got ${describeValue(data)}`);
  jsonProblem(data, 'MultiServer data');
  return data as JsonObject;
}
