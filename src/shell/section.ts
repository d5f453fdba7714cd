/**
 * The component's config section as pixl-server hands it over: validated (a section that is
 * not an object is an error, not all defaults), and the keys nobody reads, said at level 1.
 */
import { ConfigError, misplacedKeys, unknownKeys, validateConfig, type Settings } from '../config';

export interface ConfigSource {
  get(key?: string): unknown;
}

/** The component as its section is read: the server's whole config, the section, the logs. */
export interface SectionHost {
  readonly server: { readonly config: ConfigSource };
  readonly config: ConfigSource;
  logDebug(level: number, message: string): void;
  logError(code: string, message: string): void;
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

/** The component's section, read when asked (at init, at startup, on every reload). */
export class Section {
  readonly #host: SectionHost;

  constructor(host: SectionHost) {
    this.#host = host;
  }

  /** The settings, or a ConfigError naming the key and the value. */
  validate(): Settings {
    return validateSection(this.#host.server.config, this.#host.config);
  }

  /** At startup and on a reload, not at init: init runs again in the daemon pixl-server forks, and would log twice. */
  reportUnknownKeys(): void {
    for (const line of unknownKeyLines(this.#host.server.config, this.#host.config)) this.#host.logDebug(1, line);
  }

  /** A reload's settings; null when the new section is refused (logged: the running settings stay). */
  reloaded(): Settings | null {
    let settings: Settings;
    try {
      settings = this.validate();
    } catch (err) {
      this.#host.logError('config', `Config reload ignored: ${(err as Error).message}`);
      return null;
    }
    this.reportUnknownKeys();
    return settings;
  }
}
