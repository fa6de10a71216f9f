import { describe, expect, it } from 'vitest';
import { ApiError } from '../api/client';
import {
  embedSnippet,
  fieldError,
  keyFromLabel,
  listOf,
  mappingText,
  parseMapping,
  parseVariables,
  replayable,
  deliveryState,
  unnamed,
  workingHoursBody,
} from './integrations';

const problem = new ApiError(422, {
  title: 'Invalid input',
  status: 422,
  errors: [
    { field: 'url', message: 'must be http(s)' },
    { field: 'event_types[0]', message: 'unknown event' },
  ],
});

describe('settings for integrations', () => {
  it('finds the problem under the input the API names, and knows when none is named', () => {
    expect(fieldError(problem, (f) => f === 'url')).toBe('must be http(s)');
    expect(fieldError(problem, (f) => f.startsWith('event_types'))).toBe('unknown event');
    expect(fieldError(problem, (f) => f === 'description')).toBeUndefined();
    expect(unnamed(problem, ['url'])).toBe(false);
    expect(unnamed(problem, ['name'])).toBe(true);
    expect(unnamed(new Error('offline'), ['url'])).toBe(true);
    expect(unnamed(null, ['url'])).toBe(false);
  });

  it('reads lists typed with commas, spaces or lines, without repeats', () => {
    expect(listOf(' contacts:read, deals:*\n deals:* ,')).toEqual(['contacts:read', 'deals:*']);
    expect(listOf('')).toEqual([]);
  });

  it('suggests a field key from its label', () => {
    expect(keyFromLabel('Measurement date')).toBe('measurement_date');
    expect(keyFromLabel('Größe (m²)')).toBe('grosse_m2');
    expect(keyFromLabel('2nd phone')).toBe('nd_phone');
  });

  it('round-trips a form mapping through its lines', () => {
    const mapping = { name: 'name', email: 'email', message: 'note' };
    expect(parseMapping(mappingText(mapping))).toEqual(mapping);
    expect(parseMapping('Vorname: first_name\n\n Nachricht → note ')).toEqual({ Vorname: 'first_name', Nachricht: 'note' });
  });

  it('writes an embed snippet posting each mapped field, the honeypot hidden, names escaped', () => {
    const html = embedSnippet('https://crm.example', {
      key: 'eu-abc',
      field_mapping: { name: 'name', email: 'email', 'a"b': 'note' },
      honeypot_field: 'website',
    });
    expect(html).toContain('action="https://crm.example/public/forms/eu-abc"');
    expect(html).toContain('<input type="email" name="email">');
    expect(html).toContain('<textarea name="a&quot;b">');
    expect(html).toMatch(/name="website" tabindex="-1"[^>]*aria-hidden="true"/);
    expect(embedSnippet('', { key: 'k', field_mapping: {} })).not.toContain('tabindex');
  });

  it('sends working days once each, in order', () => {
    expect(workingHoursBody(' 08:00', '17:00 ', ['5', '1', '1', '9'])).toEqual({ start: '08:00', end: '17:00', days: [1, 5] });
  });

  it('takes template variables as a JSON object only', () => {
    expect(parseVariables('')).toEqual({});
    expect(parseVariables('{"vat_rate": "19"}')).toEqual({ vat_rate: '19' });
    expect(parseVariables('[1]')).toBeNull();
    expect(parseVariables('{vat')).toBeNull();
  });

  it('offers to send a delivery again unless it has not been tried yet', () => {
    expect(replayable({ status: 'failed', attempts: 5 })).toBe(true);
    expect(replayable({ status: 'delivered', attempts: 1 })).toBe(true);
    expect(replayable({ status: 'pending', attempts: 1 })).toBe(true);
    expect(deliveryState({ status: 'pending', attempts: 1 })).toBe('retrying');
    expect(replayable({ status: 'pending', attempts: 0 })).toBe(false);
  });
});
