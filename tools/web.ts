/**
 * Helpers for tests that serve the HTTP routes with a real pixl-server-web (and
 * pixl-server-api) on 127.0.0.1.
 */
import * as net from 'node:net';

/** A TCP port free on 127.0.0.1 right now. */
export function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * A WebServer section that listens on loopback only. `http_htdocs_dir` is always set:
 * pixl-server-web 2.0 crashes on the first request for an unknown URI without it.
 */
export function loopbackWebConfig(port: number, htdocs: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const section = { http_port: port, http_bind_address: '127.0.0.1', http_htdocs_dir: htdocs, ...extra };
  if (section.http_bind_address !== '127.0.0.1')
    throw new Error(`Refusing to serve a test web server on ${String(section.http_bind_address)}: only 127.0.0.1`);
  return section;
}

export interface HttpAnswer {
  status: number;
  type: string;
  text: string;
  headers: Headers;
}

/** GET a path on 127.0.0.1; never follows redirects (a redirect is an answer worth seeing). */
export async function httpGet(port: number, uri: string, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  const response = await fetch(`http://127.0.0.1:${port}${uri}`, { redirect: 'manual', headers });
  return {
    status: response.status,
    type: response.headers.get('content-type') ?? '',
    text: await response.text(),
    headers: response.headers,
  };
}

export async function httpJson(port: number, uri: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const answer = await httpGet(port, uri);
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(answer.text) as Record<string, unknown>;
  } catch {
    throw new Error(`GET ${uri}: ${answer.status} with a body that is not JSON: ${answer.text.slice(0, 200)}`);
  }
  return { status: answer.status, body };
}
