import type { IncomingMessage } from 'node:http';
import proxyAddr from '@fastify/proxy-addr';

/**
 * Who is on the other end of a request: the one place Herald reads a client
 * address. The API guard, the demo backend's guard, the connection limits,
 * the logs and the connect hook all use it, so that they cannot disagree.
 *
 * It follows the `trust proxy` convention of Express and Fastify: the
 * forwarding header is read from right to left (each proxy appends the
 * address it saw) and the first address that is not a trusted proxy is the
 * client; entries to its left were written by the client itself and are
 * never believed.
 */

/** The headers a proxy may write the client address in. */
export const FORWARDING_HEADERS = ['x-forwarded-for', 'forwarded', 'x-real-ip'] as const;
export type ForwardingHeader = (typeof FORWARDING_HEADERS)[number];

/**
 * `trustProxy` as configured: `false` trusts nobody (the socket's peer is the
 * client); `true` is the same as `1`; a number N trusts the N nearest hops
 * (the socket's peer and N-1 entries of the header); a list names the
 * trusted proxies by address, CIDR or the names `loopback`, `linklocal`,
 * `uniquelocal`.
 */
export type TrustProxySetting = boolean | number | string[];

export interface ClientAddress {
  /** The client's address (IPv4-mapped IPv6 addresses as plain IPv4). */
  address: string;
  /** The socket's peer: the client, or the nearest proxy. */
  peer: string;
  /** True when the request carries a forwarding header that was not consumed from trusted proxies: someone in front of Herald is unaccounted for. */
  proxied: boolean;
}

export type ClientAddressResolver = (request: IncomingMessage) => ClientAddress;

function plain(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** An address as written in a header, without brackets, port or quotes; `unknown` and obfuscated names stay as they are. */
function bare(value: string): string {
  let text = value.trim();
  if (text.startsWith('"') && text.endsWith('"') && text.length >= 2) text = text.slice(1, -1);
  if (text.startsWith('[')) {
    const end = text.indexOf(']');
    return end === -1 ? text : text.slice(1, end);
  }
  // IPv4 with a port ("192.0.2.43:47011"); an IPv6 address has several colons.
  const colon = text.indexOf(':');
  if (colon !== -1 && colon === text.lastIndexOf(':')) return text.slice(0, colon);
  return text;
}

function headerText(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(',') : value;
}

/** The hops a header lists, nearest proxy's entry last (as they are written). */
function hopsOf(request: IncomingMessage, header: ForwardingHeader): string[] {
  const text = headerText(request.headers[header]);
  if (text === undefined) return [];
  if (header === 'x-real-ip') return text.trim() === '' ? [] : [bare(text)];
  if (header === 'x-forwarded-for') return text.split(',').map(bare).filter((hop) => hop !== '');
  // RFC 7239: elements separated by commas, pairs by semicolons; `for=` names the client of that hop.
  const hops: string[] = [];
  for (const element of text.split(',')) {
    for (const pair of element.split(';')) {
      const eq = pair.indexOf('=');
      if (eq !== -1 && pair.slice(0, eq).trim().toLowerCase() === 'for') hops.push(bare(pair.slice(eq + 1)));
    }
  }
  return hops;
}

/** True when some forwarding header is present on the request. */
export function hasForwardingHeader(request: IncomingMessage): boolean {
  return FORWARDING_HEADERS.some((header) => request.headers[header] !== undefined);
}

/**
 * Builds the resolver for a `trustProxy` setting and the header the trusted
 * proxies write (`x-forwarded-for`, `forwarded` or `x-real-ip`). The other
 * two headers are ignored: a proxy passes what the client wrote through.
 */
export function createClientAddressResolver(trustProxy: TrustProxySetting, header: ForwardingHeader = 'x-forwarded-for'): ClientAddressResolver {
  const hops = trustProxy === true ? 1 : trustProxy === false ? 0 : trustProxy;
  const trusted: (address: string, index: number) => boolean =
    typeof hops === 'number' ? (_address, index) => index < hops : hops.length === 0 ? () => false : proxyAddr.compile(hops);
  return (request) => {
    const peer = plain(request.socket.remoteAddress ?? 'unknown');
    const forwarded = hasForwardingHeader(request);
    if (!trusted(peer, 0)) return { address: peer, peer, proxied: forwarded };
    const list = hopsOf(request, header);
    // Walk from the nearest hop outwards; stop at the first address that is not a trusted proxy.
    let address = peer;
    for (let i = list.length - 1, index = 1; i >= 0; i--, index++) {
      address = plain(list[i]!);
      if (!trusted(address, index)) return { address, peer, proxied: false };
    }
    // Every hop trusted (or none given): the left-most one is as far as anyone can tell.
    return { address, peer, proxied: list.length === 0 && forwarded };
  };
}

/** True for a loopback address (127.0.0.0/8, ::1, and IPv4-mapped 127.x). */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

/**
 * A caller on this machine: a loopback client address that no
 * unaccounted-for proxy stands in front of, reaching Herald over loopback.
 * The socket's peer must be loopback too: a forwarding header can make a
 * local peer's request remote, never a remote peer's request local (with a
 * hop count, a client that reaches Herald directly writes the hop that is
 * believed; and a trusted proxy on another host means its own loopback by
 * 127.0.0.1, not this machine's).
 */
export function isLocalCaller(client: ClientAddress): boolean {
  return isLoopback(client.address) && isLoopback(client.peer) && !client.proxied;
}
