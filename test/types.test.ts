/**
 * The shipped declarations, as TypeScript apps meet them: small consumer projects in temp
 * folders, each with the built package linked into node_modules, compiled by the real `tsc`
 * under the strictest settings (strict, noImplicitAny, skipLibCheck false) and then run.
 * The projects differ in how they import (default import with and without esModuleInterop,
 * `import = require`, ESM under nodenext) and in whether the app has its own
 * `declare module 'pixl-server'`. Each checks what must compile and, with @ts-expect-error,
 * what must not: a misspelt event name, wrong listener arguments, an unknown member.
 */
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { assertLoopbackConfig, freeUdpPort } from '../tools/loopback';

const ROOT = path.resolve(__dirname, '..', '..');
const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'types');
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const DEADLINE_MS = 60_000;

/** What an app with the strictest settings has; skipLibCheck false also checks our .d.ts files. */
const STRICT = {
  strict: true,
  noImplicitAny: true,
  skipLibCheck: false,
  target: 'ES2022',
  lib: ['ES2022'],
  types: ['node'],
  outDir: 'out',
};

interface Project {
  name: string;
  compilerOptions: Record<string, unknown>;
  /** package.json "type" of the app. */
  type?: 'module';
  /** Import lines put above test/fixtures/types/consumer-body.ts... */
  header?: string[];
  /** ...or a folder of test/fixtures/types to compile as it is. */
  folder?: string;
  /** Files of the folder to leave out (to prove they are needed). */
  without?: string[];
}

const PROJECTS: Project[] = [
  {
    name: 'CommonJS with esModuleInterop: default imports',
    compilerOptions: { module: 'commonjs', moduleResolution: 'node10', esModuleInterop: true },
    header: ["import PixlServer from 'pixl-server';", "import MultiServer from 'pixl-server-multi';"],
  },
  {
    name: 'CommonJS without esModuleInterop: default import and import = require',
    compilerOptions: { module: 'commonjs', moduleResolution: 'node10', esModuleInterop: false, allowSyntheticDefaultImports: false },
    header: [
      "import PixlServer = require('pixl-server');",
      "import MultiServer from 'pixl-server-multi';",
      "import MultiServerRequired = require('pixl-server-multi');",
      "if (MultiServer !== MultiServerRequired) throw new Error('the default import is not the component class');",
    ],
  },
  {
    name: 'ESM ("type": "module", module nodenext)',
    compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext' },
    type: 'module',
    header: ["import PixlServer from 'pixl-server';", "import MultiServer from 'pixl-server-multi';"],
  },
  {
    name: "an app with its own declare module 'pixl-server'",
    compilerOptions: { module: 'commonjs', moduleResolution: 'node10', esModuleInterop: true },
    folder: 'own-declaration',
  },
  {
    name: 'an app with pixl-server-web and pixl-server-api, declared in the two lines docs/TYPESCRIPT.md gives',
    compilerOptions: { module: 'commonjs', moduleResolution: 'node10', esModuleInterop: true },
    folder: 'web-api',
  },
];

/** The files npm would publish: everything a consumer's compile loads from us must be among them. */
let published: Set<string>;
before(() => {
  const listing = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const [pack] = JSON.parse(listing) as Array<{ files: Array<{ path: string }> }>;
  published = new Set(pack!.files.map((file) => file.path));
});

function run(
  command: string,
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv },
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { ...options, encoding: 'utf8', timeout: DEADLINE_MS }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A consumer folder with the package linked the way npm installs it (a symlink, as `npm link`). */
function makeProject(project: Project): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'psm-types-'));
  mkdirSync(path.join(dir, 'node_modules'));
  symlinkSync(ROOT, path.join(dir, 'node_modules', 'pixl-server-multi'), 'dir');
  symlinkSync(path.join(ROOT, 'node_modules', 'pixl-server'), path.join(dir, 'node_modules', 'pixl-server'), 'dir');
  symlinkSync(path.join(ROOT, 'node_modules', '@types'), path.join(dir, 'node_modules', '@types'), 'dir');
  for (const companion of ['pixl-server-web', 'pixl-server-api'])
    symlinkSync(path.join(ROOT, 'node_modules', companion), path.join(dir, 'node_modules', companion), 'dir');
  writeFileSync(
    path.join(dir, 'package.json'),
    JSON.stringify({ name: 'consumer', private: true, ...(project.type ? { type: project.type } : {}) }),
  );
  const files: string[] = [];
  if (project.folder) {
    for (const name of readdirSync(path.join(FIXTURES, project.folder)).sort()) {
      if (project.without?.includes(name)) continue;
      writeFileSync(path.join(dir, name), readFileSync(path.join(FIXTURES, project.folder, name)));
      files.push(name);
    }
  } else {
    const body = readFileSync(path.join(FIXTURES, 'consumer-body.ts'), 'utf8');
    writeFileSync(path.join(dir, 'consumer.ts'), `${project.header!.join('\n')}\n\n${body}`);
    files.push('consumer.ts');
  }
  writeFileSync(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { ...STRICT, ...project.compilerOptions }, files }, null, 2),
  );
  return dir;
}

describe('a strict TypeScript consumer', { concurrency: 2 }, () => {
  for (const project of PROJECTS) {
    test(project.name, async () => {
      const dir = makeProject(project);
      try {
        const compile = await run(process.execPath, [TSC, '-p', dir, '--listFiles'], { cwd: dir });
        const lines = compile.stdout.split('\n').filter((line) => line.trim() !== '');
        const loaded = lines.filter((line) => path.isAbsolute(line) && /\.[cm]?ts$/.test(line));
        const errors = lines.filter((line) => !loaded.includes(line));
        assert.deepEqual(errors, [], `tsc reported errors in ${dir}`);
        assert.equal(compile.code, 0, compile.stdout + compile.stderr);

        const ours = loaded.filter(
          (file) => file.startsWith(ROOT + path.sep) && !file.startsWith(path.join(ROOT, 'node_modules') + path.sep),
        );
        assert.ok(ours.includes(path.join(ROOT, 'src', 'types', 'pixl.d.ts')), 'the pixl-server typings were not loaded');
        for (const file of ours)
          assert.ok(published.has(path.relative(ROOT, file)), `${path.relative(ROOT, file)} is loaded by consumers but not published`);

        if (project.folder) return; // its runtime is the same as the first project's
        const section = { comm_port: await freeUdpPort(), broadcast_ip: '127.255.255.255', heartbeat_freq: 0.05, check_beats: 3 };
        assertLoopbackConfig(section);
        const env = { ...process.env, PSM_SECTION: JSON.stringify(section), PSM_LOG_DIR: dir };
        const result = await run(process.execPath, [path.join(dir, 'out', 'consumer.js')], { cwd: dir, env });
        assert.equal(result.code, 0, result.stdout + result.stderr);
        assert.deepEqual(JSON.parse(result.stdout.trim()), {
          termType: 'number',
          checkpoint: null,
          isComponent: true,
          master: true,
          masterHostname: 'types-consumer',
        });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

test('without those two lines, a strict project fails on each companion with TS7016 (what the declarations are for)', async () => {
  const dir = makeProject({
    name: 'web-api without declarations',
    compilerOptions: { module: 'commonjs', moduleResolution: 'node10', esModuleInterop: true },
    folder: 'web-api',
    without: ['companions.d.ts'],
  });
  try {
    const compile = await run(process.execPath, [TSC, '-p', dir], { cwd: dir });
    assert.notEqual(compile.code, 0);
    const missing = [...compile.stdout.matchAll(/error TS7016: Could not find a declaration file for module '([^']+)'/g)].map((m) => m[1]);
    assert.deepEqual(missing.sort(), ['pixl-server-api', 'pixl-server-web'], compile.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
