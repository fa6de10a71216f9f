import type { Company, CompanyMember } from '../api/types';

/** "Berlin, DE": where the company is, as short as the list needs. */
export function companyPlace(company: Pick<Company, 'address'>): string {
  return [company.address.city, company.address.country].filter(Boolean).join(', ');
}

/**
 * The company's people for its page: grouped by person (one person may hold several
 * roles), sorted by name, roles in the order they were given.
 */
export function peopleOf(members: CompanyMember[]): { contactId: string; name: string; roles: string[] }[] {
  const people = new Map<string, { contactId: string; name: string; roles: string[] }>();
  for (const member of members) {
    const person = people.get(member.contact_id) ?? {
      contactId: member.contact_id,
      name: member.display_name || member.contact_id,
      roles: [],
    };
    if (member.role && !person.roles.includes(member.role)) person.roles.push(member.role);
    people.set(member.contact_id, person);
  }
  return [...people.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** The company form's inputs as typed: lists as comma-separated text. */
export interface CompanyForm {
  name: string;
  domain: string;
  industry: string;
  phones: string;
  street: string;
  postal_code: string;
  city: string;
  country: string;
  /** Kept as it was (no input): the API replaces the address whole. */
  state: string;
  tags: string;
}

export function companyForm(company?: Partial<Company>): CompanyForm {
  return {
    name: company?.name ?? '',
    domain: company?.domain ?? '',
    industry: company?.industry ?? '',
    phones: (company?.phones ?? []).join(', '),
    street: company?.address?.street ?? '',
    postal_code: company?.address?.postal_code ?? '',
    city: company?.address?.city ?? '',
    country: company?.address?.country ?? '',
    state: company?.address?.state ?? '',
    tags: (company?.tags ?? []).join(', '),
  };
}

const split = (text: string) =>
  text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

function fieldsOf(form: CompanyForm): Record<string, unknown> {
  return {
    name: form.name.trim(),
    domain: form.domain.trim(),
    industry: form.industry.trim(),
    phones: split(form.phones),
    address: {
      street: form.street.trim(),
      postal_code: form.postal_code.trim(),
      city: form.city.trim(),
      country: form.country.trim().toUpperCase(),
      state: form.state.trim(),
    },
    tags: split(form.tags),
  };
}

const blank = (value: unknown) =>
  Array.isArray(value)
    ? value.length === 0
    : value && typeof value === 'object'
      ? !Object.values(value).some(Boolean)
      : value === '';

/** The body of POST /v1/companies (what was typed), or of PATCH when `before` is given:
 *  only what changed, since the API changes exactly the fields sent. */
export function companyBody(form: CompanyForm, before?: Company): Record<string, unknown> {
  const now = fieldsOf(form);
  if (!before) return Object.fromEntries(Object.entries(now).filter(([, v]) => !blank(v)));
  const was = fieldsOf(companyForm(before));
  return Object.fromEntries(Object.entries(now).filter(([k, v]) => JSON.stringify(v) !== JSON.stringify(was[k])));
}

/** Which input shows an API problem: `phones[1]` → phones, `address.country` → country. */
export function companyFormField(field: string): keyof CompanyForm | null {
  const head = field.replace(/\[\d+\]/g, '');
  if (head.startsWith('address.')) {
    const part = head.slice('address.'.length) as keyof CompanyForm;
    return ['street', 'postal_code', 'city', 'country'].includes(part) ? part : 'country';
  }
  if (head === 'address') return 'country';
  const known: (keyof CompanyForm)[] = ['name', 'domain', 'industry', 'phones', 'tags'];
  return known.find((k) => head === k || head.startsWith(`${k}.`)) ?? null;
}
