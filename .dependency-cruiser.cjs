/**
 * Who may import whom: the layers of the architecture v2 design
 * (ARCHITECTURE-V2.md §2.2, issue #16), as far as today's tree allows.
 * Run by `npm run lint:deps` (and by `npm test`, before the tests).
 *
 * `import type` counts (tsPreCompilationDeps): a type import is a design
 * dependency even though it is erased.
 *
 * Every rule is an error. The imports that break a rule today are carved out
 * of it by name into a `known-*` rule of severity `warn` (issue #16,
 * architecture v2): they are printed on every run, and do not fail it. When
 * the refactor removes one, delete its carve-out (from the error rule's
 * `pathNot` and the `known-*` rule) so that it cannot come back. (A new cycle
 * made only of modules of the known cycles is reported as known-circular: the
 * via condition looks at a cycle's modules, not its edges.)
 */

const SRC = '^packages/server/src/';

/** Layer 1, the foundation: imports nothing of the server beyond itself. */
const FOUNDATION = `${SRC}(util/|errors\\.ts$|config\\.ts$|log\\.ts$|version\\.ts$)`;
/** Layer 2, the contracts. */
const CONTRACTS = `${SRC}(broker/broker\\.ts$|history/history\\.ts$)`;
/** The modules of today's import cycles (issue #16). */
const CYCLE_A = `${SRC}(gateway\\.ts|http/api\\.ts|demo/backend\\.ts)$`;
const CYCLE_B = `${SRC}(hub/session\\.ts|protocols/protocol\\.ts)$`;
const CYCLE_C = `${SRC}(broker/ipc\\.ts|transport/admission\\.ts)$`;
const KNOWN_CYCLES = `(${CYCLE_A})|(${CYCLE_B})|(${CYCLE_C})`;

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'An import cycle: the dependency points the wrong way somewhere on it. Cut it with an interface the consumer declares (or a contract of layer 2).',
      from: {},
      to: { circular: true, via: { pathNot: KNOWN_CYCLES } },
    },
    {
      name: 'known-circular',
      severity: 'warn',
      comment:
        'Issue #16: three cycles remain until the refactor removes them: gateway.ts <-> http/api.ts <-> demo/backend.ts (a composition root and a Herald interface for http/ and demo/), ' +
        'hub/session.ts <-> protocols/protocol.ts (Codec and FrameHandler), broker/ipc.ts <-> transport/admission.ts (the IPC message and Refusal types). Then delete this rule and the via of no-circular.',
      from: {},
      to: { circular: true, viaOnly: { path: KNOWN_CYCLES } },
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

    // Layer 1: util/, errors.ts, config.ts, log.ts, version.ts import only layer 0 and each other.
    {
      name: 'foundation-imports-only-foundation',
      severity: 'error',
      comment: 'Layer 1 (util/, errors.ts, config.ts, log.ts, version.ts) imports nothing of the server beyond layer 1.',
      from: { path: FOUNDATION },
      to: { path: SRC, pathNot: [FOUNDATION, `${SRC}http/client-address\\.ts$`] },
    },
    {
      name: 'known-foundation-to-http',
      severity: 'warn',
      comment: 'Issue #16: config.ts takes TrustProxySetting/FORWARDING_HEADERS from http/client-address.ts; the client-address rule belongs in layer 1 (util/ or config.ts).',
      from: { path: FOUNDATION },
      to: { path: `${SRC}http/client-address\\.ts$` },
    },

    // Layer 2: the contracts (broker/broker.ts, history/history.ts) import only layers 0-2.
    {
      name: 'contracts-import-only-foundation',
      severity: 'error',
      comment: 'A contract of layer 2 (broker/broker.ts, history/history.ts) imports only layer 1 and the other contracts.',
      from: { path: CONTRACTS },
      to: { path: SRC, pathNot: [FOUNDATION, CONTRACTS, `${SRC}auth/permissions\\.ts$`] },
    },
    {
      name: 'known-contract-to-auth',
      severity: 'warn',
      comment: 'Issue #16: history/history.ts takes topicMatches from auth/permissions.ts; the topic rules move to a layer-1 topics.ts.',
      from: { path: CONTRACTS },
      to: { path: `${SRC}auth/permissions\\.ts$` },
    },

    // Layer 3: hub/ (the local core) imports layers 0-2 and itself.
    {
      name: 'hub-imports-only-contracts',
      severity: 'error',
      comment: 'hub/ is the local core: it imports layers 0-2 only (never protocols/json|lhttp|raw, auth/, http/, the gateway, a service).',
      from: { path: `${SRC}hub/` },
      to: { path: SRC, pathNot: [FOUNDATION, CONTRACTS, `${SRC}hub/`, `${SRC}protocols/protocol\\.ts$`, `${SRC}auth/permissions\\.ts$`] },
    },
    {
      name: 'known-hub-to-protocol-and-auth',
      severity: 'warn',
      comment:
        'Issue #16: hub/ imports protocols/protocol.ts (the codec and the command handler in one interface; it becomes protocols/codec.ts) ' +
        'and auth/permissions.ts (the Grants type on Session; it moves with the session identity).',
      from: { path: `${SRC}hub/` },
      to: { path: [`${SRC}protocols/protocol\\.ts$`, `${SRC}auth/permissions\\.ts$`] },
    },

    // Layer 4: services and adapters never reach up to the gateway, the public entry or the edges.
    {
      name: 'services-not-to-gateway-or-edges',
      severity: 'error',
      comment: 'Services and adapters (layer 4) never import gateway.ts, index.ts, http/, demo/ or cli/: they are handed what they need.',
      from: { path: `${SRC}(auth|broker|cluster|history|hub|metrics|policy|presence|protocols|transport)/` },
      to: { path: `${SRC}(gateway\\.ts$|index\\.ts$|http/|demo/|cli/)` },
    },

    // Layer 6: the edges (http/, demo/, cli/) depend on Herald, never on the hub.
    {
      name: 'edges-not-to-hub',
      severity: 'error',
      comment: 'http/, demo/ and cli/ are edges: they use the Herald API (and cli/ the internal entry), never hub/.',
      from: { path: `${SRC}(http|demo|cli)/` },
      to: { path: `${SRC}hub/` },
    },
    {
      name: 'http-and-demo-import-only-foundation',
      severity: 'error',
      comment: 'http/ and demo/ import layer 1, http/ itself (demo/ its guard) and, once it exists, the Herald interface: no service, no adapter.',
      from: { path: `${SRC}(http|demo)/` },
      to: { path: SRC, pathNot: [FOUNDATION, `${SRC}http/`, `${SRC}gateway\\.ts$`, `${SRC}demo/backend\\.ts$`] },
    },
    {
      name: 'known-edges-to-gateway',
      severity: 'warn',
      comment:
        'Issue #16: http/api.ts and demo/backend.ts import the concrete gateway.ts (and http/api.ts the demo backend), and cli/main.ts imports gateway.ts for createHerald. ' +
        'They should depend on a public Herald interface, with the demo a plugin registered by a composition root, and the CLI on the internal entry.',
      from: { path: `${SRC}(http|demo|cli)/` },
      to: { path: [`${SRC}gateway\\.ts$`, `${SRC}demo/backend\\.ts$`] },
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
