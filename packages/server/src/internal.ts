/**
 * Herald's internal entry (`herald/internal`), for the CLI and the tests:
 * the concrete gateway and the parts it is made of. Nothing here is a
 * stable API; applications use the public entry (index.ts).
 */
export { Gateway, type Endpoint, type GatewayParts } from './gateway.js';
export { Hub } from './hub/hub.js';
export { Session, type FrameHandler, type SessionHost } from './hub/session.js';
export { Writer } from './hub/writer.js';
export { Flusher } from './hub/flusher.js';
export type { Codec } from './protocols/codec.js';
export type { Protocol } from './protocols/protocol.js';
export type { Transport } from './transport/transport.js';
export { MemoryHistory, type HistoryStore } from './history/history.js';
export { merge, Recovery } from './history/recovery.js';
export { ClusterRegistry } from './cluster/registry.js';
export { CompositeBroker } from './broker/composite.js';
export { IpcBroker } from './broker/ipc.js';
export { LocalAdmission, IpcAdmission, AdmissionAuthority } from './transport/admission.js';
