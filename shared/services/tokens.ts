import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { AppError, unauthorized } from '../errors.ts';
import type { Role } from './scope.ts';

export interface AccessClaims {
  sub: string; // account public id
  tid: string; // tenant id
  sid: string; // session id
  role: Role;
}

/** Short-lived HS256 access tokens. Only HS256 is accepted: `alg: none` and key confusion fail. */
export class AccessTokens {
  private readonly key: Uint8Array;

  constructor(
    secret: string,
    private readonly issuer: string,
    readonly ttlSeconds: number,
  ) {
    this.key = new TextEncoder().encode(secret);
  }

  sign(claims: AccessClaims): Promise<string> {
    return new SignJWT({ tid: claims.tid, sid: claims.sid, role: claims.role, typ: 'access' })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(claims.sub)
      .setIssuer(this.issuer)
      .setAudience('memorysync-api')
      .setIssuedAt()
      .setExpirationTime(`${this.ttlSeconds}s`)
      .sign(this.key);
  }

  async verify(token: string): Promise<AccessClaims> {
    try {
      const { payload } = await jwtVerify(token, this.key, {
        algorithms: ['HS256'],
        issuer: this.issuer,
        audience: 'memorysync-api',
      });
      if (payload.typ !== 'access' || typeof payload.sub !== 'string' || typeof payload.tid !== 'string' || typeof payload.sid !== 'string') {
        throw unauthorized('Invalid token', 'INVALID_TOKEN');
      }
      return { sub: payload.sub, tid: payload.tid, sid: payload.sid, role: (payload.role as Role) ?? 'member' };
    } catch (err) {
      if (err instanceof AppError) throw err;
      if (err instanceof joseErrors.JWTExpired) throw unauthorized('Token expired', 'TOKEN_EXPIRED');
      throw unauthorized('Invalid token', 'INVALID_TOKEN');
    }
  }
}

/** A JWT has three base64url parts; API keys never look like that. */
export const looksLikeJwt = (value: string): boolean => /^[\w-]+\.[\w-]+\.[\w-]*$/.test(value);
