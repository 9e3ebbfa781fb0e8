/** Why a connection request is refused before it becomes a connection: the HTTP status and error body to answer with. */
export interface Refusal {
  status: number;
  code: string;
  message: string;
  headers?: Record<string, string>;
}

/**
 * How a session reaches its peer, whatever carries the bytes (a WebSocket
 * today; SSE and HTTP streaming fit the same contract). A transport only
 * writes bytes that are already encoded and framed for it, and closes;
 * reading stays with whoever created it, which hands the peer's frames to
 * `Session.receive` and reports the end with `Session.transportClosed`.
 * (The shape of centrifuge's `Transport`.)
 */
export interface Transport {
  /** What carries the bytes, as connection listings name it: `websocket`, `sse`, `http-stream`. */
  readonly name: string;
  /** Hands complete frames to the peer, in order. Never throws; after close, the bytes are dropped. */
  write(bytes: Buffer): void;
  /** Bytes handed to `write` that the kernel has not taken yet (the slow-consumer measure). */
  readonly queuedBytes: number;
  /**
   * Bytes handed to the kernel so far. It grows only while the peer reads
   * (flow control), so it is the outbound sign of life the heartbeat reads;
   * read on the heartbeat's timer only, never on the delivery path.
   */
  readonly bytesHandedOver: number;
  /** A transport-level ping (a WebSocket ping frame); the peer's pong comes back as activity. */
  ping(): void;
  /** Stops reading from the peer (the session's inbox is full), until `resume`. */
  pause(): void;
  resume(): void;
  /** Closes after what is queued, with a close code and reason (already cut to the transport's limit). */
  close(code: number, reason: string): void;
  /** Cuts the connection at once, dropping what is queued. */
  terminate(): void;
  /**
   * Where the transport can still answer the request with an HTTP error
   * instead of a connection (an SSE stream before its first byte): the
   * server's close that follows answers `refusal` (status, JSON error body).
   * False when it no longer can; absent where it never can (WebSocket).
   */
  refuse?(refusal: Refusal): boolean;
}
