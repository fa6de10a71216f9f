import type { Deal } from '../api/types';

export interface DealForm {
  title: string;
  pipeline_id: string;
  /** As typed, a dot or a comma as the decimal separator. */
  amount: string;
  currency: string;
  expected_close_date: string;
  description: string;
}

export function dealForm(deal: Partial<Deal> | undefined, pipelineId = ''): DealForm {
  return {
    title: deal?.title ?? '',
    pipeline_id: deal?.pipeline_id ?? pipelineId,
    amount: deal?.amount?.amount ?? '',
    currency: deal?.amount?.currency ?? 'EUR',
    expected_close_date: deal?.expected_close_date ?? '',
    description: deal?.description ?? '',
  };
}

/** "1.299,90" or "1299.90" → "1299.90"; what is not a number is sent as typed (the API names it). */
export function normaliseAmount(typed: string): string {
  const text = typed.trim().replace(/\s/g, '');
  if (!text) return '';
  if (!/^[\d.,]+$/.test(text)) return typed.trim();
  const comma = text.lastIndexOf(',');
  const dot = text.lastIndexOf('.');
  // The later separator is the decimal one; the other groups thousands.
  const decimal = comma > dot ? ',' : '.';
  const grouping = decimal === ',' ? '.' : ',';
  const plain = text.split(grouping).join('').replace(decimal, '.');
  return /^\d+(\.\d+)?$/.test(plain) ? plain : text;
}

function money(form: DealForm): { amount: string; currency: string } | null {
  const amount = normaliseAmount(form.amount);
  return amount ? { amount, currency: form.currency.trim().toUpperCase() } : null;
}

/** POST /v1/deals: a new deal of the contact, in the chosen pipeline's first stage. */
export function newDealBody(form: DealForm, contactId: string): Record<string, unknown> {
  const body: Record<string, unknown> = {
    title: form.title.trim(),
    contact_id: contactId,
    pipeline_id: form.pipeline_id,
  };
  const amount = money(form);
  if (amount) body.amount = amount;
  if (form.expected_close_date) body.expected_close_date = form.expected_close_date;
  if (form.description.trim()) body.description = form.description.trim();
  return body;
}

/** PATCH /v1/deals/{id}: only what changed (the API changes exactly the fields sent). */
export function dealChanges(form: DealForm, deal: Deal): Record<string, unknown> {
  const before = dealForm(deal);
  const changes: Record<string, unknown> = {};
  if (form.title.trim() !== before.title) changes.title = form.title.trim();
  const amount = money(form);
  const beforeAmount = money(before);
  if (JSON.stringify(amount) !== JSON.stringify(beforeAmount)) {
    changes.amount = amount ?? { amount: '0', currency: form.currency.trim().toUpperCase() || 'EUR' };
  }
  if (form.expected_close_date !== before.expected_close_date) {
    changes.expected_close_date = form.expected_close_date;
  }
  if (form.description.trim() !== before.description) changes.description = form.description.trim();
  return changes;
}

/** Which input an API problem is about: `amount.currency` → currency, `title` → title. */
export function dealFormField(field: string): keyof DealForm | null {
  if (field === 'amount.currency') return 'currency';
  if (field.startsWith('amount')) return 'amount';
  const known: (keyof DealForm)[] = ['title', 'pipeline_id', 'expected_close_date', 'description'];
  return known.find((k) => field === k || field.startsWith(`${k}.`)) ?? null;
}
