/**
 * Authenticated datagrams for clusters with a `secret_key`.
 *
 * Layout (binary; it never starts with "{", so the original, which only reads datagrams
 * starting with "{", ignores it):
 *
 *   offset  size  field
 *        0     3  magic "PSM"
 *        3     1  envelope version (2)
 *        4     4  key id: which configured key signed it (derived from the key, not secret)
 *        8    32  HMAC-SHA256 over bytes 0..7 and the body, with that key
 *       40     n  body: the same JSON text as an open-format packet
 *
 * Keys are stretched once with scrypt, so a captured packet is no cheap oracle for guessing
 * a weak passphrase; the MAC check runs before the JSON parser, so a forged datagram costs
 * one HMAC and never reaches it.
 */
import { createHmac, createSecretKey, scryptSync, timingSafeEqual, type KeyObject } from 'node:crypto';

export const AUTH_MAGIC = Buffer.from('PSM', 'latin1');
export const AUTH_VERSION = 2;
export const KEY_ID_BYTES = 4;
export const MAC_BYTES = 32;
export const AUTH_HEADER_BYTES = AUTH_MAGIC.length + 1 + KEY_ID_BYTES + MAC_BYTES;
/** Most keys a keyring holds: one signing key plus a few still accepted during a rotation. */
export const MAX_KEYS = 16;

const SCRYPT_SALT = 'pixl-server-multi/secret_key/v2';
const DERIVED_BYTES = 32 + KEY_ID_BYTES;
const MAC_OFFSET = AUTH_MAGIC.length + 1 + KEY_ID_BYTES;

interface DerivedKey {
  /** Key id as a 32-bit unsigned integer (the wire bytes, big-endian). */
  id: number;
  /** A KeyObject: HMAC with it runs about a third faster than with a Buffer key. */
  macKey: KeyObject;
}

/** The configured keys, derived: the first signs, every one verifies. */
export interface Keyring {
  readonly signer: DerivedKey;
  /**
   * key id → the keys with that id and their place in `secret_key` (0 signs). Two keys share
   * an id with odds of 2^-32; both are then tried.
   */
  readonly verifiers: ReadonlyMap<number, ReadonlyArray<{ key: DerivedKey; index: number }>>;
  /** Number of keys. */
  readonly size: number;
}

export type VerifyResult =
  | { ok: true; body: Buffer; keyIndex: number }
  | { ok: false; reason: 'unauthenticated' | 'unknown-key' | 'bad-mac'; detail: string };

/**
 * Deriving a key takes ~50 ms of scrypt; a reload or a test that builds the same keyring
 * again reuses the result. Bounded, since secrets come from config.
 */
const derivedCache = new Map<string, DerivedKey>();
const DERIVED_CACHE_MAX = 64;

function derive(secret: string): DerivedKey {
  const cached = derivedCache.get(secret);
  if (cached) return cached;
  const bytes = scryptSync(secret, SCRYPT_SALT, DERIVED_BYTES);
  const key: DerivedKey = { macKey: createSecretKey(bytes.subarray(0, 32)), id: bytes.readUInt32BE(32) };
  if (derivedCache.size >= DERIVED_CACHE_MAX) derivedCache.delete(derivedCache.keys().next().value as string);
  derivedCache.set(secret, key);
  return key;
}

/** Build a keyring from `secret_key` (validated by config): a string, or a list whose first entry signs. */
export function createKeyring(secrets: string | readonly string[]): Keyring {
  const list = typeof secrets === 'string' ? [secrets] : [...secrets];
  if (list.length === 0 || list.length > MAX_KEYS || list.some((s) => typeof s !== 'string' || s.length === 0)) {
    throw new TypeError(`a keyring needs 1 to ${MAX_KEYS} non-empty secrets`);
  }
  const keys = list.map(derive);
  const verifiers = new Map<number, Array<{ key: DerivedKey; index: number }>>();
  keys.forEach((key, index) => {
    const same = verifiers.get(key.id) ?? [];
    if (!same.some((entry) => entry.key === key)) same.push({ key, index });
    verifiers.set(key.id, same);
  });
  return { signer: keys[0] as DerivedKey, verifiers, size: keys.length };
}

/** Wrap an open-format body in the authenticated envelope, signed with the first key. */
export function seal(body: Buffer, keyring: Keyring): Buffer {
  const out = Buffer.allocUnsafe(AUTH_HEADER_BYTES + body.length);
  AUTH_MAGIC.copy(out, 0);
  out[AUTH_MAGIC.length] = AUTH_VERSION;
  out.writeUInt32BE(keyring.signer.id, AUTH_MAGIC.length + 1);
  mac(keyring.signer.macKey, out.subarray(0, MAC_OFFSET), body).copy(out, MAC_OFFSET);
  body.copy(out, AUTH_HEADER_BYTES);
  return out;
}

/** Check the envelope and MAC; return the body only when some configured key signed it. */
export function open(datagram: Buffer, keyring: Keyring): VerifyResult {
  if (!looksSealed(datagram)) {
    return { ok: false, reason: 'unauthenticated', detail: datagram[0] === 0x7b ? 'open-format packet' : 'no authenticated envelope' };
  }
  const id = datagram.readUInt32BE(AUTH_MAGIC.length + 1);
  const candidates = keyring.verifiers.get(id);
  if (!candidates) return { ok: false, reason: 'unknown-key', detail: `key id ${id.toString(16).padStart(8, '0')}` };
  const header = datagram.subarray(0, MAC_OFFSET);
  const given = datagram.subarray(MAC_OFFSET, AUTH_HEADER_BYTES);
  const body = datagram.subarray(AUTH_HEADER_BYTES);
  for (const { key, index } of candidates) {
    if (timingSafeEqual(mac(key.macKey, header, body), given)) return { ok: true, body, keyIndex: index };
  }
  return { ok: false, reason: 'bad-mac', detail: `MAC mismatch for key id ${id.toString(16).padStart(8, '0')}` };
}

/** Magic, version and room for a MAC: what an authenticated datagram must start with. */
export function looksSealed(datagram: Buffer): boolean {
  return (
    datagram.length >= AUTH_HEADER_BYTES &&
    datagram[0] === AUTH_MAGIC[0] &&
    datagram[1] === AUTH_MAGIC[1] &&
    datagram[2] === AUTH_MAGIC[2] &&
    datagram[3] === AUTH_VERSION
  );
}

function mac(key: KeyObject, header: Buffer, body: Buffer): Buffer {
  return createHmac('sha256', key).update(header).update(body).digest();
}
