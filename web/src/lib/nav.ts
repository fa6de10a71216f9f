import type { Role } from '../auth/session';
import type { MessageKey } from '../i18n/messages/en';

export interface NavItem {
  to: string;
  label: MessageKey;
  roles: readonly Role[];
}

/** What each role may use; the API stays the authority, this only hides what it refuses. */
export const NAV: readonly NavItem[] = [
  { to: '/', label: 'nav.home', roles: ['admin', 'manager', 'sales_rep', 'compliance_officer'] },
  {
    to: '/contacts',
    label: 'nav.contacts',
    roles: ['admin', 'manager', 'sales_rep', 'compliance_officer'],
  },
  {
    to: '/companies',
    label: 'nav.companies',
    roles: ['admin', 'manager', 'sales_rep', 'compliance_officer'],
  },
  { to: '/pipeline', label: 'nav.pipeline', roles: ['admin', 'manager', 'sales_rep'] },
  { to: '/tasks', label: 'nav.tasks', roles: ['admin', 'manager', 'sales_rep'] },
  { to: '/reports', label: 'nav.reports', roles: ['admin', 'manager'] },
  { to: '/imports', label: 'nav.imports', roles: ['admin', 'manager', 'sales_rep'] },
  { to: '/compliance', label: 'nav.compliance', roles: ['admin', 'compliance_officer'] },
  { to: '/settings', label: 'nav.settings', roles: ['admin'] },
];

/** Pages reached from a screen rather than the menu, allowed to whoever may use that screen. */
const INNER: readonly { prefix: string; as: string }[] = [{ prefix: '/deals/', as: '/pipeline' }];

export function navFor(role: Role): NavItem[] {
  return NAV.filter((item) => item.roles.includes(role));
}

export function mayUse(role: Role, path: string): boolean {
  const inner = INNER.find((i) => path.startsWith(i.prefix));
  if (inner) return mayUse(role, inner.as);
  const item = [...NAV]
    .sort((a, b) => b.to.length - a.to.length)
    .find((i) => (i.to === '/' ? path === '/' : path === i.to || path.startsWith(`${i.to}/`)));
  return item ? item.roles.includes(role) : true;
}
