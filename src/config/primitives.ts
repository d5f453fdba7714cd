/**
 * The leaf every validator of the section shares: the error that names a key and its value,
 * and the checks of one plain key (integer, seconds, boolean, URI) against its default.
 */
import { DEFAULT_CONFIG, type MultiServerConfig } from './schema';

export class ConfigError extends Error {
  readonly key: string;
  readonly value: unknown;
  /** `message`: said instead of "expected `key` to be …" (an unknown key has no expected value). */
  constructor(key: string, expected: string, value: unknown, message?: string) {
    super(message ?? `MultiServer config: expected \`${key}\` to be ${expected}, got ${describe(value)}`);
    this.name = 'ConfigError';
    this.key = key;
    this.value = value;
  }
}

function describe(value: unknown): string {
  if (value instanceof Redacted) return value.text;
  let text: string;
  try {
    text = typeof value === 'string' ? JSON.stringify(value) : String(JSON.stringify(value) ?? value);
  } catch {
    text = String(value);
  }
  if (text.length > 60) text = text.slice(0, 57) + '...';
  return `\`${text}\` (${value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value})`;
}

export function pick(raw: Record<string, unknown>, key: keyof MultiServerConfig): unknown {
  const value = raw[key];
  return value === undefined ? (DEFAULT_CONFIG as Record<string, unknown>)[key] : value;
}

export function integer(raw: Record<string, unknown>, key: keyof MultiServerConfig, min: number, max: number): number {
  const value = pick(raw, key);
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(key, `an integer from ${min} to ${max}`, value);
  }
  return value;
}

export function uri(raw: Record<string, unknown>, key: keyof MultiServerConfig): string {
  const value = pick(raw, key);
  // The query string is not part of the match, and a fragment never reaches the server.
  if (typeof value !== 'string' || (value !== '' && !/^\/[\x21-\x7e]*$/.test(value)) || /[?#]/.test(value)) {
    throw new ConfigError(key, 'a URI path starting with "/", without "?" or "#" (or "" for off)', value);
  }
  return value;
}

/** A number of seconds from `min` to a day (setTimeout's limit is 24.8 days; more is a unit mistake). */
export function seconds(raw: Record<string, unknown>, key: keyof MultiServerConfig, min: number): number {
  const value = pick(raw, key);
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > 86400) {
    throw new ConfigError(key, `a number of seconds from ${min} to 86400`, value);
  }
  return value;
}

export function bool(raw: Record<string, unknown>, key: keyof MultiServerConfig): boolean {
  const value = pick(raw, key);
  if (typeof value !== 'boolean') throw new ConfigError(key, 'a boolean', value);
  return value;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Stands in for a secret in error messages: its shape, never its content. */
export class Redacted {
  readonly text: string;
  constructor(value: unknown) {
    const kind = (v: unknown): string =>
      v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'string' ? `a string of ${v.length} characters` : `a ${typeof v}`;
    const entries = Array.isArray(value) ? value.slice(0, 4).map(kind).join(', ') + (value.length > 4 ? ', …' : '') : '';
    this.text = Array.isArray(value)
      ? `an array of ${value.length} entries${entries ? ` (${entries})` : ''} [value not shown]`
      : `${kind(value)} [value not shown]`;
  }
}
