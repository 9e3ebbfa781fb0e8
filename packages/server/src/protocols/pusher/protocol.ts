import type { Session } from '../../hub/session.js';
import type { PusherApps } from '../../pusher/apps.js';
import type { Codec } from '../codec.js';
import type { Protocol } from '../protocol.js';
import { pusherCodec } from './codec.js';
import { PusherHandler, SocketIds, UnknownAppHandler, type PusherHost } from './handler.js';

/** Where Pusher clients connect: `/app/{key}` (pusher-js adds `?protocol=7&client=js&version=...`). */
export const PUSHER_PATH_PREFIX = '/app/';

/**
 * The Pusher protocol of every app of this node: one codec for all of them
 * (a publication's channel is a pure function of its topic), one frame
 * handler per app (its key, secret and limits), and socket ids of Pusher's
 * form. A path `/app/{key}` with a key no app has gets a protocol that says
 * 4001 and closes.
 */
export class PusherProtocols {
  readonly codec: Codec;
  readonly handlers = new Map<string, PusherHandler>();
  private readonly byKey = new Map<string, Protocol>();
  private readonly ids = new SocketIds();

  constructor(
    apps: PusherApps,
    host: PusherHost,
    private readonly closeSession: (session: Session, code: number, reason: string) => void,
  ) {
    this.codec = pusherCodec(apps);
    const connectionId = (): string => this.ids.next();
    for (const app of apps) {
      const handler = new PusherHandler(app, host);
      this.handlers.set(app.id, handler);
      this.byKey.set(app.key, { codec: this.codec, handler, connectionId });
    }
  }

  /** The protocol for `path` when it is `/app/{key}`, else undefined. */
  forPath(path: string): Protocol | undefined {
    if (!path.startsWith(PUSHER_PATH_PREFIX)) return undefined;
    const key = decodeURIComponent(path.slice(PUSHER_PATH_PREFIX.length));
    if (key === '' || key.includes('/')) return undefined;
    return this.byKey.get(key) ?? { codec: this.codec, handler: new UnknownAppHandler(key, this.closeSession), connectionId: () => this.ids.next() };
  }
}
