import type { ErrorBody } from './errors.js';

/** Any JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A command id: echoed in the command's single reply. */
export type CommandId = number | string;

/** Position in a topic's history (when history is configured for the topic). */
export interface StreamPosition {
  offset: number;
  epoch: string;
}

/**
 * A subscription's filter on publication tags (docs/backend.md, "Tags and
 * filters"): one operator per object. A missing tag makes eq, ne, in and the
 * comparisons false; comparisons use the tag's numeric value (a non-numeric
 * tag is false). At most 64 operators, nested at most 8 deep.
 */
export type TagFilter =
  | { eq: [string, string | number] }
  | { ne: [string, string | number] }
  | { in: [string, Array<string | number>] }
  | { gt: [string, number] }
  | { gte: [string, number] }
  | { lt: [string, number] }
  | { lte: [string, number] }
  | { and: TagFilter[] }
  | { or: TagFilter[] }
  | { not: TagFilter };

/** A publication's tags: names to string values (at most 16). */
export type Tags = Record<string, string>;

export interface SubscribeCommand {
  id?: CommandId;
  action: 'subscribe';
  topic?: string;
  topics?: string[];
  since?: StreamPosition;
  /** Only publications whose tags pass it are delivered (and replayed). */
  filter?: TagFilter;
}

export interface UnsubscribeCommand {
  id?: CommandId;
  action: 'unsubscribe';
  topic?: string;
  topics?: string[];
}

export interface PublishCommand {
  id?: CommandId;
  action: 'publish';
  topic: string;
  message: Json;
  tags?: Tags;
  /** An event name, 1 to 200 characters. */
  event?: string;
}

export interface PingCommand {
  id?: CommandId;
  action: 'ping';
}

/** Answer to the server's app-level `{"action":"ping"}` heartbeat. */
export interface PongCommand {
  action: 'pong';
}

export interface LoginCommand {
  id?: CommandId;
  action: 'login';
  token: string;
}

/** A command for an application-registered handler. */
export interface CustomCommand {
  id?: CommandId;
  action: string;
  [field: string]: unknown;
}

export type ClientCommand =
  | SubscribeCommand
  | UnsubscribeCommand
  | PublishCommand
  | PingCommand
  | PongCommand
  | LoginCommand;

/** Reply to a command that carried an `id`. */
export interface ReplyFrame {
  id: CommandId;
  action: string;
  ok: boolean;
  error?: ErrorBody;
  result?: Json;
  offset?: number;
  epoch?: string;
  [field: string]: unknown;
}

/** An error for a command without `id`, or a frame that could not be read at all. */
export interface ErrorFrame {
  action: 'error';
  error: ErrorBody;
}

/** A publication delivered to a subscriber. */
export interface PublicationFrame {
  action: 'publish';
  topic: string;
  message: Json;
  offset?: number;
  epoch?: string;
  /** The publication's event name, when it has one. */
  event?: string;
  /** The publication's tags, when it has any. */
  tags?: Tags;
}

/** A message pushed to a user (all of that user's connections). */
export interface PushFrame {
  action: 'push';
  message: Json;
}

/**
 * Publications on a topic the connection is subscribed to may have been
 * missed (the server's broker link dropped, or history could not fill the
 * hole): reload the state the topic feeds. `reason`: `interrupted`,
 * `epoch_changed`, `too_far_behind` or `unavailable`.
 */
export interface GapFrame {
  action: 'gap';
  topic: string;
  reason: 'interrupted' | 'epoch_changed' | 'too_far_behind' | 'unavailable';
}

/** The server's app-level heartbeat (when enabled). Answer with `{"action":"pong"}`. */
export interface ServerPingFrame {
  action: 'ping';
}

/**
 * The server subscribed the connection to a topic on its own (the backend's
 * server API, or a topic it keeps for the user): publications of the topic
 * follow. `offset`/`epoch`: the topic's position where it keeps history
 * (on a cache-mode topic its latest publication follows at once).
 */
export interface SubscribedFrame {
  action: 'subscribed';
  topic: string;
  offset?: number;
  epoch?: string;
}

/** The server ended the connection's subscription to a topic (the backend's server API); `reason` is the backend's. */
export interface UnsubscribedFrame {
  action: 'unsubscribed';
  topic: string;
  reason: string;
}

export type ServerFrame = ReplyFrame | ErrorFrame | PublicationFrame | PushFrame | ServerPingFrame | GapFrame | SubscribedFrame | UnsubscribedFrame;
