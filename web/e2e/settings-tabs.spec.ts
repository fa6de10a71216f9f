import { expect, test } from '@playwright/test';
import { apiAs, shoot, signIn, type Who } from './helpers';

// The admin's other settings tabs, on a tenant of their own.
const tenant = `tab${Date.now().toString(36)}`;
const admin: Who = { tenant, user: 'alice', role: 'admin' };

test.describe.configure({ mode: 'serial' });

test.beforeAll(async ({ request }) => {
  const asAdmin = await apiAs(request, admin);
  await asAdmin.put('/v1/users/alice', { display_name: 'Alice Admin', team: 'web', time_zone: 'Europe/Berlin' });
  await asAdmin.post('/v1/pipelines', {
    name: 'Windows',
    stages: [
      { name: 'First call', kind: 'open', win_probability: 10 },
      { name: 'Won', kind: 'won', win_probability: 100 },
      { name: 'Lost', kind: 'lost', win_probability: 0 },
    ],
  });
});

test('an admin defines a custom field; a bad key is named under Key', async ({ page }) => {
  await signIn(page, admin);
  await page.goto('/settings?tab=fields');
  await expect(page.getByText('No custom fields yet.')).toBeVisible();
  await page.getByRole('textbox', { name: 'Label' }).fill('Window count');
  // The key follows the label until it is typed.
  await expect(page.getByRole('textbox', { name: 'Key' })).toHaveValue('window_count');
  await page.getByRole('textbox', { name: 'Key' }).fill('Window-Count');
  await page.getByRole('button', { name: 'Define field' }).click();
  await expect(page.getByRole('textbox', { name: 'Key' })).toHaveAttribute('aria-invalid', 'true');
  await expect(page.getByText(/lowercase letter/)).toBeVisible();
  await page.getByRole('textbox', { name: 'Key' }).fill('window_count');
  await page.getByRole('combobox', { name: 'Type' }).click();
  await page.getByRole('option', { name: 'One of a list' }).click();
  await page.getByRole('textbox', { name: 'Options' }).fill('1-3, 4-10, more');
  await page.getByRole('button', { name: 'Define field' }).click();
  const row = page.locator('[data-testid="custom-field"][data-key="window_count"]');
  await expect(row).toContainText('Window count');
  await expect(row).toContainText('4-10');
  await shoot(page, '53-settings-fields');
});

test('an admin creates a web form and copies its embed snippet', async ({ page }) => {
  await signIn(page, admin);
  await page.goto('/settings?tab=forms');
  await expect(page.getByText('No web forms yet.')).toBeVisible();
  await page.getByRole('button', { name: 'New web form' }).click();
  const dialog = page.getByRole('dialog', { name: 'New web form' });
  await dialog.getByRole('textbox', { name: 'Name', exact: true }).fill('Quote request');
  await dialog.getByRole('textbox', { name: /Default country/ }).fill('DE');
  await dialog.getByRole('textbox', { name: /Fields: submitted name/ }).fill('name = name\nemail = email\nmessage = notes');
  await dialog.getByRole('combobox', { name: 'Pipeline' }).click();
  await page.getByRole('option', { name: 'Windows' }).click();
  await expect(dialog.getByRole('combobox', { name: 'Lands in' })).toHaveValue('First call');
  await dialog.getByRole('combobox', { name: 'Owner' }).click();
  await page.getByRole('option', { name: 'Team web in turn' }).click();
  await dialog.getByRole('button', { name: 'Save' }).click();
  // "notes" is no CRM field: the API names the mapping, under the mapping.
  await expect(dialog.getByRole('textbox', { name: /Fields: submitted name/ })).toHaveAttribute('aria-invalid', 'true');
  await dialog.getByRole('textbox', { name: /Fields: submitted name/ }).fill('name = name\nemail = email\nmessage = note');
  await dialog.getByRole('button', { name: 'Save' }).click();
  const embed = page.getByRole('dialog', { name: 'Embed “Quote request”' });
  await expect(embed.getByTestId('embed-snippet')).toContainText('/public/forms/eu-');
  await expect(embed.getByTestId('embed-snippet')).toContainText('<textarea name="message">');
  await expect(embed.getByTestId('embed-snippet')).toContainText('name="website" tabindex="-1"');
  await shoot(page, '54-settings-form-embed');
  await embed.getByRole('button', { name: 'Close' }).click();
  const row = page.locator('[data-testid="form-row"][data-form="Quote request"]');
  await expect(row).toContainText('Windows / First call');
  await expect(row).toContainText('team:web');

  // The snippet posts: a lead arrives as a contact.
  const html = await (async () => {
    await row.getByRole('button', { name: 'Embed “Quote request”' }).click();
    return (await page.getByTestId('embed-snippet').textContent()) ?? '';
  })();
  const action = /action="([^"]+)"/.exec(html)?.[1] ?? '';
  const reply = await page.request.post(action, { form: { name: 'Lena Vogel', email: 'lena@example.org', message: 'Three windows' } });
  expect([201, 202]).toContain(reply.status());
});

test('an admin adds a webhook (a loopback address is refused under URL), sees its log and sends a delivery again', async ({
  page,
  request,
  baseURL,
}) => {
  const asAdmin = await apiAs(request, admin);
  await signIn(page, admin);
  await page.goto('/settings?tab=webhooks');
  await expect(page.getByText('No webhooks yet.')).toBeVisible();
  const url = page.getByRole('textbox', { name: 'Address (URL)' });
  await url.fill(`${baseURL}/v1/nowhere`);
  await page.getByRole('textbox', { name: /^Events/ }).fill('contacts.*');
  await page.getByRole('button', { name: 'Create webhook' }).click();
  await expect(url).toHaveAttribute('aria-invalid', 'true');
  await expect(page.getByText(/loopback/).first()).toBeVisible();

  // Allowed for this tenant, the gateway itself answers every delivery with an error.
  await asAdmin.put('/v1/integrations/settings', { allow_private_webhook_targets: true });
  await page.getByRole('button', { name: 'Create webhook' }).click();
  const secret = page.getByRole('dialog', { name: 'Webhook created' });
  await expect(secret.getByTestId('webhook-secret')).toContainText('whsec_');
  await secret.getByRole('button', { name: 'Close' }).click();

  await asAdmin.post('/v1/contacts', { first_name: 'Hook', last_name: 'Test', address: { country: 'DE' } });
  const hook = page.locator('[data-testid="webhook"]').first();
  await hook.getByRole('button', { name: 'Delivery log' }).click();
  const delivery = hook.locator('[data-testid="delivery"]').first();
  await expect(delivery).toContainText('contacts.contact.created', { timeout: 60_000 });
  await expect(delivery.getByRole('button', { name: 'Send again' })).toBeVisible({ timeout: 60_000 });
  await expect(delivery).toContainText('HTTP');
  await shoot(page, '55-settings-webhooks');
  await delivery.getByRole('button', { name: 'Send again' }).click();
  await expect(page.getByText('It will be sent again shortly.')).toBeVisible();

  const toggle = hook.getByRole('switch');
  await expect(toggle).toBeChecked();
  await toggle.click({ force: true });
  await expect(toggle).not.toBeChecked();
  await page.reload();
  await expect(page.locator('[data-testid="webhook"]').first().getByRole('switch')).not.toBeChecked();
});

test('an admin creates an API key, sees its secret once, and revokes it', async ({ page, request }) => {
  await signIn(page, admin);
  await page.goto('/settings?tab=api-keys');
  await expect(page.getByText('No API keys yet.')).toBeVisible();
  await page.getByRole('textbox', { name: 'Name', exact: true }).fill('Website');
  await page.getByRole('textbox', { name: /^Scopes/ }).fill('contacts:read');
  await page.getByRole('button', { name: 'Create key' }).click();
  const dialog = page.getByRole('dialog', { name: 'Key “Website” created' });
  const secret = (await dialog.getByTestId('api-key-secret').textContent()) ?? '';
  expect(secret).toMatch(/^atk_/);
  await dialog.getByRole('button', { name: 'Close' }).click();
  const row = page.locator('[data-testid="api-key"][data-key="Website"]');
  await expect(row).toContainText('contacts:read');
  await expect(page.getByText(secret)).toHaveCount(0);
  // The key works until it is revoked.
  expect((await request.get('/v1/contacts', { headers: { 'X-API-Key': secret } })).status()).toBe(200);
  await shoot(page, '56-settings-api-keys');
  await row.getByRole('button', { name: 'Revoke “Website”' }).click();
  await page.getByRole('dialog', { name: 'Revoke “Website”' }).getByRole('button', { name: 'Revoke' }).click();
  await expect(row).toContainText('Revoked');
});

test('an admin writes a document template, changes a notification template and sets the working hours', async ({
  page,
}) => {
  await signIn(page, admin);
  await page.goto('/settings?tab=documents');
  await page.getByRole('button', { name: 'New template' }).click();
  const doc = page.getByRole('dialog', { name: 'New template' });
  await doc.getByRole('textbox', { name: /^Key/ }).fill('offer');
  await doc.getByRole('textbox', { name: 'Name', exact: true }).fill('Offer');
  await doc.getByRole('textbox', { name: /^Variables/ }).fill('{"vat_rate": ');
  await doc.getByRole('button', { name: 'Save' }).click();
  await expect(doc.getByText('Not a JSON object')).toBeVisible();
  await doc.getByRole('textbox', { name: /^Variables/ }).fill('{"vat_rate": "19"}');
  await doc.getByRole('button', { name: 'Save' }).click();
  await expect(page.locator('[data-testid="document-template"][data-key="offer"]')).toContainText('Offer');
  await shoot(page, '57-settings-documents');

  await page.getByRole('tab', { name: 'Notification templates' }).click();
  const first = page.locator('[data-testid="notification-template"]').first();
  await expect(first).toContainText('Default');
  const kind = (await first.getAttribute('data-kind')) ?? '';
  await first.getByRole('button', { name: /^Edit/ }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByRole('textbox', { name: 'Subject' }).fill('Atlas: {{ unclosed');
  await dialog.getByRole('button', { name: 'Save' }).click();
  await expect(dialog.getByRole('alert').or(dialog.locator('[aria-invalid="true"]')).first()).toBeVisible();
  await dialog.getByRole('textbox', { name: 'Subject' }).fill('Atlas: a note for you');
  await dialog.getByRole('button', { name: 'Save' }).click();
  await expect(dialog).toHaveCount(0);
  const changed = page.locator(`[data-testid="notification-template"][data-kind="${kind}"]`, { hasText: 'Changed' });
  await expect(changed).toContainText('Atlas: a note for you');
  await shoot(page, '58-settings-templates');

  await page.getByRole('tab', { name: 'Working hours' }).click();
  await page.getByLabel('From').fill('07:30');
  await page.getByLabel('Until').fill('16:00');
  for (const day of ['Mon', 'Tue', 'Wed', 'Thu', 'Fri']) await page.getByRole('checkbox', { name: day }).check();
  await page.getByRole('checkbox', { name: 'Sat' }).uncheck();
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByText('Working hours saved')).toBeVisible();
  await page.reload();
  await expect(page.getByLabel('From')).toHaveValue('07:30');
  await expect(page.getByText('Last changed by alice')).toBeVisible();
  await shoot(page, '59-settings-hours');
});

test('the new settings tabs in Persian, right to left', async ({ page }) => {
  await signIn(page, admin);
  await page.goto('/settings?tab=forms');
  await expect(page.locator('[data-testid="form-row"]').first()).toBeVisible();
  await page.getByTestId('language').click();
  await page.getByRole('option', { name: 'فارسی' }).click();
  await expect(page.locator('html')).toHaveAttribute('dir', 'rtl');
  await expect(page.getByRole('tab', { name: 'فرم‌های وب' })).toBeVisible();
  await shoot(page, '66-settings-forms-fa');
  await page.getByRole('tab', { name: 'وب‌هوک‌ها' }).click();
  await page.locator('[data-testid="webhook"]').first().getByRole('button').first().click();
  await shoot(page, '67-settings-webhooks-fa');
  await page.getByTestId('language').click();
  await page.getByRole('option', { name: 'English' }).click();
});

test('an admin deletes a custom field, a web form and a webhook, each after saying what becomes of its data', async ({
  page,
  request,
}) => {
  await signIn(page, admin);
  await page.goto('/settings?tab=fields');
  const field = page.locator('[data-testid="custom-field"][data-key="window_count"]');
  await field.getByRole('button', { name: 'Delete Window count' }).click();
  let confirm = page.getByRole('dialog', { name: 'Delete Window count?' });
  await expect(confirm).toContainText('Values already entered stay stored');
  // Cancel keeps it.
  await confirm.getByRole('button', { name: 'Cancel' }).click();
  await expect(field).toBeVisible();
  await field.getByRole('button', { name: 'Delete Window count' }).click();
  await shoot(page, '68-settings-field-delete');
  await confirm.getByRole('button', { name: 'Delete', exact: true }).click();
  await expect(confirm).toHaveCount(0);
  await expect(page.getByText('No custom fields yet.')).toBeVisible();

  await page.getByRole('tab', { name: 'Web forms' }).click();
  const form = page.locator('[data-testid="form-row"][data-form="Quote request"]');
  await form.getByRole('button', { name: 'Embed “Quote request”' }).click();
  const action = /action="([^"]+)"/.exec((await page.getByTestId('embed-snippet').textContent()) ?? '')?.[1] ?? '';
  await page.getByRole('dialog').getByRole('button', { name: 'Close' }).click();
  await form.getByRole('button', { name: 'Delete Quote request' }).click();
  confirm = page.getByRole('dialog', { name: 'Delete Quote request?' });
  await expect(confirm).toContainText('answers 404');
  await confirm.getByRole('button', { name: 'Delete', exact: true }).click();
  await expect(page.getByText('No web forms yet.')).toBeVisible();
  // The embedded form's address no longer takes leads.
  const reply = await request.post(action, { form: { name: 'Late Lead', email: 'late@example.org' } });
  expect(reply.status()).toBe(404);

  await page.getByRole('tab', { name: 'Webhooks' }).click();
  const hook = page.locator('[data-testid="webhook"]').first();
  const address = (await hook.getAttribute('data-url')) ?? '';
  await hook.getByRole('button', { name: `Delete ${address}` }).click();
  confirm = page.getByRole('dialog', { name: `Delete ${address}?` });
  await expect(confirm).toContainText('delivery log is deleted');
  await confirm.getByRole('button', { name: 'Delete', exact: true }).click();
  await expect(page.getByText('No webhooks yet.')).toBeVisible();
});
