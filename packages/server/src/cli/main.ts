#!/usr/bin/env node
import { parseArgs } from 'node:util';
import cluster from 'node:cluster';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Broker } from '../broker/broker.js';
import { IpcBroker } from '../broker/ipc.js';
import { IpcAdmission, type Admission } from '../transport/admission.js';
import { ConfigError, configFromAssignments, loadConfig, maskSecrets, mergeConfig, type HeraldConfig } from '../config.js';
import { runPrimary, workerCount, WORKER_CONFIG_ENV, type StartupFailure } from './workers.js';
import { VERSION } from '../version.js';
import { apiRequest, ApiError, type ClientOptions } from './http-client.js';

/**
 * The `herald` command. Exit codes: 0 success, 1 the server answered an
 * error, 2 bad usage or configuration, 3 the server could not be reached.
 */
const USAGE = `Usage: herald <command> [options]

Commands:
  serve                  run a Herald server
  publish <topic> <json> publish a message through a running server's HTTP API
  send <uid> <json>      push a message to every connection of a user
  history <topic>        print a topic's kept publications
  presence <topic>       print who is subscribed to a topic
  status                 print a running server's status
  config check [file]    validate a configuration and print the effective one, secrets masked

Run "herald <command> --help" for the options of a command.
`;

const SERVE_USAGE = `Usage: herald serve [options]

Options:
  -p, --port <n>         port to listen on (env HERALD_PORT, default 8080)
  -H, --host <addr>      interface to listen on (env HERALD_HOST, default 0.0.0.0)
  -c, --config <file>    YAML or JSON config file (env HERALD_CONFIG)
      --log-level <lvl>  fatal|error|warn|info|debug|trace|silent (env HERALD_LOG__LEVEL)
      --api-key <key>    accept this API key on the HTTP API (repeatable; env HERALD_API_KEYS=k1,k2)
      --set <name=value> set any option by its dotted name, e.g. --set limits.maxFrameBytes=1024 (repeatable)
  -w, --workers <n>      run n processes sharing the port ("auto": one per CPU; default 1)
  -h, --help             show this help

Flags beat environment variables, which beat the config file, which beats the defaults.
Any option can be set in the environment as HERALD_<NAME>, nested with __:
HERALD_HEARTBEAT__INTERVAL=30s. See docs/configuration.md.
`;

const CLIENT_OPTIONS = `Options:
  -u, --url <url>   server URL (env HERALD_URL, default http://127.0.0.1:8080)
  -k, --key <key>   API key (env HERALD_API_KEY)
  -h, --help        show this help`;

const PUBLISH_USAGE = `Usage: herald publish <topic> <json> [options]

Publishes <json> (any JSON value) to <topic>. With --string, <json> is sent as a JSON string.

${CLIENT_OPTIONS}
  -s, --string      send the message as a string instead of parsing it as JSON
`;

const STATUS_USAGE = `Usage: herald status [options]

Prints the status of a running server: connections, topics, users, messages,
broker, and the nodes of its cluster.

${CLIENT_OPTIONS}
      --json        print the raw JSON of /api/status
`;

const SEND_USAGE = `Usage: herald send <uid> <json> [options]

Pushes <json> to every connection of user <uid> (on every node). With --string, <json> is sent as a string.

${CLIENT_OPTIONS}
  -s, --string      send the message as a string instead of parsing it as JSON
`;

const HISTORY_USAGE = `Usage: herald history <topic> [options]

Prints the publications kept for <topic> (one JSON object per line), oldest first.

${CLIENT_OPTIONS}
  -n, --limit <n>   at most n publications
      --since <offset:epoch>  only those after this position
  -r, --reverse     the newest first
`;

const PRESENCE_USAGE = `Usage: herald presence <topic> [options]

Prints the connections and users subscribed to <topic>.

${CLIENT_OPTIONS}
`;

const CONFIG_USAGE = `Usage: herald config check [file]

Validates a configuration (the file, HERALD_* variables and the defaults, as
"herald serve" would merge them) and prints the effective configuration as
JSON with keys and secrets masked. Exit code 0 when valid, 2 otherwise.
`;

class UsageError extends Error {}

/** The server could not start (the port is taken, ...): one line, exit code 1. */
class StartupError extends Error {}

/** A warning about the command line or environment, one line on stderr (before any log line exists). */
function warnLine(message: string): void {
  process.stderr.write(`herald: warning: ${message}\n`);
}

function clientOptions(values: { url?: string | undefined; key?: string | undefined }): ClientOptions {
  return {
    url: values.url ?? process.env.HERALD_URL ?? 'http://127.0.0.1:8080',
    key: values.key ?? process.env.HERALD_API_KEY,
  };
}

const clientFlags = {
  url: { type: 'string', short: 'u' },
  key: { type: 'string', short: 'k' },
  help: { type: 'boolean', short: 'h' },
} as const;

async function serve(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      port: { type: 'string', short: 'p' },
      host: { type: 'string', short: 'H' },
      config: { type: 'string', short: 'c' },
      'log-level': { type: 'string' },
      'api-key': { type: 'string', multiple: true },
      set: { type: 'string', multiple: true },
      workers: { type: 'string', short: 'w' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(SERVE_USAGE);
    return 0;
  }
  const workerConfig = process.env[WORKER_CONFIG_ENV];
  if (cluster.isWorker && workerConfig) return serveWorker(JSON.parse(workerConfig) as HeraldConfig);
  let flags: Record<string, unknown> = configFromAssignments(values.set ?? []);
  const direct: Record<string, unknown> = {};
  if (values.port !== undefined) {
    const port = Number(values.port);
    if (!Number.isInteger(port)) throw new ConfigError([`--port: "${values.port}" is not a port number`]);
    direct.port = port;
  }
  if (values.host !== undefined) direct.host = values.host;
  if (values['log-level'] !== undefined) direct.log = { level: values['log-level'] };
  if (values['api-key'] !== undefined) direct.apiKeys = values['api-key'];
  flags = mergeConfig(flags, direct);
  const config = loadConfig({ file: values.config ?? process.env.HERALD_CONFIG, env: process.env, flags, warn: warnLine });
  const workers = values.workers === undefined ? 1 : workerCount(values.workers);
  if (workers > 1) {
    const { createLogger } = await import('../log.js');
    runPrimary(config, workers, createLogger(config.log).child({ role: 'primary' }));
    return -1;
  }
  return serveWith(config);
}

/**
 * A worker of `serve --workers`: the primary's configuration; on the memory
 * broker, the IPC broker. A worker that cannot start tells the primary why
 * (one line) and exits; the primary then stops the node.
 */
async function serveWorker(config: HeraldConfig): Promise<number> {
  const node = config.nodeId ?? hostname();
  const nodeId = `${node}-w${cluster.worker!.id}-${randomUUID().slice(0, 4)}`;
  // The primary admits every connection, so that the connection limits hold for the machine.
  const admission = new IpcAdmission(nodeId);
  try {
    return await serveWith({ ...config, nodeId }, config.broker === 'memory' ? new IpcBroker(nodeId) : undefined, node, admission);
  } catch (err) {
    const message: StartupFailure = { herald: 'startup-failed', message: startupProblem(err, config) };
    process.send!(message, () => process.exit(1));
    return -1;
  }
}

/** One line saying why the server could not start: the address for a listen error, else the error's message. */
function startupProblem(err: unknown, config: HeraldConfig): string {
  const code = (err as { code?: string }).code;
  const where = `${config.host}:${config.port}`;
  if (code === 'EADDRINUSE') return `cannot listen on ${where}: the address is already in use`;
  if (code === 'EACCES') return `cannot listen on ${where}: permission denied (ports below 1024 need privileges)`;
  if (code === 'EADDRNOTAVAIL') return `cannot listen on ${where}: no such address on this machine`;
  return `cannot start: ${(err as Error).message ?? String(err)}`;
}

async function serveWith(config: HeraldConfig, brokerInstance?: Broker, workerOf?: string, admission?: Admission): Promise<number> {
  // Loaded here, not at the top: the client commands (publish, status, ...) start without the server's modules.
  const { createHerald } = await import('../server.js');
  const herald = await createHerald({
    ...config,
    ...(brokerInstance ? { brokerInstance } : {}),
    ...(workerOf ? { workerOf } : {}),
    ...(admission ? { admission } : {}),
  }).catch((err: unknown) => {
    throw cluster.isWorker || err instanceof ConfigError ? err : new StartupError(startupProblem(err, config));
  });
  let stopping = false;
  const stop = (signal: NodeJS.Signals | 'disconnect'): void => {
    if (stopping) {
      herald.log.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    stopping = true;
    herald.log.info({ signal }, 'signal received: shutting down gracefully');
    // A close that cannot finish (a peer that never answers, a cluster primary gone) must not keep the process alive.
    const limit = config.shutdown.drainWindow + config.shutdown.timeout + 5000;
    setTimeout(() => {
      herald.log.error({ ms: limit }, 'shutdown did not finish in time: exiting');
      process.exit(1);
    }, limit).unref();
    herald.close().then(
      () => process.exit(0),
      (err: unknown) => {
        herald.log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // A worker whose primary is gone stops too.
  if (cluster.isWorker) process.once('disconnect', () => stop('disconnect'));
  return -1; // keep running
}

async function publish(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { ...clientFlags, string: { type: 'boolean', short: 's' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(PUBLISH_USAGE);
    return 0;
  }
  if (positionals.length !== 2) throw new UsageError(`publish takes a topic and a message\n\n${PUBLISH_USAGE}`);
  const [topic, text] = positionals as [string, string];
  const result = await apiRequest(clientOptions(values), 'POST', '/api/publish', { topic, message: parseMessage(text, values.string) });
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return 0;
}

function parseMessage(text: string, asString: boolean | undefined): unknown {
  if (asString) return text;
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(`the message is not valid JSON: ${text}\n(to send it as a string, add --string or quote it: '"${text}"')`);
  }
}

async function send(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { ...clientFlags, string: { type: 'boolean', short: 's' } }, allowPositionals: true, strict: true });
  if (values.help) {
    process.stdout.write(SEND_USAGE);
    return 0;
  }
  if (positionals.length !== 2) throw new UsageError(`send takes a uid and a message\n\n${SEND_USAGE}`);
  const [uid, text] = positionals as [string, string];
  const result = await apiRequest(clientOptions(values), 'POST', '/api/send', { uid, message: parseMessage(text, values.string) });
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return 0;
}

function formatStatus(status: Record<string, any>, cluster: { nodes?: Array<Record<string, any>> } | null): string {
  const rows: Array<[string, string]> = [
    ['node', `${status.node} (${status.workers ? `${status.workers.count} workers, ` : ''}herald ${status.version}, up ${status.uptime} s)`],
    ['broker', `${status.broker?.name} (${status.broker?.state})`],
    ['connections', String(status.connections)],
    ['users', String(status.users)],
    ['topics', String(status.topics)],
    ['subscriptions', String(status.subscriptions)],
    ['messages in', String(status.messagesIn)],
    ['messages out', String(status.messagesOut)],
    ['publications', String(status.publications)],
    ['deliveries', String(status.deliveries)],
    ['slow consumers cut', String(status.slowConsumerDisconnects)],
  ];
  let out = rows.map(([k, v]) => `${k.padEnd(20)}${v}`).join('\n');
  if (cluster?.nodes && cluster.nodes.length > 1) {
    out += '\n\nnodes\n' + cluster.nodes.map((n) => `  ${String(n.id).padEnd(24)}${String(n.connections).padStart(8)} connections${n.self ? '  (this one)' : ''}`).join('\n');
  }
  return `${out}\n`;
}

async function status(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { ...clientFlags, json: { type: 'boolean' } }, strict: true });
  if (values.help) {
    process.stdout.write(STATUS_USAGE);
    return 0;
  }
  const options = clientOptions(values);
  const result = (await apiRequest(options, 'GET', '/api/status')) as Record<string, any>;
  if (values.json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return 0;
  }
  const cluster = (await apiRequest(options, 'GET', '/api/cluster').catch(() => null)) as { nodes?: Array<Record<string, any>> } | null;
  process.stdout.write(formatStatus(result, cluster));
  return 0;
}

async function config(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    process.stdout.write(CONFIG_USAGE);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'check') throw new UsageError(`unknown config command "${sub}"\n\n${CONFIG_USAGE}`);
  const { positionals } = parseArgs({ args: rest, allowPositionals: true, strict: true });
  const effective = loadConfig({ file: positionals[0] ?? process.env.HERALD_CONFIG, env: process.env, warn: warnLine });
  process.stdout.write(`${JSON.stringify(maskSecrets(effective), null, 2)}\n`);
  return 0;
}

async function history(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { ...clientFlags, limit: { type: 'string', short: 'n' }, since: { type: 'string' }, reverse: { type: 'boolean', short: 'r' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HISTORY_USAGE);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(`history takes a topic\n\n${HISTORY_USAGE}`);
  const query = new URLSearchParams({ topic: positionals[0]! });
  if (values.limit !== undefined) query.set('limit', values.limit);
  if (values.reverse) query.set('reverse', 'true');
  if (values.since !== undefined) {
    const [offset, epoch] = values.since.split(':');
    if (!offset || !epoch) throw new UsageError('--since takes <offset>:<epoch>, e.g. --since 41:k3x9');
    query.set('since', offset);
    query.set('epoch', epoch);
  }
  const page = (await apiRequest(clientOptions(values), 'GET', `/api/history?${query}`)) as { publications: unknown[]; offset: number; epoch: string };
  for (const publication of page.publications) process.stdout.write(`${JSON.stringify(publication)}\n`);
  process.stderr.write(`${page.publications.length} publication(s); latest offset ${page.offset}, epoch ${page.epoch}\n`);
  return 0;
}

async function presence(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: clientFlags, allowPositionals: true, strict: true });
  if (values.help) {
    process.stdout.write(PRESENCE_USAGE);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(`presence takes a topic\n\n${PRESENCE_USAGE}`);
  const view = (await apiRequest(clientOptions(values), 'GET', `/api/presence?topic=${encodeURIComponent(positionals[0]!)}`)) as {
    connections: number;
    users: number;
    list: Array<{ conn: string; uid?: string; info?: unknown }>;
  };
  process.stdout.write(`${view.connections} connection(s), ${view.users} user(s)\n`);
  for (const entry of view.list) process.stdout.write(`  ${entry.conn.padEnd(20)}${entry.uid ?? '(anonymous)'}${entry.info === undefined ? '' : `  ${JSON.stringify(entry.info)}`}\n`);
  return 0;
}

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = { serve, publish, send, history, presence, status, config };

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === '--version' || command === '-v') {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const run = COMMANDS[command];
  if (!run) throw new UsageError(`unknown command "${command}"\n\n${USAGE}`);
  return run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigError || err instanceof UsageError) {
      process.stderr.write(`herald: ${err.message}\n`);
      process.exitCode = 2;
    } else if (err instanceof StartupError) {
      // What did start (a broker connection) must not keep the process alive.
      process.stderr.write(`herald: ${err.message}\n`);
      process.exit(1);
    } else if (err instanceof ApiError) {
      process.stderr.write(`herald: ${err.message}\n`);
      process.exitCode = err.status === 0 ? 3 : 1;
    } else if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`herald: ${(err as Error).message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`herald: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = 1;
    }
  },
);
