/**
 * The reload plan: which reloaded settings take effect now and which wait for a restart.
 * Keys that shape the socket (comm_port and the transport's), the cluster (cluster_id), the
 * mode (coordinator) and the wire format (turning secret_key on or off) keep their running
 * value, each with a line saying a restart applies it. Everything else applies at once:
 * timings, policy, the transport's own reloadable settings, and new keys of a secret_key
 * already in use, so a key is rotated across a running cluster without a restart.
 */
import type { Settings } from '../config';
import { createKeyring, type Keyring } from '../wire/auth';

/**
 * Keys that shape the socket: a reload cannot change them (the shell keeps the old value
 * and says a restart is needed), as with comm_port.
 */
export const RESTART_KEYS = ['transport', 'bind_ip', 'multicast_group', 'multicast_ttl', 'multicast_interface'] as const;

export interface ReloadPlan {
  /** Lines for the log (level 1, code `config`): what waits for a restart. */
  notices: string[];
  /** The keyring must be rebuilt: the keys changed (authentication stays on). */
  keysChanged: boolean;
}

/** Put back into `next` (in place) what only a restart may change, and say so. */
export function planReload(previous: Settings, next: Settings): ReloadPlan {
  const notices: string[] = [];
  if (previous.comm_port !== next.comm_port) {
    notices.push(`comm_port changed to ${next.comm_port}; this takes effect after a restart`);
    next.comm_port = previous.comm_port;
  }
  for (const key of RESTART_KEYS) {
    if (previous[key] !== next[key]) {
      notices.push(`${key} changed to ${JSON.stringify(next[key])}; this takes effect after a restart`);
      Object.assign(next, { [key]: previous[key] });
    }
  }
  let keysChanged = false;
  const before = previous.secret_key;
  if (before.length > 0 !== next.secret_key.length > 0) {
    // On or off changes the wire format and the core's admission rules.
    notices.push(`secret_key was ${before.length ? 'removed' : 'added'}; this takes effect after a restart`);
    next.secret_key = before;
  } else {
    keysChanged = before.length !== next.secret_key.length || before.some((key, i) => key !== next.secret_key[i]);
  }
  if (previous.cluster_id !== next.cluster_id) {
    notices.push(`cluster_id changed to "${next.cluster_id}"; this takes effect after a restart`);
    next.cluster_id = previous.cluster_id;
  }
  if (JSON.stringify(previous.coordinator) !== JSON.stringify(next.coordinator)) {
    notices.push('coordinator changed; this takes effect after a restart');
    next.coordinator = previous.coordinator;
  }
  return { notices, keysChanged };
}

/** Shorter keys are accepted (a passphrase is stretched with scrypt) but get a warning. */
const RECOMMENDED_KEY_CHARS = 16;

/** The keyring for `secret_key` (null without one); short keys get a warning, never an echo. */
export function buildKeyring(secrets: string[], warn: (message: string) => void): Keyring | null {
  if (secrets.length === 0) return null;
  secrets.forEach((secret, index) => {
    if (secret.length < RECOMMENDED_KEY_CHARS) {
      warn(
        `secret_key entry ${index} has only ${secret.length} characters; use ${RECOMMENDED_KEY_CHARS} or more random ones (e.g. \`openssl rand -base64 32\`)`,
      );
    }
  });
  return createKeyring(secrets);
}
