import { expect, test } from '@playwright/test';
import { apiAs, shoot, signIn, signOut, type Who } from './helpers';

// Saved views of the contacts list, on a tenant of their own.
const tenant = `vw${Date.now().toString(36)}`;
const admin: Who = { tenant, user: 'alice', role: 'admin' };
const rita: Who = { tenant, user: 'rita', role: 'sales_rep' };
const nina: Who = { tenant, user: 'nina', role: 'sales_rep' };
const otto: Who = { tenant, user: 'otto', role: 'sales_rep' };

test.describe.configure({ mode: 'serial' });

test.beforeAll(async ({ request }) => {
  const asAdmin = await apiAs(request, admin);
  await asAdmin.put('/v1/users/rita', { display_name: 'Rita Rep', team: 'north' });
  await asAdmin.put('/v1/users/nina', { display_name: 'Nina Rep', team: 'north' });
  await asAdmin.put('/v1/users/otto', { display_name: 'Otto Rep', team: 'south' });
  for (const [first_name, lifecycle_stage] of [
    ['Lena', 'lead'],
    ['Karl', 'customer'],
  ]) {
    await asAdmin.post('/v1/contacts', {
      first_name,
      last_name: 'Vogel',
      lifecycle_stage,
      owner_id: 'rita',
      address: { country: 'DE' },
    });
  }
});

test('a rep saves her filters as a view shared with her team; another team does not see it', async ({ page }) => {
  await signIn(page, rita);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Contacts' }).click();
  const rows = page.getByTestId('contacts-rows');
  await expect(rows).toContainText('Karl Vogel');
  await page.getByRole('combobox', { name: 'Lifecycle stage' }).click();
  await page.getByRole('option', { name: 'Lead' }).click();
  await expect(rows).not.toContainText('Karl Vogel');

  await page.getByRole('button', { name: 'Save as view' }).click();
  const dialog = page.getByRole('dialog', { name: 'Save as view' });
  await dialog.getByRole('textbox', { name: 'Name of the view' }).fill('Hot leads');
  await dialog.getByRole('switch', { name: 'Share with my team' }).check({ force: true });
  await dialog.getByRole('button', { name: 'Save' }).click();
  await expect(page).toHaveURL(/view=eu_/);
  await expect(page.getByRole('combobox', { name: 'Saved view' })).toHaveValue(/Hot leads/);

  // Cleared, the whole list is back; picked again, the view's filters apply.
  await page.getByRole('combobox', { name: 'Lifecycle stage' }).click();
  await page.getByRole('option', { name: 'Customer' }).click();
  await expect(rows).toContainText('Karl Vogel');
  await expect(page.getByRole('button', { name: 'Save changes to the view' })).toBeVisible();
  await page.getByRole('combobox', { name: 'Saved view' }).click();
  await page.getByRole('option', { name: /Hot leads/ }).click();
  await expect(rows).toContainText('Lena Vogel');
  await expect(rows).not.toContainText('Karl Vogel');
  await shoot(page, '63-contacts-saved-view');
  await signOut(page);

  await signIn(page, nina);
  await page.goto('/contacts');
  await page.getByRole('combobox', { name: 'Saved view' }).click();
  await page.getByRole('option', { name: /Hot leads · rita/ }).click();
  await expect(page.getByText('Shared by rita')).toBeVisible();
  await expect(page.getByRole('button', { name: 'Delete view' })).toHaveCount(0);
  await expect(page.getByRole('combobox', { name: 'Lifecycle stage' })).toHaveValue('Lead');
  await signOut(page);

  await signIn(page, otto);
  await page.goto('/contacts');
  await expect(page.getByRole('combobox', { name: 'Saved view' })).toHaveAttribute('placeholder', 'No saved views yet');
});

test('the owner unshares and deletes her view', async ({ page }) => {
  await signIn(page, rita);
  await page.goto('/contacts');
  await page.getByRole('combobox', { name: 'Saved view' }).click();
  await page.getByRole('option', { name: /Hot leads/ }).click();
  const share = page.getByRole('switch', { name: 'Share with my team' });
  await expect(share).toBeChecked();
  await share.click({ force: true });
  await expect(share).not.toBeChecked();
  await page.getByRole('button', { name: 'Delete view' }).click();
  await page.getByRole('dialog', { name: 'Delete “Hot leads”' }).getByRole('button', { name: 'Delete view' }).click();
  await expect(page).not.toHaveURL(/view=/);
  await expect(page.getByRole('combobox', { name: 'Saved view' })).toHaveAttribute('placeholder', 'No saved views yet');
});

test('a rep sorts the list by a column header, with the keyboard too; the order is in the URL', async ({ page }) => {
  await signIn(page, rita);
  await page.goto('/contacts');
  const rows = page.getByTestId('contacts-rows').getByRole('row');
  const name = page.getByRole('columnheader', { name: /^Name/ });
  await expect(name).toHaveAttribute('aria-sort', 'none');
  await name.getByRole('button').click();
  await expect(page).toHaveURL(/sort=name/);
  await expect(name).toHaveAttribute('aria-sort', 'ascending');
  await expect(rows.first()).toContainText('Karl Vogel');
  await name.getByRole('button').focus();
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(/sort=-name/);
  await expect(name).toHaveAttribute('aria-sort', 'descending');
  await expect(rows.first()).toContainText('Lena Vogel');
  await shoot(page, '64-contacts-sorted');
  await page.reload();
  await expect(rows.first()).toContainText('Lena Vogel');

  // Persian: the list, its views and sorting right to left.
  await page.getByTestId('language').click();
  await page.getByRole('option', { name: 'فارسی' }).click();
  await expect(page.locator('html')).toHaveAttribute('dir', 'rtl');
  await shoot(page, '65-contacts-fa');
  await page.getByTestId('language').click();
  await page.getByRole('option', { name: 'English' }).click();
});
