import { sameDigest, sign } from '../../pusher/signature.js';

/**
 * Pusher's signatures, as the official server libraries make them (the
 * `pusher` package's `authorizeChannel` and `authenticateUser`): HMAC-SHA256
 * with the app's secret, in lower-case hex, sent as `key:signature`.
 *
 * - a private or encrypted channel: over `socket_id:channel`
 * - a presence channel: over `socket_id:channel:channel_data`
 * - a user's sign-in (`pusher:signin`): over `socket_id::user::user_data`
 */

/** The string a channel authorisation signs: `socket_id:channel`, plus `:channel_data` for a presence channel. */
export function channelAuthString(socketId: string, channel: string, channelData?: string): string {
  return channelData === undefined ? `${socketId}:${channel}` : `${socketId}:${channel}:${channelData}`;
}

/** The string a user authentication signs: `socket_id::user::user_data`. */
export function userAuthString(socketId: string, userData: string): string {
  return `${socketId}::user::${userData}`;
}

/**
 * Whether `auth` (`key:hexsignature`) is the app's key and its signature of
 * `text`. The signature is compared in constant time (crypto.timingSafeEqual
 * over equal-length buffers); a wrong key, a missing colon or a signature of
 * the wrong length is refused before any comparison, which reveals nothing
 * of the secret.
 */
export function verifyAuth(auth: unknown, key: string, secrets: string | readonly string[], text: string): boolean {
  if (typeof auth !== 'string') return false;
  const colon = auth.indexOf(':');
  if (colon === -1 || auth.slice(0, colon) !== key) return false;
  const given = auth.slice(colon + 1);
  // Every secret is tried (the current one and those still accepted during a rotation), each in constant time.
  let valid = false;
  for (const secret of typeof secrets === 'string' ? [secrets] : secrets) valid = sameDigest(sign(secret, text), given) || valid;
  return valid;
}
