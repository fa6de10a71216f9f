import {
  ActionIcon,
  AppShell,
  Avatar,
  Badge,
  Burger,
  Group,
  Indicator,
  Menu,
  NavLink,
  Select,
  Text,
  Tooltip,
  UnstyledButton,
} from '@mantine/core';
import { useDisclosure } from '@mantine/hooks';
import {
  IconAddressBook,
  IconBell,
  IconBuilding,
  IconChartBar,
  IconChecklist,
  IconHome,
  IconLayoutKanban,
  IconLogout,
  IconSettings,
  IconShieldLock,
  IconUpload,
} from '@tabler/icons-react';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { Suspense } from 'react';
import { NavLink as RouterLink, Outlet, useLocation } from 'react-router';
import { api, call } from '../api/client';
import { clearSession } from '../auth/session';
import { useSignedIn } from '../auth/useSession';
import { Loading, NotFoundState } from '../components/States';
import { useI18n } from '../i18n/I18nProvider';
import { LANGUAGES, type Language } from '../i18n/languages';
import { mayUse, navFor } from '../lib/nav';

const ICONS: Record<string, typeof IconHome> = {
  '/': IconHome,
  '/contacts': IconAddressBook,
  '/companies': IconBuilding,
  '/pipeline': IconLayoutKanban,
  '/tasks': IconChecklist,
  '/reports': IconChartBar,
  '/imports': IconUpload,
  '/compliance': IconShieldLock,
  '/settings': IconSettings,
};

export function useUnreadCount() {
  return useQuery({
    queryKey: ['notifications', 'unread'],
    queryFn: () =>
      call<{ unread: number }>(api.GET('/v1/notifications/unread-count', {})).then((r) => r.unread),
    // The badge follows new notifications without a reload.
    refetchInterval: 30_000,
  });
}

export function Shell() {
  const session = useSignedIn();
  const { t, language, setLanguage } = useI18n();
  const [opened, { toggle, close }] = useDisclosure();
  const location = useLocation();
  const queryClient = useQueryClient();
  const unread = useUnreadCount();
  const allowed = mayUse(session.role, location.pathname);

  const signOut = () => {
    clearSession();
    queryClient.clear();
  };

  return (
    <AppShell
      header={{ height: 60 }}
      navbar={{ width: 232, breakpoint: 'sm', collapsed: { mobile: !opened } }}
      padding="lg"
    >
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between" wrap="nowrap">
          <Group gap="sm" wrap="nowrap">
            <Burger opened={opened} onClick={toggle} hiddenFrom="sm" size="sm" />
            <img src="/favicon.svg" alt="" width={28} height={28} />
            <Text fw={700} size="lg">
              {t('app.name')}
            </Text>
            <Badge variant="light" color="gray" visibleFrom="sm">
              {session.tenant}
            </Badge>
          </Group>
          <Group gap="sm" wrap="nowrap">
            <Select
              aria-label={t('nav.language')}
              data-testid="language"
              size="xs"
              w={170}
              allowDeselect={false}
              value={language}
              onChange={(value) => value && setLanguage(value as Language)}
              data={LANGUAGES.map((l) => ({ value: l.code, label: l.name }))}
              comboboxProps={{ withinPortal: true }}
            />
            <Tooltip label={t('nav.notifications', { count: unread.data ?? 0 })}>
              <Indicator
                label={unread.data}
                disabled={!unread.data}
                size={16}
                color="red"
                offset={4}
              >
                <ActionIcon
                  variant="subtle"
                  color="gray"
                  size="lg"
                  aria-label={t('nav.notifications', { count: unread.data ?? 0 })}
                >
                  <IconBell size={20} />
                </ActionIcon>
              </Indicator>
            </Tooltip>
            <Menu position="bottom-end" withinPortal>
              <Menu.Target>
                <UnstyledButton aria-label={session.name} data-testid="user-menu">
                  <Group gap={8} wrap="nowrap">
                    <Avatar radius="xl" size={32} color="indigo">
                      {initials(session.name)}
                    </Avatar>
                    <div>
                      <Text size="sm" fw={600} lh={1.2}>
                        {session.name}
                      </Text>
                      <Text size="xs" c="dimmed" lh={1.2}>
                        {t(`role.${session.role}`)} · {session.region}
                      </Text>
                    </div>
                  </Group>
                </UnstyledButton>
              </Menu.Target>
              <Menu.Dropdown>
                <Menu.Item leftSection={<IconLogout size={16} />} onClick={signOut}>
                  {t('nav.signOut')}
                </Menu.Item>
              </Menu.Dropdown>
            </Menu>
          </Group>
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="sm" aria-label="Main">
        {navFor(session.role).map((item) => {
          const Icon = ICONS[item.to] ?? IconHome;
          return (
            <NavLink
              key={item.to}
              component={RouterLink}
              to={item.to}
              end={item.to === '/'}
              label={t(item.label)}
              leftSection={<Icon size={18} stroke={1.6} />}
              onClick={close}
              active={
                item.to === '/'
                  ? location.pathname === '/'
                  : location.pathname.startsWith(item.to)
              }
              styles={{ root: { borderRadius: 'var(--mantine-radius-md)' } }}
            />
          );
        })}
      </AppShell.Navbar>
      <AppShell.Main>
        <Suspense fallback={<Loading />}>{allowed ? <Outlet /> : <NotFoundState />}</Suspense>
      </AppShell.Main>
    </AppShell>
  );
}

function initials(name: string): string {
  return (
    name
      .split(/\s+/)
      .filter(Boolean)
      .slice(0, 2)
      .map((part) => part[0]?.toUpperCase() ?? '')
      .join('') || '?'
  );
}
