/**
 * Herald's public library API. Everything not exported here is internal
 * (the CLI and the tests use `herald/internal`).
 */
export { createHerald } from './server.js';
export type {
  BatchItem,
  ConnectHook,
  ConnectInfo,
  ConnectionView,
  DisconnectInfo,
  DisconnectOptions,
  Herald,
  HeraldEvents,
  HeraldOptions,
  HeraldStatus,
  HistoryOptions,
  HistoryPage,
  PublishOptions,
  PushResult,
  StreamPosition,
  UserResult,
  UserSubscribeOptions,
  UserUnsubscribeOptions,
} from './herald.js';
export type {
  Admission,
  CommandContext,
  CommandHandler,
  ConnectionInfo,
  LhttpFilter,
  LhttpMessage,
  LhttpMultipart,
  LhttpProcessor,
  NodeStats,
  NodeView,
  PresenceEntry,
  PresenceView,
  PublicationSource,
} from './herald.js';
export type { LhttpMessage as LhttpHandler } from './herald.js';
export { openResumableStream } from './streams/resumable.js';
export type { ResumableStream, ResumableStreamOptions, StreamChunk, StreamEnd } from './streams/resumable.js';
export type { Refusal } from './transport/transport.js';
export type { Logger } from './log.js';
export { HeraldError, HTTP_STATUS } from './errors.js';
export { ConfigError, configSchema, loadConfig, validateConfig } from './config.js';
export type { HeraldConfig, HeraldConfigInput, ConfigSources } from './config.js';
export type { Broker, BrokerNamespaceInfo, BrokerSink, BrokerState, LhttpPublication, Publication, PublishResult } from './broker/broker.js';
export type { HistoryEntry, HistoryRead, HistoryRule, HistoryStore, Position, PublicationMeta } from './history/history.js';
export type { Tags } from './publication.js';
export { MemoryBroker } from './broker/memory.js';
export { RedisBroker, type RedisBrokerOptions } from './broker/redis.js';
export { NatsBroker, type NatsBrokerOptions } from './broker/nats.js';
export { VERSION } from './version.js';
export { CloseCode, ERROR_CODES, shouldReconnect } from '@herald/protocol';
export type { ErrorCode, Json } from '@herald/protocol';
