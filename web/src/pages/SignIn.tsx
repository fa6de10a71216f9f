import {
  Alert,
  Autocomplete,
  Button,
  Center,
  Group,
  Paper,
  Select,
  SegmentedControl,
  Stack,
  Text,
  TextInput,
  Title,
} from '@mantine/core';
import { useDebouncedValue } from '@mantine/hooks';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { useLocation, useNavigate } from 'react-router';
import { ApiError, api, call } from '../api/client';
import type { components } from '../api/schema';
import type { DirectoryUser } from '../api/types';
import { userManager, type OidcClientConfig } from '../auth/oidc';
import { ROLES, setSession, type Role } from '../auth/session';
import { Loading, useErrorText } from '../components/States';
import { useI18n } from '../i18n/I18nProvider';
import { LANGUAGES, type Language } from '../i18n/languages';

interface Directory {
  tenant: string;
  data: DirectoryUser[];
  roles: Role[];
  regions: string[];
}

type SignInConfig = components['schemas']['SignInConfig'];

/** The sign-in the gateway offers: its identity provider, or the development sign-in. */
export default function SignIn() {
  const config = useQuery({
    queryKey: ['sign-in-config'],
    queryFn: () => call<SignInConfig>(api.GET('/v1/auth/config')),
    staleTime: Infinity,
  });
  if (config.isPending) return <Loading />;
  if (config.data?.mode === 'oidc' && config.data.oidc) return <OidcSignIn config={config.data.oidc} />;
  return <DevSignIn />;
}

function SignInHeader() {
  const { t, language, setLanguage } = useI18n();
  return (
    <Group justify="space-between" align="flex-start" wrap="nowrap">
      <Group gap="sm" wrap="nowrap">
        <img src="/favicon.svg" alt="" width={36} height={36} />
        <Title order={2} size="h3">
          {t('signIn.title')}
        </Title>
      </Group>
      <Select
        aria-label={t('nav.language')}
        size="xs"
        w={150}
        allowDeselect={false}
        value={language}
        onChange={(value) => value && setLanguage(value as Language)}
        data={LANGUAGES.map((l) => ({ value: l.code, label: l.name }))}
      />
    </Group>
  );
}

/** Production: off to the identity provider (authorization code with PKCE) and back. */
function OidcSignIn({ config }: { config: OidcClientConfig }) {
  const { t } = useI18n();
  const errorText = useErrorText();
  const location = useLocation();
  const from = (location.state as { from?: string } | null)?.from;
  const redirect = useMutation({
    mutationFn: () => userManager(config).signinRedirect({ state: { from: from ?? '/' } }),
  });
  return (
    <Center mih="100vh" p="md" bg="gray.0">
      <Paper withBorder shadow="sm" p="xl" w="100%" maw={500}>
        <Stack gap="md">
          <SignInHeader />
          <Text size="sm" c="dimmed">
            {t('signIn.oidcSubtitle')}
          </Text>
          {redirect.error ? (
            <Alert color="red" role="alert">
              {errorText(redirect.error)}
            </Alert>
          ) : null}
          <Button size="md" loading={redirect.isPending} onClick={() => redirect.mutate()}>
            {t('signIn.oidcButton')}
          </Button>
        </Stack>
      </Paper>
    </Center>
  );
}

/** Development sign-in: exists only while the gateway uses the development signing key. */
function DevSignIn() {
  const { t } = useI18n();
  const errorText = useErrorText();
  const navigate = useNavigate();
  const location = useLocation();
  const [tenant, setTenant] = useState('demo');
  const [debouncedTenant] = useDebouncedValue(tenant.trim(), 300);
  const [user, setUser] = useState('');
  const [role, setRole] = useState<Role>('admin');
  const [region, setRegion] = useState<string | null>(null);

  const queryClient = useQueryClient();
  const directoryQuery = (name: string) => ({
    queryKey: ['dev-directory', name],
    queryFn: () =>
      call<Directory>(api.GET('/v1/dev/users', { params: { query: { tenant: name } } })),
    retry: false,
  });
  const directory = useQuery({
    ...directoryQuery(debouncedTenant),
    enabled: debouncedTenant.length > 0,
  });
  const users = directory.data?.data ?? [];
  const chosen = users.find((u) => u.id === user);
  const regions = directory.data?.regions ?? ['eu', 'br', 'us'];

  const signIn = useMutation({
    mutationFn: async () => {
      // The directory entry of the user typed, even if the list had not loaded yet.
      const entries = await queryClient
        .fetchQuery(directoryQuery(tenant.trim()))
        .then((d) => d.data)
        .catch(() => [] as DirectoryUser[]);
      const entry = entries.find((u) => u.id === user.trim());
      const minted = await call<{ token: string; expires_in: number }>(
        api.POST('/v1/dev/token', {
          body: {
            tenant: tenant.trim(),
            user: user.trim(),
            role,
            region: region ?? regions[0] ?? 'eu',
            team: entry?.team ?? '',
          },
        }),
      );
      return { ...minted, entry };
    },
    onSuccess: ({ token, expires_in, entry }) => {
      setSession({
        token,
        tenant: tenant.trim(),
        user: user.trim(),
        name: entry?.display_name || user.trim(),
        role,
        region: region ?? regions[0] ?? 'eu',
        team: entry?.team ?? '',
        timeZone: entry?.time_zone || Intl.DateTimeFormat().resolvedOptions().timeZone,
        expiresAt: Date.now() + expires_in * 1000,
      });
      const from = (location.state as { from?: string } | null)?.from;
      navigate(from && from !== '/sign-in' ? from : '/', { replace: true });
    },
  });

  const unavailable = directory.error instanceof ApiError && directory.error.status === 404;
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (user.trim()) signIn.mutate();
  };

  return (
    <Center mih="100vh" p="md" bg="gray.0">
      <Paper withBorder shadow="sm" p="xl" w="100%" maw={500}>
        <form onSubmit={submit}>
          <Stack gap="md">
            <SignInHeader />
            <Text size="sm" c="dimmed">
              {t('signIn.subtitle')}
            </Text>
            {unavailable ? (
              <Alert color="yellow">{t('signIn.unavailable')}</Alert>
            ) : null}
            <TextInput
              label={t('signIn.tenant')}
              value={tenant}
              onChange={(e) => setTenant(e.currentTarget.value)}
              required
            />
            <Autocomplete
              label={t('signIn.user')}
              placeholder={t('signIn.userPlaceholder')}
              value={user}
              onChange={setUser}
              data={users.map((u) => ({ value: u.id, label: u.id }))}
              renderOption={({ option }) => {
                const entry = users.find((u) => u.id === option.value);
                return (
                  <div>
                    <Text size="sm">{entry?.display_name || option.value}</Text>
                    <Text size="xs" c="dimmed">
                      {[option.value, entry?.team, entry?.job_roles.join(', ')]
                        .filter(Boolean)
                        .join(' · ')}
                    </Text>
                  </div>
                );
              }}
              description={
                chosen
                  ? [chosen.display_name, chosen.team, chosen.time_zone].filter(Boolean).join(' · ')
                  : directory.isSuccess && users.length === 0
                    ? t('signIn.noUsers')
                    : undefined
              }
              required
            />
            <Select
              label={t('signIn.role')}
              value={role}
              onChange={(value) => value && setRole(value as Role)}
              allowDeselect={false}
              data={ROLES.map((r) => ({ value: r, label: t(`role.${r}`) }))}
            />
            <div>
              <Text size="sm" fw={500} mb={4}>
                {t('signIn.region')}
              </Text>
              <SegmentedControl
                fullWidth
                aria-label={t('signIn.region')}
                value={region ?? regions[0] ?? 'eu'}
                onChange={setRegion}
                data={regions.map((r) => ({ value: r, label: r.toUpperCase() }))}
              />
            </div>
            {signIn.error ? (
              <Alert color="red" role="alert">
                {errorText(signIn.error)}
              </Alert>
            ) : null}
            <Button type="submit" size="md" loading={signIn.isPending} disabled={!user.trim()}>
              {t('signIn.submit')}
            </Button>
          </Stack>
        </form>
      </Paper>
    </Center>
  );
}
