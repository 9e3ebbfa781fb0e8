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
  constructor(
    private readonly auth: HeraldConfig['auth'],
    private readonly clientPublish: HeraldConfig['clientPublish'],
  ) {}

  isRestricted(topic: string): boolean {
    return topic.startsWith(this.auth.privatePrefix) || topic.startsWith(this.auth.userPrefix);
  }

  subscribeProblem(subject: Subject, topic: string, extra: readonly string[] = []): string | null {
    const { userPrefix, privatePrefix } = this.auth;
    if (topic.startsWith(userPrefix)) {
      return subject.uid !== undefined && topic === `${userPrefix}${subject.uid}` ? null : `${topic} is the topic of another user`;
    }
    if (topic.startsWith(privatePrefix)) {
      return topicMatches(subject.grants.topics, topic) || topicMatches(extra, topic) ? null : `${topic} is private: it needs a token that grants it`;
    }
    return null;
  }

  publishProblem(subject: Subject, topic: string): string | null {
    if (topicMatches(subject.grants.publish, topic)) return null;
    if (this.isRestricted(topic)) return `publishing to ${topic} needs a "publish" grant`;
    if (this.clientPublish === 'none') return 'publishing from connections is disabled on this server';
    if (this.clientPublish === 'authenticated' && subject.uid === undefined) return 'log in to publish';
    return null;
  }
}
