import {
  Alert,
  Button,
  Card,
  Group,
  SegmentedControl,
  Select,
  SimpleGrid,
  Stack,
  Table,
  Text,
  TextInput,
  Title,
} from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { IconDownload } from '@tabler/icons-react';
import { keepPreviousData, useMutation, useQuery } from '@tanstack/react-query';
import { useMemo, type ReactNode } from 'react';
import { useSearchParams } from 'react-router';
import { api, call } from '../api/client';
import type {
  ActivityRow,
  DirectoryUser,
  ForecastRow,
  FunnelRow,
  LeadSourceRow,
  Report,
  ReportName,
  RevenueRow,
  WinRateRow,
} from '../api/types';
import { useSignedIn } from '../auth/useSession';
import { EChart } from '../charts/EChart';
import { Empty, ErrorState, Loading, useErrorText } from '../components/States';
import { useI18n } from '../i18n/I18nProvider';
import { saveBlob } from '../lib/download';
import {
  activityOption,
  forecastOption,
  funnelOption,
  GRANULARITIES,
  ratio,
  reportFiltersFrom,
  reportFiltersTo,
  reportQuery,
  revenueOption,
  sourcesOption,
  type ChartText,
  type Granularity,
  type ReportFilters,
} from '../lib/reports';
import { usePipelines } from './DealPage';

const REGIONS = ['eu', 'br', 'us'];

function useReport<N extends ReportName>(name: N, filters: ReportFilters) {
  return useQuery({
    queryKey: ['report', name, reportQuery(name, filters)],
    queryFn: ({ signal }) =>
      call<Report<N>>(
        api.GET('/v1/reports/{name}', {
          params: { path: { name }, query: reportQuery(name, filters) },
          signal,
        }),
      ),
    placeholderData: keepPreviousData,
  });
}

export default function Reports() {
  const session = useSignedIn();
  const { t, format, dir } = useI18n();
  const [params, setParams] = useSearchParams();
  const filters = reportFiltersFrom(params, new Date());
  const update = (changes: Partial<ReportFilters>) =>
    setParams(reportFiltersTo({ ...reportFiltersFrom(params, new Date()), ...changes }), {
      replace: true,
    });
  const pipelines = usePipelines();
  const users = useQuery({
    queryKey: ['users'],
    queryFn: () => call<{ data: DirectoryUser[] }>(api.GET('/v1/users', {})).then((r) => r.data),
    staleTime: 300_000,
  });
  // A manager reports on their own team only (the API refuses any other).
  const teams =
    session.role === 'admin'
      ? [...new Set((users.data ?? []).map((u) => u.team).filter(Boolean))].sort()
      : session.team
        ? [session.team]
        : [];

  const funnel = useReport('funnel', filters);
  const winRate = useReport('win_rate', filters);
  const revenue = useReport('revenue', filters);
  const activity = useReport('activity', filters);
  const sources = useReport('lead_sources', filters);
  const forecast = useReport('forecast', filters);
  const currency = funnel.data?.reporting_currency ?? winRate.data?.reporting_currency ?? 'EUR';
  const missing = [
    ...new Set(
      [funnel, winRate, revenue, forecast].flatMap((r) =>
        (r.data?.missing_rates ?? []).map((m) => m.currency),
      ),
    ),
  ];

  const text: ChartText = useMemo(
    () => ({
      deals: t('reports.deals'),
      value: t('reports.value'),
      weighted: t('reports.weighted'),
      entered: t('reports.entered'),
      won: t('reports.won'),
      lost: t('reports.lost'),
      calls: t('reports.calls'),
      tasksOnTime: t('reports.tasksOnTime'),
      tasksLate: t('reports.tasksLate'),
      money: (value: number) => format.money(value, currency),
    }),
    [t, format, currency],
  );
  const rtl = dir === 'rtl';
  const percent = (value: string | null | undefined) => {
    const number = ratio(value);
    return number === null ? t('common.none') : format.percent(number);
  };

  return (
    <Stack gap="md">
      <Title order={1} size="h2">
        {t('reports.title')}
      </Title>
      <Card padding="md">
        <Group gap="sm" align="flex-end" wrap="wrap">
          <TextInput
            type="date"
            label={t('reports.from')}
            w={170}
            value={filters.from}
            onChange={(e) => update({ from: e.currentTarget.value })}
          />
          <TextInput
            type="date"
            label={t('reports.to')}
            w={170}
            value={filters.to}
            onChange={(e) => update({ to: e.currentTarget.value })}
          />
          <Select
            label={t('board.pipeline')}
            placeholder={t('reports.allPipelines')}
            w={200}
            clearable
            value={filters.pipeline || null}
            onChange={(value) => update({ pipeline: value ?? '' })}
            data={(pipelines.data ?? []).map((p) => ({ value: p.id, label: p.name }))}
          />
          <Select
            label={t('board.team')}
            placeholder={session.role === 'admin' ? t('reports.allTeams') : t('reports.myTeam')}
            w={180}
            clearable
            value={filters.team || null}
            onChange={(value) => update({ team: value ?? '' })}
            data={teams.map((team) => ({ value: team, label: team }))}
          />
          <Select
            label={t('reports.region')}
            w={170}
            allowDeselect={false}
            value={filters.region || 'all'}
            onChange={(value) => update({ region: value === 'all' ? '' : (value ?? '') })}
            data={[
              { value: 'all', label: t('reports.allRegions') },
              ...REGIONS.map((r) => ({ value: r, label: r.toUpperCase() })),
            ]}
          />
        </Group>
      </Card>
      {missing.length ? (
        <Alert color="yellow" variant="light">
          {t('board.missingRates', { currencies: missing.join(', ') })}
        </Alert>
      ) : null}

      <ReportCard
        title={t('reports.win_rate')}
        name="win_rate"
        filters={filters}
        query={winRate}
        empty={(rows) => rows.length === 0}
      >
        {(rows: WinRateRow[]) => {
          const row = rows[0];
          if (!row) return null;
          const stats: [string, string, string][] = [
            ['won', t('reports.won'), format.number(row.deals_won)],
            ['lost', t('reports.lost'), format.number(row.deals_lost)],
            ['win-rate', t('reports.winRate'), percent(row.win_rate)],
            ['value-won', t('reports.valueWon'), format.money(row.value_won, currency)],
            [
              'average',
              t('reports.averageDeal'),
              row.average_deal_size ? format.money(row.average_deal_size, currency) : t('common.none'),
            ],
            [
              'cycle',
              t('reports.cycle'),
              row.cycle_days_median === null
                ? t('common.none')
                : t('reports.days', {
                    median: format.number(row.cycle_days_median),
                    p90: format.number(row.cycle_days_p90 ?? 0),
                  }),
            ],
          ];
          return (
            <SimpleGrid cols={{ base: 2, sm: 3, lg: 6 }} data-testid="report-win_rate">
              {stats.map(([key, label, value]) => (
                <div key={key}>
                  <Text size="xs" c="dimmed" tt="uppercase" fw={600}>
                    {label}
                  </Text>
                  <Text size="lg" fw={700} data-testid={`stat-${key}`}>
                    {value}
                  </Text>
                </div>
              ))}
            </SimpleGrid>
          );
        }}
      </ReportCard>

      <SimpleGrid cols={{ base: 1, lg: 2 }}>
        <ReportCard title={t('reports.funnel')} name="funnel" filters={filters} query={funnel}>
          {(rows: FunnelRow[]) => (
            <>
              <EChart option={funnelOption(rows, text, rtl)} label={t('reports.funnel')} />
              <DataTable
                name="funnel"
                head={[t('reports.stage'), t('reports.entered'), t('reports.now'), t('reports.value'), t('reports.conversion')]}
                rows={rows.map((r) => [
                  r.stage,
                  format.number(r.entered),
                  format.number(r.deals),
                  format.money(r.value, currency),
                  percent(r.conversion_to_next),
                ])}
              />
            </>
          )}
        </ReportCard>
        <ReportCard
          title={t('reports.revenue')}
          name="revenue"
          filters={filters}
          query={revenue}
          extra={
            <SegmentedControl
              size="xs"
              aria-label={t('reports.granularity')}
              value={filters.granularity}
              onChange={(value) => update({ granularity: value as Granularity })}
              data={GRANULARITIES.map((g) => ({ value: g, label: t(`reports.granularity.${g}`) }))}
            />
          }
        >
          {(rows: RevenueRow[]) => (
            <>
              <EChart option={revenueOption(rows, text, rtl)} label={t('reports.revenue')} />
              <DataTable
                name="revenue"
                head={[t('reports.period'), t('reports.deals'), t('reports.value')]}
                rows={rows.map((r) => [r.period, format.number(r.deals), format.money(r.value, currency)])}
              />
            </>
          )}
        </ReportCard>
        <ReportCard title={t('reports.activity')} name="activity" filters={filters} query={activity}>
          {(rows: ActivityRow[]) => (
            <>
              <EChart option={activityOption(rows, text, rtl)} label={t('reports.activity')} />
              <DataTable
                name="activity"
                head={[
                  t('reports.rep'),
                  t('reports.calls'),
                  t('reports.tasksOnTime'),
                  t('reports.tasksLate'),
                  t('reports.overdueNow'),
                  t('reports.won'),
                  t('reports.lost'),
                ]}
                rows={rows.map((r) => [
                  r.owner_id,
                  format.number(r.calls),
                  format.number(r.tasks_on_time),
                  format.number(r.tasks_late),
                  format.number(r.overdue_now),
                  format.number(r.deals_won),
                  format.number(r.deals_lost),
                ])}
              />
            </>
          )}
        </ReportCard>
        <ReportCard title={t('reports.lead_sources')} name="lead_sources" filters={filters} query={sources}>
          {(rows: LeadSourceRow[]) => (
            <>
              <EChart option={sourcesOption(rows, text, rtl)} label={t('reports.lead_sources')} />
              <DataTable
                name="lead_sources"
                head={[t('reports.source'), t('reports.deals'), t('reports.won'), t('reports.lost'), t('reports.conversion')]}
                rows={rows.map((r) => [
                  r.source || t('common.none'),
                  format.number(r.deals),
                  format.number(r.won),
                  format.number(r.lost),
                  percent(r.conversion_to_won),
                ])}
              />
            </>
          )}
        </ReportCard>
        <ReportCard title={t('reports.forecast')} name="forecast" filters={filters} query={forecast}>
          {(rows: ForecastRow[]) => (
            <>
              <EChart option={forecastOption(rows, text, rtl)} label={t('reports.forecast')} />
              <DataTable
                name="forecast"
                head={[t('reports.month'), t('reports.deals'), t('reports.value'), t('reports.weighted')]}
                rows={rows.map((r) => [
                  r.month || t('reports.noCloseDate'),
                  format.number(r.deals),
                  format.money(r.value, currency),
                  format.money(r.weighted, currency),
                ])}
              />
            </>
          )}
        </ReportCard>
      </SimpleGrid>
    </Stack>
  );
}

function ReportCard<N extends ReportName>({
  title,
  name,
  filters,
  query,
  extra,
  empty = (rows) => rows.length === 0,
  children,
}: {
  title: string;
  name: N;
  filters: ReportFilters;
  query: ReturnType<typeof useReport<N>>;
  extra?: ReactNode;
  empty?: (rows: Report<N>['data']) => boolean;
  children: (rows: Report<N>['data']) => ReactNode;
}) {
  const { t } = useI18n();
  const errorText = useErrorText();
  const csv = useMutation({
    mutationFn: async () => {
      const { data, error, response } = await api.GET('/v1/reports/{name}', {
        params: { path: { name }, query: reportQuery(name, filters, 'csv') },
        parseAs: 'blob',
      });
      if (!response.ok || !data) {
        await call(Promise.resolve({ data, error, response }));
        return;
      }
      saveBlob(data as Blob, `${name}-${filters.from || 'all'}${filters.to ? `-${filters.to}` : ''}.csv`);
    },
    onError: (error) =>
      notifications.show({ color: 'red', title: t('reports.csvFailed'), message: errorText(error) }),
  });
  return (
    <Card padding="md" data-testid={`report-card-${name}`}>
      <Group justify="space-between" mb="sm" wrap="wrap" gap="xs">
        <Title order={2} size="h4">
          {title}
        </Title>
        <Group gap="xs">
          {extra}
          <Button
            size="xs"
            variant="default"
            leftSection={<IconDownload size={14} />}
            loading={csv.isPending}
            onClick={() => csv.mutate()}
            aria-label={t('reports.csvNamed', { report: title })}
          >
            CSV
          </Button>
        </Group>
      </Group>
      {query.isPending ? (
        <Loading label={t('common.loading')} />
      ) : query.isError ? (
        <ErrorState error={query.error} onRetry={() => void query.refetch()} />
      ) : empty(query.data.data) ? (
        <Empty title={t('reports.empty')} hint={t('reports.emptyHint')} />
      ) : (
        <Stack gap="sm" style={{ opacity: query.isPlaceholderData ? 0.6 : 1 }}>
          {children(query.data.data)}
        </Stack>
      )}
    </Card>
  );
}

function DataTable({ name, head, rows }: { name: string; head: string[]; rows: string[][] }) {
  return (
    <Table.ScrollContainer minWidth={360}>
      <Table striped verticalSpacing={4} fz="sm" data-testid={`report-table-${name}`}>
        <Table.Thead>
          <Table.Tr>
            {head.map((h) => (
              <Table.Th key={h}>{h}</Table.Th>
            ))}
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {rows.map((row, i) => (
            <Table.Tr key={`${row[0]}-${i}`}>
              {row.map((cell, j) => (
                <Table.Td key={j}>{cell}</Table.Td>
              ))}
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Table.ScrollContainer>
  );
}

