import type { ClusterRegistry } from '../cluster/registry.js';
import { HeraldError } from '../errors.js';
import type { PushResult } from '../herald.js';
import type { Hub } from '../hub/hub.js';
import type { Metrics } from '../metrics/metrics.js';

export interface PusherOptions {
  readonly hub: Hub;
  /** Knows which other nodes hold which users, and forwards pushes to them. */
  readonly cluster: Pick<ClusterRegistry, 'forwardPush'>;
  readonly metrics: Metrics;
  /** The message's JSON text, checked against the size limit (the publisher's). */
  encodeMessage(message: unknown): string;
  closing(): boolean;
}

/**
 * Push to users: to every connection of the given uids on this node, then
 * forwarded to the other nodes the cluster registry says hold them (each
 * delivers to its own connections). A push is not a publication: no topic,
 * no history, no subscription.
 */
export class Pusher {
  constructor(private readonly options: PusherOptions) {}

  /** `{"action":"push","message":...}` to every connection of the user(s). */
  async send(uid: string | readonly string[], message: unknown): Promise<PushResult> {
    return this.push(typeof uid === 'string' ? [uid] : uid, this.options.encodeMessage(message), null);
  }

  /** The push-centre seed's `/send`: its own logins get `text` as it is, the others the push envelope. */
  async sendSeed(uid: string, text: string): Promise<PushResult> {
    return this.push([uid], this.options.encodeMessage(text), text);
  }

  private async push(uids: readonly string[], payload: string, raw: string | null): Promise<PushResult> {
    if (this.options.closing()) throw new HeraldError('unavailable', 'server is shutting down');
    this.options.metrics.pushes.inc();
    const delivered = this.options.hub.push(uids, payload, raw);
    let nodes = 0;
    try {
      nodes = await this.options.cluster.forwardPush(uids, payload, raw);
    } catch (err) {
      throw new HeraldError('unavailable', `${(err as Error).message}: pushed to ${delivered} connection(s) on this node only`, { cause: err });
    }
    return { delivered, nodes };
  }
}
