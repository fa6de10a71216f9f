import type { EChartsOption } from 'echarts';
import type {
  ActivityRow,
  ForecastRow,
  FunnelRow,
  LeadSourceRow,
  ReportName,
  RevenueRow,
} from '../api/types';

export const REPORTS: readonly ReportName[] = [
  'funnel',
  'win_rate',
  'revenue',
  'activity',
  'lead_sources',
  'forecast',
];

export const GRANULARITIES = ['day', 'week', 'month', 'quarter'] as const;
export type Granularity = (typeof GRANULARITIES)[number];

/** The dashboard's filters, as they stand in the URL (`/reports?from=…&team=…`). */
export interface ReportFilters {
  from: string;
  to: string;
  pipeline: string;
  team: string;
  region: string;
  granularity: Granularity;
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** The filters in the URL; without a period, the current year so far (UTC, as the API). */
export function reportFiltersFrom(params: URLSearchParams, today: Date): ReportFilters {
  const day = (key: string) => {
    const value = params.get(key) ?? '';
    return DAY.test(value) ? value : '';
  };
  const granularity = params.get('granularity') ?? '';
  return {
    from: params.has('from') ? day('from') : `${today.getUTCFullYear()}-01-01`,
    to: day('to'),
    pipeline: params.get('pipeline') ?? '',
    team: params.get('team') ?? '',
    region: params.get('region') ?? '',
    granularity: (GRANULARITIES as readonly string[]).includes(granularity)
      ? (granularity as Granularity)
      : 'month',
  };
}

export function reportFiltersTo(filters: ReportFilters): URLSearchParams {
  const params = new URLSearchParams();
  // An empty `from` is kept, so "all time" stays all time after a reload.
  params.set('from', filters.from);
  for (const key of ['to', 'pipeline', 'team', 'region'] as const) {
    if (filters[key]) params.set(key, filters[key]);
  }
  if (filters.granularity !== 'month') params.set('granularity', filters.granularity);
  return params;
}

/** The query the API takes for a report with these filters (empty filters left out). */
export function reportQuery(
  name: ReportName,
  filters: ReportFilters,
  format: 'json' | 'csv' = 'json',
): Record<string, string> {
  const query: Record<string, string> = {};
  if (filters.from) query.from = filters.from;
  if (filters.to) query.to = filters.to;
  if (filters.pipeline) query.pipeline = filters.pipeline;
  if (filters.team) query.team = filters.team;
  query.region = filters.region || 'all';
  if (name === 'revenue') query.granularity = filters.granularity;
  if (format !== 'json') query.format = format;
  return query;
}

/** "0.4286" → 0.4286, null or garbage → null (the API leaves undefined ratios null). */
export function ratio(value: string | null | undefined): number | null {
  if (value === null || value === undefined || value === '') return null;
  const number = Number(value);
  return Number.isFinite(number) ? number : null;
}

export interface ChartText {
  deals: string;
  value: string;
  weighted: string;
  entered: string;
  won: string;
  lost: string;
  calls: string;
  tasksOnTime: string;
  tasksLate: string;
  money: (value: number) => string;
}

const PALETTE = ['#4c6ef5', '#15aabf', '#40c057', '#fab005', '#fa5252', '#be4bdb', '#fd7e14'];

function base(rtl: boolean): EChartsOption {
  return {
    color: PALETTE,
    // Canvas tooltips: HTML tooltips carry inline styles the page's CSP refuses.
    tooltip: { trigger: 'axis', renderMode: 'richText' },
    grid: { left: 8, right: 8, top: 36, bottom: 8, containLabel: true },
    legend: { top: 0, ...(rtl ? { right: 0 } : { left: 0 }) },
    animation: false,
  };
}

/** Deals that ever entered each stage, in pipeline order (lost stages left out). */
export function funnelOption(rows: FunnelRow[], text: ChartText, rtl: boolean): EChartsOption {
  const stages = rows.filter((r) => r.kind !== 'lost');
  return {
    ...base(rtl),
    tooltip: { trigger: 'item', renderMode: 'richText' },
    legend: { show: false },
    series: [
      {
        type: 'funnel',
        name: text.entered,
        sort: 'none',
        left: '10%',
        width: '80%',
        minSize: '8%',
        label: { show: true, position: 'inside', formatter: '{b}: {c}' },
        data: stages.map((r) => ({ name: r.stage, value: r.entered })),
      },
    ],
  };
}

export function revenueOption(rows: RevenueRow[], text: ChartText, rtl: boolean): EChartsOption {
  return {
    ...base(rtl),
    xAxis: { type: 'category', inverse: rtl, data: rows.map((r) => r.period) },
    yAxis: {
      type: 'value',
      position: rtl ? 'right' : 'left',
      axisLabel: { formatter: (v: number) => text.money(v) },
    },
    series: [
      { type: 'bar', name: text.value, barMaxWidth: 56, data: rows.map((r) => Number(r.value)) },
    ],
  };
}

export function activityOption(rows: ActivityRow[], text: ChartText, rtl: boolean): EChartsOption {
  const series = (name: string, pick: (r: ActivityRow) => number) => ({
    type: 'bar' as const,
    name,
    stack: 'activity',
    barMaxWidth: 56,
    data: rows.map(pick),
  });
  return {
    ...base(rtl),
    xAxis: { type: 'category', inverse: rtl, data: rows.map((r) => r.owner_id) },
    yAxis: { type: 'value', position: rtl ? 'right' : 'left', minInterval: 1 },
    series: [
      series(text.calls, (r) => r.calls),
      series(text.tasksOnTime, (r) => r.tasks_on_time),
      series(text.tasksLate, (r) => r.tasks_late),
      series(text.won, (r) => r.deals_won),
      series(text.lost, (r) => r.deals_lost),
    ],
  };
}

export function sourcesOption(rows: LeadSourceRow[], text: ChartText, rtl: boolean): EChartsOption {
  return {
    ...base(rtl),
    tooltip: { trigger: 'item', renderMode: 'richText' },
    series: [
      {
        type: 'pie',
        name: text.deals,
        radius: ['40%', '70%'],
        top: 28,
        data: rows.map((r) => ({ name: r.source || '—', value: r.deals })),
      },
    ],
  };
}

export function forecastOption(rows: ForecastRow[], text: ChartText, rtl: boolean): EChartsOption {
  return {
    ...base(rtl),
    xAxis: { type: 'category', inverse: rtl, data: rows.map((r) => r.month) },
    yAxis: {
      type: 'value',
      position: rtl ? 'right' : 'left',
      axisLabel: { formatter: (v: number) => text.money(v) },
    },
    series: [
      { type: 'bar', name: text.value, barMaxWidth: 40, data: rows.map((r) => Number(r.value)) },
      { type: 'bar', name: text.weighted, barMaxWidth: 40, data: rows.map((r) => Number(r.weighted)) },
    ],
  };
}
