import { SignJWT } from 'jose';

/** The HS256 secret the auth tests configure. */
export const SECRET = 'a-test-secret-that-is-at-least-32-chars';

export interface SignOptions {
  exp?: number | string;
  nbf?: number | string;
  alg?: string;
  key?: Uint8Array;
}

/** Signs a token with SECRET (or `key`), as a backend would. */
export async function signToken(claims: Record<string, unknown>, options: SignOptions = {}): Promise<string> {
  let jwt = new SignJWT(claims).setProtectedHeader({ alg: options.alg ?? 'HS256' }).setIssuedAt();
  if (options.exp !== undefined) jwt = jwt.setExpirationTime(options.exp);
  if (options.nbf !== undefined) jwt = jwt.setNotBefore(options.nbf);
  return jwt.sign(options.key ?? new TextEncoder().encode(SECRET));
}
