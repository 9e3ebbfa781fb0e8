import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { LhttpPublication } from '../broker/broker.js';
import { HISTORY_MARK, withMetadata } from '../broker/envelope.js';
import { HeraldError } from '../errors.js';
import { redisAnswer } from '../broker/redis-commands.js';
import type { HistoryEntry, HistoryRead, HistoryRule, HistoryStore, Position, PublicationMeta } from './history.js';

/*
 * One script per operation, so that every step is atomic in Redis:
 *
 * APPEND: the topic's meta hash holds {epoch, offset}. When it is missing (never
 * published, expired, evicted, or Redis restarted without persistence) a new
 * epoch starts and any stream left behind is dropped: offsets of the old epoch
 * must never be mistaken for new ones. Then the next offset, XADD with that
 * offset as the entry id (fields: p the message, l the LHTTP message, t the
 * time, and m the tags and event as JSON `{"t":{...},"e":"..."}` when the
 * publication has them), MAXLEN ~ (Redis trims whole macro nodes, the reads
 * enforce the exact size), expiry on both keys, and the PUBLISH of the
 * publication with its position. Publishing inside the script is what orders
 * delivery: Redis runs scripts one at a time, and sends a channel's messages
 * to every subscriber in the order they were published, so every node sees a
 * topic's publications in offset order, its own included.
 *
 * READ: the position and the entries of one consistent moment. A topic
 * without a meta hash (never published, or its history lost) is answered
 * offset 0 in the epoch "" and nothing is written: reading what nobody
 * published leaves no key behind.
 */
const ENSURE_META = `
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'offset', 0)
end`;

const APPEND = `
if ARGV[11] ~= '' then
  local known = redis.call('GET', ARGV[11])
  if known then
    local split = string.find(known, '\\31', 1, true)
    return {tonumber(string.sub(known, 1, split - 1)), string.sub(known, split + 1)}
  end
end
${ENSURE_META}
local offset = redis.call('HINCRBY', KEYS[1], 'offset', 1)
if ARGV[11] ~= '' then
  redis.call('SET', ARGV[11], offset .. '\\31' .. epoch, 'PX', ARGV[12])
end
if ARGV[13] ~= '' then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], offset .. '-0', 'p', ARGV[5], 'l', ARGV[6], 't', ARGV[7], 'm', ARGV[13])
else
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], offset .. '-0', 'p', ARGV[5], 'l', ARGV[6], 't', ARGV[7])
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
if ARGV[8] ~= '' then
  redis.call('PUBLISH', ARGV[8], ARGV[9] .. offset .. '\\31' .. epoch .. '\\31' .. ARGV[10])
end
return {offset, epoch}`;

const READ = `
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  return {0, '', {}, ''}
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
local offset = tonumber(redis.call('HGET', KEYS[1], 'offset'))
local entries = {}
local limit = tonumber(ARGV[3])
if limit > 0 then
  if ARGV[4] == '1' then
    entries = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', limit)
  else
    local start = math.max(tonumber(ARGV[2]), offset - tonumber(ARGV[6]) + 1)
    entries = redis.call('XRANGE', KEYS[2], start .. '-0', '+', 'COUNT', limit)
  end
end
local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
local oldest = ''
if first[1] then oldest = first[1][1] end
return {offset, epoch, entries, oldest}`;

type RedisWithScripts = Redis & {
  heraldHistoryAppend(...args: (string | number)[]): Promise<[number, string]>;
  heraldHistoryRead(...args: (string | number)[]): Promise<[number, string, [string, string[]][], string]>;
};

/** How long a topic's offset and epoch outlive its last publication: clients may come back long after the entries expired. */
const META_GRACE = 24 * 60 * 60 * 1000;

/**
 * History in Redis, shared by every node of a cluster on the Redis broker:
 * a Stream per topic (entry id = offset) and a hash with the offset counter
 * and the epoch. Its appends publish the publication too (see APPEND), so
 * with this store a publication on a topic with history reaches every node,
 * the publishing one included, through Redis, in offset order.
 */
export class RedisHistory implements HistoryStore {
  readonly appendPublishes = true;

  constructor(
    private readonly redis: () => Redis | null,
    /** Herald's prefix on Redis, for the history keys. */
    private readonly prefix: string,
    /** The channel a topic's publications go out on (the broker's mapping: prefix + topic, or the bare name of a raw topic). */
    private readonly channelOf: (topic: string) => string,
    /** Longest wait for Redis to answer a script (ms, `publishTimeout`): see redisAnswer for what a late or lost answer means. */
    private readonly timeout: number = 5_000,
  ) {}

  private client(): RedisWithScripts {
    const redis = this.redis() as RedisWithScripts | null;
    if (!redis || redis.status !== 'ready') throw new HeraldError('unavailable', 'history store redis is not connected');
    if (typeof redis.heraldHistoryAppend !== 'function') {
      redis.defineCommand('heraldHistoryAppend', { numberOfKeys: 2, lua: APPEND });
      redis.defineCommand('heraldHistoryRead', { numberOfKeys: 2, lua: READ });
    }
    return redis;
  }

  private keys(topic: string): [string, string] {
    const base = `${this.prefix}herald|history|${topic}`;
    return [`${base}|meta`, `${base}|stream`];
  }

  async append(
    topic: string,
    rule: HistoryRule,
    payload: string,
    lhttp: LhttpPublication | undefined,
    idempotency?: { key: string; window: number },
    exclude?: string,
    meta?: PublicationMeta,
  ): Promise<Position> {
    const redis = this.client();
    const [metaKey, stream] = this.keys(topic);
    const appended = redis.heraldHistoryAppend(
      metaKey,
      stream,
      newEpoch(),
      rule.size,
      rule.ttl,
      rule.ttl + META_GRACE,
      payload,
      lhttp ? JSON.stringify(lhttp) : '',
      Date.now(),
      this.channelOf(topic),
      // The envelope around the position the script puts in: HISTORY_MARK <offset> \x1f <epoch> \x1f [metadata] <text>.
      HISTORY_MARK,
      withMetadata({
        topic,
        payload,
        ...(lhttp ? { lhttp } : {}),
        ...(exclude !== undefined ? { exclude } : {}),
        ...(meta?.tags !== undefined ? { tags: meta.tags } : {}),
        ...(meta?.event !== undefined ? { event: meta.event } : {}),
      }),
      idempotency ? `${this.prefix}herald|idempotency|${topic}|${idempotency.key}` : '',
      idempotency?.window ?? 0,
      storedMeta(meta),
    );
    const [offset, epoch] = await redisAnswer(appended, this.timeout, 'history store redis');
    return { offset: Number(offset), epoch };
  }

  async read(topic: string, rule: HistoryRule, options: { after?: number; limit: number; reverse?: boolean }): Promise<HistoryRead> {
    const redis = this.client();
    const [meta, stream] = this.keys(topic);
    const read = redis.heraldHistoryRead(meta, stream, '', (options.after ?? 0) + 1, options.limit, options.reverse ? '1' : '0', rule.ttl + META_GRACE, rule.size);
    const [offset, epoch, raw, first] = await redisAnswer(read, this.timeout, 'history store redis').catch((err: HeraldError) => {
      // A read changes nothing: whatever its doubt, it is just unavailable.
      throw new HeraldError('unavailable', err.message, { cause: err });
    });
    const position = { offset: Number(offset), epoch };
    // MAXLEN ~ keeps a little more than `size`, and Redis expires whole keys: the exact bounds are kept here.
    const expired = Date.now() - rule.ttl;
    let oldest = Math.max(first ? Number(first.split('-')[0]) : position.offset + 1, position.offset - rule.size + 1);
    const entries: HistoryEntry[] = [];
    for (const [id, fields] of raw) {
      const entry = toEntry(id, fields);
      if (entry.offset < oldest) continue;
      if (entry.time < expired) {
        oldest = Math.max(oldest, entry.offset + 1);
        continue;
      }
      entries.push(entry);
    }
    return { entries, position, oldest };
  }
}

function newEpoch(): string {
  return randomBytes(5).toString('hex');
}

/** The stream entry's `m` field: the tags and event as JSON, or '' (no field) when the publication has neither. */
function storedMeta(meta: PublicationMeta | undefined): string {
  if (meta?.tags === undefined && meta?.event === undefined) return '';
  return JSON.stringify({ ...(meta.tags !== undefined ? { t: meta.tags } : {}), ...(meta.event !== undefined ? { e: meta.event } : {}) });
}

function toEntry(id: string, fields: string[]): HistoryEntry {
  const values: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) values[fields[i]!] = fields[i + 1]!;
  const lhttp = values.l ? (JSON.parse(values.l) as LhttpPublication) : undefined;
  const entry: HistoryEntry = { offset: Number(id.split('-')[0]), payload: values.p ?? 'null', lhttp, time: Number(values.t) };
  if (values.m) {
    const meta = JSON.parse(values.m) as { t?: Record<string, string>; e?: string };
    if (meta.t !== undefined) entry.tags = meta.t;
    if (meta.e !== undefined) entry.event = meta.e;
  }
  return entry;
}
