import { expect, test } from '@playwright/test';
import { shoot, signOut } from './helpers';

// Run by tests/test_oidc_sign_in.py, which starts a real local OpenID provider and a
// gateway that trusts only it; playwright.config.ts leaves this file out otherwise.
const provider = process.env.CRM_OIDC_PROVIDER_URL ?? '';
const contactName = process.env.CRM_OIDC_CONTACT ?? '';

test('a rep signs in at the identity provider with PKCE, works, and signs out', async ({
  page,
}) => {
  await page.goto('/contacts');
  await expect(page).toHaveURL(/\/sign-in$/);
  await expect(page.getByText("Sign in with your organisation's account.")).toBeVisible();
  // No development sign-in where an identity provider is configured.
  await expect(page.getByLabel('Tenant')).toHaveCount(0);
  await shoot(page, '90-oidc-sign-in');

  await page.getByRole('button', { name: 'Continue to sign-in' }).click();
  await page.waitForURL((url) => url.href.startsWith(provider));
  const authorize = new URL(page.url());
  expect(authorize.searchParams.get('response_type')).toBe('code');
  expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
  expect(authorize.searchParams.get('code_challenge')).toMatch(/^[\w-]{43}$/);
  await page.locator('input[name="sub"]').fill('olivia');
  await page.getByRole('button', { name: 'Authorize' }).click();

  // Back where she was going, the code gone from the URL, signed in as the token says.
  await page.waitForURL((url) => url.pathname === '/contacts');
  expect(page.url()).not.toContain('code=');
  await expect(page.getByTestId('user-menu')).toContainText('Olivia Okafor');
  await expect(page.getByTestId('user-menu')).toContainText('Sales rep');
  // The API accepted the provider's token: her own contact is listed.
  await expect(page.getByRole('link', { name: contactName })).toBeVisible();
  await shoot(page, '91-oidc-signed-in');
  expect(await page.evaluate(() => window.localStorage.length)).toBe(0);

  await signOut(page);
  expect(await page.evaluate(() => window.sessionStorage.getItem('atlas.session'))).toBeNull();
  // Signed out means signed out: the list is behind the sign-in again.
  await page.goto('/contacts');
  await expect(page).toHaveURL(/\/sign-in$/);
});
