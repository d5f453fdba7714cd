/**
 * The `servers` table applications read: copies of the core's rows, refreshed when read.
 *
 * Nothing the application does to it can reach the core or break the component: it may
 * freeze the table or a row, define getters on it, delete rows; the next refresh builds a
 * new table when writing to the old one fails. The one write that means something is
 * `servers[host].locked = …`, the original's way to keep a server from being removed: the
 * row's `locked` is an accessor that turns it into an explicit input of the core.
 */
import type { ServerRecord } from '../elector/types';

export interface TableSource {
  record(hostname: string): ServerRecord | undefined;
  /** Hostnames changed since the last call, or 'all'. */
  takeChanged(): Set<string> | 'all';
  table(): Record<string, ServerRecord>;
}

export class ServerView {
  readonly #source: TableSource;
  readonly #setLocked: (hostname: string, locked: boolean) => void;
  #table: Record<string, ServerRecord> = Object.create(null) as Record<string, ServerRecord>;

  constructor(source: TableSource, setLocked: (hostname: string, locked: boolean) => void) {
    this.#source = source;
    this.#setLocked = setLocked;
  }

  /** hostname → record (a prototype-free object; `for…in` and Object.keys work). */
  get table(): Record<string, ServerRecord> {
    const changed = this.#source.takeChanged();
    if (changed === 'all') {
      this.#rebuild();
      return this.#table;
    }
    for (const hostname of changed) {
      const record = this.#source.record(hostname);
      if (!this.#write(hostname, record)) {
        this.#rebuild();
        break;
      }
    }
    return this.#table;
  }

  /** A row for an event (a copy of the record at that moment; its `locked` still reaches the core). */
  detached(record: ServerRecord): ServerRecord {
    return this.#row(record);
  }

  #write(hostname: string, record: ServerRecord | undefined): boolean {
    try {
      if (record) this.#table[hostname] = this.#row(record);
      else delete this.#table[hostname];
      // A frozen or sealed table fails silently outside strict mode and throws inside it;
      // either way, check.
      return record ? this.#table[hostname]?.hostname === hostname : !(hostname in this.#table);
    } catch {
      return false;
    }
  }

  /** A new table object: the application's old one may refuse writes. */
  #rebuild(): void {
    const table = Object.create(null) as Record<string, ServerRecord>;
    for (const [hostname, record] of Object.entries(this.#source.table())) table[hostname] = this.#row(record);
    this.#table = table;
  }

  #row(record: ServerRecord): ServerRecord {
    // The health object is the election's own (our own goes out in our heartbeats): a copy.
    const row = { ...record, health: record.health ? { ...record.health } : null };
    let locked = record.locked;
    const setLocked = this.#setLocked;
    Object.defineProperty(row, 'locked', {
      enumerable: true,
      configurable: true,
      get: () => locked,
      set: (value: unknown) => {
        locked = value === true;
        setLocked(record.hostname, locked);
      },
    });
    return row;
  }
}
