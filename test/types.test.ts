/**
 * The shipped declarations work for a TypeScript app: `import MultiServer from
 * 'pixl-server-multi'` under strict settings, with typed events, properties and records.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, copyFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');

test('a strict TypeScript consumer compiles against the published types', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'psm-types-'));
  try {
    mkdirSync(path.join(dir, 'node_modules'));
    symlinkSync(ROOT, path.join(dir, 'node_modules', 'pixl-server-multi'), 'dir');
    symlinkSync(path.join(ROOT, 'node_modules', 'pixl-server'), path.join(dir, 'node_modules', 'pixl-server'), 'dir');
    symlinkSync(path.join(ROOT, 'node_modules', '@types'), path.join(dir, 'node_modules', '@types'), 'dir');
    copyFileSync(path.join(ROOT, 'test', 'fixtures', 'consumer.ts'), path.join(dir, 'consumer.ts'));
    writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { strict: true, noEmit: true, module: 'commonjs', moduleResolution: 'node10', esModuleInterop: true, target: 'ES2022', types: ['node'] },
        files: ['consumer.ts'],
      }),
    );
    const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    let output = '';
    try {
      output = execFileSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8' });
    } catch (err) {
      output = String((err as { stdout?: string }).stdout ?? err);
    }
    assert.equal(output.trim(), '', output);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
