/**
 * Compile-only: the public entry is enough to use every part of the library
 * API with its types (issue #16). This file imports nothing but the public
 * entry; `npm test` compiles it (tsc -b) and never runs it. A signature that
 * uses a type the entry does not export, or an internal that leaks into the
 * `Herald` interface, fails the build.
 */
import {
  CloseCode,
  ConfigError,
  createHerald,
  HeraldError,
  HTTP_STATUS,
  MemoryBroker,
  NatsBroker,
  openResumableStream,
  RedisBroker,
  shouldReconnect,
  validateConfig,
  type BatchItem,
  type Broker,
  type BrokerSink,
  type CommandHandler,
  type ConnectHook,
  type ConnectInfo,
  type ConnectionView,
  type DisconnectInfo,
  type DisconnectOptions,
  type UserResult,
  type UserSubscribeOptions,
  type UserUnsubscribeOptions,
  type Herald,
  type HeraldConfig,
  type HeraldOptions,
  type HeraldStatus,
  type HistoryOptions,
  type ResumableStream,
  type ResumableStreamOptions,
  type StreamChunk,
  type StreamEnd,
  type HistoryPage,
  type LhttpFilter,
  type LhttpHandler,
  type LhttpProcessor,
  type Logger,
  type NatsBrokerOptions,
  type NodeView,
  type PresenceView,
  type PublicationSource,
  type PublishOptions,
  type PublishResult,
  type PushResult,
  type RedisBrokerOptions,
  type StreamPosition,
} from '../../src/index.js';

export async function usePublicApi(logger: Logger): Promise<void> {
  const onConnect: ConnectHook = (connection: ConnectInfo) => {
    if (connection.headers['x-banned']) throw new HeraldError('forbidden', 'banned');
  };
  const options: HeraldOptions = { port: 0, logger, onConnect, history: [{ pattern: 'chat:*', size: 100 }] };
  const herald: Herald = await createHerald(options);

  const source: PublicationSource = 'library';
  const publishOptions: PublishOptions = { idempotencyKey: 'k1' };
  const published: PublishResult = await herald.publish('chat:1', { text: 'hi' }, source, publishOptions);
  const batch: BatchItem[] = [{ topic: 'chat:1', message: 1 }, { topic: 'chat:2', message: 2, idempotencyKey: 'k2', label: 'second' }];
  const many: PublishResult[] = await herald.publishMany(batch);
  await herald.publishLhttp('chat:1', { text: 'LHTTP/1.0 chat\r\n\r\nhi', command: 'chat', headers: [] }, 'hi');

  const pushed: PushResult = await herald.send(['alice', 'bob'], { kind: 'notice' });
  await herald.sendSeed('alice', 'plain text');

  const since: StreamPosition = { offset: published.offset ?? 0, epoch: published.epoch ?? '' };
  const historyOptions: HistoryOptions = { since, limit: 10, reverse: false };
  const page: HistoryPage = await herald.historyOf('chat:1', historyOptions);
  const presence: PresenceView = herald.presence('chat:1');
  const nodes: NodeView[] = herald.clusterView();
  const status: HeraldStatus = herald.status();
  const busiest: Array<{ topic: string; subscribers: number }> = herald.busiestTopics(5);

  const handler: CommandHandler = (command, context) => ({ echo: command.text, from: context.connection.uid });
  herald.handle('echo', handler).on('disconnect', (_connection, info: DisconnectInfo) => void info.code);
  const processor: LhttpProcessor = { onMessage: (h: LhttpHandler) => h.send(h.getBody()) };
  const filter: LhttpFilter = { beforeRequest: (h: LhttpHandler) => void h.getCommand() };
  herald.lhttp.register('echo', processor);
  herald.lhttp.addFilter(filter);

  // The server API on users' connections, and publications that skip their sender.
  const subscribed: UserResult = await herald.subscribeUser('alice', ['room:1', 'room:2'], { persistent: true } satisfies UserSubscribeOptions);
  const left: UserResult = await herald.unsubscribeUser('alice', 'room:2', { reason: 'kicked' } satisfies UserUnsubscribeOptions);
  const closed: UserResult = await herald.disconnectUser('mallory', { code: 4000, reason: 'reconnect' } satisfies DisconnectOptions);
  const connections: ConnectionView[] = await herald.listConnections('alice');
  const sent: PublishResult[] = await herald.broadcast(['a', 'b'], { once: true }, 'library', { exclude: connections[0]?.id ?? '' });
  void [subscribed.connections, left.nodes, closed, sent, herald.publish('a', 1, 'library', { exclude: 'x' })];

  const config: HeraldConfig = herald.config;
  const ready: boolean = herald.ready && !herald.closing && herald.broker.state === 'ready';
  const url: string = `${herald.url}:${herald.port}${config.wsPath}`;
  void [many, pushed, page, presence, nodes, status, busiest, ready, url, herald.isUserConnected('alice'), herald.userConnections('alice'), herald.disconnect('alice', 'bye')];
  void [HTTP_STATUS.not_found, CloseCode.GOING_AWAY, shouldReconnect(1001)];

  // @ts-expect-error the hub is internal: not part of the public interface
  void herald.hub;
  // @ts-expect-error connections are accepted by the transport, not through the public API
  void herald.accept;

  await herald.close();
}

/** A resumable stream: the writer over the public interface, and its messages' shapes. */
export async function streamAnswer(herald: Herald, tokens: AsyncIterable<string>): Promise<StreamChunk[]> {
  const options: ResumableStreamOptions = {};
  const stream: ResumableStream = await openResumableStream(herald, 'answer:1', options);
  const chunks: StreamChunk[] = [];
  for await (const text of tokens) {
    void stream.append(text);
    chunks.push({ seq: stream.chunks, text });
  }
  const end: StreamEnd = { seq: stream.chunks + 1, end: 'done' };
  const { offset, epoch } = await stream.end();
  void [end, offset, epoch, stream.from, stream.capacity, stream.ended, stream.topic, stream.id];
  return chunks;
}

export function buildBrokers(logger: Logger): Broker[] {
  const redis: RedisBrokerOptions = { url: 'redis://127.0.0.1:6379', sentinels: [], sentinelName: 'mymaster', prefix: 'herald:', nodeId: 'n1', publishTimeout: 5000, log: logger };
  const nats: NatsBrokerOptions = { url: 'nats://127.0.0.1:4222', prefix: 'herald.', nodeId: 'n1', publishTimeout: 5000, log: logger };
  const sink: BrokerSink | undefined = undefined;
  void sink;
  return [new MemoryBroker(), new RedisBroker(redis), new NatsBroker(nats)];
}

export function checkConfig(input: unknown): HeraldConfig | string {
  try {
    return validateConfig(input);
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
}
