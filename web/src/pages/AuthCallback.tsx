import { Alert, Anchor, Center, Paper, Stack } from '@mantine/core';
import { useEffect, useRef, useState } from 'react';
import { Link } from 'react-router';
import { api, call } from '../api/client';
import type { components } from '../api/schema';
import { bearerOf, sessionFromToken, userManager } from '../auth/oidc';
import { setLanding, setSession } from '../auth/session';
import { Loading } from '../components/States';
import { useI18n } from '../i18n/I18nProvider';

/**
 * Where the identity provider sends the browser back with an authorization code: the
 * code and the PKCE verifier become tokens, the URL loses the code, and the user lands
 * where they were going.
 */
export default function AuthCallback() {
  const { t } = useI18n();
  const [error, setError] = useState('');
  const started = useRef(false);

  useEffect(() => {
    // The code is single-use: React's development double effect must not spend it twice.
    if (started.current) return;
    started.current = true;
    (async () => {
      const config = await call<components['schemas']['SignInConfig']>(
        api.GET('/v1/auth/config'),
      );
      if (config.mode !== 'oidc' || !config.oidc) throw new Error(t('signIn.oidcUnavailable'));
      const user = await userManager(config.oidc).signinRedirectCallback();
      const session = sessionFromToken(bearerOf(user, config.oidc));
      const state = user.state as { from?: string } | undefined;
      // The signed-in application's /auth/callback route then goes there, and the code
      // leaves the URL with it.
      setLanding(state?.from ?? '/');
      setSession(session);
    })().catch((e: unknown) => setError(e instanceof Error ? e.message : String(e)));
  }, [t]);

  if (!error) return <Loading />;
  return (
    <Center mih="100vh" p="md" bg="gray.0">
      <Paper withBorder shadow="sm" p="xl" w="100%" maw={500}>
        <Stack gap="md">
          <Alert color="red" role="alert" title={t('signIn.callbackFailed')}>
            {error}
          </Alert>
          <Anchor component={Link} to="/sign-in" replace>
            {t('signIn.backToSignIn')}
          </Anchor>
        </Stack>
      </Paper>
    </Center>
  );
}
