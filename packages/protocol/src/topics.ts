/**
 * Topic names: 1 to `maxLength` **bytes** of UTF-8 (default 255) of printable
 * Unicode: `chat:room-1`, `聊天室`, `café`, `a&b` are all topics. Reserved,
 * and so refused anywhere in a name:
 *
 * - whitespace of any kind (Unicode separators, tabs, newlines): LHTTP lists
 *   topics separated by spaces, and NATS subjects cannot hold whitespace;
 * - `*` and `>`: wildcards (of NATS subjects, and of Herald's own patterns);
 * - `|`: the separator of Herald's own names on the broker (its control
 *   channels and Redis keys), so that no topic can be one of them;
 * - control and format characters (`\p{Cc}`, `\p{Cf}`: NUL, escapes,
 *   bidirectional overrides, zero-width characters) and lone surrogates.
 *
 * How each broker maps a topic to its own names (the prefix, `.` as NATS's
 * token separator, the reserved `$`/`_INBOX`/`__keyspace@` names) is the
 * broker's rule on top of this one: see docs/scaling.md.
 */
export const DEFAULT_TOPIC_MAX_LENGTH = 255;

const RESERVED = /[\p{Cc}\p{Cf}\p{Cs}\p{Z}\s*>|]/u;

export const TOPIC_RULE = 'printable characters other than whitespace, * > and |';

/** Bytes of `text` in UTF-8 (lone surrogates count as the 3 bytes of U+FFFD). */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) continue;
    if (unit < 0x800) bytes += 1;
    else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 2; // a surrogate pair: 2 units, 4 bytes
      i++;
    } else bytes += 2;
  }
  return bytes;
}

/** Returns why `topic` is not a valid topic name, or `null` when it is. `maxLength` is in bytes of UTF-8. */
export function topicProblem(topic: unknown, maxLength = DEFAULT_TOPIC_MAX_LENGTH): string | null {
  if (typeof topic !== 'string') return 'topic must be a string';
  if (topic.length === 0) return 'topic must not be empty';
  if (topic.length > maxLength || topic.length * 3 > maxLength) {
    const bytes = utf8Length(topic);
    if (bytes > maxLength) return `topic is ${bytes} bytes long, over the limit of ${maxLength}`;
  }
  const reserved = RESERVED.exec(topic);
  if (reserved) {
    const char = reserved[0];
    const shown = /[\p{Cc}\p{Cf}\p{Cs}\p{Z}\s]/u.test(char) ? `U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}` : char;
    return `topic ${JSON.stringify(topic)} contains ${shown}: topics are ${TOPIC_RULE}`;
  }
  return null;
}

export function isValidTopic(topic: unknown, maxLength = DEFAULT_TOPIC_MAX_LENGTH): topic is string {
  return topicProblem(topic, maxLength) === null;
}
