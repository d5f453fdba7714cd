/**
 * Opt-in HTTP routes for apps that run pixl-server-web: the cluster status as JSON, a health
 * check (200 while a master is known), a master check (200 only on the master), Prometheus
 * metrics and a live status page.
 *
 * pixl-server-web answers a request with the first URI handler whose regexp matches, in the
 * order they were added. pixl-server-api adds an unanchored `/api/(\w+)` at its startup,
 * before ours (added once every component has started), so a route under `/api/` would never
 * be reached. Each route is therefore an anchored exact-path regexp moved to the front of
 * the list: it takes only its own URI, and nothing added before it can shadow it. What could
 * still answer first (a configured redirect, a method handler for GET) is logged at startup.
 */
import { RateLimiter } from '../util/rate-limit';
import { createMetricsRegistry, type MetricsRegistry, type MetricsSource } from './metrics';
import { DepartureLog, statusBody, type StatusSource } from './status';
import { failoverClock, type FailoverClock } from './failover';
import { statusPage } from './ui';
import type { ServerRecord } from '../elector/types';
import type { Settings } from '../config/schema';

/** The part of pixl-server-web's WebServer component we use. */
export interface WebServerLike {
  addURIHandler(
    uri: RegExp,
    name: string,
    acl: boolean,
    handler: (args: RequestArgs, callback: (...response: unknown[]) => void) => void,
  ): void;
  removeURIHandler(name: string): void;
  /** pixl-server-web's handler list, in match order (read to put ours first and to find shadows). */
  uriHandlers?: unknown;
  methodHandlers?: unknown;
  redirects?: unknown;
  /** Its config section (pixl-server's sub-config). */
  config?: { get(key: string): unknown };
  /** Where a request no handler takes goes (a file under `http_htdocs_dir`), and how any answer is sent. */
  sendStaticResponse?: (args: StaticArgs) => void;
  sendHTTPResponse?: (args: StaticArgs, status: string, headers: Record<string, string>, body: string) => void;
}

/** The request args pixl-server-web hands its static file server. */
interface StaticArgs {
  /** An internal redirect's target file (set by pixl-server-web itself): not a request's path. */
  internalFile?: unknown;
}

/** True when pixl-server-web has a directory to serve files from. */
function hasHtdocs(web: WebServerLike): boolean {
  const dir = web.config?.get('http_htdocs_dir');
  return typeof dir === 'string' && dir !== '';
}

/** The parts of pixl-server-web's request args we read. */
export interface RequestArgs {
  query?: Record<string, unknown>;
  request?: { method?: string; url?: string };
}

/** The route keys of the config, as validated. */
export type HttpSettings = Pick<
  Settings,
  'http_status_uri' | 'http_health_uri' | 'http_master_uri' | 'http_metrics_uri' | 'http_ui_uri' | 'http_acl'
>;

export interface HttpLog {
  debug(level: number, message: string): void;
  error(code: string, message: string): void;
}

/** The component, as the routes see it. */
export interface HttpSource extends StatusSource, MetricsSource {
  readonly servers: Record<string, ServerRecord>;
  readonly stats: MetricsSource['stats'];
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the component's typed on() overloads fit no narrower listener type
  on(event: string, listener: (...args: any[]) => void): unknown;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the component's typed on() overloads fit no narrower listener type
  removeListener(event: string, listener: (...args: any[]) => void): unknown;
}

export const ROUTE_NAMES = {
  http_status_uri: 'MultiServer Status',
  http_health_uri: 'MultiServer Health',
  http_master_uri: 'MultiServer Master',
  http_metrics_uri: 'MultiServer Metrics',
  http_ui_uri: 'MultiServer Status Page',
} as const;
type RouteKey = keyof typeof ROUTE_NAMES;
const ROUTE_KEYS = Object.keys(ROUTE_NAMES) as RouteKey[];

type Response = [status: string, headers: Record<string, string>, body: string | Buffer];

const NO_STORE = { 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' };
const JSON_HEADERS = { 'Content-Type': 'application/json', ...NO_STORE };
/** Errors caused by requests are logged at most this often. */
const REQUEST_LOG_INTERVAL_MS = 60_000;

export function wantsHttp(settings: HttpSettings): boolean {
  return ROUTE_KEYS.some((key) => settings[key] !== '');
}

/** The routes the section asks for, or null when it asks for none. Throws when metrics are configured and prom-client is missing. */
export function operatorHttp(
  source: HttpSource,
  settings: HttpSettings,
  log: HttpLog,
  metrics: () => MetricsRegistry,
): OperatorHttp | null {
  return wantsHttp(settings) ? new OperatorHttp(source, settings, log, metrics) : null;
}

export function isLikeWebServer(value: unknown): value is WebServerLike {
  const web = value as Partial<WebServerLike> | null;
  return !!web && typeof web.addURIHandler === 'function' && typeof web.removeURIHandler === 'function';
}

/** The exact path, with or without a query string (pixl-server-web keeps it with `http_full_uri_match`). */
export function routeRegExp(uri: string): RegExp {
  return new RegExp('^' + uri.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&') + '(?:\\?.*)?$');
}

function json(status: string, body: unknown): Response {
  return [status, JSON_HEADERS, JSON.stringify(body) + '\n'];
}

interface Entry {
  name?: unknown;
  regexp?: unknown;
  method?: unknown;
  url?: unknown;
}

function entries(list: unknown): Entry[] {
  return Array.isArray(list) ? (list as Entry[]) : [];
}

/**
 * Who answers `GET uri` first, following pixl-server-web's order: redirects, then method
 * handlers, then URI handlers in list order. Null when nobody does.
 */
export function firstAnswerer(web: WebServerLike, uri: string): string | null {
  for (const redirect of entries(web.redirects)) {
    if (redirect.regexp instanceof RegExp && uri.match(redirect.regexp)) return `the redirect to ${String(redirect.url)}`;
  }
  for (const handler of entries(web.methodHandlers)) {
    if (handler.method === 'GET') return `the GET method handler "${String(handler.name)}"`;
  }
  for (const handler of entries(web.uriHandlers)) {
    if (handler.regexp instanceof RegExp && uri.match(handler.regexp)) return String(handler.name);
  }
  return null;
}

export class OperatorHttp {
  readonly #source: HttpSource;
  readonly #settings: HttpSettings;
  readonly #log: HttpLog;
  readonly #metrics: MetricsRegistry | null;
  readonly #departures: DepartureLog | null;
  readonly #failovers: FailoverClock | null;
  readonly #requestLog = new RateLimiter(REQUEST_LOG_INTERVAL_MS);
  #web: WebServerLike | null = null;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the component's typed on() overloads fit no narrower listener type
  #listeners: Array<[string, (...args: any[]) => void]> = [];
  /** pixl-server-web's own static file server, while ours stands in front of it. */
  #staticServer: ((args: StaticArgs) => void) | null = null;
  #staticGuard: ((args: StaticArgs) => void) | null = null;

  /**
   * At startup, before the routes exist: loads prom-client when metrics are configured
   * (throws, naming the install command, when it is missing) and starts noting departures.
   */
  constructor(
    source: HttpSource,
    settings: HttpSettings,
    log: HttpLog,
    metrics: () => MetricsRegistry = () => createMetricsRegistry(source),
  ) {
    this.#source = source;
    this.#settings = { ...settings };
    this.#log = log;
    this.#metrics = settings.http_metrics_uri ? metrics() : null;
    this.#departures = settings.http_status_uri || settings.http_ui_uri ? new DepartureLog() : null;
    this.#failovers = this.#departures ? failoverClock(source) : null;
    const departures = this.#departures;
    if (departures) {
      this.#listen('deleteserver', (record: ServerRecord) => {
        const timing = source.settings;
        departures.removed(record, Date.now(), (timing?.heartbeat_freq ?? 20) * 1000, timing?.check_beats ?? 3);
      });
      this.#listen('addserver', (record: ServerRecord) => departures.returned(record.hostname));
    }
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the component's typed on() overloads fit no narrower listener type
  #listen(event: string, listener: (...args: any[]) => void): void {
    this.#source.on(event, listener);
    this.#listeners.push([event, listener]);
  }

  /** Add the routes to the web server; call once every component has started. */
  attach(web: unknown): void {
    if (!isLikeWebServer(web)) {
      const keys = ROUTE_KEYS.filter((key) => this.#settings[key]).join(', ');
      this.#log.error(
        'config',
        `${keys} ${keys.includes(',') ? 'are' : 'is'} set, but the server has no WebServer component (pixl-server-web)`,
      );
      return;
    }
    this.#web = web;
    this.#guardStatic(web);
    const added: string[] = [];
    for (const key of ROUTE_KEYS) {
      const uri = this.#settings[key];
      if (!uri) continue;
      const name = ROUTE_NAMES[key];
      web.addURIHandler(routeRegExp(uri), name, this.#settings.http_acl, (args, callback) => {
        void this.#answer(key, args).then((response) => callback(...response));
      });
      this.#moveToFront(web, name);
      added.push(uri);
    }
    this.#log.debug(4, `HTTP routes added: ${added.join(', ')}`);
    for (const key of ROUTE_KEYS) {
      const uri = this.#settings[key];
      if (!uri) continue;
      const answerer = firstAnswerer(web, uri);
      if (answerer !== null && answerer !== ROUTE_NAMES[key]) {
        this.#log.error(
          'http',
          `${key} ${uri} is shadowed: pixl-server-web sends it to ${answerer}, not to MultiServer. Choose another URI or remove that handler.`,
        );
      }
    }
  }

  /**
   * pixl-server-web 2 sends a request no handler takes to its static file server, which
   * resolves `http_htdocs_dir`: unset, that throws outside any handler and the process dies
   * (one `GET /favicon.ico` from a browser opening the status page is enough), with no
   * shutdown notice, so the cluster waits a tock for a master. While it is unset, such a
   * request is answered 404 instead (checked per request: a reload that sets it takes effect),
   * and startup says so at level 1.
   */
  #guardStatic(web: WebServerLike): void {
    if (hasHtdocs(web)) return;
    const serve = web.sendStaticResponse;
    const answer = web.sendHTTPResponse;
    if (typeof serve !== 'function' || typeof answer !== 'function') {
      this.#log.error(
        'config',
        'WebServer config: `http_htdocs_dir` is unset; pixl-server-web may crash the process on a request no handler takes: set it to a directory (an empty one will do)',
      );
      return;
    }
    this.#log.debug(
      1,
      'WebServer config: `http_htdocs_dir` is unset, and pixl-server-web would crash the process on a request no handler takes (`GET /favicon.ico`): MultiServer answers those 404 until you set it to a directory (an empty one will do)',
    );
    const guard = function (this: WebServerLike, args: StaticArgs): void {
      if (args.internalFile === undefined && !hasHtdocs(this)) {
        answer.call(
          this,
          args,
          '404 Not Found',
          { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' },
          '404 Not Found\n',
        );
        return;
      }
      serve.call(this, args);
    };
    this.#staticServer = serve;
    this.#staticGuard = guard;
    web.sendStaticResponse = guard;
  }

  /** Remove the routes and listeners (at shutdown). */
  detach(): void {
    for (const [event, listener] of this.#listeners) this.#source.removeListener(event, listener);
    this.#listeners = [];
    const web = this.#web;
    this.#web = null;
    if (!web) return;
    // Put pixl-server-web's own back, unless someone wrapped it after us.
    if (this.#staticServer && web.sendStaticResponse === this.#staticGuard) web.sendStaticResponse = this.#staticServer;
    this.#staticServer = null;
    this.#staticGuard = null;
    for (const key of ROUTE_KEYS) if (this.#settings[key]) web.removeURIHandler(ROUTE_NAMES[key]);
  }

  /** pixl-server-web appends; ours go first, so no handler added earlier can take their URIs. */
  #moveToFront(web: WebServerLike, name: string): void {
    const list = web.uriHandlers;
    if (!Array.isArray(list)) return;
    const index = list.findIndex((entry: Entry) => entry?.name === name);
    if (index > 0) list.unshift(...list.splice(index, 1));
  }

  async #answer(key: RouteKey, args: RequestArgs): Promise<Response> {
    const source = this.#source;
    try {
      switch (key) {
        case 'http_status_uri':
          return json('200 OK', statusBody(source, { departures: this.#departures, failovers: this.#failovers }, Date.now()));
        case 'http_health_uri':
          return source.masterHostname
            ? json('200 OK', { ok: true, master: source.masterHostname, term: source.term })
            : json('503 Service Unavailable', { ok: false, reason: 'no agreed master known to this server' });
        case 'http_master_uri':
          return source.master
            ? json('200 OK', { ok: true, master: source.hostname, term: source.term })
            : json('503 Service Unavailable', {
                ok: false,
                master: source.masterHostname,
                reason: source.masterHostname ? 'this server is not the master' : 'no agreed master known to this server',
              });
        case 'http_metrics_uri': {
          const registry = this.#metrics as MetricsRegistry;
          return ['200 OK', { 'Content-Type': registry.contentType, ...NO_STORE }, await registry.metrics()];
        }
        case 'http_ui_uri':
          if (args.query?.format === 'json')
            return json('200 OK', statusBody(source, { departures: this.#departures, failovers: this.#failovers }, Date.now()));
          return [
            '200 OK',
            {
              'Content-Type': 'text/html; charset=utf-8',
              'Content-Security-Policy': statusPage.csp,
              'Referrer-Policy': 'no-referrer',
              'X-Frame-Options': 'DENY',
              ...NO_STORE,
            },
            statusPage.html,
          ];
      }
    } catch (err) {
      const suppressed = this.#requestLog.hit(key, performance.now());
      if (suppressed !== null) {
        this.#log.error(
          'http',
          `${this.#settings[key]} failed: ${(err as Error).message}${suppressed ? ` (${suppressed} more failures since the last report)` : ''}`,
        );
      }
      return json('500 Internal Server Error', { ok: false, reason: 'internal error; see the server log' });
    }
  }
}
