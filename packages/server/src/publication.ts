/** What a publication is, wherever it travels: published, stored in history, carried between nodes, encoded for a connection. */

/** An LHTTP message published on a topic (by an LHTTP client, `POST /publish`, or an Lhttp node). */
export interface LhttpPublication {
  /** The LHTTP text, exactly as LHTTP subscribers receive it. */
  text: string;
  command: string;
  headers: Array<[string, string]>;
}

/** One publication as it travels between nodes. */
export interface Publication {
  topic: string;
  /** The message as JSON text, embedded verbatim in every frame that carries it (for LHTTP: the body as a JSON string). */
  payload: string;
  /** Set when the publication is an LHTTP message. */
  lhttp?: LhttpPublication;
  /** Position in the topic's history, when history is on for the topic. */
  offset?: number;
  epoch?: string;
  /**
   * A connection id that must not receive this publication (its sender),
   * honoured by every node: it travels in the broker envelope. A delivery
   * filter only: the publication is stored in history as any other, and a
   * recovery or a node's catch-up from history delivers it to every
   * subscriber.
   */
  exclude?: string;
}

export interface PublishResult {
  offset?: number;
  epoch?: string;
}

