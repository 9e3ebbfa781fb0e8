import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after } from 'node:test';
import { eventually } from './servers.js';

/** The repository's own nginx configuration, which docs/deployment.md shows. */
export const DEPLOY_CONF = fileURLToPath(new URL('../../../../../deploy/nginx.conf', import.meta.url));

const running: Nginx[] = [];
after(async () => {
  await Promise.all(running.map((nginx) => nginx.stop()));
});

/** A key and a self-signed certificate for `localhost` and 127.0.0.1 (openssl), in `dir`. */
export function selfSignedCertificate(dir: string): { cert: string; key: string; pem: Buffer } {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const made = spawnSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', key, '-out', cert],
    { encoding: 'utf8' },
  );
  if (made.status !== 0) throw new Error(`openssl could not make a certificate: ${made.stderr}`);
  return { cert, key, pem: readFileSync(cert) };
}

export interface DeploySite {
  /** Herald's address, for the upstream (`127.0.0.1:<port>`). */
  upstream: string;
  /** The port of the plain HTTP server (the redirect to HTTPS). */
  httpPort: number;
  /** The port of the TLS server (HTTP/1.1 and HTTP/2). */
  httpsPort: number;
  cert: string;
  key: string;
}

/**
 * deploy/nginx.conf as it is, with only what differs between a machine and
 * this test replaced: the listening ports, Herald's address and the
 * certificate. Each replaced line must be found exactly once, so a change to
 * the file that the test would no longer run fails here, naming the line.
 */
export function deploySite(site: DeploySite): string {
  let text = readFileSync(DEPLOY_CONF, 'utf8');
  const replace = (pattern: RegExp, by: string): void => {
    const found = text.match(new RegExp(pattern.source, 'gm'))?.length ?? 0;
    if (found !== 1) throw new Error(`deploy/nginx.conf: expected one line matching ${pattern}, found ${found}`);
    text = text.replace(new RegExp(pattern.source, 'm'), by);
  };
  replace(/^(\s*)server 127\.0\.0\.1:8080;/, `$1server ${site.upstream};`);
  replace(/^(\s*)listen 80;/, `$1listen 127.0.0.1:${site.httpPort};`);
  replace(/^(\s*)listen 443 ssl http2;/, `$1listen 127.0.0.1:${site.httpsPort} ssl http2;`);
  replace(/^(\s*)ssl_certificate\s+\S+;/, `$1ssl_certificate ${site.cert};`);
  replace(/^(\s*)ssl_certificate_key\s+\S+;/, `$1ssl_certificate_key ${site.key};`);
  return text;
}

/**
 * An nginx of the test's own: `daemon off`, one worker, as the current user,
 * with its configuration, pid file, temporary files and logs in a temporary
 * folder (nothing under /etc, /var or /run), serving `site` (the text of an
 * http-block include, as deploy/nginx.conf). Stopped with SIGTERM (the master
 * takes its worker down with it) when the test file ends.
 */
export class Nginx {
  readonly dir: string;
  private child: ChildProcess | null = null;
  private output = '';

  constructor(dir?: string) {
    this.dir = dir ?? mkdtempSync(join(tmpdir(), 'herald-nginx-'));
  }

  /** What nginx printed (its error log goes to stderr). */
  get log(): string {
    return this.output;
  }

  /** Writes the configuration, checks it (`nginx -t`), starts nginx and resolves once every port in `ports` accepts connections. */
  async start(site: string, ports: number[]): Promise<void> {
    const d = this.dir;
    writeFileSync(join(d, 'site.conf'), site);
    const main = [
      'daemon off;',
      'worker_processes 1;',
      // As root, the worker would otherwise run as nobody, who cannot enter this folder.
      ...(process.getuid?.() === 0 ? [`user ${userInfo().username};`] : []),
      `pid ${join(d, 'nginx.pid')};`,
      'error_log stderr notice;',
      'events { worker_connections 1024; }',
      'http {',
      '    access_log off;',
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((kind) => `    ${kind}_temp_path ${join(d, `${kind}_temp`)};`),
      `    include ${join(d, 'site.conf')};`,
      '}',
      '',
    ].join('\n');
    const conf = join(d, 'nginx.conf');
    writeFileSync(conf, main);
    const args = ['-e', 'stderr', '-p', d, '-c', conf];
    const checked = spawnSync('nginx', ['-t', ...args], { encoding: 'utf8' });
    if (checked.status !== 0) throw new Error(`nginx -t refused the configuration:\n${checked.stderr}\n${main}\n${site}`);

    const child = spawn('nginx', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    running.push(this);
    child.stdout!.on('data', (data: Buffer) => (this.output += data.toString()));
    child.stderr!.on('data', (data: Buffer) => (this.output += data.toString()));
    let exited = false;
    child.once('exit', () => (exited = true));
    // nginx says nothing when it is ready: it is once its ports take connections.
    await eventually(async () => {
      if (exited) throw new Error(`nginx exited: ${this.output}`);
      const open = await Promise.all(ports.map(accepts));
      return open.every(Boolean);
    }, `nginx to listen on ${ports.join(', ')}`);
  }

  /** Stops nginx (SIGTERM: it closes its connections at once) and waits for it to be gone. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Whether a TCP connection to 127.0.0.1:`port` is accepted. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
