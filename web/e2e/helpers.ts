import { expect, type APIRequestContext, type Page } from '@playwright/test';

export const ARTIFACTS = 'e2e-artifacts';

export interface Who {
  tenant: string;
  user: string;
  role: 'admin' | 'manager' | 'sales_rep' | 'compliance_officer';
  region?: string;
  team?: string;
}

/** A development token from the gateway's development sign-in endpoint. */
export async function tokenFor(request: APIRequestContext, who: Who): Promise<string> {
  const reply = await request.post('/v1/dev/token', {
    data: { region: 'eu', team: '', ...who },
  });
  expect(reply.status(), await reply.text()).toBe(200);
  return ((await reply.json()) as { token: string }).token;
}

/** Calls the API as `who`, failing the test on anything but a 2xx. */
export async function apiAs(request: APIRequestContext, who: Who) {
  const token = await tokenFor(request, who);
  const headers = { Authorization: `Bearer ${token}` };
  const check = async (reply: Awaited<ReturnType<APIRequestContext['get']>>) => {
    expect(reply.ok(), `${reply.url()}: ${await reply.text()}`).toBeTruthy();
    return reply.status() === 204 ? null : ((await reply.json()) as Record<string, unknown>);
  };
  return {
    get: async (path: string) => check(await request.get(path, { headers })),
    post: async (path: string, data: unknown) => check(await request.post(path, { headers, data })),
    put: async (path: string, data: unknown) => check(await request.put(path, { headers, data })),
  };
}

/** Signs in through the development sign-in page, as a person would. */
export async function signIn(page: Page, who: Who): Promise<void> {
  await page.goto('/');
  await expect(page).toHaveURL(/\/sign-in$/);
  await page.getByLabel('Tenant').fill(who.tenant);
  const user = page.getByRole('combobox', { name: 'User' });
  await user.fill(who.user);
  await page.keyboard.press('Escape');
  await page.getByRole('combobox', { name: 'Role' }).click();
  await page.getByRole('option', { name: roleLabel(who.role), exact: true }).click();
  if (who.region) {
    await page.getByText(who.region.toUpperCase(), { exact: true }).click();
  }
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('user-menu')).toBeVisible();
}

export async function signOut(page: Page): Promise<void> {
  await page.getByTestId('user-menu').click();
  await page.getByRole('menuitem', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/sign-in$/);
}

function roleLabel(role: Who['role']): string {
  return {
    admin: 'Admin',
    manager: 'Manager',
    sales_rep: 'Sales rep',
    compliance_officer: 'Compliance officer',
  }[role];
}

export async function shoot(page: Page, name: string): Promise<void> {
  // Let fonts, transitions and notifications settle before the picture.
  await page.waitForLoadState('networkidle');
  await page.screenshot({ path: `${ARTIFACTS}/${name}.png`, fullPage: true });
}
