/**
 * The layering of src/, as rules a machine checks (`npm run lint:deps`, and first thing in
 * `npm test`). Type-only imports count: a layer that needs another's types depends on it.
 *
 *   top        component.ts, config.ts (and config/), cli.ts, index.ts, errors.ts, shell/, run/, etcd/   (import anything below)
 *   driver     driver/ (runs either election machine: its queue, Output carried out, events)
 *   machines   core/ (the UDP election), coordinator/ (the etcd mode's lease election): pure, neither imports the other
 *   contract   elector/ (what both machines are and give: Instant, Output, events, the rank rule, freshness)
 *   beside     wire/ (codec, auth), transport/ (sockets)
 *   bottom     protocol/ (messages, limits, addresses, the store contract), util/, app/
 *
 * etcd/ (the etcd client adapter: timers, gRPC, files) sits at the top: only the shell loads it.
 * Dev-only code (sim/, tools/, test/, test-lan/, test-etcd/) sits beside src/ and never below it.
 */
const TOP = '^src/(component|config|cli|index|errors)\\.ts$|^src/config/|^src/shell/|^src/run/|^src/etcd/';

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
    onlyDown('elector-over-protocol', 'elector', ['protocol/'], 'The contract both election machines share (types, Output, the rank rule, freshness) imports the protocol only.'),
    onlyDown('core-over-elector', 'core', ['elector/', 'protocol/'], 'The UDP election is pure: the contract and the protocol only (no wire, transport, driver, coordinator, config).'),
    onlyDown('transport-over-protocol', 'transport', ['protocol/', 'util/'], 'Sockets know addresses and limits (protocol) only: not config, core, wire or the driver.'),
    onlyDown('driver-over-elector', 'driver', ['elector/', 'wire/', 'protocol/', 'util/'], 'The driver runs any elector through the contract: it sees the codec and the protocol; never a machine itself, a transport or config.'),
    onlyDown('coordinator-over-elector', 'coordinator', ['elector/', 'protocol/', 'wire/'], 'The lease election is pure like the core and shares only the contract with it (never the UDP election itself); it reads store values through the wire codec.'),
    {
      name: 'machines-without-runtime-builtins',
      comment: 'No sockets, timers, clock, crypto or process in either election machine or their contract: node: built-ins for their types only.',
      severity: 'error',
      from: { path: '^src/(core|coordinator|elector)/' },
      to: { dependencyTypes: ['core'], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'pure-layers-without-packages',
      comment: 'Everything below the top uses no npm package: it runs where the library runs, with nothing configured (etcd3 is loaded by etcd/, at the top).',
      severity: 'error',
      from: { path: '^src/(protocol|elector|core|coordinator|driver|wire|transport|util|app)/' },
      to: { dependencyTypes: ['npm', 'npm-dev', 'npm-optional', 'npm-peer', 'npm-bundled', 'npm-no-pkg', 'npm-unknown'] },
    },
    {
      name: 'nothing-imports-the-top',
      comment: 'component, config (and config/), cli, index, errors, shell/, run/ and etcd/ are the top: no layer below imports them.',
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
