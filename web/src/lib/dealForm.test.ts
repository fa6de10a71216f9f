import { describe, expect, it } from 'vitest';
import type { Deal } from '../api/types';
import { dealChanges, dealForm, dealFormField, newDealBody, normaliseAmount } from './dealForm';

const deal = {
  id: 'eu_d1',
  title: 'Six windows',
  amount: { amount: '1299.90', currency: 'EUR' },
  expected_close_date: '',
  description: '',
  pipeline_id: 'p1',
} as unknown as Deal;

describe('creating and editing a deal', () => {
  it('reads an amount typed with a comma or thousands separators', () => {
    expect(normaliseAmount('1299,90')).toBe('1299.90');
    expect(normaliseAmount('1.299,90')).toBe('1299.90');
    expect(normaliseAmount('1,299.90')).toBe('1299.90');
    expect(normaliseAmount(' 800 ')).toBe('800');
    expect(normaliseAmount('a lot')).toBe('a lot');
  });

  it("creates the contact's deal in the chosen pipeline, empty fields left out", () => {
    const form = { ...dealForm(undefined, 'p1'), title: ' Patio door ', amount: '2450', currency: 'eur' };
    expect(newDealBody(form, 'eu_c1')).toEqual({
      title: 'Patio door',
      contact_id: 'eu_c1',
      pipeline_id: 'p1',
      amount: { amount: '2450', currency: 'EUR' },
    });
  });

  it('sends only what changed', () => {
    const form = dealForm(deal);
    expect(dealChanges(form, deal)).toEqual({});
    expect(dealChanges({ ...form, amount: '1400,00', description: 'Two more' }, deal)).toEqual({
      amount: { amount: '1400.00', currency: 'EUR' },
      description: 'Two more',
    });
  });

  it('shows a problem under the input it names', () => {
    expect(dealFormField('amount.currency')).toBe('currency');
    expect(dealFormField('amount.amount')).toBe('amount');
    expect(dealFormField('title')).toBe('title');
    expect(dealFormField('owner_id')).toBeNull();
  });
});
