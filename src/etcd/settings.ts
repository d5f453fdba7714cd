/**
 * The `coordinator` config section. The store contract itself is src/protocol/store.ts.
 */

/** The `coordinator` config section, validated (src/config/coordinator.ts). */
export interface EtcdSettings {
  type: 'etcd';
  hosts: string[];
  prefix: string;
  /** Whole seconds; 0: one tock, rounded up, and at least the minimum for `election_timeout_ms` (timing.ts). */
  ttl: number;
  /** The etcd cluster's `--election-timeout`, ms: what the TTL must outlast (timing.ts). */
  election_timeout_ms: number;
  username?: string;
  password?: string;
  /** A file whose first line is the password (kept out of the config pixl-server logs). */
  password_file?: string;
  /** PEM file paths, for https hosts. */
  ca_file?: string;
  cert_file?: string;
  key_file?: string;
  /** Most keys one read of the prefix returns (bounds memory against a flooded prefix). */
  max_keys: number;
}
