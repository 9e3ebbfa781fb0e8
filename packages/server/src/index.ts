/**
 * Herald's public library API. Everything not exported here is internal.
 */
export { createHerald, Herald } from './gateway.js';
export type { BatchItem, ConnectHook, ConnectInfo, DisconnectInfo, HeraldEvents, HeraldOptions, HeraldStatus } from './gateway.js';
export type { CommandContext, CommandHandler, ConnectionInfo } from './protocols/json.js';
export { HeraldError, HTTP_STATUS } from './errors.js';
export { ConfigError, configSchema, loadConfig, validateConfig } from './config.js';
export type { HeraldConfig, HeraldConfigInput, ConfigSources } from './config.js';
export type { Broker, BrokerSink, BrokerState, Publication, PublishResult } from './broker/broker.js';
export { MemoryBroker } from './broker/memory.js';
export { RedisBroker } from './broker/redis.js';
export { NatsBroker } from './broker/nats.js';
export { VERSION } from './version.js';
export { CloseCode, ERROR_CODES, shouldReconnect } from '@herald/protocol';
export type { ErrorCode, Json } from '@herald/protocol';
