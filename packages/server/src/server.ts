import { existsSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { topicProblem as topicNameProblem } from '@herald/protocol';
import { Authenticator } from './auth/authenticator.js';
import { TokenVerifier } from './auth/jwt.js';
import { Permissions } from './auth/permissions.js';
import type { Broker, Publication } from './broker/broker.js';
import { MemoryBroker } from './broker/memory.js';
import { NatsBroker } from './broker/nats.js';
import { RedisBroker } from './broker/redis.js';
import { CompositeBroker } from './broker/composite.js';
import { TopicSubscriptions } from './broker/subscriptions.js';
import { ClusterRegistry } from './cluster/registry.js';
import { Relay, type RelayMessage } from './cluster/relay.js';
import { ConfigError, startupWarnings, validateConfig, type HeraldConfig } from './config.js';
import { registerDemoBackend, withDemoSecret } from './demo/backend.js';
import { HeraldError } from './errors.js';
import { Gateway } from './gateway.js';
import type { Herald, HeraldOptions } from './herald.js';
import { MemoryHistory, type HistoryStore } from './history/history.js';
import { ruleFor } from './topics.js';
import { LatestValues } from './history/latest.js';
import { Recovery } from './history/recovery.js';
import { buildHttpApp } from './http/app.js';
import { createClientAddressResolver } from './util/client-address.js';
import { Flusher } from './hub/flusher.js';
import { Hub } from './hub/hub.js';
import type { Session } from './hub/session.js';
import { createLogger, type Logger } from './log.js';
import { Metrics } from './metrics/metrics.js';
import { Policy } from './policy/policy.js';
import { PresenceTracker } from './presence/tracker.js';
import { Protocols } from './protocols/registry.js';
import { Proxies } from './proxy/proxies.js';
import { Publisher } from './publish/publisher.js';
import { Pusher } from './publish/push.js';
import { PusherApps } from './pusher/apps.js';
import { restrictedPrefixes, withPusherRules } from './pusher/rules.js';
import { ConnectionGate, LocalAdmission } from './transport/admission.js';
import { Heartbeat } from './transport/heartbeat.js';
import { createSseHandler } from './transport/sse.js';
import { registerStreamRoutes } from './transport/stream-routes.js';
import { StreamSessions } from './transport/stream-sessions.js';
import { createUpgradeHandler } from './transport/websocket.js';
import { Users, type UserMessage } from './users/users.js';
import { LifecycleEvents } from './events/events.js';
import { EventSinks } from './events/sinks.js';
import { ChannelCensus, type CensusMessage } from './pusher/census.js';
import { registerPusherHttpApi } from './pusher/http-api.js';
import { PusherWebhooks } from './pusher/webhooks.js';
import { VERSION } from './version.js';

/** The repository's demo/ folder (demo pages and the dashboard), when Herald runs from a checkout or a package that ships it. */
const DEMO_DIR = fileURLToPath(new URL('../../../../demo', import.meta.url));

/**
 * Starts a Herald server and resolves once it listens: the composition root.
 * Start: configuration → logger → broker (and its history store) → the
 * services → the gateway → the HTTP app (and the demo backend when on, and
 * the SSE route) → the WebSocket upgrade handler → broker start → listen. Stop
 * (`herald.close()`): drain the connections → HTTP server → cluster registry
 * → broker. Rejects with `ConfigError` for a bad configuration and with the
 * broker's or the listener's error when either cannot start.
 */
export async function createHerald(options: HeraldOptions = {}): Promise<Herald> {
  const { logger, onConnect, brokerInstance, admission, workerOf, ...input } = options;
  const given = validateConfig(input);
  const { jwt, connectHook } = given.auth;
  // Asked of the configuration as given: the secret the demo backend makes up is no credential of the operator's.
  const credentialsConfigured = given.apiKeys.length > 0 || Boolean(jwt.secret || jwt.publicKey || jwt.jwksUrl || connectHook.url);
  const pusherApps = new PusherApps(given.pusher);
  // Each Pusher app's presence and cache channels have their rules (pusher/rules.ts).
  const config = withPusherRules(withEventsTopic(withDemoSecret(given)), pusherApps);
  const eventsTopic = config.events.topic.name;
  const log = logger ?? createLogger(config.log);
  const nodeId = config.nodeId ?? `${hostname()}-${randomUUID().slice(0, 8)}`;
  const broker = brokerInstance ?? createBroker(config, nodeId, log);
  const history = createHistoryStore(config, broker);
  const topicProblem = (topic: string): string | null => topicNameProblem(topic, config.limits.maxTopicLength) ?? broker.topicProblem(topic);
  const eventsTopicProblem = eventsTopic !== undefined ? topicProblem(eventsTopic) : null;
  if (eventsTopicProblem) throw new ConfigError([`events.topic.name: ${eventsTopicProblem}`]);

  // Services that call back into the gateway's lifecycle get it through this late binding (it is built last).
  let gateway!: Gateway;
  const closeSession: Gateway['closeSession'] = (session, code, reason) => gateway.closeSession(session, code, reason);
  const reportError: Gateway['reportError'] = (session, err) => gateway.reportError(session, err);
  const closing = (): boolean => gateway.closing;
  // The lifecycle events topic takes the events of the shutdown itself (its connections' closes) while the node drains.
  const publishClosing = (topic: string): boolean => gateway.closing && topic !== eventsTopic;

  const hub: Hub = new Hub({
    onTopicOpened: (topic) => {
      subscriptions.opened(topic);
      events.topicOpened(topic);
    },
    onTopicClosed: (topic) => {
      subscriptions.closed(topic);
      events.topicClosed(topic);
    },
    onSubscribed: (session, topic) => presence.changed('join', session, topic),
    onUnsubscribed: (session, topic) => {
      session.dropSubscribeGrant(topic);
      session.dropTopicInfo(topic);
      presence.changed('leave', session, topic);
    },
    onUserOnline: (uid) => {
      cluster.userOnline(uid);
      events.userOnline(uid);
    },
    onUserOffline: (uid) => {
      cluster.userOffline(uid);
      events.userOffline(uid);
    },
    onIdentified: (session) => users.identified(session),
  });
  const metrics: Metrics = new Metrics({
    connectionsByProtocol: (): Map<string, number> => {
      const spoken = config.sse.enabled ? [...protocols.spoken, 'sse'] : protocols.spoken;
      const counts = new Map<string, number>(spoken.map((name): [string, number] => [name, 0]));
      for (const session of hub.sessions.values()) counts.set(session.codec.name, (counts.get(session.codec.name) ?? 0) + 1);
      return counts;
    },
    topics: () => hub.topicCount,
    subscriptions: () => hub.subscriptions,
    users: () => hub.userCount,
    queuedBytes: () => Array.from(hub.sessions.values(), (session) => session.queuedBytes),
    brokerName: () => broker.name,
    brokerReady: () => broker.state === 'ready',
  });
  // Cache-mode topics' latest values, for a history store that is not shared (history/latest.ts).
  const latest = new LatestValues(config.historyMaxBytes);
  const publisher: Publisher = new Publisher({ config, broker, history, hub, metrics, latest, topicProblem, closing: publishClosing });
  // History kept per process with a broker other processes publish through: a recovery vouches for what
  // this process stored, so not once a publication it did not store (another node's, a raw publisher's)
  // reached one of its history topics, nor once another node was heard of.
  let foreignHistory = false;
  const fromBroker = (publication: Publication): void => {
    if (!foreignHistory && !history.appendPublishes && publication.offset === undefined && ruleFor(config.history, publication.topic)) foreignHistory = true;
    publisher.receive(publication);
  };
  const subscriptions: TopicSubscriptions = new TopicSubscriptions({ config, broker, history, hub, metrics, log, deliver: fromBroker });
  const cluster: ClusterRegistry = new ClusterRegistry(
    nodeId,
    broker,
    {
      stats: () => gateway.nodeStats(),
      localUsers: () => hub.userIds(),
      deliverPush: (uids, payload, raw) => {
        hub.push(uids, payload, raw);
      },
      localPresence: () => presence.store.localEntries(),
      remotePresence: (node, change, topic, entry) => presence.remote(node, change, topic, entry),
      remotePresenceReset: (node, entries) => presence.reset(node, entries),
      localTopics: () => events.trackedTopics(),
      remoteUsers: (_node, added, removed) => events.remoteUsers(added, removed),
      remoteTopics: (_node, opened, closed) => events.remoteTopics(opened, closed),
      remoteGone: (node, crashed) => events.remoteGone(node, crashed),
      remoteAlive: (node) => events.remoteAlive(node),
      readyAlone: () => events.catchUp(),
    },
    config.cluster.heartbeatInterval,
    log,
  );
  const presence: PresenceTracker = new PresenceTracker({
    rules: config.presence, hub, share: cluster, topicProblem,
    observe: (node, change, topic, entry) => events.presence(node, change, topic, entry),
  });
  // Lifecycle events (docs/backend.md): every node computes them, one emits each; the sinks deliver what this node emits.
  const events: LifecycleEvents = new LifecycleEvents({
    nodeId,
    kinds: config.events.kinds,
    topics: config.events.topics,
    // Past the time a dead node takes to be forgotten (three heartbeats, checked once per heartbeat).
    handoff: 5 * config.cluster.heartbeatInterval,
    // A change reaches every node through the broker within this (a heartbeat after it shows its owner saw it).
    margin: Math.min(1_000, config.cluster.heartbeatInterval),
    metrics,
    log: log.child({ component: 'events' }),
    host: {
      nodeId,
      candidates: () => cluster.candidates(),
      localTopic: (topic) => hub.subscriberCount(topic) > 0,
      topicHolders: (topic) => cluster.topicHolders(topic),
      localUser: (uid) => hub.userSessions(uid).size > 0,
      userHolders: (uid) => cluster.nodesHolding(uid).length,
      memberConnections: (topic, uid) => presence.store.connectionsOf(topic, uid),
      localTopics: () => hub.topicNames(),
      presentUsers: function* () {
        yield* hub.userIds();
        yield* cluster.remoteUsers();
      },
      presentTopics: function* () {
        yield* hub.topicNames();
        yield* cluster.remoteTopics();
      },
      presentMembers: () => presence.store.members(),
      shareTopic: (topic, open) => (open ? cluster.topicOpened(topic) : cluster.topicClosed(topic)),
    },
  });
  const eventSinks = new EventSinks(
    events,
    config.events,
    (topic, message, idempotencyKey) => publisher.publish(topic, message, 'library', { idempotencyKey }),
    metrics,
    log.child({ component: 'events' }),
  );
  // The Pusher apps' webhooks, on the same lifecycle events (occupancy, members) plus the protocol's client events and cache misses.
  const pusherWebhooks = config.pusher.enabled ? new PusherWebhooks(pusherApps, events, eventSinks) : undefined;
  const tokens = new TokenVerifier(config.auth.jwt);
  const permissions = new Permissions(config.auth, config.clientPublish, eventsTopic !== undefined ? [eventsTopic] : [], restrictedPrefixes(config, pusherApps));
  const proxies = new Proxies({ config: config.proxy, metrics, log: log.child({ component: 'proxy' }) });
  const policy: Policy = new Policy({ config, hub, permissions, proxies, topicProblem, publish: (...args) => publisher.publish(...args), publishLhttp: (...args) => publisher.publishLhttp(...args) });
  const refresh = proxies.refreshes ? { interval: proxies.refreshInterval, ask: (session: Session) => proxies.refresh(session) } : undefined;
  const auth = new Authenticator({ config, tokens, permissions, hub, onConnect, topicProblem, closeSession, proxyHeaders: proxies.headerNames, refresh, log });
  const recovery: Recovery = new Recovery({
    config, history, broker, live: subscriptions.live, latest, log, topicProblem,
    whenCarried: (topics) => subscriptions.whenCarried(topics),
    filterOf: (session, topic) => hub.filterOf(session, topic),
    filteredOut: (count) => metrics.filtered.inc(count),
    vouches: () => broker.name === 'memory' || Boolean(history.appendPublishes) || (!foreignHistory && !cluster.peersSeen),
  });
  // The server API on users' connections, here and on the nodes that hold them (docs/backend.md).
  const users: Users = new Users({
    nodeId, hub, broker, cluster, log, topicProblem, closeSession, reportError,
    timeout: config.cluster.requestTimeout,
    maxTopicsPerConnection: config.limits.maxTopicsPerConnection,
    recover: (session, topic, since, respond) => recovery.subscribe(session, topic, since, respond),
  });
  for (const type of ['user', 'user-done', 'user-topics?', 'user-topics'] as const) cluster.route<UserMessage>(type, (message) => users.receive(message));
  const protocols: Protocols = new Protocols({
    config,
    policy,
    topicProblem,
    closeSession,
    reportError,
    json: {
      tokens,
      login: (session, token) => auth.login(session, token),
      insecureLogin: (session, uid) => auth.insecureLogin(session, uid),
      recover: (session, topic, since, respond) => recovery.subscribe(session, topic, since, respond),
      whenSubscribed: (topics) => subscriptions.whenCarried(topics),
      presence: (topic) => presence.view(topic),
      historyOf: (topic, options) => recovery.page(topic, options),
      rpc: (session, method, data) => proxies.rpc(session, method, data),
      reportError,
    },
    pusher: {
      apps: pusherApps,
      host: {
        recover: (session, topic, since, respond) => recovery.subscribe(session, topic, since, respond),
        whenSubscribed: (topics) => subscriptions.whenCarried(topics),
        presenceEntries: (topic) => presence.entries(topic),
        presenceUsers: (topic) => presence.userCount(topic),
        isCached: (topic) => ruleFor(config.history, topic)?.cache === true,
        identify: (session, uid) => hub.setUser(session, uid),
        ...(pusherWebhooks ? { observer: {
          clientEvent: (app, event) => pusherWebhooks.clientEvent(app, event.channel, event.event, typeof event.data === 'string' ? event.data : JSON.stringify(event.data), event.socketId, event.userId),
          cacheMiss: (app, channel) => pusherWebhooks.cacheMiss(app, channel),
        } } : {}),
      },
    },
  });
  const clientAddress = createClientAddressResolver(config.trustProxy, config.proxyHeader);
  const gate = new ConnectionGate(admission ?? new LocalAdmission(config.limits), clientAddress, config.allowedOrigins);
  const heartbeat = new Heartbeat(hub.sessions, { interval: config.heartbeat.interval, timeout: config.heartbeat.timeout, appPing: config.heartbeat.appPing, minReadRate: config.heartbeat.minReadRate }, (session) => {
    // A protocol with a close code for it (Pusher's 4201) is told, and cut after shutdown.timeout if it does not answer the close.
    const code = session.handler.deadPeerCode;
    if (code === undefined) gateway.terminateSession(session, 'heartbeat timeout: no answer to ping');
    else gateway.closeSession(session, code, 'Pong reply not received: no answer to ping');
  });
  gateway = new Gateway({
    config, log, nodeId, broker, hub, flusher: new Flusher(), metrics, cluster, policy, publisher, pusher: new Pusher({ hub, cluster, metrics, closing, encodeMessage: (message) => publisher.encodeMessage(message) }),
    recovery, history, subscriptions, presence, auth, protocols, gate, heartbeat, users, workerOf, topicProblem, events, eventSinks,
  });
  gateway.on('disconnect', (connection, info) => events.connectionClosed(connection.id, connection.uid, info.code, info.reason));

  // HTTP streaming: the streams this node holds, and commands for them relayed from the node a POST landed on.
  const streams = new StreamSessions(nodeId);
  const relay = new Relay(nodeId, broker, { feed: (session, frames) => streams.feed(session, frames), mayHold: (node) => cluster.mayBeLive(node) }, { timeout: config.stream.relayTimeout, log });
  cluster.route<RelayMessage>('relay', (message) => relay.receive(message));
  cluster.route<RelayMessage>('relayed', (message) => relay.receive(message));
  const streamRoutes = (scope: FastifyInstance): void =>
    registerStreamRoutes(scope, gateway, streams, {
      path: config.stream.path,
      protocol: protocols.stream,
      maxFrameBytes: config.limits.maxFrameBytes,
      relayTimeout: config.stream.relayTimeout,
      allowedOrigins: config.allowedOrigins,
      forward: (node, session, frames) => relay.send(node, session, frames),
    });

  const demoDir = config.demo.dir ?? DEMO_DIR;
  const servedDemo = config.demo.enabled && existsSync(demoDir) ? demoDir : null;
  const plugins: Array<(scope: FastifyInstance) => void> = [];
  if (servedDemo && config.demo.backend) plugins.push((scope) => registerDemoBackend(scope, gateway, clientAddress));
  if (config.sse.enabled) plugins.push((scope) => sseRoute(scope, config.sse.path, gateway, protocols));
  if (config.stream.enabled) plugins.push(streamRoutes);
  if (config.pusher.enabled) plugins.push(pusherHttpApi(config, { apps: pusherApps, nodeId, broker, hub, cluster, presence, gateway, log }));
  const app = buildHttpApp(gateway, {
    metrics,
    clientAddress,
    demoDir: servedDemo,
    dashboardDir: existsSync(join(DEMO_DIR, 'dashboard.html')) ? DEMO_DIR : null,
    plugins,
  });
  app.server.on('upgrade', createUpgradeHandler(gateway, { wsPath: config.wsPath, maxFrameBytes: config.limits.maxFrameBytes, maxMessageFragments: config.limits.maxMessageFragments, log }));

  let brokerWasDown = false;
  await broker.start({
    deliver: (publication) => subscriptions.received(publication),
    onControl: (message) => cluster.onControl(message),
    onResumed: (carries) => subscriptions.resumed(carries),
    onStateChange: (state, detail) => {
      if (state === 'ready' && brokerWasDown) metrics.brokerReconnects.inc();
      if (state === 'down') brokerWasDown = true;
      log[state === 'down' ? 'warn' : 'info']({ broker: broker.name, state, detail }, 'broker state');
      if (state === 'ready') {
        cluster.announce();
        users.announce();
      }
      gateway.brokerState(state, detail);
    },
  });
  if (broker.name !== 'memory') cluster.start();
  gateway.serve({ server: app.server, address: () => app.server.address(), get listening() { return app.server.listening; }, close: () => app.close() });
  await app.listen({ port: config.port, host: config.host });
  heartbeat.start();
  log.info({ url: gateway.url, node: nodeId, broker: broker.name, version: VERSION }, 'herald listening');
  const facts = { historyShared: history.appendPublishes, brokerName: broker.name, rawNamespaces: broker.namespaces ?? [], credentialsConfigured };
  for (const warning of startupWarnings(config, facts)) log.warn(warning.detail ?? {}, warning.message);
  return gateway;
}

/**
 * `GET path`: SSE streams (transport/sse.ts), a route of the HTTP app that
 * takes the response over (`reply.hijack()`, then under HTTP/1.x the socket
 * itself) and hands it to the gateway as a connection, as the upgrade
 * handler does with a WebSocket.
 */
function sseRoute(app: FastifyInstance, path: string, gateway: Gateway, protocols: Protocols): void {
  const handler = createSseHandler(
    {
      admit: (request) => gateway.admit(request),
      release: (request) => gateway.release(request),
      get closing() {
        return gateway.closing;
      },
      stream: (query, lastEventId) => protocols.sse.open(query, lastEventId),
      accept: (transport, request, protocol) => gateway.accept(transport, request, protocol),
    },
    { allowedOrigins: gateway.config.allowedOrigins },
  );
  app.route({
    method: 'GET',
    url: path,
    exposeHeadRoute: false,
    // A stream lives as long as its connection, and Fastify's request with it: no child logger per stream
    // (about 2 KB each: its bindings and bound methods); a session logs with its connection id.
    childLoggerFactory: (logger) => logger,
    handler: (request, reply) => {
      reply.hijack();
      return handler(request.raw, reply.raw);
    },
  });
}

/**
 * Pusher's HTTP API (`/apps/{id}/...`, pusher/http-api.ts) as a plugin of the
 * HTTP app, over the gateway's publication path and server API, Herald's
 * presence (user counts and lists, cluster-wide) and a census of every
 * node's subscriptions (pusher/census.ts, whose control messages the cluster
 * registry dispatches to it).
 */
function pusherHttpApi(
  config: HeraldConfig,
  parts: { apps: PusherApps; nodeId: string; broker: Broker; hub: Hub; cluster: ClusterRegistry; presence: PresenceTracker; gateway: Gateway; log: Logger },
): (scope: FastifyInstance) => void {
  const { apps, nodeId, broker, hub, cluster, presence, gateway } = parts;
  const log = parts.log.child({ component: 'pusher' });
  const census = new ChannelCensus(
    nodeId,
    broker,
    { topicNames: () => hub.topicNames(), subscriberCount: (topic) => hub.subscriberCount(topic), peers: () => cluster.view().filter((node) => !node.self).map((node) => node.id) },
    { timeout: config.cluster.requestTimeout, log },
  );
  for (const type of ['pusher-census?', 'pusher-census'] as const) cluster.route<CensusMessage>(type, (message) => census.receive(message));
  const presenceUids = (topic: string): string[] | null => {
    if (!ruleFor(config.presence, topic)) return null;
    const uids = new Set<string>();
    for (const entry of presence.store.view(topic, Number.MAX_SAFE_INTEGER).list) if (entry.uid !== undefined) uids.add(entry.uid);
    return [...uids];
  };
  return (scope) =>
    registerPusherHttpApi(scope, {
      apps,
      timestampWindow: config.pusher.timestampWindow,
      log,
      broadcast: (topics, message, source, options) => gateway.broadcast(topics, message, source, options),
      publishMany: (items, source) => gateway.publishMany(items, source),
      census: (query) => census.count(query),
      presenceUids,
      disconnectUser: (uid, options) => gateway.disconnectUser(uid, options),
    });
}

function createBroker(config: HeraldConfig, nodeId: string, log: Logger): Broker {
  const publishTimeout = config.publishTimeout;
  if (config.broker === 'nats' && config.historyStore === 'redis') {
    const nats = new NatsBroker({ ...config.nats, nodeId, publishTimeout, log: log.child({ component: 'nats' }) });
    const redis = new RedisBroker({ ...config.redis, nodeId, publishTimeout, log: log.child({ component: 'redis' }) });
    return new CompositeBroker(nats, redis, (topic) => ruleFor(config.history, topic) !== undefined);
  }
  switch (config.broker) {
    case 'redis':
      return new RedisBroker({ ...config.redis, nodeId, publishTimeout, log: log.child({ component: 'redis' }) });
    case 'nats':
      return new NatsBroker({ ...config.nats, nodeId, publishTimeout, log: log.child({ component: 'nats' }) });
    default:
      return new MemoryBroker();
  }
}

/**
 * The configuration with the lifecycle events topic's history rule first
 * (`events.topic`: its size and ttl), so that a backend subscribed to it
 * recovers by offset; unchanged without an events topic.
 */
function withEventsTopic(config: HeraldConfig): HeraldConfig {
  const { name, size = 10_000, ttl = 86_400_000 } = config.events.topic;
  if (name === undefined) return config;
  return { ...config, history: [{ pattern: name, size, ttl, cache: false }, ...config.history] };
}

/** Where history is kept: in the broker's shared store when it has one (Redis), else in this process's memory. */
function createHistoryStore(config: HeraldConfig, broker: Broker): HistoryStore {
  if (config.historyStore === 'memory') return new MemoryHistory(config.historyMaxBytes);
  const shared = broker.sharedHistory?.();
  if (shared) return shared;
  if (config.historyStore === 'redis') throw new HeraldError('bad_request', 'historyStore "redis" needs broker "redis" or "nats"');
  return new MemoryHistory(config.historyMaxBytes);
}
