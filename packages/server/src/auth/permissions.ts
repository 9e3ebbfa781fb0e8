import type { HeraldConfig } from '../config.js';
import { topicMatches, type Grants } from '../topics.js';

export { NO_GRANTS, topicMatches, type Grants } from '../topics.js';

export interface Subject {
  readonly uid: string | undefined;
  readonly grants: Grants;
}

/**
 * The topic rules. Public topics are open to all. `<userPrefix><uid>` is
 * only for that uid. `<privatePrefix>...` needs a grant. Publishing follows
 * `clientPublish`, except that private and user topics need an explicit
 * `publish` grant, and a `publish` grant allows what it names in any mode.
 * Each check returns null when allowed, or the reason it is not.
 */
export class Permissions {
  /**
   * `sealed`: topics only the server publishes to and that a connection may
   * subscribe to only with a grant naming the topic exactly (not a pattern):
   * the lifecycle events topic, which carries user ids.
   * `restricted`: further topic prefixes that are private as `auth.privatePrefix` is (a grant is needed):
   * each Pusher app's `private-`, `presence-` and `#server-to-user-` channels, which a Pusher connection
   * reaches with a grant its protocol gives once it verified the channel's authorisation.
   */
  constructor(
    private readonly auth: HeraldConfig['auth'],
    private readonly clientPublish: HeraldConfig['clientPublish'],
    private readonly sealed: readonly string[] = [],
    private readonly restricted: readonly string[] = [],
  ) {}

  isRestricted(topic: string): boolean {
    return topic.startsWith(this.auth.privatePrefix) || topic.startsWith(this.auth.userPrefix) || this.sealed.includes(topic) || this.restricted.some((prefix) => topic.startsWith(prefix));
  }

  /** Why no connection may publish to `topic` whatever it was granted (a sealed topic), or null. Checked before any publish proxy. */
  sealedProblem(topic: string): string | null {
    return this.sealed.includes(topic) ? `${topic} is published by the server only` : null;
  }

  subscribeProblem(subject: Subject, topic: string, extra: readonly string[] = []): string | null {
    const { userPrefix, privatePrefix } = this.auth;
    if (this.sealed.includes(topic)) {
      return subject.grants.topics.includes(topic) || extra.includes(topic) ? null : `${topic} needs a token that grants it by its exact name`;
    }
    if (topic.startsWith(userPrefix)) {
      return subject.uid !== undefined && topic === `${userPrefix}${subject.uid}` ? null : `${topic} is the topic of another user`;
    }
    if (topic.startsWith(privatePrefix) || this.restricted.some((prefix) => topic.startsWith(prefix))) {
      return topicMatches(subject.grants.topics, topic) || topicMatches(extra, topic) ? null : `${topic} is private: it needs a token that grants it`;
    }
    return null;
  }

  /** `extra`: topics granted for this publication alone (a Pusher client event on a channel its connection authorised). */
  publishProblem(subject: Subject, topic: string, extra: readonly string[] = []): string | null {
    const sealed = this.sealedProblem(topic);
    if (sealed) return sealed;
    if (topicMatches(subject.grants.publish, topic) || topicMatches(extra, topic)) return null;
    if (this.isRestricted(topic)) return `publishing to ${topic} needs a "publish" grant`;
    if (this.clientPublish === 'none') return 'publishing from connections is disabled on this server';
    if (this.clientPublish === 'authenticated' && subject.uid === undefined) return 'log in to publish';
    return null;
  }
}
