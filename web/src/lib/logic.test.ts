import { describe, expect, it } from 'vitest';
import type { Board, Deal, Task } from '../api/types';
import { direction, interpolate, negotiate } from '../i18n/languages';
import { formatters } from '../i18n/format';
import { de } from '../i18n/messages/de';
import { en } from '../i18n/messages/en';
import { fa } from '../i18n/messages/fa';
import { gu } from '../i18n/messages/gu';
import { hi } from '../i18n/messages/hi';
import { ptBR } from '../i18n/messages/pt-BR';
import { ru } from '../i18n/messages/ru';
import { moveCard, nextTarget } from './board';
import { fieldErrors, filtersFrom, filtersTo } from './contacts';
import { mayUse, navFor } from './nav';
import { dueTodayOrOverdue } from './tasks';

function deal(id: string, stage: string, amount: string, currency = 'EUR'): Deal {
  return {
    id,
    region: 'eu',
    title: id,
    contact_id: '',
    owner_id: 'olga',
    pipeline_id: 'pl',
    stage_id: stage,
    stage_name: stage,
    status: 'open',
    amount: { amount, currency },
    stage_entered_at: '',
    created_at: '',
    version: 1,
  };
}

const board: Board = {
  pipeline: { id: 'pl', name: 'Windows', is_default: true, stages: [] },
  reporting_currency: 'EUR',
  missing_rates: [],
  columns: [
    {
      stage: { id: 'a', name: 'First call', position: 0, win_probability: 10, kind: 'open' },
      count: 2,
      total: { amount: '300', currency: 'EUR' },
      deals: [deal('d1', 'a', '100'), deal('d2', 'a', '200', 'USD')],
    },
    {
      stage: { id: 'b', name: 'Measurement', position: 1, win_probability: 30, kind: 'open' },
      count: 0,
      total: { amount: '0', currency: 'EUR' },
      deals: [],
    },
  ],
};

describe('moving a card on the board', () => {
  it('moves the card to the top of the target column with counts and totals', () => {
    const moved = moveCard(board, 'd1', 'b');
    expect(moved.columns[0]?.deals.map((d) => d.id)).toEqual(['d2']);
    expect(moved.columns[0]?.count).toBe(1);
    expect(Number(moved.columns[0]?.total.amount)).toBe(200);
    expect(moved.columns[1]?.deals.map((d) => [d.id, d.stage_id, d.stage_name])).toEqual([
      ['d1', 'b', 'Measurement'],
    ]);
    expect(Number(moved.columns[1]?.total.amount)).toBe(100);
    // The board it came from is untouched, so a refusal can restore it.
    expect(board.columns[0]?.deals).toHaveLength(2);
  });

  it('leaves totals to the server for another currency, and ignores no-op moves', () => {
    const moved = moveCard(board, 'd2', 'b');
    expect(moved.columns[1]?.count).toBe(1);
    expect(Number(moved.columns[1]?.total.amount)).toBe(0);
    expect(moveCard(board, 'd1', 'a')).toBe(board);
    expect(moveCard(board, 'nope', 'b')).toBe(board);
  });
});

describe('moving a card with the keyboard', () => {
  it('follows the arrows as the screen shows the columns, within the board', () => {
    expect(nextTarget(1, 'ArrowRight', 5, 'ltr')).toBe(2);
    expect(nextTarget(1, 'ArrowRight', 5, 'rtl')).toBe(0);
    expect(nextTarget(4, 'ArrowRight', 5, 'ltr')).toBe(4);
    expect(nextTarget(0, 'ArrowLeft', 5, 'ltr')).toBe(0);
    expect(nextTarget(2, 'ArrowDown', 5, 'ltr')).toBe(2);
  });
});

describe('my day', () => {
  const task = (id: string, due: string | null, status = 'open'): Task => ({
    id,
    region: 'eu',
    kind: 'task',
    title: id,
    assignee_id: 'me',
    deal_id: '',
    contact_id: '',
    priority: 'normal',
    status,
    due_at: due,
    time_zone: '',
    due_local: '',
  });

  it('lists open tasks due today or before, in my zone, overdue first', () => {
    const now = new Date('2026-12-07T10:00:00Z');
    const tasks = [
      task('later-today', '2026-12-07T16:00:00Z'),
      task('tomorrow', '2026-12-08T09:00:00Z'),
      task('yesterday', '2026-12-06T09:00:00Z'),
      task('done', '2026-12-06T09:00:00Z', 'done'),
      task('undated', null),
      // 23:30 UTC on the 7th is already the 8th in Berlin.
      task('late-evening-utc', '2026-12-07T23:30:00Z'),
    ];
    const due = dueTodayOrOverdue(tasks, now, 'Europe/Berlin');
    expect(due.map((d) => [d.task.id, d.overdue])).toEqual([
      ['yesterday', true],
      ['later-today', false],
    ]);
    const inUtc = dueTodayOrOverdue(tasks, now, 'UTC').map((d) => d.task.id);
    expect(inUtc).toContain('late-evening-utc');
  });
});

describe('contacts', () => {
  it('puts each problem under the field the problem names', () => {
    const { byField, other } = fieldErrors([
      { field: 'phones[0]', message: 'not a valid phone number' },
      { field: 'address.country', message: 'unknown country' },
      { field: 'emails[0]', message: 'not an email' },
      { field: 'custom_fields.colour', message: 'no such field' },
    ]);
    expect(byField).toEqual({
      phone: 'not a valid phone number',
      country: 'unknown country',
      email: 'not an email',
    });
    expect(other).toEqual(['custom_fields.colour: no such field']);
  });

  it('keeps the filters in the URL, so a filtered list is a link', () => {
    const filters = { q: 'müller', stage: 'lead', tag: '', country: 'DE', mine: true };
    const params = filtersTo(filters);
    expect(params.toString()).toBe('q=m%C3%BCller&stage=lead&country=DE&mine=1');
    expect(filtersFrom(params)).toEqual(filters);
  });
});

describe('navigation by role', () => {
  it('shows a sales rep no settings or compliance, and hides the board from officers', () => {
    expect(navFor('sales_rep').map((i) => i.to)).toEqual([
      '/',
      '/contacts',
      '/companies',
      '/pipeline',
      '/tasks',
      '/imports',
    ]);
    expect(navFor('compliance_officer').map((i) => i.to)).toEqual(['/', '/contacts', '/companies', '/compliance']);
    expect(mayUse('compliance_officer', '/pipeline')).toBe(false);
    expect(mayUse('sales_rep', '/contacts/eu_01ABC')).toBe(true);
  });
});

describe('languages', () => {
  it('follows the browser where it can', () => {
    expect(negotiate(['pt-PT', 'en'])).toBe('pt-BR');
    expect(negotiate(['fa-IR'])).toBe('fa');
    expect(negotiate(['ja', 'de-AT'])).toBe('de');
    expect(negotiate(['ja'])).toBe('en');
  });

  it('lays Persian out right to left', () => {
    expect(direction('fa')).toBe('rtl');
    expect(direction('hi')).toBe('ltr');
  });

  it('has every message in every language, with the same placeholders', () => {
    for (const catalog of [de, fa, ptBR, hi, gu, ru]) {
      expect(Object.keys(catalog).sort()).toEqual(Object.keys(en).sort());
      for (const [key, text] of Object.entries(en)) {
        const names = (s: string) => (s.match(/\{\w+\}/g) ?? []).sort();
        expect(names(catalog[key as keyof typeof en]), key).toEqual(names(text));
      }
    }
    expect(interpolate('Hello, {name}', { name: 'Ana' })).toBe('Hello, Ana');
  });

  it('formats money and dates for the locale and zone', () => {
    expect(formatters('de', 'Europe/Berlin').money('1299.9', 'EUR')).toBe('1.299,90\u00a0€');
    expect(formatters('en', 'UTC').money('1299.9', 'EUR')).toBe('€1,299.90');
    expect(formatters('en', 'Asia/Kolkata').dateTime('2026-12-07T23:30:00Z')).toContain('Dec 8');
    expect(formatters('en', 'UTC').money('', 'EUR')).toBe('');
  });
});
