import { readFileSync } from 'node:fs';
import { expect, test } from '@playwright/test';
import { apiAs, shoot, signIn, type Who } from './helpers';

// Files on a contact and on its deal, on a tenant of their own.
const tenant = `fil${Date.now().toString(36)}`;
const admin: Who = { tenant, user: 'alice', role: 'admin' };
const PDF = Buffer.from(
  '%PDF-1.4\n1 0 obj <</Type /Catalog /Pages 2 0 R>> endobj\n2 0 obj <</Type /Pages /Kids [] /Count 0>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n',
);

let contactId = '';
let dealId = '';

test.describe.configure({ mode: 'serial' });

test.beforeAll(async ({ request }) => {
  const asAdmin = await apiAs(request, admin);
  // No phone, no language: the page shows "—" for them, not an empty line.
  const contact = (await asAdmin.post('/v1/contacts', {
    first_name: 'Lena',
    last_name: 'Vogel',
    emails: ['lena@example.de'],
    address: { city: 'Bremen', country: 'DE' },
  })) as { id: string };
  contactId = contact.id;
  const pipeline = (await asAdmin.post('/v1/pipelines', {
    name: 'Windows',
    stages: [{ name: 'First call' }, { name: 'Won', kind: 'won' }, { name: 'Lost', kind: 'lost' }],
  })) as { id: string };
  const deal = (await asAdmin.post('/v1/deals', {
    title: 'Three windows',
    contact_id: contactId,
    pipeline_id: pipeline.id,
    amount: { amount: '900.00', currency: 'EUR' },
  })) as { id: string };
  dealId = deal.id;
});

test('a contact page shows — for an empty field, and takes, lists, downloads and deletes files', async ({
  page,
}) => {
  await signIn(page, admin);
  await page.goto(`/contacts/${contactId}`);
  await expect(page.getByTestId('contact-name')).toHaveText('Lena Vogel');
  const phone = page.getByText('Phone', { exact: true }).locator('xpath=following-sibling::*[1]');
  await expect(phone).toHaveText('—');

  const files = page.getByTestId('files');
  await expect(files).toContainText('No files yet.');
  await files.locator('input[type=file]').setInputFiles({
    name: 'measurement.pdf',
    mimeType: 'application/pdf',
    buffer: PDF,
  });
  const list = files.getByTestId('file-list');
  await expect(list).toContainText('measurement.pdf');
  await expect(list).toContainText('PDF');
  await expect(list).toContainText('alice');
  // The timeline names the file.
  await expect(page.getByTestId('timeline')).toContainText('File · measurement.pdf');

  // A web page is refused: the API's reason appears under the upload.
  await files.locator('input[type=file]').setInputFiles({
    name: 'page.html',
    mimeType: 'text/html',
    buffer: Buffer.from('<!doctype html><html><body><script>alert(1)</script></body></html>'),
  });
  await expect(files.getByTestId('upload-error')).toBeVisible();
  await expect(files.getByTestId('upload-error')).not.toHaveText('');
  await expect(list.getByText('page.html')).toHaveCount(0);
  await shoot(page, '30-contact-files');

  const [download] = await Promise.all([
    page.waitForEvent('download'),
    files.getByRole('button', { name: 'Download “measurement.pdf”' }).click(),
  ]);
  expect(download.suggestedFilename()).toBe('measurement.pdf');
  expect(readFileSync(await download.path()).subarray(0, 5).toString()).toBe('%PDF-');

  await files.getByRole('button', { name: 'Delete “measurement.pdf”' }).click();
  const dialog = page.getByRole('dialog', { name: 'Delete this file?' });
  await expect(dialog).toContainText('measurement.pdf');
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await expect(list).toContainText('measurement.pdf');
  await files.getByRole('button', { name: 'Delete “measurement.pdf”' }).click();
  await page.getByRole('dialog', { name: 'Delete this file?' }).getByRole('button', { name: 'Delete' }).click();
  await expect(files).toContainText('No files yet.');
  await expect(page.getByText('File · measurement.pdf')).toHaveCount(0);
});

test('a deal page takes a file by dropping it, and its contact lists it too', async ({ page }) => {
  await signIn(page, admin);
  await page.goto(`/deals/${dealId}`);
  const files = page.getByTestId('files');
  await expect(files).toContainText('No files yet.');
  // A drop, as the browser delivers it.
  const transfer = await page.evaluateHandle((text) => {
    const data = new DataTransfer();
    data.items.add(new File([text], 'contract.pdf', { type: 'application/pdf' }));
    return data;
  }, PDF.toString('latin1'));
  await files.getByTestId('drop-zone').dispatchEvent('drop', { dataTransfer: transfer });
  await expect(files.getByTestId('file-list')).toContainText('contract.pdf');
  await shoot(page, '31-deal-files');

  await page.goto(`/contacts/${contactId}`);
  await expect(page.getByTestId('files').getByTestId('file-list')).toContainText('contract.pdf');
});
