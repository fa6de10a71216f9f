import {
  Alert,
  Badge,
  Button,
  Card,
  FileInput,
  Group,
  Progress,
  Select,
  SimpleGrid,
  Stack,
  Stepper,
  Table,
  Text,
  TextInput,
  Title,
} from '@mantine/core';
import { IconDownload, IconFileSpreadsheet } from '@tabler/icons-react';
import { useMutation, useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { ApiError, api, call } from '../api/client';
import { ErrorState, useErrorText } from '../components/States';
import { useI18n, type I18n } from '../i18n/I18nProvider';
import type { MessageKey } from '../i18n/messages/en';
import { saveBlob } from '../lib/download';
import {
  DUPLICATE_POLICIES,
  FINISHED,
  IMPORT_FIELDS,
  importFormat,
  progress,
  remap,
  rowErrors,
  type DuplicatePolicy,
  type ImportCounts,
  type ImportJob,
} from '../lib/imports';

const FIELD_LABELS: Record<string, MessageKey> = {
  first_name: 'form.firstName',
  last_name: 'form.lastName',
  name: 'import.field.name',
  email: 'form.email',
  phone: 'form.phone',
  country: 'form.country',
  city: 'form.city',
  street: 'import.field.street',
  postal_code: 'import.field.postal_code',
  birthday: 'import.field.birthday',
  tags: 'form.tags',
  language: 'contact.language',
  lifecycle_stage: 'contacts.stage',
};

interface Settings {
  mapping: Record<string, string>;
  duplicate_policy: DuplicatePolicy;
  default_country: string;
}

export default function Imports() {
  const { t } = useI18n();
  const errorText = useErrorText();
  const [file, setFile] = useState<File | null>(null);
  const [job, setJob] = useState<ImportJob | null>(null);
  const [settings, setSettings] = useState<Settings>({
    mapping: {},
    duplicate_policy: 'skip',
    default_country: '',
  });
  const [dryRun, setDryRun] = useState<ImportJob | null>(null);
  const [started, setStarted] = useState(false);

  const upload = useMutation({
    mutationFn: async (chosen: File) =>
      call<ImportJob>(
        api.POST('/v1/imports', {
          params: {
            query: { file_name: chosen.name, format: importFormat(chosen.name) ?? undefined },
          },
          // The file goes as the raw body; the gateway streams it on to the importer.
          body: chosen as never,
          bodySerializer: (body: unknown) => body as BodyInit,
          headers: { 'Content-Type': chosen.type || 'application/octet-stream' },
        }),
      ),
    onSuccess: (created) => {
      setJob(created);
      setDryRun(null);
      setSettings({
        mapping: { ...Object.fromEntries(created.headers.map((h) => [h, ''])), ...created.mapping },
        duplicate_policy: (created.duplicate_policy as DuplicatePolicy) || 'skip',
        default_country: created.default_country,
      });
    },
  });
  const body = () => ({ ...settings, default_country: settings.default_country.trim().toUpperCase() });
  const preview = useMutation({
    mutationFn: (id: string) =>
      call<ImportJob>(
        api.POST('/v1/imports/{import_id}/preview', {
          params: { path: { import_id: id } },
          body: { ...body(), rows: 500 },
        }),
      ),
    onSuccess: setDryRun,
  });
  const start = useMutation({
    mutationFn: (id: string) =>
      call<ImportJob>(
        api.POST('/v1/imports/{import_id}/start', {
          params: { path: { import_id: id } },
          body: body(),
        }),
      ),
    onSuccess: () => setStarted(true),
  });
  const status = useQuery({
    queryKey: ['import', job?.id],
    queryFn: () =>
      call<ImportJob>(
        api.GET('/v1/imports/{import_id}', { params: { path: { import_id: job?.id ?? '' } } }),
      ),
    enabled: started && !!job,
    // Live progress while it runs; still once it is done.
    refetchInterval: (query) =>
      query.state.data && FINISHED.includes(query.state.data.status) ? false : 1000,
  });
  const report = useMutation({
    mutationFn: async (id: string) => {
      const { data, error, response } = await api.GET('/v1/imports/{import_id}/errors', {
        params: { path: { import_id: id } },
        parseAs: 'blob',
      });
      if (!response.ok || !data) {
        await call(Promise.resolve({ data, error, response }));
        return;
      }
      saveBlob(data as Blob, `${(job?.file_name ?? 'import').replace(/\.[^.]+$/, '')}-errors.csv`);
    },
  });

  const reset = () => {
    setFile(null);
    setJob(null);
    setDryRun(null);
    setStarted(false);
    upload.reset();
    preview.reset();
    start.reset();
  };
  const done = status.data && FINISHED.includes(status.data.status);
  const step = done ? 4 : started ? 3 : dryRun ? 2 : job ? 1 : 0;
  const uploadError =
    upload.error instanceof ApiError
      ? (upload.error.fieldErrors.find((e) => e.field === 'file')?.message ?? errorText(upload.error))
      : upload.error
        ? errorText(upload.error)
        : undefined;

  return (
    <Stack gap="md">
      <Group justify="space-between">
        <Title order={1} size="h2">
          {t('import.title')}
        </Title>
        {job ? (
          <Button variant="default" onClick={reset}>
            {t('import.startOver')}
          </Button>
        ) : null}
      </Group>
      <Stepper active={step} size="sm" allowNextStepsSelect={false}>
        <Stepper.Step label={t('import.step.upload')} />
        <Stepper.Step label={t('import.step.mapping')} />
        <Stepper.Step label={t('import.step.dryRun')} />
        <Stepper.Step label={t('import.step.run')} />
      </Stepper>

      <Card padding="md">
        <Group align="flex-end" gap="sm">
          <FileInput
            label={t('import.file')}
            description={t('import.fileHint')}
            placeholder={t('import.choose')}
            accept=".csv,.txt,.xlsx,text/csv,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            leftSection={<IconFileSpreadsheet size={16} />}
            value={file}
            onChange={setFile}
            disabled={!!job}
            error={uploadError}
            flex={1}
            miw={260}
            data-testid="import-file"
          />
          <Button
            onClick={() => file && upload.mutate(file)}
            loading={upload.isPending}
            disabled={!file || !!job}
          >
            {t('import.upload')}
          </Button>
        </Group>
        {job ? (
          <Text size="sm" c="dimmed" mt="xs" data-testid="import-file-info">
            {t('import.fileInfo', {
              name: job.file_name,
              columns: job.headers.length,
              encoding: job.encoding || '—',
            })}
          </Text>
        ) : null}
      </Card>

      {job ? (
        <Card padding="md">
          <Title order={2} size="h4" mb="xs">
            {t('import.step.mapping')}
          </Title>
          <Text size="sm" c="dimmed" mb="sm">
            {t('import.mappingHint')}
          </Text>
          <Table verticalSpacing={6} data-testid="import-mapping">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>{t('import.column')}</Table.Th>
                <Table.Th>{t('import.field')}</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {job.headers.map((column) => (
                <Table.Tr key={column}>
                  <Table.Td>
                    <Text fw={500} size="sm">
                      {column}
                    </Text>
                  </Table.Td>
                  <Table.Td>
                    <Select
                      aria-label={t('import.fieldFor', { column })}
                      size="xs"
                      w={240}
                      allowDeselect={false}
                      disabled={started}
                      value={settings.mapping[column] ?? ''}
                      onChange={(value) => {
                        setDryRun(null);
                        setSettings((s) => ({ ...s, mapping: remap(s.mapping, column, value ?? '') }));
                      }}
                      data={[
                        { value: '', label: t('import.ignore') },
                        ...IMPORT_FIELDS.map((f) => ({ value: f, label: fieldLabel(t, f) })),
                      ]}
                    />
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
          <Group mt="md" gap="sm" align="flex-end">
            <Select
              label={t('import.duplicates')}
              w={260}
              allowDeselect={false}
              disabled={started}
              value={settings.duplicate_policy}
              onChange={(value) => {
                setDryRun(null);
                setSettings((s) => ({ ...s, duplicate_policy: (value as DuplicatePolicy) ?? 'skip' }));
              }}
              data={DUPLICATE_POLICIES.map((p) => ({ value: p, label: t(`import.dup.${p}`) }))}
            />
            <TextInput
              label={t('import.defaultCountry')}
              description={t('import.defaultCountryHint')}
              w={200}
              maxLength={2}
              disabled={started}
              value={settings.default_country}
              onChange={(e) => {
                const value = e.currentTarget.value;
                setDryRun(null);
                setSettings((s) => ({ ...s, default_country: value }));
              }}
              error={
                preview.error instanceof ApiError
                  ? preview.error.fieldErrors.find((e) => e.field === 'default_country')?.message
                  : undefined
              }
            />
            <Button
              variant="light"
              onClick={() => preview.mutate(job.id)}
              loading={preview.isPending}
              disabled={started}
            >
              {t('import.dryRun')}
            </Button>
          </Group>
          {preview.isError ? (
            <Stack mt="sm">
              <ErrorState error={preview.error} />
            </Stack>
          ) : null}
        </Card>
      ) : null}

      {job && dryRun ? (
        <Card padding="md" data-testid="import-dry-run">
          <Title order={2} size="h4" mb="sm">
            {t('import.step.dryRun')}
          </Title>
          <Counts counts={dryRun.counts} dry />
          <DryRunErrors dryRun={dryRun} />
          <Group justify="flex-end" mt="md">
            <Button
              onClick={() => start.mutate(job.id)}
              loading={start.isPending}
              disabled={started || dryRun.counts.total === 0}
            >
              {t('import.start', { count: dryRun.counts.total - dryRun.counts.failed })}
            </Button>
          </Group>
          {start.isError ? <ErrorState error={start.error} /> : null}
        </Card>
      ) : null}

      {job && started ? (
        <Card padding="md" data-testid="import-run">
          <Group justify="space-between" mb="sm">
            <Title order={2} size="h4">
              {t('import.step.run')}
            </Title>
            {status.data ? (
              <Badge
                data-testid="import-status"
                color={
                  status.data.status === 'completed'
                    ? 'green'
                    : status.data.status === 'running'
                      ? 'blue'
                      : 'red'
                }
              >
                {statusLabel(t, status.data.status)}
              </Badge>
            ) : null}
          </Group>
          {status.isError ? (
            <ErrorState error={status.error} onRetry={() => void status.refetch()} />
          ) : status.data ? (
            <Stack gap="sm">
              <Progress
                value={progress(status.data.counts)}
                size="lg"
                animated={!done}
                aria-label={t('import.progress')}
                data-testid="import-progress"
              />
              <Text size="sm" c="dimmed">
                {t('import.processed', {
                  processed: status.data.counts.processed,
                  total: status.data.counts.total,
                })}
              </Text>
              <Counts counts={status.data.counts} />
              {status.data.error ? (
                <Alert color="red" variant="light">
                  {status.data.error}
                </Alert>
              ) : null}
              {done && status.data.counts.failed > 0 ? (
                <Group>
                  <Button
                    leftSection={<IconDownload size={16} />}
                    variant="light"
                    color="red"
                    loading={report.isPending}
                    onClick={() => report.mutate(job.id)}
                  >
                    {t('import.errorReport')}
                  </Button>
                  {report.isError ? (
                    <Text size="sm" c="red">
                      {errorText(report.error)}
                    </Text>
                  ) : null}
                </Group>
              ) : null}
            </Stack>
          ) : (
            <Progress value={0} size="lg" animated aria-label={t('import.progress')} />
          )}
        </Card>
      ) : null}
    </Stack>
  );
}

function fieldLabel(t: I18n['t'], field: string): string {
  const key = FIELD_LABELS[field];
  return key ? t(key) : field;
}

function statusLabel(t: I18n['t'], status: string): string {
  const known = ['uploading', 'ready', 'running', 'completed', 'cancelled', 'failed', 'expired'];
  return known.includes(status) ? t(`import.status.${status}` as MessageKey) : status;
}

function Counts({ counts, dry = false }: { counts: ImportCounts; dry?: boolean }) {
  const { t, format } = useI18n();
  const items: [string, MessageKey, number][] = [
    ['total', 'import.count.total', counts.total],
    ['created', dry ? 'import.count.toCreate' : 'import.count.created', counts.created],
    ['updated', dry ? 'import.count.toUpdate' : 'import.count.updated', counts.updated],
    ['skipped', 'import.count.skipped', counts.skipped],
    ['failed', 'import.count.failed', counts.failed],
  ];
  if (counts.forwarded) items.push(['forwarded', 'import.count.forwarded', counts.forwarded]);
  return (
    <SimpleGrid cols={{ base: 2, sm: items.length }}>
      {items.map(([key, label, value]) => (
        <div key={key}>
          <Text size="xs" c="dimmed" tt="uppercase" fw={600}>
            {t(label)}
          </Text>
          <Text size="lg" fw={700} c={key === 'failed' && value ? 'red.7' : undefined} data-testid={`count-${key}`}>
            {format.number(value)}
          </Text>
        </div>
      ))}
    </SimpleGrid>
  );
}

function DryRunErrors({ dryRun }: { dryRun: ImportJob }) {
  const { t, format } = useI18n();
  const { rows, notShown } = rowErrors(dryRun);
  if (rows.length === 0) {
    return (
      <Text size="sm" c="teal.8" mt="sm">
        {t('import.noErrors')}
      </Text>
    );
  }
  return (
    <Stack gap={4} mt="md">
      <Text fw={600} size="sm">
        {t('import.errors')}
      </Text>
      <Table striped verticalSpacing={4} fz="sm" data-testid="import-errors">
        <Table.Thead>
          <Table.Tr>
            <Table.Th w={80}>{t('import.row')}</Table.Th>
            <Table.Th>{t('import.error')}</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {rows.map((row) => (
            <Table.Tr key={row.row}>
              <Table.Td>{format.number(row.row)}</Table.Td>
              <Table.Td>{row.error}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      {notShown > 0 ? (
        <Text size="sm" c="dimmed">
          {t('import.moreErrors', { count: format.number(notShown) })}
        </Text>
      ) : null}
    </Stack>
  );
}
