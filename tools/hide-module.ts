/**
 * Preload (`node -r dist/tools/hide-module.js`) that makes the packages named in
 * PSM_HIDE_MODULES (comma-separated) impossible to require, as on a host where they are not
 * installed: for testing what an optional dependency's absence looks like to a user.
 */
import Module = require('node:module');

const hidden = (process.env.PSM_HIDE_MODULES ?? '').split(',').filter(Boolean);
const internals = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
const resolve = internals._resolveFilename;
internals._resolveFilename = function (this: unknown, request: string, ...rest: unknown[]): string {
  if (hidden.some((name) => request === name || request.startsWith(`${name}/`))) {
    throw Object.assign(new Error(`Cannot find module '${request}'`), { code: 'MODULE_NOT_FOUND' });
  }
  return resolve.call(this, request, ...rest);
};
