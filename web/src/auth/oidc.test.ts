import { describe, expect, it } from 'vitest';
import { claimsOf, sessionFromToken } from './oidc';

function jwt(claims: Record<string, unknown>): string {
  const encode = (value: unknown) =>
    btoa(String.fromCharCode(...new TextEncoder().encode(JSON.stringify(value))))
      .replace(/\+/g, '-')
      .replace(/\//g, '_')
      .replace(/=+$/, '');
  return `${encode({ alg: 'RS256' })}.${encode(claims)}.signature`;
}

describe('sessionFromToken', () => {
  it("takes tenant, the first role in the application's order, region, team, name and zone", () => {
    const token = jwt({
      sub: 'amira',
      tenant: 'acme',
      roles: ['auditor', 'manager', 'admin'],
      region: 'br',
      team: 'São Paulo',
      name: 'Amira Nogueira',
      zoneinfo: 'America/Sao_Paulo',
      exp: 2_000_000_000,
    });
    expect(sessionFromToken(token)).toEqual({
      token,
      tenant: 'acme',
      user: 'amira',
      name: 'Amira Nogueira',
      role: 'admin',
      region: 'br',
      team: 'São Paulo',
      timeZone: 'America/Sao_Paulo',
      expiresAt: 2_000_000_000_000,
    });
  });

  it('refuses a token without a tenant, region or known role', () => {
    expect(() => sessionFromToken(jwt({ sub: 'x', tenant: 'acme', roles: ['root'], region: 'eu' })))
      .toThrow(/known role/);
    expect(() => sessionFromToken(jwt({ sub: 'x', roles: ['admin'], region: 'eu' }))).toThrow();
  });

  it('reads non-ASCII claims and base64url padding', () => {
    expect(claimsOf(jwt({ name: 'Jürgen Müller ✓' })).name).toBe('Jürgen Müller ✓');
  });
});
