/**
 * The package ships the library and nothing else: what `npm pack` would put in the tarball
 * (read with --dry-run from the current build, scripts off so nothing is rebuilt under the
 * other tests' feet). A user installs the runtime, its types, README, LICENSE and docs; the
 * simulator, tools and tests stay in the repository; every package the runtime loads is one
 * npm installs for them. `npm run check:pack` goes further (it installs the tarball and runs
 * it) but needs the registry.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import * as path from 'node:path';
import ts = require('typescript');

const ROOT = path.resolve(__dirname, '..', '..');

interface PackageJson {
  name: string;
  main: string;
  types: string;
  bin: Record<string, string>;
  exports: Record<string, string | Record<string, string>>;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  devDependencies?: Record<string, string>;
}

const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as PackageJson;

function packedFiles(): string[] {
  // npm prints lifecycle noise on stdout even with --json when scripts run; they are off here.
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  const report = JSON.parse(out) as Array<{ files: Array<{ path: string }> }>;
  assert.equal(report.length, 1);
  return (report[0] as { files: Array<{ path: string }> }).files.map((file) => file.path).sort();
}

const files = packedFiles();
const shipped = new Set(files);
const shippedJs = files.filter((file) => file.endsWith('.js'));
const shippedDts = files.filter((file) => file.endsWith('.d.ts'));

/** Module names a file loads: require('x'), createRequire(...)('x'), import('x'), import/export ... from 'x', /// <reference path>. */
interface Specifier {
  name: string;
  kind: 'runtime' | 'types' | 'reference';
  /** Loaded when the module is, not inside a function called later. */
  atLoad: boolean;
}

function specifiers(file: string): Specifier[] {
  const text = readFileSync(path.join(ROOT, file), 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const found: Specifier[] = [];
  const kind = file.endsWith('.d.ts') ? 'types' : 'runtime';
  for (const reference of source.referencedFiles) found.push({ name: reference.fileName, kind: 'reference', atLoad: true });
  let depth = 0;
  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node) && node.arguments.length === 1 && ts.isStringLiteral(node.arguments[0] as ts.Expression)) {
      const callee = node.expression;
      const isRequire = ts.isIdentifier(callee) && callee.text === 'require';
      const isCreatedRequire = ts.isCallExpression(callee) && /createRequire$/.test(callee.expression.getText(source));
      const isImport = callee.kind === ts.SyntaxKind.ImportKeyword;
      if (isRequire || isCreatedRequire || isImport)
        found.push({ name: (node.arguments[0] as ts.StringLiteral).text, kind, atLoad: depth === 0 });
    }
    if (
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      found.push({ name: node.moduleSpecifier.text, kind, atLoad: true });
    }
    if (
      ts.isImportEqualsDeclaration(node) &&
      ts.isExternalModuleReference(node.moduleReference) &&
      ts.isStringLiteral(node.moduleReference.expression)
    ) {
      found.push({ name: node.moduleReference.expression.text, kind, atLoad: true });
    }
    const inFunction = ts.isFunctionLike(node);
    if (inFunction) depth++;
    ts.forEachChild(node, visit);
    if (inFunction) depth--;
  };
  visit(source);
  return found;
}

/** Peer dependencies marked optional: npm installs them only when the app asks for them. */
function optionalPeers(): string[] {
  return Object.entries(pkg.peerDependenciesMeta ?? {})
    .filter(([, meta]) => meta.optional === true)
    .map(([name]) => name);
}

function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] as string);
}

test('the tarball holds the runtime, its types, README, LICENSE and docs, and nothing else', () => {
  const allowed = /^(dist\/src\/.+\.(js|d\.ts)|src\/types\/pixl\.d\.ts|docs\/[^/]+\.md|README\.md|LICENSE|package\.json)$/;
  assert.deepEqual(
    files.filter((file) => !allowed.test(file)),
    [],
    'files outside the library',
  );
  assert.deepEqual(
    files.filter((file) => /^dist\/(sim|tools|test[^/]*)\//.test(file) || /^(sim|tools|test|test-lan|examples)\//.test(file)),
    [],
    'dev-only code shipped',
  );
  for (const file of [
    'README.md',
    'LICENSE',
    'package.json',
    'dist/src/index.js',
    'dist/src/index.d.ts',
    'dist/src/cli.js',
    'src/types/pixl.d.ts',
  ]) {
    assert.ok(shipped.has(file), `${file} is missing from the tarball`);
  }
  const docs = readdirSync(path.join(ROOT, 'docs')).filter((name) => name.endsWith('.md'));
  assert.ok(docs.length >= 5, docs.join());
  for (const doc of docs) assert.ok(shipped.has(`docs/${doc}`), `docs/${doc} is missing from the tarball`);
  assert.deepEqual(
    files.filter((file) => file.startsWith('docs/drafts/')),
    [],
    'drafts shipped',
  );
});

test('every shipped module is built from a source file of today (no stale build output)', () => {
  const stale = files
    .filter((file) => file.startsWith('dist/src/'))
    .filter((file) => !existsSync(path.join(ROOT, file.replace(/^dist\//, '').replace(/\.(d\.ts|js)$/, '.ts'))));
  assert.deepEqual(stale, [], 'built from sources that no longer exist: rm -rf dist && npm run build');
});

test('source maps ship only with their sources embedded', () => {
  for (const file of files.filter((name) => name.endsWith('.map'))) {
    const map = JSON.parse(readFileSync(path.join(ROOT, file), 'utf8')) as { sources: string[]; sourcesContent?: Array<string | null> };
    assert.ok(
      map.sourcesContent &&
        map.sourcesContent.length === map.sources.length &&
        map.sourcesContent.every((content) => typeof content === 'string'),
      `${file} points at sources the tarball does not hold`,
    );
  }
});

test('main, types, exports and bin point at shipped files; the CLI is executable by npx', () => {
  const targets = [pkg.main, pkg.types, ...Object.values(pkg.bin)];
  for (const entry of Object.values(pkg.exports)) targets.push(...(typeof entry === 'string' ? [entry] : Object.values(entry)));
  for (const target of targets) assert.ok(shipped.has(path.posix.normalize(target)), `${target} is not in the tarball`);
  for (const bin of Object.values(pkg.bin))
    assert.match(readFileSync(path.join(ROOT, bin), 'utf8'), /^#!\/usr\/bin\/env node\n/, `${bin} lacks its shebang`);
  assert.deepEqual(Object.keys(pkg.exports).sort(), ['.', './package.json'], 'a new entry point is public API: add it here on purpose');
});

test('every relative require and type reference of the shipped code resolves inside the tarball', () => {
  const missing: string[] = [];
  for (const file of [...shippedJs, ...shippedDts]) {
    for (const { name, kind } of specifiers(file)) {
      if (!name.startsWith('.') && kind !== 'reference') continue;
      const base = path.posix.join(path.posix.dirname(file), name);
      const candidates =
        kind === 'reference'
          ? [base]
          : file.endsWith('.d.ts')
            ? [`${base}.d.ts`, `${base}/index.d.ts`, base]
            : [`${base}.js`, `${base}/index.js`, base];
      if (!candidates.some((candidate) => shipped.has(candidate))) missing.push(`${file} → ${name}`);
    }
  }
  assert.deepEqual(missing, []);
});

test('every package the shipped code loads is one npm installs for a user, and every dependency is loaded', () => {
  const installed = new Set([
    ...Object.keys(pkg.dependencies ?? {}),
    ...Object.keys(pkg.optionalDependencies ?? {}),
    ...Object.keys(pkg.peerDependencies ?? {}),
  ]);
  // Ambient declarations (pixl-server ships no types): `declare module 'x'` in a shipped .d.ts.
  const ambient = new Set(
    shippedDts.flatMap((file) =>
      [...readFileSync(path.join(ROOT, file), 'utf8').matchAll(/^declare module '([^']+)'/gm)].map((match) => match[1] as string),
    ),
  );
  const optional = new Set([...Object.keys(pkg.optionalDependencies ?? {}), ...optionalPeers()]);
  const undeclared: string[] = [];
  const eager: string[] = [];
  const used = new Set<string>();
  for (const file of [...shippedJs, ...shippedDts]) {
    for (const { name, kind, atLoad } of specifiers(file)) {
      if (name.startsWith('.') || kind === 'reference' || isBuiltin(name)) continue;
      const owner = packageName(name);
      if (kind === 'runtime') used.add(owner);
      if (kind === 'runtime' && atLoad && optional.has(owner)) eager.push(`${file} loads ${name} at load`);
      if (installed.has(owner)) continue;
      if (kind === 'types' && ambient.has(name)) continue;
      undeclared.push(`${file} loads ${name}${pkg.devDependencies?.[owner] ? ' (only a devDependency)' : ''}`);
    }
  }
  assert.deepEqual(undeclared, [], 'a user install would not have these');
  assert.deepEqual([...installed].filter((name) => !used.has(name)).sort(), [], 'declared but loaded by nothing shipped');
  assert.ok(
    pkg.peerDependencies?.['pixl-server'] && pkg.devDependencies?.['pixl-server'],
    'pixl-server is the host: a peer dependency (and a dev dependency for the tests)',
  );
  assert.equal(pkg.dependencies?.['pixl-server'], undefined, 'pixl-server as a dependency would give the app a second copy');
  // Optional ones are loaded only when configured: missing, they are a startup error naming the install command.
  assert.deepEqual(eager, [], 'an optional dependency loaded with the module');
});

test('a lean install: the etcd mode and metrics packages are optional peers, never installed unasked', () => {
  // npm installs optionalDependencies by default (etcd3 alone brings gRPC and protobufjs, with
  // a postinstall script); an optional peer is installed only by an app that names it.
  assert.deepEqual(Object.keys(pkg.optionalDependencies ?? {}), [], 'optionalDependencies are installed by default');
  assert.deepEqual(optionalPeers().sort(), ['etcd3', 'prom-client']);
  for (const name of optionalPeers()) {
    assert.ok(pkg.peerDependencies?.[name], `${name} is marked optional but is not a peer dependency`);
    assert.equal(pkg.dependencies?.[name], undefined, `${name} is also a dependency`);
    assert.ok(pkg.devDependencies?.[name], `${name} must stay a devDependency: the tests need it`);
  }
  assert.equal(pkg.peerDependenciesMeta?.['pixl-server']?.optional, undefined, 'pixl-server is the host: never optional');
});
