import {
  Anchor,
  Badge,
  Button,
  Card,
  Grid,
  Group,
  Select,
  Stack,
  Text,
  Timeline,
  Title,
} from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { IconArrowLeft, IconDownload, IconFileInvoice, IconPencil } from '@tabler/icons-react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type ReactNode } from 'react';
import { Link, useParams } from 'react-router';
import { ApiError, api, call } from '../api/client';
import type {
  Contact,
  Deal,
  DealDocument,
  DocumentTemplate,
  Page,
  Pipeline,
  Task,
} from '../api/types';
import { Attachments } from '../components/Attachments';
import { DealDialog } from '../components/DealDialog';
import { Empty, ErrorState, Loading, NotFoundState, useErrorText } from '../components/States';
import { TaskList } from '../components/TaskList';
import { useI18n } from '../i18n/I18nProvider';
import { isBlank } from '../lib/blank';
import { fullName } from '../lib/contacts';
import { documentFileName, stageHistory } from '../lib/deal';
import { saveBlob } from '../lib/download';

function Field({ label, children, testId }: { label: string; children: ReactNode; testId?: string }) {
  return (
    <div>
      <Text size="xs" c="dimmed" tt="uppercase" fw={600}>
        {label}
      </Text>
      <Text size="sm" data-testid={testId} component="div">
        {isBlank(children) ? '—' : children}
      </Text>
    </div>
  );
}

export function usePipelines() {
  return useQuery({
    queryKey: ['pipelines'],
    queryFn: () => call<{ data: Pipeline[] }>(api.GET('/v1/pipelines', {})).then((r) => r.data),
    staleTime: 300_000,
  });
}

export default function DealPage() {
  const { dealId = '' } = useParams();
  const { t, format } = useI18n();
  const deal = useQuery({
    queryKey: ['deal', dealId],
    queryFn: () =>
      call<Deal>(api.GET('/v1/deals/{deal_id}', { params: { path: { deal_id: dealId } } })),
    retry: false,
  });
  const pipelines = usePipelines();
  const [editing, setEditing] = useState(false);

  if (deal.isPending) return <Loading label={t('common.loading')} />;
  if (deal.isError) {
    const status = deal.error instanceof ApiError ? deal.error.status : 0;
    // A deal the user may not see is "not found", exactly as a missing one.
    if (status === 404 || status === 403 || status === 422) return <NotFoundState />;
    return <ErrorState error={deal.error} onRetry={() => void deal.refetch()} />;
  }
  const d = deal.data;
  const pipeline = pipelines.data?.find((p) => p.id === d.pipeline_id);
  const stages = pipeline?.stages ?? [];
  const history = stageHistory(d, stages);
  const statusColor = d.status === 'won' ? 'green' : d.status === 'lost' ? 'red' : 'indigo';

  return (
    <Stack gap="md">
      <Anchor component={Link} to={`/pipeline?pipeline=${d.pipeline_id}`} size="sm">
        <Group gap={4}>
          <IconArrowLeft size={14} className="flip-rtl" />
          {pipeline?.name ?? t('board.title')}
        </Group>
      </Anchor>
      <Group justify="space-between" align="flex-start">
        <div>
          <Title order={1} size="h2" data-testid="deal-title">
            {d.title}
          </Title>
          <Group gap="xs" mt={6}>
            <Badge variant="light" color={statusColor} data-testid="deal-stage">
              {d.stage_name}
            </Badge>
            <Badge variant="outline" color="gray">
              {t(`deal.status.${d.status === 'won' || d.status === 'lost' ? d.status : 'open'}`)}
            </Badge>
          </Group>
        </div>
        <Group gap="sm" align="center">
          <Text size="xl" fw={700} c="indigo.8" data-testid="deal-amount">
            {format.money(d.amount?.amount, d.amount?.currency) || t('common.none')}
          </Text>
          <Button size="xs" variant="light" leftSection={<IconPencil size={14} />} onClick={() => setEditing(true)}>
            {t('settings.edit')}
          </Button>
        </Group>
      </Group>
      {editing ? <DealDialog deal={d} onClose={() => setEditing(false)} /> : null}
      <Grid gap="md">
        <Grid.Col span={{ base: 12, md: 4 }}>
          <Stack gap="md">
            <Card>
              <Title order={2} size="h4" mb="sm">
                {t('contact.details')}
              </Title>
              <Stack gap="sm">
                <Field label={t('deal.contact')} testId="deal-contact">
                  {d.contact_id ? <ContactLink contactId={d.contact_id} /> : null}
                </Field>
                <Field label={t('contacts.owner')} testId="deal-owner">
                  {d.owner_id}
                  {d.owner_team ? ` · ${d.owner_team}` : ''}
                </Field>
                <Field label={t('deal.expectedClose')}>{format.date(d.expected_close_date)}</Field>
                {d.lost_reason ? <Field label={t('deal.lostReason')}>{d.lost_reason}</Field> : null}
                <Field label={t('form.source')}>{d.source}</Field>
                <Field label={t('contacts.region')}>{d.region.toUpperCase()}</Field>
                <Field label={t('contacts.created')}>{format.dateTime(d.created_at)}</Field>
                {d.description ? (
                  <Field label={t('deal.description')}>
                    <span style={{ whiteSpace: 'pre-wrap' }}>{d.description}</span>
                  </Field>
                ) : null}
              </Stack>
            </Card>
            <DealDocuments dealId={d.id} title={d.title} />
            <Attachments dealId={d.id} />
          </Stack>
        </Grid.Col>
        <Grid.Col span={{ base: 12, md: 8 }}>
          <Stack gap="md">
            <Card>
              <Title order={2} size="h4" mb="sm">
                {t('deal.history')}
              </Title>
              {history.length === 0 ? (
                <Text size="sm" c="dimmed">
                  {t('deal.noHistory', { stage: d.stage_name })}
                </Text>
              ) : (
                <Timeline bulletSize={14} lineWidth={2} data-testid="stage-history">
                  {history.map((entry) => (
                    <Timeline.Item
                      key={`${entry.at}-${entry.to}`}
                      title={
                        <Text size="sm" fw={600}>
                          {entry.from ? `${entry.from} → ${entry.to}` : t('deal.createdIn', { stage: entry.to })}
                        </Text>
                      }
                    >
                      <Text size="xs" c="dimmed">
                        {format.dateTime(entry.at)}
                        {entry.by ? ` · ${entry.by}` : ''}
                        {entry.daysInFrom !== null
                          ? ` · ${t('deal.daysIn', { days: format.number(entry.daysInFrom), stage: entry.from })}`
                          : ''}
                      </Text>
                    </Timeline.Item>
                  ))}
                </Timeline>
              )}
            </Card>
            <DealTasks dealId={d.id} region={d.region} />
          </Stack>
        </Grid.Col>
      </Grid>
    </Stack>
  );
}

function ContactLink({ contactId }: { contactId: string }) {
  const contact = useQuery({
    queryKey: ['contact', contactId],
    queryFn: () =>
      call<Contact>(
        api.GET('/v1/contacts/{contact_id}', { params: { path: { contact_id: contactId } } }),
      ),
    retry: false,
    staleTime: 300_000,
  });
  return (
    <Anchor component={Link} to={`/contacts/${contactId}`} size="sm">
      {contact.data ? fullName(contact.data) : contactId}
    </Anchor>
  );
}

function DealDocuments({ dealId, title }: { dealId: string; title: string }) {
  const { t, format } = useI18n();
  const errorText = useErrorText();
  const queryClient = useQueryClient();
  const [template, setTemplate] = useState<string | null>(null);
  const documents = useQuery({
    queryKey: ['documents', dealId],
    queryFn: () =>
      call<{ data: DealDocument[] }>(
        api.GET('/v1/deals/{deal_id}/documents', { params: { path: { deal_id: dealId } } }),
      ).then((r) => r.data),
  });
  const templates = useQuery({
    queryKey: ['document-templates'],
    queryFn: () =>
      call<{ data: DocumentTemplate[] }>(api.GET('/v1/document-templates', {})).then((r) => r.data),
    staleTime: 300_000,
  });
  const chosen = template ?? templates.data?.[0]?.key ?? null;
  const generate = useMutation({
    mutationFn: (key: string) =>
      call<DealDocument>(
        api.POST('/v1/deals/{deal_id}/documents', {
          params: { path: { deal_id: dealId } },
          body: { template_key: key },
        }),
      ),
    onSuccess: () => {
      notifications.show({ color: 'green', message: t('deal.generated') });
      void queryClient.invalidateQueries({ queryKey: ['documents', dealId] });
    },
    onError: (error) =>
      notifications.show({ color: 'red', title: t('deal.generateFailed'), message: errorText(error) }),
  });
  const download = useMutation({
    mutationFn: async (document: DealDocument) => {
      const { data, error, response } = await api.GET('/v1/documents/{document_id}', {
        params: { path: { document_id: document.id }, query: { format: 'pdf' } },
        parseAs: 'blob',
      });
      if (!response.ok || !data) {
        await call(Promise.resolve({ data, error, response }));
        return;
      }
      saveBlob(data as Blob, documentFileName(document.title || title, document.id));
    },
    onError: (error) =>
      notifications.show({ color: 'red', title: t('deal.downloadFailed'), message: errorText(error) }),
  });

  return (
    <Card>
      <Title order={2} size="h4" mb="sm">
        {t('deal.documents')}
      </Title>
      {documents.isPending ? (
        <Loading />
      ) : documents.isError ? (
        <ErrorState error={documents.error} onRetry={() => void documents.refetch()} />
      ) : documents.data.length === 0 ? (
        <Text size="sm" c="dimmed" mb="sm">
          {t('deal.noDocuments')}
        </Text>
      ) : (
        <Stack gap="xs" mb="sm" data-testid="documents">
          {documents.data.map((document) => (
            <Group key={document.id} justify="space-between" wrap="nowrap">
              <Group gap={6} wrap="nowrap" miw={0}>
                <IconFileInvoice size={18} />
                <div style={{ minWidth: 0 }}>
                  <Text size="sm" fw={500} truncate>
                    {document.title || document.template_key}
                  </Text>
                  <Text size="xs" c="dimmed">
                    {format.dateTime(document.created_at)} · {format.number(Math.ceil(document.pdf_size / 1024))} KB
                  </Text>
                </div>
              </Group>
              <Button
                size="xs"
                variant="light"
                leftSection={<IconDownload size={14} />}
                loading={download.isPending && download.variables?.id === document.id}
                onClick={() => download.mutate(document)}
              >
                {t('deal.downloadPdf')}
              </Button>
            </Group>
          ))}
        </Stack>
      )}
      {templates.data && templates.data.length > 0 ? (
        <Group gap="xs" align="flex-end" wrap="nowrap">
          <Select
            label={t('deal.template')}
            size="xs"
            flex={1}
            allowDeselect={false}
            value={chosen}
            onChange={setTemplate}
            data={templates.data.map((tpl) => ({ value: tpl.key, label: tpl.name || tpl.key }))}
          />
          <Button
            size="xs"
            loading={generate.isPending}
            disabled={!chosen}
            onClick={() => chosen && generate.mutate(chosen)}
          >
            {t('deal.generate')}
          </Button>
        </Group>
      ) : null}
    </Card>
  );
}

function DealTasks({ dealId, region }: { dealId: string; region: string }) {
  const { t } = useI18n();
  const tasks = useQuery({
    queryKey: ['tasks', 'deal', dealId],
    queryFn: () =>
      call<Page<Task>>(
        api.GET('/v1/tasks', { params: { query: { deal_id: dealId, region, limit: 100 } } }),
      ),
  });
  return (
    <Card>
      <Title order={2} size="h4" mb="sm">
        {t('deal.tasks')}
      </Title>
      {tasks.isPending ? (
        <Loading />
      ) : tasks.isError ? (
        <ErrorState error={tasks.error} onRetry={() => void tasks.refetch()} />
      ) : tasks.data.data.length === 0 ? (
        <Empty title={t('deal.noTasks')} />
      ) : (
        <TaskList tasks={tasks.data.data} showLinks={false} />
      )}
    </Card>
  );
}
