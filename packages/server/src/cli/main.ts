#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ConfigError, configFromAssignments, loadConfig, mergeConfig } from '../config.js';
import { createHerald } from '../gateway.js';
import { VERSION } from '../version.js';
import { apiRequest, ApiError, type ClientOptions } from './http-client.js';

/**
 * The `herald` command. Exit codes: 0 success, 1 the server answered an
 * error, 2 bad usage or configuration, 3 the server could not be reached.
 */
const USAGE = `Usage: herald <command> [options]

Commands:
  serve                 run a Herald server
  publish <topic> <json> publish a message through a running server's HTTP API
  status                print a running server's status

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

Prints the status of a running server as JSON.

${CLIENT_OPTIONS}
`;

class UsageError extends Error {}

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
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(SERVE_USAGE);
    return 0;
  }
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
  const config = loadConfig({ file: values.config ?? process.env.HERALD_CONFIG, env: process.env, flags });
  const herald = await createHerald(config);
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      herald.log.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    stopping = true;
    herald.log.info({ signal }, 'signal received: shutting down gracefully');
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
  let message: unknown = text;
  if (!values.string) {
    try {
      message = JSON.parse(text);
    } catch {
      throw new UsageError(`the message is not valid JSON: ${text}\n(to send it as a string, add --string or quote it: '"${text}"')`);
    }
  }
  const result = await apiRequest(clientOptions(values), 'POST', '/api/publish', { topic, message });
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return 0;
}

async function status(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: clientFlags, strict: true });
  if (values.help) {
    process.stdout.write(STATUS_USAGE);
    return 0;
  }
  const result = await apiRequest(clientOptions(values), 'GET', '/api/status');
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  return 0;
}

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = { serve, publish, status };

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
