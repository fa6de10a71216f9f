import { Alert, Button, Center, Loader, Stack, Text, ThemeIcon, Title } from '@mantine/core';
import { IconAlertTriangle, IconInbox } from '@tabler/icons-react';
import type { UseQueryResult } from '@tanstack/react-query';
import type { ReactNode } from 'react';
import { ApiError } from '../api/client';
import { useI18n } from '../i18n/I18nProvider';

export function Loading({ label }: { label?: string }) {
  return (
    <Center py="xl" role="status" aria-live="polite">
      <Stack align="center" gap="xs">
        <Loader size="sm" />
        {label ? (
          <Text size="sm" c="dimmed">
            {label}
          </Text>
        ) : null}
      </Stack>
    </Center>
  );
}

export function Empty({ title, hint, action }: { title: string; hint?: string; action?: ReactNode }) {
  return (
    <Center py="xl">
      <Stack align="center" gap={6} maw={420} ta="center">
        <ThemeIcon variant="light" size={44} radius="xl" color="gray">
          <IconInbox size={24} />
        </ThemeIcon>
        <Text fw={600}>{title}</Text>
        {hint ? (
          <Text size="sm" c="dimmed">
            {hint}
          </Text>
        ) : null}
        {action}
      </Stack>
    </Center>
  );
}

/** What the user reads when a call fails: the problem's own detail, or a plain outage note. */
export function useErrorText(): (error: unknown) => string {
  const { t } = useI18n();
  return (error) => {
    if (error instanceof ApiError) {
      if (error.status === 0 || error.status >= 502) return t('common.unavailable');
      return error.problem.detail || error.problem.title;
    }
    return t('common.error');
  };
}

export function ErrorState({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  const { t } = useI18n();
  const text = useErrorText();
  return (
    <Alert
      color="red"
      variant="light"
      icon={<IconAlertTriangle size={18} />}
      title={t('common.error')}
      role="alert"
    >
      <Stack gap="xs" align="flex-start">
        <Text size="sm">{text(error)}</Text>
        {onRetry ? (
          <Button size="xs" variant="light" color="red" onClick={onRetry}>
            {t('common.retry')}
          </Button>
        ) : null}
      </Stack>
    </Alert>
  );
}

export function NotFoundState() {
  const { t } = useI18n();
  return (
    <Center py={60}>
      <Stack align="center" gap="xs" ta="center">
        <Title order={2}>{t('common.notFound')}</Title>
        <Text c="dimmed">{t('common.notFoundText')}</Text>
      </Stack>
    </Center>
  );
}

/** A list query's loading, error and empty states, or `children` with its rows. */
export function QueryState<T>({
  query,
  empty,
  children,
}: {
  query: UseQueryResult<T[]>;
  empty: ReactNode;
  children: (rows: T[]) => ReactNode;
}) {
  if (query.isPending) return <Loading />;
  if (query.isError) return <ErrorState error={query.error} onRetry={() => void query.refetch()} />;
  if (query.data.length === 0) return <>{empty}</>;
  return <>{children(query.data)}</>;
}
