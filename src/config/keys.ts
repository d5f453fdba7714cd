/**
 * Keys nobody reads: unknown keys of the section (each a misspelling until proven otherwise)
 * and keys at the top level of the whole config that were meant for the section.
 */
import { editDistance, nearestName, normalizeName } from '../util/nearest';
import { ConfigError, isObject } from './primitives';
import { CONFIG_KEYS, COORDINATOR_CONFIG_KEYS, DEFAULT_CONFIG } from './schema';

/** A key nobody reads: where it is, and the known key it was probably meant to be. */
export interface UnknownKey {
  /** As the operator would find it: `heartbeat_frequency`, `coordinator.host`, or a top-level key. */
  key: string;
  /** The nearest known key, or null when none is close. */
  suggestion: string | null;
  /** One line naming both, for a log or an error. */
  message: string;
}

/** Keys listed per section: a config of thousands of stray keys still logs a bounded amount. */
const MAX_UNKNOWN_REPORTED = 20;

function unknownIn(raw: Record<string, unknown>, known: readonly string[], prefix: string, where: string, out: UnknownKey[]): void {
  for (const key of Object.keys(raw)) {
    if (out.length >= MAX_UNKNOWN_REPORTED) return;
    if (known.includes(key)) continue;
    const suggestion = nearestName(key, known);
    const shown = JSON.stringify(`${prefix}${key}`.slice(0, 80)).slice(1, -1);
    out.push({
      key: `${prefix}${key}`,
      suggestion: suggestion === null ? null : `${prefix}${suggestion}`,
      message: `MultiServer config: unknown key \`${shown}\`${suggestion === null ? '' : ` (did you mean \`${prefix}${suggestion}\`?)`} in ${where}; it is ignored`,
    });
  }
}

/**
 * Keys of the section (and of `coordinator`) this version does not read: each a misspelling
 * until proven otherwise. `strict_config` makes validateConfig fail on the first; without it
 * the component logs each at level 1 and runs on.
 */
export function unknownKeys(section: unknown): UnknownKey[] {
  const out: UnknownKey[] = [];
  if (!isObject(section)) return out;
  unknownIn(section, CONFIG_KEYS, '', 'the MultiServer section', out);
  if (isObject(section.coordinator))
    unknownIn(section.coordinator, COORDINATOR_CONFIG_KEYS, 'coordinator.', 'the MultiServer section', out);
  return out;
}

/** The original's keys: an app that puts them at the top level of its config meant them for the section. */
const TOP_LEVEL_MISPLACED: readonly string[] = ['comm_port', 'heartbeat_freq', 'check_beats', 'broadcast_ip', 'exit_on_conflict'];
const SECTION_NAME = 'MultiServer';

/**
 * Keys at the top level of the whole pixl-server config that were meant for this component:
 * the section's name misspelt or in another case (`multiserver`, `multi_server`,
 * `MultiServers`), which leaves the real section unset and every key at its default, or one of
 * the original's keys outside the section. Other top-level keys belong to pixl-server, other
 * components and the app, and are none of our business.
 */
export function misplacedKeys(config: unknown): UnknownKey[] {
  const out: UnknownKey[] = [];
  if (!isObject(config)) return out;
  const target = normalizeName(SECTION_NAME);
  for (const key of Object.keys(config)) {
    if (out.length >= MAX_UNKNOWN_REPORTED) break;
    if (key === SECTION_NAME) continue;
    const shown = JSON.stringify(key.slice(0, 80)).slice(1, -1);
    const norm = normalizeName(key.slice(0, 64));
    // Lengths more than two apart are more than two edits apart: most keys cost no comparison.
    if ((Math.abs(norm.length - target.length) <= 2 && editDistance(norm, target) <= 2) || norm === 'pixlservermulti') {
      const unset =
        config[SECTION_NAME] === undefined
          ? ', so MultiServer runs on its defaults (heartbeat_freq 20, the computed broadcast address)'
          : '';
      out.push({
        key,
        suggestion: SECTION_NAME,
        message: `MultiServer config: the top-level key \`${shown}\` is not read (did you mean \`${SECTION_NAME}\`? the name is case-sensitive)${unset}`,
      });
    } else if (TOP_LEVEL_MISPLACED.includes(key)) {
      out.push({
        key,
        suggestion: `${SECTION_NAME}.${key}`,
        message: `MultiServer config: \`${shown}\` is at the top level of the config, where MultiServer does not read it (did you mean \`${SECTION_NAME}.${key}\`, inside the section?)`,
      });
    }
  }
  return out;
}

/** strict_config: the first unknown key, as the error that stops startup. */
export function refuseUnknown(raw: Record<string, unknown>): void {
  const strict = raw.strict_config ?? DEFAULT_CONFIG.strict_config;
  if (typeof strict !== 'boolean') throw new ConfigError('strict_config', 'a boolean', strict);
  if (!strict) return;
  const [first] = unknownKeys(raw);
  if (first)
    throw new ConfigError(first.key, 'a known key', undefined, `${first.message.replace(/; it is ignored$/, '')} (strict_config is on)`);
}
