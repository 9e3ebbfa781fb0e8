import { createPublicKey, type KeyObject } from 'node:crypto';
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { HeraldConfig } from '../config.js';
import { HeraldError } from '../errors.js';

/** Who a verified token says the connection is, and what it may do. */
export interface Identity {
  uid: string;
  /** When the token expires (ms since the epoch), if it has `exp`. */
  expiresAt: number | undefined;
  /** Private topics the connection may subscribe to: exact names or `prefix*`. */
  topics: string[];
  /** Topics the connection may publish to, whatever `clientPublish` says: exact names or `prefix*`. */
  publish: string[];
  /** Public information about the user (the `info` claim), shown in presence. */
  info: unknown;
}

const HMAC = ['HS256', 'HS384', 'HS512'];
const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

type Key = Uint8Array | KeyObject | JWTVerifyGetKey;

function stringList(payload: JWTPayload, claim: string): string[] {
  const value = payload[claim];
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw new HeraldError('unauthorized', `invalid token: claim "${claim}" must be a list of strings`);
  }
  return value;
}

/** Turns jose's errors into a refusal whose message says what is wrong with the token. */
function refusal(err: unknown): HeraldError {
  if (err instanceof HeraldError) return err;
  let reason: string;
  if (err instanceof errors.JWTExpired) reason = 'token expired';
  else if (err instanceof errors.JWTClaimValidationFailed) reason = err.claim === 'nbf' ? 'token not yet valid (nbf)' : `claim "${err.claim}" ${err.reason === 'check_failed' ? 'check failed' : err.reason}`;
  else if (err instanceof errors.JOSEAlgNotAllowed) reason = `algorithm not allowed: ${err.message}`;
  else if (err instanceof errors.JWSSignatureVerificationFailed) reason = 'bad signature';
  else if (err instanceof errors.JWKSNoMatchingKey) reason = 'no key of the JWKS matches the token';
  else if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) reason = `the JWKS could not be loaded (${(err as Error).message})`;
  else if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) reason = `malformed token (${(err as Error).message})`;
  else if (err instanceof errors.JOSENotSupported) reason = `unsupported token: ${(err as Error).message}`;
  else if (err instanceof TypeError) reason = `wrong algorithm for the key (${err.message})`;
  else reason = `token rejected (${(err as Error).message ?? String(err)})`;
  return new HeraldError('unauthorized', `invalid token: ${reason}`, { cause: err });
}

/**
 * Verifies JWTs with jose: HMAC with a shared secret, or RSA, ECDSA and
 * EdDSA with a PEM public key or a JWKS URL (jose caches the set and fetches
 * it again when a token names an unknown `kid`). `alg: none` is never
 * accepted; an algorithm outside `algorithms` is refused; `exp` and `nbf` are
 * enforced with `clockTolerance`.
 */
export class TokenVerifier {
  private readonly key: Key | null;
  private readonly algorithms: string[];

  constructor(private readonly config: HeraldConfig['auth']['jwt']) {
    const sources = [config.secret, config.publicKey, config.jwksUrl].filter((v) => v !== undefined).length;
    if (sources > 1) throw new HeraldError('bad_request', 'auth.jwt: give only one of secret, publicKey or jwksUrl');
    if (config.secret !== undefined) {
      this.key = new TextEncoder().encode(config.secret);
      this.algorithms = config.algorithms ?? HMAC;
    } else if (config.publicKey !== undefined) {
      this.key = createPublicKey(config.publicKey);
      this.algorithms = config.algorithms ?? ASYMMETRIC;
    } else if (config.jwksUrl !== undefined) {
      this.key = createRemoteJWKSet(new URL(config.jwksUrl), { cooldownDuration: config.jwksCooldown, cacheMaxAge: 600_000, timeoutDuration: 5_000 });
      this.algorithms = config.algorithms ?? ASYMMETRIC;
    } else {
      this.key = null;
      this.algorithms = [];
    }
  }

  /** The clock skew (ms) allowed on `exp` and `nbf`: a token is accepted until `exp + clockTolerance`, and a connection's expiry timer fires then too. */
  get clockTolerance(): number {
    return this.config.clockTolerance;
  }

  /** Whether tokens can be verified at all (a secret, key or JWKS is configured). */
  get enabled(): boolean {
    return this.key !== null;
  }

  async verify(token: unknown): Promise<JWTPayload> {
    if (!this.key) throw new HeraldError('unauthorized', 'tokens are not accepted: no auth.jwt secret, publicKey or jwksUrl is configured');
    if (typeof token !== 'string' || token.length === 0) throw new HeraldError('unauthorized', 'invalid token: a token must be a non-empty string');
    try {
      const { payload } = await jwtVerify(token, this.key as Uint8Array, {
        algorithms: this.algorithms,
        // In seconds for jose; not rounded, so that acceptance and the expiry timer (gateway) use the very same tolerance.
        clockTolerance: this.config.clockTolerance / 1000,
        ...(this.config.issuer ? { issuer: this.config.issuer } : {}),
        ...(this.config.audience ? { audience: this.config.audience } : {}),
      });
      return payload;
    } catch (err) {
      throw refusal(err);
    }
  }

  /**
   * Verifies a connection (login) token and reads the identity from its
   * claims. A subscribe token (one with a `topic` claim) is refused: the two
   * kinds are not interchangeable.
   */
  async identity(token: unknown): Promise<Identity> {
    const payload = await this.verify(token);
    if (payload.topic !== undefined) throw new HeraldError('unauthorized', 'invalid token: this is a subscribe token (it has a "topic" claim), not a connection token');
    if (typeof payload.sub !== 'string' || payload.sub.length === 0) throw new HeraldError('unauthorized', 'invalid token: no "sub" claim (the uid)');
    return {
      uid: payload.sub,
      expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : undefined,
      topics: stringList(payload, 'topics'),
      publish: stringList(payload, 'publish'),
      info: payload.info,
    };
  }

  /**
   * Verifies a subscribe token: its `topic` claim (which only subscribe
   * tokens carry) names the topic (or `prefix*`) it grants, and its `sub` must
   * be the connection's uid. A token without `sub` is refused, not taken as
   * a bearer capability: a subscribe token is for one logged-in user, and one
   * copied from a log or a URL is worth nothing to anybody else. So an
   * anonymous connection cannot use subscribe tokens.
   */
  async topicGrant(token: unknown, uid: string | undefined): Promise<string> {
    return (await this.subscribeGrant(token, uid)).topic;
  }

  /** topicGrant with the token's expiry (ms since the epoch, from `exp`), so that a connection can tell later whether it still holds the grant. */
  async subscribeGrant(token: unknown, uid: string | undefined): Promise<{ topic: string; expiresAt: number | undefined }> {
    const payload = await this.verify(token);
    if (typeof payload.topic !== 'string' || payload.topic.length === 0) throw new HeraldError('forbidden', 'subscribe token: no "topic" claim (a connection token is not a subscribe token)');
    if (typeof payload.sub !== 'string' || payload.sub.length === 0) throw new HeraldError('forbidden', 'subscribe token: no "sub" claim: a subscribe token names the uid it is for');
    if (uid === undefined) throw new HeraldError('forbidden', 'subscribe token: log in first: a subscribe token is for the uid in its "sub"');
    if (payload.sub !== uid) throw new HeraldError('forbidden', 'subscribe token: its "sub" is not this connection\'s uid');
    return { topic: payload.topic, expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : undefined };
  }
}
