import {
  Anchor,
  Badge,
  Button,
  Card,
  Grid,
  Group,
  SegmentedControl,
  Stack,
  Text,
  Textarea,
  ThemeIcon,
  Timeline,
  Title,
} from '@mantine/core';
import { notifications } from '@mantine/notifications';
import {
  IconArrowLeft,
  IconMail,
  IconNote,
  IconPaperclip,
  IconPhone,
  IconPlus,
  IconShieldCheck,
  IconUsers,
} from '@tabler/icons-react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent, type ReactNode } from 'react';
import { Link, useParams } from 'react-router';
import { ApiError, api, call, idempotencyKey } from '../api/client';
import type { Contact, Deal, Page, Task, TimelineEntry } from '../api/types';
import { Attachments } from '../components/Attachments';
import { DealDialog } from '../components/DealDialog';
import { Empty, ErrorState, Loading, NotFoundState, useErrorText } from '../components/States';
import { useI18n } from '../i18n/I18nProvider';
import { isBlank } from '../lib/blank';
import { fullName, sourceLabel, stageLabel } from '../lib/contacts';

const KINDS = ['note', 'call', 'email', 'meeting'] as const;
type Kind = (typeof KINDS)[number];
const KIND_ICONS: Record<string, typeof IconNote> = {
  note: IconNote,
  call: IconPhone,
  email: IconMail,
  meeting: IconUsers,
  attachment: IconPaperclip,
};

function Field({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div>
      <Text size="xs" c="dimmed" tt="uppercase" fw={600}>
        {label}
      </Text>
      <Text size="sm" component="div">
        {isBlank(children) ? '—' : children}
      </Text>
    </div>
  );
}

export default function ContactPage() {
  const { contactId = '' } = useParams();
  const { t, format } = useI18n();
  const region = contactId.split('_')[0] ?? '';
  const contact = useQuery({
    queryKey: ['contact', contactId],
    queryFn: () =>
      call<Contact>(api.GET('/v1/contacts/{contact_id}', { params: { path: { contact_id: contactId } } })),
    retry: false,
  });

  if (contact.isPending) return <Loading label={t('common.loading')} />;
  if (contact.isError) {
    const status = contact.error instanceof ApiError ? contact.error.status : 0;
    // Another rep's contact is not found for this user, exactly as a missing one.
    if (status === 404 || status === 403 || status === 422) return <NotFoundState />;
    return <ErrorState error={contact.error} onRetry={() => void contact.refetch()} />;
  }
  const c = contact.data;
  const address = [c.address.street, c.address.postal_code, c.address.city, c.address.country]
    .filter(Boolean)
    .join(', ');

  return (
    <Stack gap="md">
      <Anchor component={Link} to="/contacts" size="sm">
        <Group gap={4}>
          <IconArrowLeft size={14} className="flip-rtl" />
          {t('contacts.title')}
        </Group>
      </Anchor>
      <Group justify="space-between" align="flex-start">
        <div>
          <Title order={1} size="h2" data-testid="contact-name">
            {fullName(c)}
          </Title>
          <Group gap="xs" mt={6}>
            {c.lifecycle_stage ? <Badge variant="light">{stageLabel(t, c.lifecycle_stage)}</Badge> : null}
            {c.tags.map((tag) => (
              <Badge key={tag} variant="outline" color="gray">
                {tag}
              </Badge>
            ))}
          </Group>
        </div>
        <Badge
          size="lg"
          variant="light"
          color="teal"
          leftSection={<IconShieldCheck size={14} />}
          data-testid="residency"
        >
          {t('contact.residency', { region: c.region.toUpperCase() })}
        </Badge>
      </Group>
      <Grid gap="md">
        <Grid.Col span={{ base: 12, md: 4 }}>
          <Stack gap="md">
            <Card>
              <Title order={2} size="h4" mb="sm">
                {t('contact.details')}
              </Title>
              <Stack gap="sm">
                <Field label={t('form.email')}>{c.emails.join(', ')}</Field>
                <Field label={t('form.phone')}>
                  {c.phones.length ? <span dir="ltr">{c.phones.join(', ')}</span> : null}
                </Field>
                <Field label={t('contact.address')}>{address}</Field>
                <Field label={t('contact.timeZone')}>{c.time_zone}</Field>
                <Field label={t('contact.language')}>{c.language}</Field>
                <Field label={t('contacts.owner')}>{c.owner_id}</Field>
                <Field label={t('form.source')}>{sourceLabel(t, c.source)}</Field>
                <Field label={t('contacts.created')}>{format.dateTime(c.created_at)}</Field>
              </Stack>
            </Card>
            <ContactDeals contactId={c.id} region={region} />
            <ContactTasks contactId={c.id} region={region} />
            <Attachments contactId={c.id} />
          </Stack>
        </Grid.Col>
        <Grid.Col span={{ base: 12, md: 8 }}>
          <ContactTimeline contactId={c.id} />
        </Grid.Col>
      </Grid>
    </Stack>
  );
}

function entryKindLabel(t: ReturnType<typeof useI18n>['t'], kind: string): string {
  if (KINDS.includes(kind as Kind)) return t(`contact.kind.${kind as Kind}`);
  // A file added: its name follows as the entry's subject.
  if (kind === 'attachment') return t('files.kind');
  return kind;
}

function ContactTimeline({ contactId }: { contactId: string }) {
  const { t, format } = useI18n();
  const errorText = useErrorText();
  const queryClient = useQueryClient();
  const [kind, setKind] = useState<Kind>('note');
  const [body, setBody] = useState('');
  const timeline = useQuery({
    queryKey: ['timeline', contactId],
    queryFn: () =>
      call<Page<TimelineEntry>>(
        api.GET('/v1/contacts/{contact_id}/notes', {
          params: { path: { contact_id: contactId }, query: { limit: 200 } },
        }),
      ),
  });
  const add = useMutation({
    mutationFn: () =>
      call<TimelineEntry>(
        api.POST('/v1/contacts/{contact_id}/notes', {
          params: { path: { contact_id: contactId }, header: { 'Idempotency-Key': idempotencyKey() } },
          body: { kind, body: body.trim(), direction: kind === 'call' ? 'outbound' : '' },
        }),
      ),
    onSuccess: () => {
      setBody('');
      notifications.show({ color: 'green', message: t('contact.noteAdded') });
      void queryClient.invalidateQueries({ queryKey: ['timeline', contactId] });
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (body.trim()) add.mutate();
  };
  // The API lists oldest first; the timeline reads newest first.
  const entries = [...(timeline.data?.data ?? [])].sort(
    (a, b) => (b.occurred_at || b.created_at).localeCompare(a.occurred_at || a.created_at),
  );

  return (
    <Card>
      <Title order={2} size="h4" mb="sm">
        {t('contact.timeline')}
      </Title>
      <form onSubmit={submit}>
        <Stack gap="xs" mb="lg">
          <SegmentedControl
            aria-label={t('contact.addNote')}
            value={kind}
            onChange={(value) => setKind(value as Kind)}
            data={KINDS.map((k) => ({ value: k, label: t(`contact.kind.${k}`) }))}
            w="fit-content"
          />
          <Textarea
            aria-label={t('contact.addNote')}
            placeholder={t('contact.notePlaceholder')}
            autosize
            minRows={2}
            value={body}
            onChange={(e) => setBody(e.currentTarget.value)}
            error={add.error ? errorText(add.error) : undefined}
          />
          <Group justify="flex-end">
            <Button type="submit" loading={add.isPending} disabled={!body.trim()}>
              {t('contact.addNote')}
            </Button>
          </Group>
        </Stack>
      </form>
      {timeline.isPending ? (
        <Loading />
      ) : timeline.isError ? (
        <ErrorState error={timeline.error} onRetry={() => void timeline.refetch()} />
      ) : entries.length === 0 ? (
        <Empty title={t('contact.noTimeline')} />
      ) : (
        <Timeline bulletSize={28} lineWidth={2} data-testid="timeline">
          {entries.map((entry) => {
            const Icon = KIND_ICONS[entry.kind] ?? IconNote;
            return (
              <Timeline.Item
                key={entry.id}
                bullet={
                  <ThemeIcon size={28} radius="xl" variant="light">
                    <Icon size={16} />
                  </ThemeIcon>
                }
                title={
                  <Group gap="xs">
                    <Text fw={600} size="sm">
                      {entryKindLabel(t, entry.kind)}
                      {entry.subject ? ` · ${entry.subject}` : ''}
                    </Text>
                    <Text size="xs" c="dimmed">
                      {format.dateTime(entry.occurred_at || entry.created_at)} · {entry.author_id}
                    </Text>
                  </Group>
                }
              >
                <Text size="sm" style={{ whiteSpace: 'pre-wrap' }}>
                  {entry.body}
                </Text>
              </Timeline.Item>
            );
          })}
        </Timeline>
      )}
    </Card>
  );
}

function ContactDeals({ contactId, region }: { contactId: string; region: string }) {
  const { t, format } = useI18n();
  const [creating, setCreating] = useState(false);
  const deals = useQuery({
    queryKey: ['deals', 'contact', contactId],
    queryFn: () =>
      call<Page<Deal>>(
        api.GET('/v1/deals', { params: { query: { contact_id: contactId, region, limit: 50 } } }),
      ),
  });
  return (
    <Card>
      <Group justify="space-between" mb="sm">
        <Title order={2} size="h4">
          {t('contact.deals')}
        </Title>
        <Button size="xs" variant="light" leftSection={<IconPlus size={14} />} onClick={() => setCreating(true)}>
          {t('dealForm.new')}
        </Button>
      </Group>
      {creating ? <DealDialog contactId={contactId} onClose={() => setCreating(false)} /> : null}
      {deals.isPending ? (
        <Loading />
      ) : deals.isError ? (
        <ErrorState error={deals.error} onRetry={() => void deals.refetch()} />
      ) : deals.data.data.length === 0 ? (
        <Text size="sm" c="dimmed">
          {t('contact.noDeals')}
        </Text>
      ) : (
        <Stack gap="xs">
          {deals.data.data.map((deal) => (
            <Group key={deal.id} justify="space-between" wrap="nowrap">
              <div>
                <Anchor component={Link} to={`/deals/${deal.id}`} size="sm">
                  {deal.title}
                </Anchor>
                <Text size="xs" c="dimmed">
                  {deal.stage_name}
                </Text>
              </div>
              <Text size="sm" fw={500}>
                {format.money(deal.amount?.amount, deal.amount?.currency)}
              </Text>
            </Group>
          ))}
        </Stack>
      )}
    </Card>
  );
}

function ContactTasks({ contactId, region }: { contactId: string; region: string }) {
  const { t, format } = useI18n();
  const tasks = useQuery({
    queryKey: ['tasks', 'contact', contactId],
    queryFn: () =>
      call<Page<Task>>(
        api.GET('/v1/tasks', {
          params: { query: { contact_id: contactId, status: 'open', region, limit: 50 } },
        }),
      ),
  });
  return (
    <Card>
      <Title order={2} size="h4" mb="sm">
        {t('contact.tasks')}
      </Title>
      {tasks.isPending ? (
        <Loading />
      ) : tasks.isError ? (
        <ErrorState error={tasks.error} onRetry={() => void tasks.refetch()} />
      ) : tasks.data.data.length === 0 ? (
        <Text size="sm" c="dimmed">
          {t('contact.noTasks')}
        </Text>
      ) : (
        <Stack gap="xs">
          {tasks.data.data.map((task) => (
            <div key={task.id}>
              <Text size="sm" fw={500}>
                {task.title}
              </Text>
              <Text size="xs" c="dimmed">
                {format.dateTime(task.due_at)} · {task.assignee_id}
              </Text>
            </div>
          ))}
        </Stack>
      )}
    </Card>
  );
}
