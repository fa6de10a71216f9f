import {
  Button,
  Card,
  Group,
  SegmentedControl,
  Select,
  Stack,
  Text,
  TextInput,
  Title,
} from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { IconPlus } from '@tabler/icons-react';
import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { useSearchParams } from 'react-router';
import { ApiError, api, call, idempotencyKey } from '../api/client';
import type { DirectoryUser, Page, Task } from '../api/types';
import { useSignedIn } from '../auth/useSession';
import { Empty, ErrorState, Loading, useErrorText } from '../components/States';
import { TaskList } from '../components/TaskList';
import { useI18n } from '../i18n/I18nProvider';
import { browserZone, utcToZoned, zonedToUtc } from '../lib/time';

const PAGE = 100;

export default function Tasks() {
  const session = useSignedIn();
  const { t, format } = useI18n();
  const [params, setParams] = useSearchParams();
  // Managers see their team's tasks, admins everyone's; a rep only their own.
  const seesOthers = session.role === 'manager' || session.role === 'admin';
  const scope = seesOthers && params.get('scope') === 'team' ? 'team' : 'mine';
  const tasks = useInfiniteQuery({
    queryKey: ['tasks', 'list', scope, session.user],
    initialPageParam: null as string | null,
    queryFn: ({ pageParam }) =>
      call<Page<Task>>(
        api.GET('/v1/tasks', {
          params: {
            query: {
              status: 'open',
              assignee_id: scope === 'mine' ? session.user : undefined,
              limit: PAGE,
              cursor: pageParam ?? undefined,
            },
          },
        }),
      ),
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const list = tasks.data?.pages.flatMap((p) => p.data) ?? [];
  const overdue = list.filter((task) => task.due_at && new Date(task.due_at) < new Date()).length;

  return (
    <Stack gap="md">
      <Group justify="space-between">
        <Title order={1} size="h2">
          {t('tasks.title')}
        </Title>
        {seesOthers ? (
          <SegmentedControl
            aria-label={t('tasks.scope')}
            value={scope}
            onChange={(value) => setParams(value === 'team' ? { scope: 'team' } : {}, { replace: true })}
            data={[
              { value: 'mine', label: t('tasks.mine') },
              {
                value: 'team',
                label: session.role === 'admin' ? t('tasks.everyone') : t('tasks.team'),
              },
            ]}
          />
        ) : null}
      </Group>
      <NewTask seesOthers={seesOthers} />
      <Card padding="md">
        <Group justify="space-between" mb="xs">
          <Title order={2} size="h4">
            {t('tasks.open')}
          </Title>
          {list.length > 0 ? (
            <Text size="sm" c={overdue ? 'red.7' : 'dimmed'} data-testid="tasks-summary">
              {t('tasks.summary', {
                count: format.number(list.length),
                overdue: format.number(overdue),
              })}
            </Text>
          ) : null}
        </Group>
        {tasks.isPending ? (
          <Loading label={t('common.loading')} />
        ) : tasks.isError && list.length === 0 ? (
          <ErrorState error={tasks.error} onRetry={() => void tasks.refetch()} />
        ) : list.length === 0 ? (
          <Empty title={t('tasks.empty')} hint={t('tasks.emptyHint')} />
        ) : (
          <TaskList tasks={list} showAssignee={scope === 'team'} />
        )}
        {tasks.hasNextPage ? (
          <Group justify="center" mt="sm">
            <Button
              variant="default"
              onClick={() => void tasks.fetchNextPage()}
              loading={tasks.isFetchingNextPage}
            >
              {t('common.loadMore')}
            </Button>
          </Group>
        ) : null}
      </Card>
    </Stack>
  );
}

/** A new task, due at a time typed on the user's own clock and sent as UTC. */
function NewTask({ seesOthers }: { seesOthers: boolean }) {
  const session = useSignedIn();
  const { t } = useI18n();
  const errorText = useErrorText();
  const queryClient = useQueryClient();
  const zone = session.timeZone || browserZone();
  const [title, setTitle] = useState('');
  const [due, setDue] = useState(() => utcToZoned(new Date(Date.now() + 3_600_000), zone));
  const [assignee, setAssignee] = useState<string | null>(session.user);
  const team = useQuery({
    queryKey: ['users', session.role === 'admin' ? '' : session.team],
    queryFn: () =>
      call<{ data: DirectoryUser[] }>(
        api.GET('/v1/users', {
          params: { query: { team: session.role === 'admin' ? undefined : session.team || undefined } },
        }),
      ).then((r) => r.data),
    enabled: seesOthers,
    staleTime: 300_000,
  });
  const people = [
    { value: session.user, label: session.name || session.user },
    ...(team.data ?? [])
      .filter((u) => u.id !== session.user)
      .map((u) => ({ value: u.id, label: u.display_name || u.id })),
  ];
  const dueAt = due ? zonedToUtc(due, zone) : null;
  const create = useMutation({
    mutationFn: () =>
      call<Task>(
        api.POST('/v1/tasks', {
          params: { header: { 'Idempotency-Key': idempotencyKey() } },
          body: {
            title: title.trim(),
            assignee_id: assignee || session.user,
            due_at: dueAt ?? undefined,
          },
        }),
      ),
    onSuccess: (task) => {
      setTitle('');
      notifications.show({ color: 'green', message: t('tasks.created', { title: task.title }) });
      void queryClient.invalidateQueries({ queryKey: ['tasks'] });
    },
  });
  const fieldError = (field: string) =>
    create.error instanceof ApiError
      ? create.error.fieldErrors.find((e) => e.field === field)?.message
      : undefined;
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (title.trim() && (!due || dueAt)) create.mutate();
  };
  const general =
    create.error && !(create.error instanceof ApiError && create.error.fieldErrors.length)
      ? errorText(create.error)
      : undefined;

  return (
    <Card padding="md" component="form" onSubmit={submit} aria-label={t('tasks.new')}>
      <Group gap="sm" align="flex-start" wrap="wrap">
        <TextInput
          label={t('tasks.taskTitle')}
          flex={2}
          miw={220}
          required
          value={title}
          onChange={(e) => setTitle(e.currentTarget.value)}
          error={fieldError('title') ?? general}
        />
        <TextInput
          type="datetime-local"
          label={t('tasks.due')}
          description={t('tasks.dueZone', { zone })}
          w={230}
          value={due}
          onChange={(e) => setDue(e.currentTarget.value)}
          error={(due && !dueAt ? t('tasks.badDue') : undefined) ?? fieldError('due_at')}
        />
        {seesOthers ? (
          <Select
            label={t('tasks.assignee')}
            w={200}
            searchable
            allowDeselect={false}
            value={assignee}
            onChange={setAssignee}
            data={people}
            error={fieldError('assignee_id')}
          />
        ) : null}
        <Button
          type="submit"
          mt={25}
          leftSection={<IconPlus size={16} />}
          loading={create.isPending}
          disabled={!title.trim()}
        >
          {t('tasks.create')}
        </Button>
      </Group>
    </Card>
  );
}
