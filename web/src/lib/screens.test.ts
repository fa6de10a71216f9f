import { describe, expect, it } from 'vitest';
import type { Board, Deal, FunnelRow, Task } from '../api/types';
import { formatters } from '../i18n/format';
import { direction, negotiate } from '../i18n/languages';
import { boardFiltersFrom, boardFiltersTo, contactIds } from './board';
import { companyPlace, peopleOf } from './companies';
import { documentFileName, stageHistory } from './deal';
import { mayUse, navFor } from './nav';
import { funnelOption, ratio, reportFiltersFrom, reportFiltersTo, reportQuery } from './reports';
import { importFormat, progress, remap, rowErrors } from './imports';
import { orderTasks } from './tasks';
import { utcToZoned, zonedToUtc } from './time';

describe('a due time typed in my zone is sent as UTC', () => {
  it('uses the offset of that date, not of today', () => {
    // Berlin: CET (+01:00) in December, CEST (+02:00) in July.
    expect(zonedToUtc('2026-12-03T10:00', 'Europe/Berlin')).toBe('2026-12-03T09:00:00.000Z');
    expect(zonedToUtc('2026-07-01T10:00', 'Europe/Berlin')).toBe('2026-07-01T08:00:00.000Z');
    expect(zonedToUtc('2026-07-01T10:00', 'America/New_York')).toBe('2026-07-01T14:00:00.000Z');
    expect(zonedToUtc('2026-01-15T10:00', 'America/New_York')).toBe('2026-01-15T15:00:00.000Z');
  });

  it('handles half-hour offsets and zones without summer time', () => {
    expect(zonedToUtc('2026-12-03T10:00', 'Asia/Kolkata')).toBe('2026-12-03T04:30:00.000Z');
    expect(zonedToUtc('2026-12-03T10:00', 'Asia/Tehran')).toBe('2026-12-03T06:30:00.000Z');
    expect(zonedToUtc('2026-12-03T10:00', 'America/Sao_Paulo')).toBe('2026-12-03T13:00:00.000Z');
    expect(zonedToUtc('2026-12-03T10:00', 'UTC')).toBe('2026-12-03T10:00:00.000Z');
  });

  it('crosses midnight into the previous UTC day', () => {
    expect(zonedToUtc('2026-12-04T00:30', 'Asia/Kolkata')).toBe('2026-12-03T19:00:00.000Z');
  });

  it('moves a time skipped by summer time forward, and takes the first of a repeated one', () => {
    // 29 March 2026, 02:00 → 03:00 in Berlin: 02:30 does not exist; it is 03:30 CEST.
    expect(zonedToUtc('2026-03-29T02:30', 'Europe/Berlin')).toBe('2026-03-29T01:30:00.000Z');
    // 25 October 2026, 03:00 → 02:00: 02:30 happens twice; the first is CEST.
    expect(zonedToUtc('2026-10-25T02:30', 'Europe/Berlin')).toBe('2026-10-25T00:30:00.000Z');
  });

  it('refuses what is not a time or a zone', () => {
    expect(zonedToUtc('2026-02-30T10:00', 'Europe/Berlin')).toBeNull();
    expect(zonedToUtc('tomorrow', 'Europe/Berlin')).toBeNull();
    expect(zonedToUtc('2026-12-03T10:00', 'Mars/Olympus')).toBeNull();
  });

  it('shows an instant as the clock in my zone, and back again', () => {
    const instant = new Date('2026-07-01T08:00:00Z');
    expect(utcToZoned(instant, 'Europe/Berlin')).toBe('2026-07-01T10:00');
    expect(zonedToUtc(utcToZoned(instant, 'Asia/Tehran'), 'Asia/Tehran')).toBe(instant.toISOString());
  });
});

function task(id: string, due: string | null, status = 'open'): Task {
  return {
    id,
    region: 'eu',
    kind: 'todo',
    title: id,
    assignee_id: 'olga',
    deal_id: '',
    contact_id: '',
    priority: '',
    status,
    due_at: due,
    time_zone: 'Europe/Berlin',
    due_local: '',
  };
}

describe('the task list', () => {
  it('puts overdue tasks first, then by due time, undated last', () => {
    const now = new Date('2026-12-07T12:00:00Z');
    const ordered = orderTasks(
      [
        task('later', '2026-12-09T08:00:00Z'),
        task('undated', null),
        task('overdue-recent', '2026-12-07T11:00:00Z'),
        task('soon', '2026-12-07T13:00:00Z'),
        task('overdue-old', '2026-12-01T08:00:00Z'),
      ],
      now,
    );
    expect(ordered.map((o) => o.task.id)).toEqual([
      'overdue-old',
      'overdue-recent',
      'soon',
      'later',
      'undated',
    ]);
    expect(ordered.map((o) => o.overdue)).toEqual([true, true, false, false, false]);
  });

  it('never calls a done task overdue', () => {
    const [done] = orderTasks([task('done', '2026-12-01T08:00:00Z', 'done')], new Date('2026-12-07'));
    expect(done?.overdue).toBe(false);
  });
});

describe('the deal page', () => {
  const stages = [
    { id: 's1', name: 'First call', position: 0, win_probability: 10, kind: 'open' },
    { id: 's2', name: 'Measurement', position: 1, win_probability: 30, kind: 'open' },
    { id: 's3', name: 'Payment', position: 2, win_probability: 70, kind: 'open' },
  ];

  it('lists stage changes newest first, by name, with the days spent in the stage left', () => {
    const history = stageHistory(
      {
        created_at: '2026-12-01T09:00:00Z',
        history: [
          { from_stage_id: 's2', to_stage_id: 's3', moved_by: 'mia', moved_at: '2026-12-06T10:00:00Z' },
          { from_stage_id: '', to_stage_id: 's1', moved_by: 'olga', moved_at: '2026-12-01T09:00:00Z' },
          { from_stage_id: 's1', to_stage_id: 's2', moved_by: 'olga', moved_at: '2026-12-03T09:30:00Z' },
          { from_stage_id: 's3', to_stage_id: 'gone', moved_by: 'olga', moved_at: '2026-12-06T11:00:00Z' },
        ],
      },
      stages,
    );
    expect(history.map((h) => `${h.from}→${h.to}`)).toEqual([
      'Payment→gone',
      'Measurement→Payment',
      'First call→Measurement',
      '→First call',
    ]);
    expect(history.map((h) => h.daysInFrom)).toEqual([0, 3, 2, null]);
  });

  it('starts the history at the creation when the API records only the moves', () => {
    const history = stageHistory(
      {
        created_at: '2026-12-01T09:00:00Z',
        history: [
          { from_stage_id: 's1', to_stage_id: 's2', moved_by: 'olga', moved_at: '2026-12-03T09:30:00Z' },
        ],
      },
      stages,
    );
    expect(history.map((h) => [h.from, h.to, h.at])).toEqual([
      ['First call', 'Measurement', '2026-12-03T09:30:00Z'],
      ['', 'First call', '2026-12-01T09:00:00Z'],
    ]);
    expect(stageHistory({ created_at: '2026-12-01T09:00:00Z', history: [] }, stages)).toEqual([]);
  });

  it('names a downloaded document after its title', () => {
    expect(documentFileName('Invoice: Six windows', 'eu_doc')).toBe('Invoice Six windows.pdf');
    expect(documentFileName('  ', 'eu_doc')).toBe('eu_doc.pdf');
  });
});

describe('the board', () => {
  it('keeps pipeline, owner and team in the URL', () => {
    const filters = boardFiltersFrom(new URLSearchParams('pipeline=p1&team=install'));
    expect(filters).toEqual({ pipeline: 'p1', owner: '', team: 'install' });
    expect(boardFiltersTo({ ...filters, owner: 'olga' }).toString()).toBe(
      'pipeline=p1&owner=olga&team=install',
    );
  });

  it('reads each contact once, however many deals it has', () => {
    const deal = (id: string, contact: string) => ({ id, contact_id: contact }) as Deal;
    const board = {
      columns: [
        { deals: [deal('d1', 'c1'), deal('d2', 'c2')] },
        { deals: [deal('d3', 'c1'), deal('d4', '')] },
      ],
    } as unknown as Board;
    expect(contactIds(board)).toEqual(['c1', 'c2']);
  });
});

describe('companies', () => {
  it('lists each person once with every role they hold', () => {
    expect(
      peopleOf([
        { contact_id: 'c2', role: 'buyer', display_name: 'Zoe Ziegler' },
        { contact_id: 'c1', role: 'director', display_name: 'Anna Arndt' },
        { contact_id: 'c2', role: 'accountant', display_name: 'Zoe Ziegler' },
        { contact_id: 'c3', role: '', display_name: '' },
      ]),
    ).toEqual([
      { contactId: 'c1', name: 'Anna Arndt', roles: ['director'] },
      { contactId: 'c3', name: 'c3', roles: [] },
      { contactId: 'c2', name: 'Zoe Ziegler', roles: ['buyer', 'accountant'] },
    ]);
    expect(companyPlace({ address: { street: '', city: 'Berlin', postal_code: '', state: '', country: 'DE' } })).toBe(
      'Berlin, DE',
    );
  });
});

describe('the reports dashboard', () => {
  const today = new Date('2026-12-07T12:00:00Z');

  it('starts with this year, worldwide, and keeps the filters in the URL', () => {
    const filters = reportFiltersFrom(new URLSearchParams(''), today);
    expect(filters).toEqual({
      from: '2026-01-01',
      to: '',
      pipeline: '',
      team: '',
      region: '',
      granularity: 'month',
    });
    expect(reportQuery('funnel', filters)).toEqual({ from: '2026-01-01', region: 'all' });
    const chosen = { ...filters, to: '2026-06-30', team: 'north', region: 'eu', granularity: 'week' as const };
    const again = reportFiltersFrom(reportFiltersTo(chosen), today);
    expect(again).toEqual(chosen);
    expect(reportQuery('revenue', again, 'csv')).toEqual({
      from: '2026-01-01',
      to: '2026-06-30',
      team: 'north',
      region: 'eu',
      granularity: 'week',
      format: 'csv',
    });
    // "All time" is an empty `from`, and stays so.
    expect(reportFiltersFrom(new URLSearchParams('from='), today).from).toBe('');
    expect(reportFiltersFrom(new URLSearchParams('from=junk&granularity=year'), today)).toMatchObject({
      from: '',
      granularity: 'month',
    });
  });

  it('draws the funnel of stages entered, without the lost stage', () => {
    const row = (stage: string, kind: string, entered: number): FunnelRow => ({
      pipeline_id: 'p',
      pipeline: 'Windows',
      stage_id: stage,
      stage,
      kind,
      deals: 0,
      value: '0.00',
      entered,
      conversion_to_next: null,
    });
    const text = {
      deals: 'Deals',
      value: 'Value',
      weighted: 'Weighted',
      entered: 'Entered',
      won: 'Won',
      lost: 'Lost',
      calls: 'Calls',
      tasksOnTime: 'On time',
      tasksLate: 'Late',
      money: (v: number) => `€${v}`,
    };
    const option = funnelOption(
      [row('First call', 'open', 5), row('Won', 'won', 2), row('Lost', 'lost', 3)],
      text,
      false,
    );
    const series = option.series as { data: { name: string; value: number }[] }[];
    expect(series[0]?.data).toEqual([
      { name: 'First call', value: 5 },
      { name: 'Won', value: 2 },
    ]);
    expect(ratio('0.4286')).toBe(0.4286);
    expect(ratio(null)).toBeNull();
    expect(formatters('en', 'UTC').percent(0.4286)).toBe('42.9%');
  });
});

describe('the new screens by role, and Russian', () => {
  it('offers reports to managers and admins only; deal pages with the board', () => {
    expect(navFor('manager').map((i) => i.to)).toContain('/reports');
    expect(navFor('sales_rep').map((i) => i.to)).not.toContain('/reports');
    expect(mayUse('sales_rep', '/reports')).toBe(false);
    expect(mayUse('sales_rep', '/deals/eu_01ABC')).toBe(true);
    expect(mayUse('compliance_officer', '/deals/eu_01ABC')).toBe(false);
    expect(mayUse('compliance_officer', '/companies/eu_01ABC')).toBe(true);
  });

  it('speaks Russian, left to right', () => {
    expect(negotiate(['ru-RU'])).toBe('ru');
    expect(direction('ru')).toBe('ltr');
    expect(formatters('ru', 'Europe/Moscow').money('1299.9', 'RUB')).toBe('1\u00a0299,90\u00a0₽');
  });
});

describe('the import wizard', () => {
  it('tells the API the format by the file name', () => {
    expect(importFormat('Kunden.CSV')).toBe('csv');
    expect(importFormat('clients.xlsx')).toBe('xlsx');
    expect(importFormat('notes.pdf')).toBeNull();
  });

  it('lets one column fill a field: choosing it again moves it', () => {
    const mapping = { Vorname: 'first_name', Name: 'last_name', Handy: '', Notiz: '' };
    expect(remap(mapping, 'Handy', 'phone')).toEqual({
      Vorname: 'first_name',
      Name: 'last_name',
      Handy: 'phone',
      Notiz: '',
    });
    expect(remap(mapping, 'Notiz', 'last_name')).toEqual({
      Vorname: 'first_name',
      Name: '',
      Handy: '',
      Notiz: 'last_name',
    });
    expect(remap(mapping, 'Vorname', '')).toMatchObject({ Vorname: '', Name: 'last_name' });
  });

  it('shows every refused row of the dry run in file order, and says how many are not shown', () => {
    const row = (n: number, action: string, error = '') => ({ row: n, action, error, region: 'eu', contact: {} });
    const counts = { total: 600, created: 590, updated: 0, skipped: 0, failed: 10, processed: 600, forwarded: 0 };
    const { rows, notShown } = rowErrors({
      preview: [row(4, 'error', 'phone: not a phone number'), row(2, 'create'), row(3, 'error', 'email: invalid')],
      counts,
    });
    expect(rows.map((r) => r.row)).toEqual([3, 4]);
    expect(notShown).toBe(8);
    expect(progress({ total: 600, processed: 150 })).toBe(25);
    expect(progress({ total: 0, processed: 0 })).toBe(0);
  });
});
