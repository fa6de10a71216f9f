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
