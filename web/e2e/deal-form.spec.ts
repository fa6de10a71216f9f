import { expect, test } from '@playwright/test';
import { apiAs, shoot, signIn, type Who } from './helpers';

// A new deal from the contact page, then edited on its page; a tenant of its own.
const tenant = `dlf${Date.now().toString(36)}`;
const rita: Who = { tenant, user: 'rita', role: 'sales_rep' };
const admin: Who = { tenant, user: 'alice', role: 'admin' };
let contactId = '';

test.beforeAll(async ({ request }) => {
  const asAdmin = await apiAs(request, admin);
  await asAdmin.post('/v1/pipelines', {
    name: 'Windows',
    stages: [{ name: 'First call' }, { name: 'Won', kind: 'won' }, { name: 'Lost', kind: 'lost' }],
  });
  const contact = (await asAdmin.post('/v1/contacts', {
    first_name: 'Ana',
    last_name: 'Silva',
    address: { city: 'Hamburg', country: 'DE' },
    owner_id: 'rita',
  })) as { id: string };
  contactId = contact.id;
});

test('a rep creates a deal from the contact page and edits it in place', async ({ page }) => {
  await signIn(page, rita);
  await page.goto(`/contacts/${contactId}`);
  await page.getByRole('button', { name: 'New deal' }).click();
  const dialog = page.getByRole('dialog', { name: 'New deal' });
  await dialog.getByRole('textbox', { name: 'Title' }).fill('Patio door');
  // The tenant's default pipeline is preselected; this deal goes into "Windows".
  await dialog.getByRole('combobox', { name: 'Pipeline' }).click();
  await page.getByRole('option', { name: 'Windows' }).click();
  await dialog.getByRole('textbox', { name: 'Amount' }).fill('2.450,00');
  await dialog.getByRole('textbox', { name: 'Currency' }).fill('XX');
  await dialog.getByRole('button', { name: 'Create deal' }).click();
  // The API names the currency; the dialog keeps what was typed.
  await expect(dialog.getByRole('textbox', { name: 'Currency' })).toHaveAttribute('aria-invalid', 'true');
  await dialog.getByRole('textbox', { name: 'Currency' }).fill('EUR');
  await dialog.getByRole('button', { name: 'Create deal' }).click();
  await expect(page).toHaveURL(/\/deals\/eu_/);
  await expect(page.getByTestId('deal-title')).toHaveText('Patio door');
  await expect(page.getByTestId('deal-amount')).toHaveText('€2,450.00');
  await expect(page.getByTestId('deal-stage')).toHaveText('First call');

  await page.getByRole('button', { name: 'Edit' }).click();
  const edit = page.getByRole('dialog', { name: 'Edit the deal' });
  await edit.getByRole('textbox', { name: 'Title' }).fill('Patio door and two windows');
  await edit.getByRole('textbox', { name: 'Amount' }).fill('3100');
  await edit.getByRole('button', { name: 'Save' }).click();
  await expect(edit).toHaveCount(0);
  await expect(page.getByTestId('deal-title')).toHaveText('Patio door and two windows');
  await expect(page.getByTestId('deal-amount')).toHaveText('€3,100.00');
  await shoot(page, '60-deal-edited');

  await page.getByTestId('deal-contact').getByRole('link').click();
  await expect(page.getByRole('link', { name: 'Patio door and two windows' })).toBeVisible();
});

test('a rep creates a deal from the board, the contact found by typing', async ({ page }) => {
  await signIn(page, rita);
  await page.goto('/pipeline');
  await page.getByRole('combobox', { name: 'Pipeline' }).click();
  await page.getByRole('option', { name: 'Windows' }).click();
  await page.getByRole('button', { name: 'New deal' }).click();
  const dialog = page.getByRole('dialog', { name: 'New deal' });
  // The board's pipeline is the deal's.
  await expect(dialog.getByRole('combobox', { name: 'Pipeline' })).toHaveValue('Windows');
  await dialog.getByRole('textbox', { name: 'Title' }).fill('Roof window');
  await dialog.getByRole('combobox', { name: 'Contact' }).fill('slva');
  await page.getByRole('option', { name: /Ana Silva/ }).click();
  await dialog.getByRole('textbox', { name: 'Amount' }).fill('890');
  await dialog.getByRole('button', { name: 'Create deal' }).click();
  await expect(dialog).toHaveCount(0);
  // The board stays and shows the new card in the first stage.
  await expect(page).toHaveURL(/\/pipeline/);
  const card = page.getByRole('link', { name: 'Roof window' });
  await expect(card).toBeVisible();
  await shoot(page, '61-board-new-deal');
});

test('a rep creates a company, a bad country named under Country, then edits it in place', async ({ page }) => {
  await signIn(page, rita);
  await page.goto('/companies');
  await page.getByRole('button', { name: 'New company' }).click();
  const dialog = page.getByRole('dialog', { name: 'New company' });
  await dialog.getByRole('textbox', { name: 'Name of the company' }).fill('Glas & Rahmen GmbH');
  await dialog.getByRole('textbox', { name: 'Industry' }).fill('Glazing');
  await dialog.getByRole('textbox', { name: /^Country/ }).fill('XX');
  await dialog.getByRole('button', { name: 'Create company' }).click();
  await expect(dialog.getByRole('textbox', { name: /^Country/ })).toHaveAttribute('aria-invalid', 'true');
  await expect(dialog.getByRole('textbox', { name: 'Name of the company' })).toHaveValue('Glas & Rahmen GmbH');
  await dialog.getByRole('textbox', { name: /^Country/ }).fill('DE');
  await dialog.getByRole('textbox', { name: 'City' }).fill('Hamburg');
  await dialog.getByRole('button', { name: 'Create company' }).click();
  await expect(page).toHaveURL(/\/companies\/eu_/);
  await expect(page.getByTestId('company-name')).toHaveText('Glas & Rahmen GmbH');

  await page.getByRole('button', { name: 'Edit' }).click();
  const edit = page.getByRole('dialog', { name: 'Edit Glas & Rahmen GmbH' });
  await expect(edit.getByRole('textbox', { name: 'City' })).toHaveValue('Hamburg');
  await edit.getByRole('textbox', { name: /^Tags/ }).fill('partner, north');
  await edit.getByRole('button', { name: 'Save' }).click();
  await expect(edit).toHaveCount(0);
  await expect(page.getByText('partner', { exact: true })).toBeVisible();
  await expect(page.getByText('Hamburg, DE')).toBeVisible();
  await shoot(page, '62-company-edited');
});
