/**
 * Production sign-in: OpenID Connect, authorization code with PKCE, at the identity
 * provider the gateway names (GET /v1/auth/config). The PKCE verifier and state wait
 * in sessionStorage during the round trip; the tokens are kept only as our Session
 * (oidc-client-ts keeps its copy in memory), so signing out forgets them.
 */
import { InMemoryWebStorage, UserManager, WebStorageStateStore, type User } from 'oidc-client-ts';
import type { components } from '../api/schema';
import { ROLES, type Role, type Session } from './session';

export type OidcClientConfig = components['schemas']['OidcClient'];

let manager: { key: string; value: UserManager } | null = null;

export function userManager(config: OidcClientConfig): UserManager {
  const key = `${config.issuer} ${config.client_id}`;
  if (manager?.key !== key) {
    const origin = window.location.origin;
    manager = {
      key,
      value: new UserManager({
        authority: config.issuer,
        client_id: config.client_id,
        redirect_uri: `${origin}/auth/callback`,
        post_logout_redirect_uri: `${origin}/sign-in`,
        response_type: 'code',
        scope: config.scope,
        loadUserInfo: false,
        automaticSilentRenew: false,
        stateStore: new WebStorageStateStore({ store: window.sessionStorage }),
        userStore: new WebStorageStateStore({ store: new InMemoryWebStorage() }),
      }),
    };
  }
  return manager.value;
}

/** The claims of a JWT, read without checking it: the gateway checks every request. */
export function claimsOf(token: string): Record<string, unknown> {
  const payload = token.split('.')[1];
  if (!payload) throw new Error('the provider did not return a JWT');
  const base64 = payload.replace(/-/g, '+').replace(/_/g, '/');
  const json = new TextDecoder().decode(
    Uint8Array.from(atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, '=')), (c) =>
      c.charCodeAt(0),
    ),
  );
  return JSON.parse(json) as Record<string, unknown>;
}

/**
 * Our session from the token the API will see. Of several roles the application shows
 * the first in ROLES' order (admin first); the API grants by every role the token holds.
 */
export function sessionFromToken(token: string): Session {
  const claims = claimsOf(token);
  const text = (name: string) => (typeof claims[name] === 'string' ? (claims[name] as string) : '');
  const roles = Array.isArray(claims.roles) ? claims.roles : [];
  const role = ROLES.find((r) => roles.includes(r)) as Role | undefined;
  const tenant = text('tenant');
  const region = text('region');
  if (!role || !tenant || !region) {
    throw new Error('the token names no tenant, home region or known role for Atlas CRM');
  }
  const exp = typeof claims.exp === 'number' ? claims.exp : 0;
  return {
    token,
    tenant,
    user: text('sub'),
    name: text('name') || text('preferred_username') || text('sub'),
    role,
    region,
    team: text('team'),
    timeZone: text('zoneinfo') || Intl.DateTimeFormat().resolvedOptions().timeZone,
    expiresAt: exp * 1000,
  };
}

export function bearerOf(user: User, config: OidcClientConfig): string {
  const token = config.bearer === 'id_token' ? user.id_token : user.access_token;
  if (!token) throw new Error(`the provider returned no ${config.bearer}`);
  return token;
}
