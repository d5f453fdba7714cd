/**
 * Limits and name patterns of the wire protocol: what a packet may hold. The codec
 * enforces them on receipt, the core and the config respect them when sending.
 */

/** The largest UDP payload over IPv4. */
export const MAX_UDP_PAYLOAD = 65507;
export const DEFAULT_MAX_PACKET_BYTES = 32768;
/** Nesting deeper than this in `data` is refused: user code walks it recursively. */
export const MAX_DATA_DEPTH = 32;
/** Default cap on the JSON size of `data`: none of its own (0), the packet limit bounds it, as before. */
export const DEFAULT_MAX_DATA_BYTES = 0;

/**
 * A hostname as pixl-server users write them: letters, digits, dot, dash, underscore,
 * starting with a letter or digit, at most 253 characters. Anything else is refused,
 * which keeps control characters and special property names out of the table.
 */
export const HOSTNAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;
/**
 * Names of Object.prototype members ("constructor", "toString", ...) are refused as
 * hostnames too: harmless in our prototype-free table, but apps copy `servers` into
 * plain objects, where such a key would shadow a method they call.
 */
const PROTOTYPE_NAMES = new Set(Object.getOwnPropertyNames(Object.prototype));

export function isValidHostname(hostname: unknown): hostname is string {
  return typeof hostname === 'string' && HOSTNAME_PATTERN.test(hostname) && !PROTOTYPE_NAMES.has(hostname);
}

export const INSTANCE_ID_PATTERN = /^[0-9a-f]{8,64}$/;
/** An echo entry: "<iid>:<seq>" of a hello being answered. */
export const ECHO_PATTERN = /^[0-9a-f]{8,64}:(?:0|[1-9][0-9]{0,15})$/;
/** A cluster id (namespace): short, printable, safe in logs. */
export const CLUSTER_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
/** Application message types: short names an app switches on. */
export const MESSAGE_TYPE_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;
export const REQUEST_ID_PATTERN = /^[0-9a-z]{1,32}$/;
/** Priorities are small numbers; a bound keeps comparisons meaningful. */
export const MAX_PRIORITY = 1_000_000;

/** Most addresses one gossip datagram may carry; a longer list is sent in several. */
export const MAX_GOSSIP_ADDRESSES = 256;

/** Most hellos one heartbeat answers (echo entries); an asker left out challenges again. */
export const MAX_ECHOES = 32;

/**
 * Terms (fencing tokens) are safe integers, so every server computes with them exactly;
 * the decoder refuses anything else.
 */
export const MAX_TERM = Number.MAX_SAFE_INTEGER;
/**
 * A term heard from another server is adopted as it is up to here. Beyond it (reachable
 * only by forged packets in an open cluster), our term rises by at most MAX_TERM_STEP per
 * packet, and towards the term of the master we follow by at most MAX_TERM_CATCHUP_PER_S
 * per second of following it: a forger would need 2^35 packets, or to be followed as master
 * for two years, to exhaust the space left, while a server that missed the forgery catches
 * up with the real master within moments (its term is the one it must exceed when it
 * claims next). The step is two rounds of term slots (protocol/terms.ts): a real claim,
 * at most one round above the highest term its claimant knew, is adopted in one packet.
 */
export const TERM_CEILING = 2 ** 52;
export const MAX_TERM_STEP = 2 ** 17;
export const MAX_TERM_CATCHUP_PER_S = 2 ** 26;
/** Uptimes are seconds; more than three centuries is not one. */
export const MAX_UPTIME_S = 1e10;
/** Largest process id on the wire: 32 bits covers every OS Node runs on. */
export const MAX_PID = 0xffff_ffff;

/**
 * The health word (HeartbeatMessage.health): counts in a row are capped here (a sender caps
 * what it sends, so it can go on sending after any value the decoder takes); rise and fall
 * are the check's own bounds; the failure reason is one line of printable text, short enough
 * that a failing server's heartbeats stay small.
 */
export const MAX_HEALTH_COUNT = 1_000_000;
export const MAX_HEALTH_RISE_FALL = 1000;
export const MAX_HEALTH_ERROR_CHARS = 120;
/** No C0 or C1 control, no bidirectional override: the reason is shown on terminals and pages. */
export const HEALTH_ERROR_PATTERN = /^[^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]+$/;
