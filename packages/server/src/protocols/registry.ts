import { SUBPROTOCOL_JSON, SUBPROTOCOL_LHTTP } from '@herald/protocol';
import type { HeraldConfig } from '../config.js';
import { ConfigError } from '../config.js';
import type { Session } from '../hub/session.js';
import type { Policy } from '../policy/policy.js';
import { ruleFor } from '../topics.js';
import { PathPatterns } from '../util/paths.js';
import { jsonCodec, jsonStreamCodec } from './json/codec.js';
import { JsonCommands, type JsonCommandsHost } from './json/commands.js';
import { pubSubFilter, upstreamFilter } from './lhttp/builtins.js';
import { lhttpCodec } from './lhttp/codec.js';
import { LhttpProtocol, type LhttpFilter, type LhttpProcessor } from './lhttp/protocol.js';
import type { Protocol } from './protocol.js';
import { RawProtocol } from './raw.js';
import { SseStreams } from './sse/streams.js';
import { PusherProtocols } from './pusher/protocol.js';
import type { PusherHost } from './pusher/handler.js';
import type { PusherApps } from '../pusher/apps.js';

export interface ProtocolsOptions {
  readonly config: HeraldConfig;
  readonly policy: Policy;
  /** What the JSON commands need from the services. */
  readonly json: Omit<JsonCommandsHost, 'policy' | 'maxTopicsPerConnection'>;
  /** Herald's topic rule plus the broker's: why a topic is refused, or null (checks the raw endpoints' topics). */
  topicProblem(topic: string): string | null;
  closeSession(session: Session, code: number, reason: string): void;
  reportError(session: Session, err: unknown): void;
  /** The Pusher apps and what their protocol needs, when `pusher.enabled` (docs/pusher.md). */
  readonly pusher?: { apps: PusherApps; host: Omit<PusherHost, 'policy' | 'closeSession' | 'reportError'> };
}

/**
 * The protocols this node speaks, and which one a new connection gets: by
 * path, first `wsPath` (JSON), then the raw endpoints, then `lhttp.paths`
 * (LHTTP); `/app/{key}` (Pusher, when enabled, whatever is offered); a subprotocol the client offers in `Sec-WebSocket-Protocol`
 * (`json`, `lhttp`) wins on any of these paths. Adding a protocol is one
 * entry here: a codec plus a frame handler.
 */
export class Protocols {
  /** The JSON protocol's commands (the application's custom actions register here). */
  readonly json: JsonCommands;
  /** The LHTTP pipeline (the Lhttp seed's processors and filters register here). */
  readonly lhttp: LhttpProtocol;
  /** SSE streams: the JSON protocol's server frames as events (`GET sse.path`, transport/sse.ts). */
  readonly sse: SseStreams;
  /** The JSON protocol in the HTTP-streaming framing (NDJSON lines): the same commands, its own codec. */
  readonly stream: Protocol;
  /** The Pusher Channels protocol at `/app/{key}`, when `pusher.enabled`; null otherwise. */
  readonly pusher: PusherProtocols | null;
  private readonly byName = new Map<string, Protocol>();
  private readonly defaultProtocol: Protocol;
  private readonly lhttpPaths: PathPatterns;
  /** The JSON protocol's path. */
  private readonly wsPath: string;
  /** The raw endpoints, in configuration order, each with its path patterns. */
  private readonly rawEndpoints: Array<{ paths: PathPatterns; protocol: Protocol }>;

  constructor(options: ProtocolsOptions) {
    const { config, policy } = options;
    this.json = new JsonCommands({ ...options.json, policy, maxTopicsPerConnection: config.limits.maxTopicsPerConnection });
    this.defaultProtocol = { codec: jsonCodec, handler: this.json };
    this.byName.set(SUBPROTOCOL_JSON, this.defaultProtocol);
    this.stream = { codec: jsonStreamCodec, handler: this.json };
    // A cache-mode topic's latest value follows an LHTTP subscribe too (the JSON and SSE ones get it from the recovery's answer).
    const subscribed = (session: Session, topic: string): void => {
      if (!ruleFor(config.history, topic)?.cache) return;
      const pending = options.json.recover(session, topic, undefined, (_result, frames) => {
        for (const frame of frames) session.write(frame);
      });
      if (pending) pending.catch((err: unknown) => options.reportError(session, err));
    };
    this.lhttp = new LhttpProtocol([pubSubFilter({ policy, subscribed }), upstreamFilter(config.lhttp.upstream)], options.reportError);
    this.byName.set(SUBPROTOCOL_LHTTP, { codec: lhttpCodec, handler: this.lhttp });
    this.lhttpPaths = new PathPatterns(config.lhttp.paths);
    this.sse = new SseStreams({
      policy,
      maxTopicsPerConnection: config.limits.maxTopicsPerConnection,
      extraTopics: config.auth.connectHook.url !== undefined,
      topicProblem: options.topicProblem,
      recover: options.json.recover,
      closeSession: options.closeSession,
      reportError: options.reportError,
    });
    this.wsPath = config.wsPath;
    this.pusher = options.pusher && config.pusher.enabled
      ? new PusherProtocols(options.pusher.apps, { ...options.pusher.host, policy, closeSession: options.closeSession, reportError: options.reportError }, options.closeSession)
      : null;
    checkRawEndpoints(config, options.topicProblem);
    this.rawEndpoints = config.raw.map((endpoint) => {
      const handler = new RawProtocol({ policy, closeSession: options.closeSession, reportError: options.reportError }, endpoint);
      return { paths: new PathPatterns([endpoint.path]), protocol: { codec: handler.codec, handler } };
    });
  }

  /** The subprotocols a client may offer. */
  get names(): string[] {
    return [...this.byName.keys()];
  }

  /** Every protocol a connection may speak here (for per-protocol metrics): the offered ones, plus `raw` with raw endpoints. */
  get spoken(): string[] {
    const names = [...this.byName.keys()];
    if (this.rawEndpoints.length > 0) names.push('raw');
    if (this.pusher) names.push('pusher');
    return names;
  }

  /**
   * The protocol of a new connection on `path` for the offered subprotocols:
   * undefined when no endpoint is at that path, null when none of the offered
   * subprotocols is spoken.
   */
  forPath(path: string, offered: Set<string>): Protocol | null | undefined {
    let byPath: Protocol | undefined;
    // Pusher clients offer no subprotocol; whatever they offer, /app/{key} speaks Pusher.
    const pusher = this.pusher?.forPath(path);
    if (pusher) return pusher;
    if (path === this.wsPath) byPath = this.defaultProtocol;
    else byPath = this.rawEndpoints.find((endpoint) => endpoint.paths.matches(path))?.protocol ?? (this.lhttpPaths.matches(path) ? this.byName.get(SUBPROTOCOL_LHTTP) : undefined);
    if (!byPath) return undefined;
    if (offered.size === 0) return byPath;
    for (const name of offered) {
      const protocol = this.byName.get(name);
      if (protocol) return protocol;
    }
    return null;
  }

  /** The Lhttp seed's server API (docs/lhttp.md). */
  readonly lhttpApi = {
    register: (command: string, processor: LhttpProcessor): void => this.lhttp.register(command, processor),
    addFilter: (filter: LhttpFilter): void => this.lhttp.addFilter(filter),
  };
}

/** Checks what the schema cannot: the raw endpoints' topics against the topic rule (and the broker's), their paths against wsPath. */
function checkRawEndpoints(config: HeraldConfig, topicProblem: (topic: string) => string | null): void {
  const problems: string[] = [];
  config.raw.forEach((endpoint, index) => {
    if (endpoint.path === config.wsPath) problems.push(`raw.${index}.path: ${endpoint.path} is wsPath, where the JSON protocol is spoken`);
    const topics = endpoint.publish === false ? endpoint.topics : [...endpoint.topics, endpoint.publish];
    for (const topic of topics) {
      const problem = topicProblem(topic);
      if (problem) problems.push(`raw.${index}: ${problem}`);
    }
    const { maxTopicsPerConnection, subscriptionBurst } = config.limits;
    if (endpoint.topics.length > Math.min(maxTopicsPerConnection, subscriptionBurst)) {
      const [limit, name] = maxTopicsPerConnection <= subscriptionBurst ? [maxTopicsPerConnection, 'maxTopicsPerConnection'] : [subscriptionBurst, 'subscriptionBurst'];
      problems.push(`raw.${index}.topics: ${endpoint.topics.length} topics, over limits.${name} (${limit})`);
    }
  });
  if (problems.length > 0) throw new ConfigError(problems);
}
