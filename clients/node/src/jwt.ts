// HS256 JSON Web Tokens with node:crypto only: enough to carry a tenant claim signed by the
// application's own auth service. Anything but a well-formed, correctly signed, unexpired HS256
// token is refused (no "alg: none", no other algorithms, no unverified decoding).
import { createHmac, timingSafeEqual } from 'node:crypto';

export type JwtPayload = Record<string, unknown>;

export class InvalidTokenError extends Error {
  constructor(reason: string) {
    super(`invalid token: ${reason}`);
    this.name = 'InvalidTokenError';
  }
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

function sign(input: string, secret: string | Buffer): Buffer {
  return createHmac('sha256', secret).update(input).digest();
}

/** Signs `payload` as an HS256 JWT (for tests, examples and simple auth services). */
export function signJwt(payload: JwtPayload, secret: string | Buffer): string {
  const input = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(JSON.stringify(payload))}`;
  return `${input}.${b64url(sign(input, secret))}`;
}

function parsePart(part: string, what: string): JwtPayload {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidTokenError(`${what} is not base64url JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidTokenError(`${what} is not an object`);
  return value as JwtPayload;
}

/**
 * Verifies an HS256 JWT and returns its payload; throws InvalidTokenError otherwise. `exp` and
 * `nbf` are checked when present, with `clockToleranceSeconds` of leeway.
 */
export function verifyJwt(token: string, secret: string | Buffer, clockToleranceSeconds = 0,
                          now: number = Date.now() / 1000): JwtPayload {
  const parts = token.split('.');
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]+$/.test(p))) throw new InvalidTokenError('malformed');
  const [header, payload, signature] = parts;
  if (parsePart(header, 'header').alg !== 'HS256') throw new InvalidTokenError('algorithm is not HS256');
  const expected = sign(`${header}.${payload}`, secret);
  const given = Buffer.from(signature, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new InvalidTokenError('bad signature');
  const claims = parsePart(payload, 'payload');
  if (claims.exp !== undefined && !(typeof claims.exp === 'number' && now < claims.exp + clockToleranceSeconds)) {
    throw new InvalidTokenError('expired');
  }
  if (claims.nbf !== undefined && !(typeof claims.nbf === 'number' && now >= claims.nbf - clockToleranceSeconds)) {
    throw new InvalidTokenError('not yet valid');
  }
  return claims;
}
