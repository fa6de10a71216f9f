/**
 * The signed-in user's token: in memory and in sessionStorage (so a reload keeps the
 * tab signed in), never in a URL, never in localStorage. Signing out forgets it.
 */

export const ROLES = ['admin', 'manager', 'sales_rep', 'compliance_officer', 'integration'] as const;
export type Role = (typeof ROLES)[number];

export interface Session {
  token: string;
  tenant: string;
  user: string;
  name: string;
  role: Role;
  region: string;
  team: string;
  timeZone: string;
  expiresAt: number;
}

const KEY = 'atlas.session';
const listeners = new Set<() => void>();

function load(): Session | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    if (!raw) return null;
    const session = JSON.parse(raw) as Session;
    return session.expiresAt > Date.now() ? session : null;
  } catch {
    return null;
  }
}

let current: Session | null = load();

function emit(): void {
  for (const listener of listeners) listener();
}

export function getSession(): Session | null {
  if (current && current.expiresAt <= Date.now()) {
    clearSession();
  }
  return current;
}

export function setSession(session: Session): void {
  current = session;
  sessionStorage.setItem(KEY, JSON.stringify(session));
  emit();
}

export function clearSession(): void {
  current = null;
  sessionStorage.removeItem(KEY);
  emit();
}

export function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

// Where the user was going when the identity provider's sign-in began; the signed-in
// application's /auth/callback route goes there (and the code leaves the URL with it).
let landing = '/';

export function setLanding(path: string): void {
  landing = path.startsWith('/') && !path.startsWith('/sign-in') ? path : '/';
}

export function getLanding(): string {
  return landing;
}
