import { ConfigError, type HeraldConfig } from '../config.js';

/** One Pusher app as configured (`pusher.apps[]`), with its topic prefix resolved. */
export type PusherAppConfig = HeraldConfig['pusher']['apps'][number];

export interface PusherApp extends PusherAppConfig {
  /** The Herald topics of this app's channels start with this (`pusher:{id}:` unless configured). */
  readonly topicPrefix: string;
}

/** The secrets a signature of `app` may be made with: its `secret`, then its `previousSecrets` (a rotation in progress). */
export function secretsOf(app: { readonly secret: string; readonly previousSecrets?: readonly string[] }): readonly string[] {
  return app.previousSecrets === undefined || app.previousSecrets.length === 0 ? [app.secret] : [app.secret, ...app.previousSecrets];
}

/**
 * Pusher channel names (Pusher's rule): 1 to 164 characters of letters,
 * digits and `_ - = @ , . ;`. Every such name is a valid Herald topic.
 */
export const PUSHER_CHANNEL = /^[A-Za-z0-9_\-=@,.;]{1,164}$/;

/**
 * The Pusher apps of this node, by key (WebSocket connections, `/app/{key}`)
 * and by id (the HTTP API, `/apps/{id}/...`), and the mapping between an
 * app's channels and Herald topics: channel `c` of app `a` is the topic
 * `a.topicPrefix + c`. Throws `ConfigError` for duplicate ids or keys and for
 * topic prefixes where one app's would hold another's topics.
 */
export class PusherApps {
  private readonly byKey = new Map<string, PusherApp>();
  private readonly byId = new Map<string, PusherApp>();

  constructor(config: HeraldConfig['pusher']) {
    const problems: string[] = [];
    const apps = config.apps.map((app): PusherApp => ({ ...app, topicPrefix: app.topicPrefix ?? `pusher:${app.id}:` }));
    apps.forEach((app, index) => {
      if (this.byId.has(app.id)) problems.push(`pusher.apps.${index}.id: ${app.id} is the id of another app`);
      if (this.byKey.has(app.key)) problems.push(`pusher.apps.${index}.key: the key of another app`);
      this.byId.set(app.id, app);
      this.byKey.set(app.key, app);
      apps.forEach((other, j) => {
        if (j !== index && other.topicPrefix.startsWith(app.topicPrefix) && (j > index || other.topicPrefix !== app.topicPrefix)) {
          problems.push(`pusher.apps.${j}.topicPrefix: ${JSON.stringify(other.topicPrefix)} starts with app ${app.id}'s prefix ${JSON.stringify(app.topicPrefix)}: apps must not share topics`);
        }
      });
    });
    if (problems.length > 0) throw new ConfigError(problems);
  }

  get size(): number {
    return this.byId.size;
  }

  [Symbol.iterator](): IterableIterator<PusherApp> {
    return this.byId.values();
  }

  /** The app whose clients connect with `key`, or undefined. */
  withKey(key: string): PusherApp | undefined {
    return this.byKey.get(key);
  }

  /** The app with this id (HTTP API paths), or undefined. */
  withId(id: string): PusherApp | undefined {
    return this.byId.get(id);
  }

  /** The Herald topic of `channel` of `app`. */
  static topicOf(app: PusherApp, channel: string): string {
    return app.topicPrefix + channel;
  }

  /** The channel a Herald topic is in `app`, or null when the topic is not one of the app's. */
  static channelOf(app: PusherApp, topic: string): string | null {
    return topic.startsWith(app.topicPrefix) && topic.length > app.topicPrefix.length ? topic.slice(app.topicPrefix.length) : null;
  }

  /**
   * The Herald uid of a Pusher user of `app` (the `id` of its `pusher:signin`
   * user data, or a presence channel's `user_id`): `topicPrefix + "user:" + id`,
   * so that users of two apps never share a uid. The server API on users
   * (disconnect, list) and Pusher's terminate_connections use it.
   */
  static uidOf(app: PusherApp, userId: string): string {
    return `${app.topicPrefix}user:${userId}`;
  }

  /** The Pusher user id of a Herald uid of `app`, or null when the uid is not one of the app's users. */
  static userIdOf(app: PusherApp, uid: string): string | null {
    const prefix = `${app.topicPrefix}user:`;
    return uid.startsWith(prefix) && uid.length > prefix.length ? uid.slice(prefix.length) : null;
  }

  /** The app a Herald topic belongs to, and its channel there, or null. */
  appOfTopic(topic: string): { app: PusherApp; channel: string } | null {
    for (const app of this.byId.values()) {
      const channel = PusherApps.channelOf(app, topic);
      if (channel !== null) return { app, channel };
    }
    return null;
  }
}
