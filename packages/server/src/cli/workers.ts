import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import { isIpcMessage } from '../broker/ipc.js';
import type { HeraldConfig } from '../config.js';
import { AdmissionAuthority } from '../transport/admission.js';

/** Parses `--workers`: a positive count, or `auto` for one per CPU. */
export function workerCount(value: string): number {
  if (value === 'auto') return availableParallelism();
  const count = Number(value);
  if (!Number.isInteger(count) || count < 1) throw new TypeError(`--workers: "${value}" is not a positive number or "auto"`);
  return count;
}

export const WORKER_CONFIG_ENV = 'HERALD_WORKER_CONFIG__INTERNAL';

/** What a worker that could not start tells the primary before it exits. */
export interface StartupFailure {
  herald: 'startup-failed';
  /** One line, e.g. "cannot listen on 0.0.0.0:8080: the address is already in use". */
  message: string;
}

function isStartupFailure(value: unknown): value is StartupFailure {
  return typeof value === 'object' && value !== null && (value as { herald?: unknown }).herald === 'startup-failed';
}

/**
 * The primary of `herald serve --workers N`: forks N workers that share the
 * port (node:cluster distributes connections), relays publications and
 * control messages between them when they run on the memory broker, restarts
 * a worker that dies after it started, and on SIGTERM/SIGINT stops them all
 * (each drains its own connections) and exits 0. A worker that dies before it
 * listens (the port is taken, ...) stops the whole node: one line on stderr,
 * every worker stopped, exit code 1, so that a supervisor sees the failure.
 */
export function runPrimary(config: HeraldConfig, count: number, log: Logger): void {
  const workers = new Map<number, Worker>();
  const nodes = new Map<string, Worker>();
  const listening = new Set<number>();
  let stopping = false;
  // The connection limits hold for the machine, not once per worker: the primary admits every connection.
  const admission = new AdmissionAuthority(config.limits);
  let failure: string | null = null;

  /** Stops the node because a worker could not start. */
  const fail = (why: string): void => {
    if (failure !== null) return;
    failure = why;
    stopping = true;
    process.stderr.write(`herald: ${why}\n`);
    process.exitCode = 1;
    for (const worker of workers.values()) worker.process.kill('SIGTERM');
    if (workers.size === 0) process.exit(1);
  };

  /**
   * Best effort, as IPC between workers is: a worker whose channel closes
   * between the check and the send (it is stopping) drops the message. With
   * the callback the failure is reported there; without it, the worker object
   * would emit an 'error' that nothing handles, and the primary would crash.
   */
  const sendTo = (worker: Worker, message: unknown): void => {
    if (!worker.isConnected()) return;
    worker.send(message as object, undefined, (err) => {
      if (err) log.debug({ worker: worker.id, err: err.message }, 'message to a stopping worker dropped');
    });
  };

  const fork = (): void => {
    const worker = cluster.fork({ [WORKER_CONFIG_ENV]: JSON.stringify(config) });
    workers.set(worker.id, worker);
    worker.on('listening', () => listening.add(worker.id));
    worker.on('error', (err) => log.debug({ worker: worker.id, err: err.message }, 'worker channel error'));
    worker.on('message', (message: unknown) => {
      if (isStartupFailure(message)) return fail(message.message);
      if (!isIpcMessage(message)) return;
      if (admission.handle(worker, message, (answer) => sendTo(worker, answer))) return;
      if (message.herald === 'hello') {
        nodes.set(message.node, worker);
        return;
      }
      if (message.herald === 'control' && message.to !== null) {
        const target = nodes.get(message.to);
        if (target) sendTo(target, message);
        return;
      }
      for (const other of workers.values()) if (other !== worker) sendTo(other, message);
    });
    worker.on('exit', (code, signal) => {
      workers.delete(worker.id);
      admission.forget(worker);
      for (const [node, w] of nodes) if (w === worker) nodes.delete(node);
      if (!stopping && !listening.has(worker.id)) fail(`a worker exited before it started listening (code ${code}, signal ${signal})`);
      listening.delete(worker.id);
      if (stopping) {
        if (workers.size === 0) {
          if (failure === null) log.info('all workers stopped');
          process.exit(failure === null ? 0 : 1);
        }
        return;
      }
      log.error({ worker: worker.id, code, signal }, 'worker died: starting another');
      setTimeout(fork, 500).unref();
    });
  };

  for (let i = 0; i < count; i++) fork();
  log.info({ workers: count, port: config.port, broker: config.broker === 'memory' ? 'memory (relayed between workers)' : config.broker }, 'herald primary started');

  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping workers');
    for (const worker of workers.values()) worker.process.kill('SIGTERM');
    if (workers.size === 0) process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
