import { readFileSync } from 'node:fs';
import { expect, test } from '@playwright/test';
import { apiAs, shoot, signIn, type Who } from './helpers';

// The compliance console, on a tenant of its own.
const tenant = `cmp${Date.now().toString(36)}`;
const admin: Who = { tenant, user: 'alice', role: 'admin' };
const dana: Who = { tenant, user: 'dana', role: 'compliance_officer' };
const rita: Who = { tenant, user: 'rita', role: 'sales_rep' };

let heldId = '';

test.describe.configure({ mode: 'serial' });

test.beforeAll(async ({ request }) => {
  const asAdmin = await apiAs(request, admin);
  for (const [first, last, email] of [
    ['Jürgen', 'Müller', 'juergen@example.de'],
    ['Lena', 'Vogel', 'lena@example.de'],
    ['Karl', 'Klage', 'karl@example.de'],
  ]) {
    const contact = (await asAdmin.post('/v1/contacts', {
      first_name: first,
      last_name: last,
      emails: [email],
      address: { city: 'Berlin', country: 'DE' },
    })) as { id: string };
    if (first === 'Karl') heldId = contact.id;
  }
  await asAdmin.put('/v1/compliance/policies', {
    default_region: 'us',
    residency_overrides: { CH: 'eu' },
    access_grants: [],
    retention_rules: [{ rule: 'delete_inactive_leads', after_months: 24 }],
  });
});

test('a sales rep sees no compliance console, not even by its URL', async ({ page }) => {
  await signIn(page, rita);
  await expect(page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Compliance' })).toHaveCount(0);
  await page.goto('/compliance');
  await expect(page.getByRole('heading', { name: 'Not found' })).toBeVisible();
});

test('the compliance officer answers an access request: the export ZIP downloads', async ({ page }) => {
  await signIn(page, dana);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Compliance' }).click();
  await expect(page).toHaveURL(/\/compliance$/);
  await expect(page.getByText('No requests yet.')).toBeVisible();

  // Nobody with this email: the reason appears under the email.
  await page.getByRole('textbox', { name: 'Email' }).fill('nobody@example.de');
  await page.getByRole('button', { name: 'Create request' }).click();
  await expect(page.getByText(/no contact with this email/)).toBeVisible();

  await page.getByRole('textbox', { name: 'Email' }).fill('juergen@example.de');
  await page.getByRole('button', { name: 'Create request' }).click();
  const row = page.getByTestId('privacy-request').filter({ hasText: 'Export' });
  await expect(row).toContainText('Completed');
  await expect(row).toContainText('GDPR');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    row.getByRole('button', { name: 'ZIP' }).click(),
  ]);
  expect(download.suggestedFilename()).toMatch(/\.zip$/);
  expect(readFileSync(await download.path()).subarray(0, 2).toString()).toBe('PK');
  await shoot(page, '40-compliance-requests');
});

test('the officer erases a person and verifies the receipt; a changed byte fails', async ({ page }) => {
  await signIn(page, dana);
  await page.goto('/compliance');
  await page.getByText('Erasure', { exact: true }).first().click();
  await page.getByRole('textbox', { name: 'Email' }).fill('lena@example.de');
  await page.getByRole('button', { name: 'Create request' }).click();
  const dialog = page.getByRole('dialog', { name: 'Erase this person?' });
  await expect(dialog).toContainText('lena@example.de');
  await dialog.getByRole('button', { name: 'Erase' }).click();
  const row = page.getByTestId('privacy-request').filter({ hasText: 'Erasure' });
  await expect(row.getByRole('button', { name: 'Receipt' })).toBeVisible({ timeout: 60_000 });
  await row.getByRole('button', { name: 'Receipt' }).click();
  const receipt = page.getByRole('dialog', { name: 'Erasure receipt' });
  await expect(receipt.getByTestId('receipt-summary')).toContainText('EU');
  await receipt.getByRole('button', { name: 'Verify' }).click();
  await expect(receipt.getByTestId('receipt-verdict')).toContainText('Valid');
  await shoot(page, '41-compliance-receipt');

  const text = receipt.getByRole('textbox', { name: /Receipt/ });
  const original = await text.inputValue();
  await text.fill(original.replace('"region":"eu"', '"region":"eu" '));
  await receipt.getByRole('button', { name: 'Verify' }).click();
  await expect(receipt.getByTestId('receipt-verdict')).toContainText('Not valid');
  await receipt.getByRole('button', { name: 'Close' }).click();
});

test('a legal hold blocks erasure until it is lifted', async ({ page }) => {
  await signIn(page, dana);
  await page.goto('/compliance?tab=holds');
  await page.getByRole('textbox', { name: 'Contact id' }).first().fill(heldId);
  await page.getByRole('textbox', { name: 'Reason' }).fill('litigation 4 O 123/26');
  await page.getByRole('button', { name: 'Place a legal hold' }).click();
  const placed = page.getByTestId('holds-placed');
  await expect(placed).toContainText(heldId);
  await expect(placed).toContainText('litigation 4 O 123/26');

  await page.getByRole('tab', { name: 'Data-subject requests' }).click();
  await page.getByText('Erasure', { exact: true }).first().click();
  await page.getByRole('textbox', { name: 'Email' }).fill('karl@example.de');
  await page.getByRole('button', { name: 'Create request' }).click();
  await page.getByRole('dialog', { name: 'Erase this person?' }).getByRole('button', { name: 'Erase' }).click();
  await expect(page.getByText(new RegExp(`legal hold on ${heldId}`)).first()).toBeVisible();

  await page.getByRole('tab', { name: 'Legal holds' }).click();
  await page.getByRole('textbox', { name: 'Contact id' }).nth(1).fill(heldId);
  await page.getByRole('button', { name: 'Lift', exact: true }).click();
  await page.getByRole('dialog', { name: 'Lift a legal hold' }).getByRole('button', { name: 'Lift' }).click();
  await expect(page.getByText(`Legal hold on ${heldId} lifted`)).toBeVisible();
});

test('residency proof, audit trail with filters and chain verification, policies with history', async ({
  page,
}) => {
  await signIn(page, dana);
  await page.goto('/compliance?tab=residency');
  await expect(page.getByTestId('residency-table')).toContainText('contacts');
  await expect(page.getByTestId('no-violations')).toBeVisible();
  const [csv] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'CSV' }).click(),
  ]);
  expect(readFileSync(await csv.path()).toString()).toContain('region,service,kind,subjects,records');
  await shoot(page, '42-compliance-residency');

  await page.getByRole('tab', { name: 'Audit trail' }).click();
  await page.getByRole('combobox', { name: 'Kind' }).click();
  await page.getByRole('option', { name: 'Data-subject request' }).click();
  await expect(page).toHaveURL(/kind=privacy_request/);
  const records = page.getByTestId('audit-record');
  await expect(records.first()).toContainText('Data-subject request');
  await expect(records.filter({ hasNotText: 'Data-subject request' })).toHaveCount(0);
  await page.getByRole('button', { name: 'Verify the chains' }).click();
  await expect(page.getByTestId('chain-verdict')).toContainText('Every chain is intact');
  await shoot(page, '43-compliance-audit');

  await page.getByRole('tab', { name: 'Policies' }).click();
  await expect(page.getByTestId('policy-current')).toContainText('CH → EU');
  await expect(page.getByTestId('policy-history')).toContainText('alice');
  await shoot(page, '44-compliance-policies');

  // Persian: the console lays out right to left.
  await page.getByTestId('language').click();
  await page.getByRole('option', { name: 'فارسی' }).click();
  await expect(page.locator('html')).toHaveAttribute('dir', 'rtl');
  await expect(page.getByRole('heading', { name: 'کنسول انطباق' })).toBeVisible();
  // The shell slides its content to the left of the navigation (a short transition):
  // the console's heading ends up beside the navigation, not under it.
  const nav = page.getByRole('navigation', { name: 'Main' });
  const heading = page.getByRole('heading', { name: 'کنسول انطباق' });
  await expect
    .poll(async () => {
      const [n, h] = [await nav.boundingBox(), await heading.boundingBox()];
      return n && h ? h.x + h.width <= n.x : false;
    })
    .toBe(true);
  await shoot(page, '45-compliance-fa');
  await page.getByTestId('language').click();
  await page.getByRole('option', { name: 'English' }).click();
});

test('the officer changes the policy (a bad region is named), and its history shows the change', async ({ page }) => {
  await signIn(page, dana);
  await page.goto('/compliance?tab=policies');
  const editor = page.getByTestId('policy-editor');
  const rules = editor.getByRole('textbox', { name: 'Country rules' });
  await expect(rules).toHaveValue('CH = eu');
  await rules.fill('CH = eu\nNO = mars');
  await editor.getByRole('button', { name: 'Save the policy' }).click();
  await expect(rules).toHaveAttribute('aria-invalid', 'true');
  await rules.fill('CH = eu\nNO = br');
  await editor.getByRole('textbox', { name: 'Delete inactive leads after (months)' }).fill('12');
  await editor.getByRole('button', { name: 'Save the policy' }).click();
  await expect(page.getByTestId('policy-current')).toContainText('NO → BR');
  await expect(page.getByTestId('policy-current')).toContainText('delete_inactive_leads after 12 months');
  await expect(page.getByTestId('policy-history')).toContainText('dana');
  await shoot(page, '46-compliance-policy-edit');

  await page.getByRole('tab', { name: 'Retention' }).click();
  await expect(page.getByTestId('retention-rules')).toContainText('delete_inactive_leads after 12 months');
});

test('the officer moves a person who moved to Brazil into the br region, and sees the audited steps', async ({
  page,
  request,
}) => {
  const asAdmin = await apiAs(request, admin);
  const sven = (await asAdmin.post('/v1/contacts', {
    first_name: 'Sven',
    last_name: 'Umzug',
    emails: ['sven@example.de'],
    address: { city: 'Hamburg', country: 'DE' },
  })) as { id: string };
  // The officer's home region is eu: writing into br needs a grant.
  await asAdmin.put('/v1/compliance/policies', {
    default_region: 'us',
    residency_overrides: { CH: 'eu', NO: 'br' },
    access_grants: [{ from_region: 'eu', to_region: 'br', legal_basis: 'GDPR Art. 46 SCC' }],
    retention_rules: [{ rule: 'delete_inactive_leads', after_months: 12 }],
  });
  await signIn(page, dana);
  await page.goto('/compliance?tab=relocations');
  await expect(page.getByText('No relocations yet.')).toBeVisible();
  await page.getByRole('combobox', { name: 'Person' }).fill('Umzug');
  await page.getByRole('option', { name: /Sven Umzug/ }).click();
  // Germany keeps them where they are: nothing to move, said under the country.
  await page.getByRole('textbox', { name: 'New country' }).fill('DE');
  await page.getByRole('button', { name: 'Move' }).click();
  await expect(page.getByRole('textbox', { name: 'New country' })).toHaveAttribute('aria-invalid', 'true');
  await page.getByRole('textbox', { name: 'New country' }).fill('BR');
  await page.getByRole('button', { name: 'Move' }).click();
  await expect(page.getByTestId('relocated')).toContainText('Moved from EU to BR');
  await expect(page.getByTestId('relocated')).toContainText(sven.id);
  const steps = page.getByTestId('relocation-step');
  await expect(steps.filter({ hasText: 'Removed from the old region' })).toHaveCount(1);
  await expect(steps.filter({ hasText: 'Copied in' }).first()).toContainText('BR');
  await shoot(page, '47-compliance-relocations');
});
