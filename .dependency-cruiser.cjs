/**
 * Who may import whom: the layers of docs/architecture.md ("Who may import
 * whom"), from the architecture v2 design (ARCHITECTURE-V2.md §2.2, issue
 * #16). Run by `npm run lint:deps` (and by `npm test`, before the tests);
 * every rule is an error.
 *
 * `import type` counts (tsPreCompilationDeps): a type import is a design
 * dependency even though it is erased.
 */

const SRC = '^packages/server/src/';

/** Layer 1, the foundation: imports nothing of the server beyond itself. */
const FOUNDATION = `${SRC}(util/|errors\\.ts$|config\\.ts$|log\\.ts$|version\\.ts$|topics\\.ts$)`;
/** Layer 2, the contracts: interfaces with their contracts written on them, and the public Herald interface. */
const CONTRACTS = `${SRC}(publication\\.ts$|broker/broker\\.ts$|history/history\\.ts$|protocols/codec\\.ts$|transport/transport\\.ts$|herald\\.ts$)`;
/** Layer 4, services and adapters. */
const SERVICES = `${SRC}(auth|broker|cluster|events|history|metrics|policy|presence|protocols|proxy|publish|pusher|transport|users)/`;

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'An import cycle: the dependency points the wrong way somewhere on it. Cut it with an interface the consumer declares (or a contract of layer 2).',
      from: {},
      to: { circular: true },
    },

    // Layer 0: @herald/protocol is isomorphic and standalone; the client SDK never reaches into the server.
    {
      name: 'protocol-imports-nothing',
      severity: 'error',
      comment: '@herald/protocol (layer 0) imports nothing: no other package, no npm module, no Node built-in (it runs in browsers).',
      from: { path: '^packages/protocol/src/' },
      to: { pathNot: '^packages/protocol/src/' },
    },
    {
      name: 'client-not-to-server',
      severity: 'error',
      comment: 'The client SDK depends on @herald/protocol, never on the server.',
      from: { path: '^packages/client/src/' },
      to: { path: '^packages/server/' },
    },

    // Layer 1: util/, errors.ts, config.ts, log.ts, version.ts, topics.ts import only layer 0 and each other.
    {
      name: 'foundation-imports-only-foundation',
      severity: 'error',
      comment: 'Layer 1 (util/, errors.ts, config.ts, log.ts, version.ts, topics.ts) imports nothing of the server beyond layer 1.',
      from: { path: FOUNDATION },
      to: { path: SRC, pathNot: FOUNDATION },
    },

    // Layer 2: the contracts import only layers 0-2.
    {
      name: 'contracts-import-only-foundation',
      severity: 'error',
      comment: 'A contract of layer 2 (publication.ts, broker/broker.ts, history/history.ts, protocols/codec.ts, transport/transport.ts, herald.ts) imports only layer 1 and the other contracts.',
      from: { path: CONTRACTS },
      to: { path: SRC, pathNot: [FOUNDATION, CONTRACTS] },
    },

    // Layer 3: hub/ (the local core) imports layers 0-2 and itself.
    {
      name: 'hub-imports-only-contracts',
      severity: 'error',
      comment: 'hub/ is the local core: it imports layer 1 and, of the contracts, only the codec, the transport and the publication (and the broker contract that re-exports it); never the Herald interface, a history store, a protocol, auth/, http/, the gateway or a service.',
      from: { path: `${SRC}hub/` },
      to: { path: SRC, pathNot: [FOUNDATION, `${SRC}(publication|broker/broker|protocols/codec|transport/transport)\\.ts$`, `${SRC}hub/`] },
    },

    // Layer 4: services and adapters never reach up to the gateway, the roots or the edges.
    {
      name: 'services-not-to-gateway-or-edges',
      severity: 'error',
      comment: 'Services and adapters (layer 4) never import gateway.ts, server.ts, index.ts, internal.ts, http/, demo/, streams/ or cli/: they are handed what they need.',
      from: { path: SERVICES },
      to: { path: `${SRC}(gateway\\.ts$|server\\.ts$|index\\.ts$|internal\\.ts$|http/|demo/|streams/|cli/)` },
    },
    {
      name: 'gateway-not-to-edges',
      severity: 'error',
      comment: 'gateway.ts (layer 5) holds the services; the composition root (server.ts) builds the edges around it.',
      from: { path: `${SRC}gateway\\.ts$` },
      to: { path: `${SRC}(server\\.ts$|index\\.ts$|internal\\.ts$|http/|demo/|streams/|cli/)` },
    },

    // Layer 6: the edges depend on the Herald interface, never on the gateway or the hub.
    {
      name: 'http-and-streams-import-only-the-interface',
      severity: 'error',
      comment: 'http/ and streams/ (helpers over the Herald interface) import layer 1, the Herald interface (herald.ts) and themselves: no service, no adapter, not the gateway.',
      from: { path: `${SRC}(http|streams)/` },
      to: { path: SRC, pathNot: [FOUNDATION, `${SRC}herald\\.ts$`, `${SRC}http/`, `${SRC}streams/`] },
    },
    {
      name: 'demo-imports-only-the-interface',
      severity: 'error',
      comment: 'demo/ imports layer 1, the Herald interface (herald.ts), the API guard of http/, the helpers of streams/ and itself: no service, no adapter, not the gateway.',
      from: { path: `${SRC}demo/` },
      to: { path: SRC, pathNot: [FOUNDATION, `${SRC}herald\\.ts$`, `${SRC}http/`, `${SRC}streams/`, `${SRC}demo/`] },
    },
    {
      name: 'cli-through-the-roots',
      severity: 'error',
      comment:
        'cli/ starts Herald through the composition root (server.ts) and the entries (index.ts, internal.ts); besides layer 1 and the contracts it uses only ' +
        'the IPC broker and admission of --workers (broker/ipc.ts, transport/admission.ts, documented in docs/architecture.md): never the gateway, the hub or another service.',
      from: { path: `${SRC}cli/` },
      to: { path: SRC, pathNot: [FOUNDATION, CONTRACTS, `${SRC}(server|index|internal)\\.ts$`, `${SRC}cli/`, `${SRC}broker/ipc\\.ts$`, `${SRC}transport/admission\\.ts$`] },
    },
    {
      name: 'cli-not-to-http-or-demo',
      severity: 'error',
      comment: 'cli/ starts Herald through its API; it never imports http/ or demo/ itself.',
      from: { path: `${SRC}cli/` },
      to: { path: `${SRC}(http|demo)/` },
    },
    {
      name: 'only-cli-imports-cli',
      severity: 'error',
      comment: 'cli/ is the outermost edge: nothing else imports it.',
      from: { path: SRC, pathNot: `${SRC}cli/` },
      to: { path: `${SRC}cli/` },
    },
    {
      name: 'nothing-imports-the-public-entry',
      severity: 'error',
      comment: 'index.ts is the public entry, for users: no module of the server imports it.',
      from: { path: SRC },
      to: { path: `${SRC}index\\.ts$` },
    },
    {
      name: 'src-not-to-test',
      severity: 'error',
      comment: 'Shipped code never imports a test.',
      from: { path: '^packages/[^/]+/src/' },
      to: { path: '^packages/[^/]+/test/' },
    },
    {
      name: 'not-to-undeclared-package',
      severity: 'error',
      comment: 'Shipped code imports only npm packages its own package.json declares as dependencies (a dev dependency of the workspace is not installed for users).',
      from: { path: '^packages/[^/]+/src/' },
      to: { dependencyTypes: ['npm-no-pkg', 'npm-unknown', 'npm-dev'] },
    },
  ],
  options: {
    // The workspace packages resolve to their build (dist/), which is not cruised: only src/ is.
    doNotFollow: { path: ['node_modules', '^packages/[^/]+/dist/'] },
    tsPreCompilationDeps: true,
    moduleSystems: ['es6'],
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'types', 'default'],
      extensions: ['.ts', '.js', '.d.ts'],
    },
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};
