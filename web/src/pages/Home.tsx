import { Anchor, Badge, Card, Group, SimpleGrid, Stack, Table, Text, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { Link } from 'react-router';
import { api, call } from '../api/client';
import type { Deal, Page, Task } from '../api/types';
import { useSignedIn } from '../auth/useSession';
import { Empty, ErrorState, Loading } from '../components/States';
import { useI18n } from '../i18n/I18nProvider';
import { useUnreadCount } from '../layout/Shell';
import { dueTodayOrOverdue } from '../lib/tasks';

export default function Home() {
  const session = useSignedIn();
  const { t, format } = useI18n();
  const tasks = useQuery({
    queryKey: ['tasks', 'mine', 'open', session.user],
    queryFn: () =>
      call<Page<Task>>(
        api.GET('/v1/tasks', {
          params: { query: { assignee_id: session.user, status: 'open', limit: 200 } },
        }),
      ),
  });
  const deals = useQuery({
    queryKey: ['deals', 'mine', 'open', session.user],
    queryFn: () =>
      call<Page<Deal>>(
        api.GET('/v1/deals', {
          params: { query: { owner_id: session.user, status: 'open', limit: 20 } },
        }),
      ),
  });
  const unread = useUnreadCount();
  const due = tasks.data ? dueTodayOrOverdue(tasks.data.data, new Date(), session.timeZone) : [];

  return (
    <Stack gap="lg">
      <Title order={1} size="h2">
        {t('home.greeting', { name: session.name })}
      </Title>
      <SimpleGrid cols={{ base: 1, md: 3 }}>
        <Card data-testid="stat-tasks">
          <Text size="sm" c="dimmed">
            {t('home.tasksTitle')}
          </Text>
          <Text fz={32} fw={700}>
            {tasks.data ? format.number(due.length) : '…'}
          </Text>
        </Card>
        <Card data-testid="stat-deals">
          <Text size="sm" c="dimmed">
            {t('home.dealsTitle')}
          </Text>
          <Text fz={32} fw={700}>
            {deals.data ? format.number(deals.data.data.length) : '…'}
          </Text>
        </Card>
        <Card data-testid="stat-unread">
          <Text size="sm" c="dimmed">
            {t('home.unreadTitle')}
          </Text>
          <Text fz={32} fw={700}>
            {unread.data !== undefined ? format.number(unread.data) : '…'}
          </Text>
        </Card>
      </SimpleGrid>
      <SimpleGrid cols={{ base: 1, lg: 2 }}>
        <Card>
          <Title order={2} size="h4" mb="sm">
            {t('home.tasksTitle')}
          </Title>
          {tasks.isPending ? (
            <Loading />
          ) : tasks.isError ? (
            <ErrorState error={tasks.error} onRetry={() => void tasks.refetch()} />
          ) : due.length === 0 ? (
            <Empty title={t('home.noTasks')} />
          ) : (
            <Stack gap="xs">
              {due.map(({ task, overdue }) => (
                <Group key={task.id} justify="space-between" wrap="nowrap">
                  <div>
                    <Text fw={500}>{task.title}</Text>
                    <Text size="xs" c="dimmed">
                      {format.dateTime(task.due_at)}
                    </Text>
                  </div>
                  <Badge color={overdue ? 'red' : 'blue'} variant="light">
                    {overdue ? t('home.overdue') : t('home.dueToday')}
                  </Badge>
                </Group>
              ))}
            </Stack>
          )}
        </Card>
        <Card>
          <Title order={2} size="h4" mb="sm">
            {t('home.dealsTitle')}
          </Title>
          {deals.isPending ? (
            <Loading />
          ) : deals.isError ? (
            <ErrorState error={deals.error} onRetry={() => void deals.refetch()} />
          ) : deals.data.data.length === 0 ? (
            <Empty title={t('home.noDeals')} />
          ) : (
            <Table verticalSpacing="xs">
              <Table.Tbody>
                {deals.data.data.map((deal) => (
                  <Table.Tr key={deal.id}>
                    <Table.Td>
                      <Anchor component={Link} to={`/pipeline?pipeline=${deal.pipeline_id}`}>
                        {deal.title}
                      </Anchor>
                    </Table.Td>
                    <Table.Td>
                      <Badge variant="light">{deal.stage_name}</Badge>
                    </Table.Td>
                    <Table.Td ta="end">
                      {format.money(deal.amount?.amount, deal.amount?.currency)}
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          )}
        </Card>
      </SimpleGrid>
    </Stack>
  );
}
