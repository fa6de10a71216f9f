import { describe, expect, it } from 'vitest';
import type { Company } from '../api/types';
import { companyBody, companyForm, companyFormField } from './companies';

const acme: Company = {
  id: 'eu_1',
  region: 'eu',
  name: 'Acme',
  domain: 'acme.example',
  industry: 'Glass',
  address: { street: 'Hauptstr. 1', city: 'Berlin', postal_code: '10115', state: 'BE', country: 'DE' },
  phones: ['+4930123456'],
  owner_id: 'rita',
  owner_team: 'north',
  tags: ['vip'],
  members: [],
  created_at: '2026-01-01T00:00:00Z',
  version: 3,
};

describe('company form', () => {
  it('creates with what was typed: lists split, country upper case, blanks left out', () => {
    const form = { ...companyForm(), name: ' Glas & Co ', phones: '030 1234, ,030 5678', country: 'de', city: 'Köln' };
    expect(companyBody(form)).toEqual({
      name: 'Glas & Co',
      phones: ['030 1234', '030 5678'],
      address: { street: '', postal_code: '', city: 'Köln', country: 'DE', state: '' },
    });
  });

  it('edits by sending only what changed', () => {
    const form = companyForm(acme);
    expect(companyBody(form, acme)).toEqual({});
    expect(companyBody({ ...form, industry: 'Windows', tags: 'vip, glass' }, acme)).toEqual({
      industry: 'Windows',
      tags: ['vip', 'glass'],
    });
    // The address goes whole (its state too): the API replaces it.
    expect(companyBody({ ...form, city: 'Potsdam' }, acme)).toEqual({
      address: { street: 'Hauptstr. 1', postal_code: '10115', city: 'Potsdam', country: 'DE', state: 'BE' },
    });
  });

  it('shows a problem under the input the API names', () => {
    expect(companyFormField('phones[1]')).toBe('phones');
    expect(companyFormField('address.country')).toBe('country');
    expect(companyFormField('address')).toBe('country');
    expect(companyFormField('name')).toBe('name');
    expect(companyFormField('owner_id')).toBeNull();
  });
});
