/**
 * A failed startup said where a user looks. pixl-server ends a failed startup (any
 * component's: a web port in use, our UDP port) by logging why to its log file and calling
 * process.exit(1). A user in the foreground whose `echo` does not show pixl-server's own error
 * rows sees nothing on the terminal at all. From init (which runs whatever the order of
 * components) to `ready`, the reason is noted from the log rows; should the server shut down
 * before it is ready, it goes to stderr, once.
 */
import type { EventEmitter } from 'node:events';
import * as path from 'node:path';

/** The parts of a pixl-server this reads. */
export interface StartupServer {
  logger: unknown;
  started?: unknown;
  config: { get(key: string): unknown };
  once(event: string, listener: () => void): unknown;
  removeListener(event: string, listener: () => void): unknown;
}

/** Watch `server`'s startup (returns false when its logger cannot be watched). */
export function watchStartup(server: StartupServer): boolean {
  const logger = server.logger as Partial<EventEmitter> | undefined;
  if (!logger || typeof logger.on !== 'function' || typeof logger.removeListener !== 'function') return false;
  let reason = '';
  let echoed = false;
  const onRow = (
    _line: unknown,
    _cols: unknown,
    args: { category?: unknown; code?: unknown; msg?: unknown; component?: unknown } | undefined,
  ): void => {
    if (reason || args?.category !== 'error' || args.code !== 'startup') return;
    reason = String(args.msg);
    echoed = echoes(server, args);
  };
  const done = (): void => {
    logger.removeListener?.('row', onRow);
    server.removeListener('ready', done);
    server.removeListener('shutdown', onShutdown);
  };
  const onShutdown = (): void => {
    done();
    if (server.started || !reason || echoed) return;
    const dir = server.config.get('log_dir');
    const file = server.config.get('log_filename');
    const log = path.join(typeof dir === 'string' && dir ? dir : '.', typeof file === 'string' && file ? file : 'event.log');
    try {
      process.stderr.write(`pixl-server-multi: the server could not start: ${reason}. pixl-server exits with code 1; its log: ${log}\n`);
    } catch {
      // No stderr to write to (a daemon without one): the log file has it.
    }
  };
  logger.on('row', onRow);
  server.once('ready', done);
  server.once('shutdown', onShutdown);
  return true;
}

/** Would pixl-server's `echo` have shown this row on the terminal already? (Its own rule, from server.js.) */
function echoes(server: { config: { get(key: string): unknown } }, row: { category?: unknown; component?: unknown }): boolean {
  const echo = server.config.get('echo');
  if (echo === true || (typeof echo === 'number' && echo !== 0)) return true;
  if (typeof echo !== 'string' || echo === '') return false;
  // A string of digits is a level to pixl-server: it echoes every row.
  if (/^\d+$/.test(echo)) return true;
  try {
    const pattern = new RegExp('(' + echo.replace(/\s+/g, '|') + ')');
    return pattern.test(String(row.component)) || pattern.test(String(row.category));
  } catch {
    return false;
  }
}
