/**
 * Opt-in HTTP routes for apps that run pixl-server-web: the cluster status as JSON, and a
 * health check that answers 200 while this server knows an agreed master, 503 otherwise
 * (what a load balancer or an orchestrator's probe wants).
 */

/** The part of pixl-server-web's WebServer component we use. */
export interface WebServerLike {
  addURIHandler(uri: string, name: string, acl: boolean, handler: (args: unknown, callback: (...response: unknown[]) => void) => void): void;
  removeURIHandler(name: string): void;
}

export interface StatusSource {
  hostname: string;
  master: boolean;
  masterHostname: string;
  term: number;
  eligible: boolean;
  members: string[];
  servers: Record<string, unknown>;
  stats: object;
}

export const STATUS_ROUTE_NAME = 'MultiServer Status';
export const HEALTH_ROUTE_NAME = 'MultiServer Health';

const JSON_HEADERS = { 'Content-Type': 'application/json' };

export function statusBody(source: StatusSource): Record<string, unknown> {
  return {
    hostname: source.hostname,
    master: source.master,
    masterHostname: source.masterHostname,
    term: source.term,
    eligible: source.eligible,
    members: source.members,
    servers: { ...source.servers },
    stats: source.stats,
  };
}

export function isLikeWebServer(value: unknown): value is WebServerLike {
  const web = value as Partial<WebServerLike> | null;
  return !!web && typeof web.addURIHandler === 'function' && typeof web.removeURIHandler === 'function';
}

/**
 * Register the routes (`acl` true: pixl-server-web's default ACL, private networks only).
 * Returns a function that removes them.
 */
export function registerRoutes(web: WebServerLike, source: StatusSource, routes: { status: string; health: string; acl: boolean }): () => void {
  const names: string[] = [];
  if (routes.status) {
    web.addURIHandler(routes.status, STATUS_ROUTE_NAME, routes.acl, (_args, callback) => {
      callback('200 OK', JSON_HEADERS, JSON.stringify(statusBody(source)) + '\n');
    });
    names.push(STATUS_ROUTE_NAME);
  }
  if (routes.health) {
    web.addURIHandler(routes.health, HEALTH_ROUTE_NAME, routes.acl, (_args, callback) => {
      const master = source.masterHostname;
      if (master) {
        callback('200 OK', JSON_HEADERS, JSON.stringify({ ok: true, master, term: source.term }) + '\n');
      } else {
        callback('503 Service Unavailable', JSON_HEADERS, JSON.stringify({ ok: false, reason: 'no agreed master known to this server' }) + '\n');
      }
    });
    names.push(HEALTH_ROUTE_NAME);
  }
  return () => {
    for (const name of names) web.removeURIHandler(name);
  };
}
