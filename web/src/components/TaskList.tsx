import { ActionIcon, Anchor, Badge, Group, Stack, Text, Tooltip } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { IconCheck } from '@tabler/icons-react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { Link } from 'react-router';
import { api, call } from '../api/client';
import type { Task } from '../api/types';
import { useI18n } from '../i18n/I18nProvider';
import { orderTasks } from '../lib/tasks';
import { useErrorText } from './States';

/** Completes a task with one click; every task list refreshes afterwards. */
export function useCompleteTask() {
  const { t } = useI18n();
  const errorText = useErrorText();
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (task: Task) =>
      call<Task>(
        api.POST('/v1/tasks/{task_id}/complete', { params: { path: { task_id: task.id } } }),
      ),
    onSuccess: (_done, task) => {
      notifications.show({ color: 'green', message: t('tasks.completed', { title: task.title }) });
    },
    onError: (error, task) => {
      notifications.show({
        color: 'red',
        title: t('tasks.completeFailed', { title: task.title }),
        message: errorText(error),
      });
    },
    onSettled: () => void queryClient.invalidateQueries({ queryKey: ['tasks'] }),
  });
}

/** Open tasks, overdue first, each with its due time in the user's zone and a done button. */
export function TaskList({
  tasks,
  showAssignee = true,
  showLinks = true,
}: {
  tasks: Task[];
  showAssignee?: boolean;
  showLinks?: boolean;
}) {
  const { t, format } = useI18n();
  const complete = useCompleteTask();
  const ordered = orderTasks(tasks, new Date());
  return (
    <Stack gap={0} component="ul" p={0} m={0} style={{ listStyle: 'none' }} data-testid="task-list">
      {ordered.map(({ task, overdue }) => {
        const done = task.status !== 'open';
        const pending = complete.isPending && complete.variables?.id === task.id;
        return (
          <Group
            key={task.id}
            component="li"
            justify="space-between"
            wrap="nowrap"
            py="xs"
            className="task-row"
            data-testid="task-row"
            data-task={task.title}
            data-overdue={overdue}
          >
            <Group gap="sm" wrap="nowrap" miw={0}>
              <Tooltip label={t('tasks.complete')}>
                <ActionIcon
                  variant={done ? 'filled' : 'default'}
                  color="teal"
                  radius="xl"
                  size="lg"
                  aria-label={t('tasks.completeNamed', { title: task.title })}
                  disabled={done}
                  loading={pending}
                  onClick={() => complete.mutate(task)}
                >
                  <IconCheck size={16} />
                </ActionIcon>
              </Tooltip>
              <div style={{ minWidth: 0 }}>
                <Text size="sm" fw={500} td={done ? 'line-through' : undefined} truncate>
                  {task.title}
                </Text>
                <Group gap={6} wrap="wrap">
                  {task.due_at ? (
                    <Text size="xs" c={overdue ? 'red.7' : 'dimmed'}>
                      {format.dateTime(task.due_at)}
                    </Text>
                  ) : (
                    <Text size="xs" c="dimmed">
                      {t('tasks.noDue')}
                    </Text>
                  )}
                  {showAssignee ? (
                    <Text size="xs" c="dimmed">
                      · {task.assignee_id}
                    </Text>
                  ) : null}
                  {showLinks && task.deal_id ? (
                    <Anchor component={Link} to={`/deals/${task.deal_id}`} size="xs">
                      {t('tasks.deal')}
                    </Anchor>
                  ) : null}
                  {showLinks && task.contact_id ? (
                    <Anchor component={Link} to={`/contacts/${task.contact_id}`} size="xs">
                      {t('tasks.contact')}
                    </Anchor>
                  ) : null}
                </Group>
              </div>
            </Group>
            <Group gap={6} wrap="nowrap">
              {task.priority === 'high' ? (
                <Badge color="orange" variant="light">
                  {t('tasks.high')}
                </Badge>
              ) : null}
              {overdue ? (
                <Badge color="red" variant="light">
                  {t('home.overdue')}
                </Badge>
              ) : null}
            </Group>
          </Group>
        );
      })}
    </Stack>
  );
}
