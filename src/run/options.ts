/**
 * `pixl-server-multi run` options: the cluster's config (a `--config` JSON file of the
 * MultiServer section's keys plus `hostname`, overridden by flags) validated by the very
 * `validateConfig` the component uses, and the wrapper's own options. Every error names the
 * flag or the file key and the value; the CLI prints it and exits 2.
 */
import { readFileSync, statSync } from 'node:fs';
import * as os from 'node:os';
import { ConfigError, DEFAULT_CONFIG, validateConfig, validateHostname, type Settings } from '../config';

export class UsageError extends Error {
  override name = 'UsageError';
}

export type ExitPolicy = 'restart' | 'step-down' | 'exit';
export type PidNamespaceMode = 'auto' | 'on' | 'off';

/** The flags as commander hands them over: strings, before any check. */
export interface RunFlags {
  config?: string;
  hostname?: string;
  ip?: string;
  port?: string;
  heartbeatFreq?: string;
  checkBeats?: string;
  broadcastIp?: string;
  bindIp?: string;
  clusterId?: string;
  priority?: string;
  quorum?: string;
  secretFile?: string;
  etcd?: string[];
  grace?: string;
  lossGrace?: string;
  onExit?: string;
  restartDelay?: string;
  restartDelayMax?: string;
  onMaster?: string;
  onSlave?: string;
  onFault?: string;
  hookTimeout?: string;
  pidNamespace?: string;
  logFile?: string;
  debugLevel?: string;
  healthCmd?: string;
  healthInterval?: string;
  healthRise?: string;
  healthFall?: string;
  healthTimeout?: string;
}

export interface RunOptions {
  hostname: string;
  /** The address announced in heartbeats (pixl-server's `ip`); unset: pixl-server finds it. */
  ip?: string;
  /** The MultiServer section handed to the component. */
  section: Record<string, unknown>;
  settings: Settings;
  command: string[];
  graceMs: number;
  /** SIGKILL delay after an involuntary loss of the role; unset: the shorter of the grace and the timing's own cap. */
  lossGraceMs?: number;
  onExit: ExitPolicy;
  restartDelayMs: number;
  restartDelayMaxMs: number;
  hooks: { master?: string; slave?: string; fault?: string };
  hookTimeoutMs: number;
  pidNamespace: PidNamespaceMode;
  logFile?: string;
  debugLevel: number;
  /** `--health-cmd`: a shell command, exit 0 passes; the counts and times of the check. */
  health?: { command: string; interval: number; rise: number; fall: number; timeout: number };
}

/** Section keys a flag sets, and the flag, for error messages. */
const FLAG_KEYS: ReadonlyArray<[keyof RunFlags, string, string]> = [
  ['port', '--port', 'comm_port'],
  ['heartbeatFreq', '--heartbeat-freq', 'heartbeat_freq'],
  ['checkBeats', '--check-beats', 'check_beats'],
  ['broadcastIp', '--broadcast-ip', 'broadcast_ip'],
  ['bindIp', '--bind-ip', 'bind_ip'],
  ['clusterId', '--cluster-id', 'cluster_id'],
  ['priority', '--priority', 'priority'],
  ['quorum', '--quorum', 'quorum'],
];

/** Keys a config file may hold: the section's (with defaults or optional) and `hostname`. */
const FILE_KEYS = new Set<string>([
  ...Object.keys(DEFAULT_CONFIG),
  'broadcast_ip',
  'bind_ip',
  'multicast_group',
  'multicast_interface',
  'peers',
  'secret_key',
  'coordinator',
  'hostname',
  'ip',
]);
const HTTP_KEYS = ['http_status_uri', 'http_health_uri', 'http_master_uri', 'http_metrics_uri', 'http_ui_uri'];

/** A flag's number, or the text as given, so the validator reports what was typed. */
function numeric(text: string): number | string {
  return /^-?(\d+\.?\d*|\.\d+)$/.test(text.trim()) ? Number(text) : text;
}

function seconds(flag: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  const value = numeric(text);
  if (typeof value !== 'number' || value < min || value > max)
    throw new UsageError(`${flag} must be a number of seconds from ${min} to ${max}, got "${text}"`);
  return value;
}

function oneOf<T extends string>(flag: string, text: string | undefined, allowed: readonly T[], fallback: T): T {
  if (text === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(text))
    throw new UsageError(`${flag} must be one of ${allowed.map((a) => `"${a}"`).join(', ')}, got "${text}"`);
  return text as T;
}

function readConfigFile(file: string, read: (file: string) => string): Record<string, unknown> {
  let text: string;
  try {
    text = read(file);
  } catch (err) {
    throw new UsageError(`--config ${file}: cannot read it: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--config ${file}: not JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(
      `--config ${file}: expected a JSON object of MultiServer keys (plus "hostname"), got ${Array.isArray(parsed) ? 'an array' : JSON.stringify(parsed)}`,
    );
  }
  const object = parsed as Record<string, unknown>;
  for (const key of Object.keys(object)) {
    if (!FILE_KEYS.has(key))
      throw new UsageError(`--config ${file}: unknown key "${key}" (keys: the MultiServer section's, plus "hostname" and "ip")`);
  }
  return object;
}

/**
 * Secret keys from a file, one a line (the first signs, all verify: a rotation); blank lines
 * and lines starting with # are skipped. The keys themselves are never echoed.
 */
export function readSecretFile(
  file: string,
  read: (file: string) => string = (f) => readFileSync(f, 'utf8'),
): { keys: string[]; warning: string | null } {
  let text: string;
  try {
    text = read(file);
  } catch (err) {
    throw new UsageError(`--secret-file ${file}: cannot read it: ${(err as Error).message}`);
  }
  const keys = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  if (keys.length === 0) throw new UsageError(`--secret-file ${file}: no key in it (one key a line; # starts a comment)`);
  let warning: string | null = null;
  try {
    if ((statSync(file).mode & 0o077) !== 0) warning = `--secret-file ${file} is readable by other users than its owner (chmod 600 it)`;
  } catch {
    // read succeeded, so the file exists; a stat failure leaves no warning
  }
  return { keys, warning };
}

/** The `--health-*` flags: unset without `--health-cmd`; the counts and times are refused without it. */
function healthOptions(flags: RunFlags): RunOptions['health'] | undefined {
  const command = flags.healthCmd;
  if (command === undefined) {
    const stray = (['healthInterval', 'healthRise', 'healthFall', 'healthTimeout'] as const).find((key) => flags[key] !== undefined);
    if (stray) throw new UsageError(`--${stray.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} needs --health-cmd (the check to run)`);
    return undefined;
  }
  if (command.trim() === '') throw new UsageError('--health-cmd must be a shell command, got an empty string');
  const count = (flag: string, text: string | undefined, fallback: number): number => {
    if (text === undefined) return fallback;
    const value = numeric(text);
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 1000)
      throw new UsageError(`${flag} must be an integer from 1 to 1000, got "${text}"`);
    return value;
  };
  const interval = seconds('--health-interval', flags.healthInterval, 2, 0.01, 86400);
  return {
    command,
    interval,
    rise: count('--health-rise', flags.healthRise, 2),
    fall: count('--health-fall', flags.healthFall, 3),
    timeout: seconds('--health-timeout', flags.healthTimeout, interval, 0.01, 86400),
  };
}

/** Merge, validate, and return everything `run` needs; throws UsageError. */
export function resolveRunOptions(
  flags: RunFlags,
  command: string[],
  read: (file: string) => string = (f) => readFileSync(f, 'utf8'),
): RunOptions & { warnings: string[] } {
  if (command.length === 0) throw new UsageError('missing the command to run: pixl-server-multi run [options] -- command [args...]');
  const warnings: string[] = [];
  const file = flags.config ? readConfigFile(flags.config, read) : {};
  const from = new Map<string, string>();
  const section: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(file)) {
    if (key === 'hostname' || key === 'ip') continue;
    section[key] = value;
    from.set(key, `--config ${flags.config as string}`);
  }
  for (const [flag, name, key] of FLAG_KEYS) {
    const text = flags[flag] as string | undefined;
    if (text === undefined) continue;
    section[key] = key === 'broadcast_ip' || key === 'bind_ip' || key === 'cluster_id' ? text : numeric(text);
    from.set(key, `${name} ${text}`);
  }
  if (flags.secretFile !== undefined) {
    const secret = readSecretFile(flags.secretFile, read);
    section.secret_key = secret.keys;
    from.set('secret_key', `--secret-file ${flags.secretFile}`);
    if (secret.warning) warnings.push(secret.warning);
  }
  if (flags.etcd && flags.etcd.length > 0) {
    const base =
      section.coordinator && typeof section.coordinator === 'object' && !Array.isArray(section.coordinator)
        ? (section.coordinator as Record<string, unknown>)
        : {};
    section.coordinator = { ...base, type: 'etcd', hosts: flags.etcd };
    from.set('coordinator', `--etcd ${flags.etcd.join(' --etcd ')}`);
  }
  for (const key of HTTP_KEYS) {
    if (section[key] !== undefined && section[key] !== '') {
      throw new UsageError(`${from.get(key) ?? '--config'}: \`${key}\` is not available with \`run\` (it has no web server): remove it`);
    }
  }
  let settings: Settings;
  try {
    settings = validateConfig(section);
  } catch (err) {
    if (err instanceof ConfigError) {
      const top = err.key.split(/[.[]/)[0] as string;
      throw new UsageError(`${from.get(top) ?? 'defaults'}: ${err.message}`);
    }
    throw err;
  }

  let hostname: string;
  const givenHostname = flags.hostname ?? file.hostname;
  try {
    hostname = validateHostname(givenHostname === undefined ? os.hostname().toLowerCase() : givenHostname);
  } catch (err) {
    const where =
      flags.hostname !== undefined
        ? `--hostname ${flags.hostname}`
        : file.hostname !== undefined
          ? `--config ${flags.config as string}`
          : 'the OS hostname (set --hostname)';
    throw new UsageError(`${where}: ${(err as Error).message}`);
  }
  const ip = flags.ip ?? file.ip;
  if (ip !== undefined && (typeof ip !== 'string' || !/^[\d.]+$|^[\da-fA-F:]+$/.test(ip))) {
    throw new UsageError(
      `${flags.ip !== undefined ? '--ip' : `--config ${flags.config as string}`}: expected an IP address to announce, got ${JSON.stringify(ip)}`,
    );
  }

  const restartDelay = seconds('--restart-delay', flags.restartDelay, 1, 0, 86400);
  const restartDelayMax = seconds('--restart-delay-max', flags.restartDelayMax, Math.max(60, restartDelay), restartDelay, 86400);
  const debugLevel = flags.debugLevel === undefined ? 4 : numeric(flags.debugLevel);
  if (typeof debugLevel !== 'number' || !Number.isInteger(debugLevel) || debugLevel < 1 || debugLevel > 10)
    throw new UsageError(`--debug-level must be an integer from 1 to 10, got "${flags.debugLevel}"`);
  for (const [flag, value] of [
    ['--on-master', flags.onMaster],
    ['--on-slave', flags.onSlave],
    ['--on-fault', flags.onFault],
  ] as const) {
    if (value !== undefined && value.trim() === '') throw new UsageError(`${flag} must be a shell command, got an empty string`);
  }
  const hooks: RunOptions['hooks'] = {};
  if (flags.onMaster !== undefined) hooks.master = flags.onMaster;
  if (flags.onSlave !== undefined) hooks.slave = flags.onSlave;
  if (flags.onFault !== undefined) hooks.fault = flags.onFault;
  const options: RunOptions & { warnings: string[] } = {
    hostname,
    section,
    settings,
    command,
    graceMs: seconds('--grace', flags.grace, 10, 0, 86400) * 1000,
    onExit: oneOf('--on-exit', flags.onExit, ['restart', 'step-down', 'exit'] as const, 'restart'),
    restartDelayMs: restartDelay * 1000,
    restartDelayMaxMs: restartDelayMax * 1000,
    hooks,
    hookTimeoutMs: seconds('--hook-timeout', flags.hookTimeout, 30, 0.1, 86400) * 1000,
    pidNamespace: oneOf('--pid-namespace', flags.pidNamespace, ['auto', 'on', 'off'] as const, 'auto'),
    debugLevel,
    warnings,
  };
  if (typeof ip === 'string') options.ip = ip;
  const health = healthOptions(flags);
  if (health) options.health = health;
  // A handover waits (drain_timeout) for the command to be gone: at least its grace, the
  // guardian's confirmation and a margin, or the next master's run could start beside it.
  const drainFloor = options.graceMs / 1000 + 5;
  if (section.drain_timeout === undefined) section.drain_timeout = drainFloor;
  else if (settings.drain_timeout < drainFloor) {
    warnings.push(
      `drain_timeout ${settings.drain_timeout} s (${from.get('drain_timeout') ?? '--config'}) raised to ${drainFloor} s: a handover waits for the command to stop, up to --grace (${options.graceMs / 1000} s) and 5 s more`,
    );
    section.drain_timeout = drainFloor;
  }
  settings.drain_timeout = section.drain_timeout as number;
  if (flags.lossGrace !== undefined) options.lossGraceMs = seconds('--loss-grace', flags.lossGrace, 0, 0, 86400) * 1000;
  if (flags.logFile !== undefined) options.logFile = flags.logFile;
  return options;
}
