import { pino, type Logger } from 'pino';
import type { HeraldConfig } from './config.js';

export type { Logger };

/**
 * JSON logs by default, pretty when stdout is a terminal (or `log.pretty`).
 * Secrets never reach a log line: the redact list covers the places a token
 * or key could appear.
 */
export function createLogger(config: HeraldConfig['log']): Logger {
  const pretty = config.pretty ?? Boolean(process.stdout.isTTY);
  return pino({
    level: config.level,
    base: undefined,
    redact: {
      paths: ['token', '*.token', 'apiKey', '*.apiKey', 'req.headers.authorization', 'headers.authorization'],
      censor: '[redacted]',
    },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } } : {}),
  });
}
