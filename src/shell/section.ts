/**
 * The component's config section as pixl-server hands it over: validated (a section that is
 * not an object is an error, not all defaults), and the keys nobody reads, said at level 1.
 */
import { ConfigError, misplacedKeys, unknownKeys, validateConfig, type Settings } from '../config';

interface ConfigSource {
  get(key?: string): unknown;
}

/**
 * The section as configured. pixl-server turns a `MultiServer` key set to null (or any
 * non-object) into `{}`, that is all defaults: that must be an error, not a silent
 * 20-second heartbeat.
 */
export function validateSection(serverConfig: ConfigSource, section: ConfigSource): Settings {
  const raw = serverConfig.get('MultiServer');
  if (raw !== undefined && (raw === null || typeof raw !== 'object' || Array.isArray(raw)))
    throw new ConfigError('MultiServer', 'an object', raw);
  return validateConfig(section.get());
}

/**
 * Keys nobody reads, for level 1 (the default level: a misspelt `heartbeat_freq` changes
 * failover from seconds to a minute, and must not pass unseen). With `strict_config`
 * validation has already refused them. The top level of the whole config is looked at too.
 */
export function unknownKeyLines(serverConfig: ConfigSource, section: ConfigSource): string[] {
  return [...misplacedKeys(serverConfig.get()), ...unknownKeys(section.get())].map((found) => found.message);
}
