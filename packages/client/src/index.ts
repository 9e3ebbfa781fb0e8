export { HeraldClient } from './client.js';
export type { ClientEvents, ClientOptions, ClientState, WebSocketConstructor, WebSocketLike } from './client.js';
export { Subscription } from './subscription.js';
export type { GapEvent, MessageContext, PresenceEvent, RecoveryFailedEvent, SubscribeOptions, SubscribedEvent, SubscriptionEvents, SubscriptionState } from './subscription.js';
export { ClosedError, DisconnectedError, HeraldClientError, RequestError, TimeoutError } from './errors.js';
export { fullJitter } from './backoff.js';
export { CloseCode, shouldReconnect } from '@herald/protocol';
