/**
 * The layering of src/, as rules a machine checks (`npm run lint:deps`, and first thing in
 * `npm test`). Type-only imports count: a layer that needs another's types depends on it.
 *
 *   top        component.ts, config.ts, cli.ts, index.ts, errors.ts, shell/, run/   (import anything below)
 *   machines   driver/ (runs an elector: core or coordinator), coordinator/ (the etcd lease election)
 *   pure       core/ (the UDP election), wire/ (codec, auth), transport/ (sockets)
 *   bottom     protocol/ (messages, limits, addresses, the store contract), util/, app/
 *
 * Dev-only code (sim/, tools/, test/, test-lan/, test-etcd/) sits beside src/ and never below it.
 */
const TOP = '^src/(component|config|cli|index|errors)\\.ts$|^src/shell/|^src/run/';

/** A layer may import itself and the folders named; nothing else of src/. */
function onlyDown(name, layer, allowed, comment) {
  return {
    name,
    comment,
    severity: 'error',
    from: { path: `^src/${layer}/` },
    to: { path: '^src/', pathNot: [`^src/${layer}/`, ...allowed.map((folder) => `^src/${folder}`)] },
  };
}

module.exports = {
  forbidden: [
    onlyDown('protocol-is-the-bottom', 'protocol', [], 'src/protocol/ (message types, limits, addresses, the store contract) imports nothing of ours.'),
    onlyDown('util-is-the-bottom', 'util', [], 'src/util/ holds leaf helpers: it imports nothing of ours.'),
    onlyDown('app-helpers-are-leaves', 'app', ['protocol/'], 'src/app/ (helpers for applications: rendezvous) imports at most the protocol.'),
    onlyDown('wire-over-protocol', 'wire', ['protocol/', 'util/'], 'The codec and auth import the protocol and util only: no core, no transport, no config.'),
    onlyDown('core-over-protocol', 'core', ['protocol/'], 'The election core is pure: protocol only (no wire, transport, driver, coordinator, config).'),
    onlyDown('transport-over-protocol', 'transport', ['protocol/', 'util/'], 'Sockets know addresses and limits (protocol) only: not config, core, wire or the driver.'),
    onlyDown('driver-over-machines', 'driver', ['core/', 'wire/', 'protocol/', 'util/'], 'The driver runs any elector: it sees the core, the codec, the protocol; never a transport, the coordinator or config.'),
    onlyDown('coordinator-over-protocol', 'coordinator', ['protocol/', 'wire/', 'util/', 'core/types.ts', 'core/skipped.ts', 'core/freshness.ts', 'core/hold.ts', 'core/preempt.ts'], 'The lease election shares the core\'s output types, its replay window (skipped.ts), its freshness rule (freshness.ts), the promote request held while the app drains (hold.ts) and the preemption rule (preempt.ts), never the UDP election itself; it reads store values through the wire codec.'),
    {
      name: 'core-without-runtime-builtins',
      comment: 'No sockets, timers, clock or crypto in the core: node: built-ins for their types only.',
      severity: 'error',
      from: { path: '^src/core/' },
      to: { dependencyTypes: ['core'], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'pure-layers-without-packages',
      comment: 'protocol, core, wire and transport use no npm package: they run where the library runs, with nothing configured.',
      severity: 'error',
      from: { path: '^src/(protocol|core|wire|transport|util|app)/' },
      to: { dependencyTypes: ['npm', 'npm-dev', 'npm-optional', 'npm-peer', 'npm-bundled', 'npm-no-pkg', 'npm-unknown'] },
    },
    {
      name: 'nothing-imports-the-top',
      comment: 'component, config, cli, index, errors, shell/ and run/ are the top: no layer below imports them.',
      severity: 'error',
      from: { path: '^src/', pathNot: TOP },
      to: { path: TOP },
    },
    {
      name: 'src-never-imports-dev-code',
      comment: 'The shipped library never reaches into the simulator, the tools or the tests.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(sim|tools|test|test-lan|test-etcd)/' },
    },
    {
      name: 'sim-never-imports-tools-or-tests',
      comment: 'The simulator is pure: it drives src/, and tools/ and tests drive it.',
      severity: 'error',
      from: { path: '^sim/' },
      to: { path: '^(tools|test|test-lan|test-etcd)/' },
    },
    {
      name: 'tools-never-import-tests',
      severity: 'error',
      from: { path: '^tools/' },
      to: { path: '^(test|test-lan|test-etcd)/' },
    },
    {
      name: 'shipped-code-uses-no-dev-dependency',
      comment: 'What src/ imports must be installed for a user: a dependency, an optional or a peer dependency.',
      severity: 'error',
      from: { path: '^src/' },
      to: { dependencyTypes: ['npm-dev', 'npm-no-pkg', 'npm-unknown'], dependencyTypesNot: ['npm', 'npm-optional', 'npm-peer'] },
    },
    {
      name: 'no-circular',
      comment: 'No module imports itself through others (type-only imports count).',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: 'no-non-package-json',
      comment: 'Every package imported anywhere is declared in package.json.',
      severity: 'error',
      from: {},
      // dependency-cruiser reads every key containing "ependencies" as a section, so the
      // optional peers' entries in peerDependenciesMeta add "npm-no-pkg" beside "npm-peer".
      to: { dependencyTypes: ['npm-no-pkg', 'npm-unknown'], dependencyTypesNot: ['npm', 'npm-dev', 'npm-optional', 'npm-peer'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^dist/|^test/fixtures/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['require', 'node', 'default', 'types'], extensions: ['.ts', '.d.ts', '.js', '.json'] },
    progress: { type: 'none' },
  },
};
