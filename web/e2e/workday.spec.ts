import { expect, test, type Page } from '@playwright/test';
import { apiAs, shoot, signIn, signOut, type Who } from './helpers';

// A tenant of its own per run, so the suite can run again against the same system.
const tenant = `e2e${Date.now().toString(36)}`;
const admin: Who = { tenant, user: 'alice', role: 'admin' };
const rita: Who = { tenant, user: 'rita', role: 'sales_rep', team: 'north' };
const raj: Who = { tenant, user: 'raj', role: 'sales_rep', team: 'north' };

let ritasContact = '';
let pipelineId = '';

test.describe.configure({ mode: 'serial' });

test.beforeAll(async ({ request }) => {
  const asAdmin = await apiAs(request, admin);
  for (const [id, name, team] of [
    ['alice', 'Alice Admin', ''],
    ['rita', 'Rita Rep', 'north'],
    ['raj', 'Raj Rep', 'north'],
  ] as const) {
    await asAdmin.put(`/v1/users/${id}`, { display_name: name, team, time_zone: 'Europe/Berlin' });
  }
  const pipeline = (await asAdmin.post('/v1/pipelines', {
    name: 'Windows',
    stages: [
      { name: 'First call', win_probability: 10 },
      { name: 'Measurement', win_probability: 30 },
      { name: 'Payment', win_probability: 70 },
      { name: 'Won', win_probability: 100, kind: 'won' },
      { name: 'Lost', kind: 'lost' },
    ],
  })) as { id: string };
  pipelineId = pipeline.id;
  const mueller = (await asAdmin.post('/v1/contacts', {
    first_name: 'Jürgen',
    last_name: 'Müller',
    emails: ['juergen.mueller@example.de'],
    phones: ['030 1234567'],
    address: { city: 'Berlin', country: 'DE' },
    lifecycle_stage: 'prospect',
    owner_id: 'alice',
  })) as { id: string };
  await asAdmin.post('/v1/contacts', {
    first_name: 'Anna',
    last_name: 'Schmidt',
    address: { city: 'Hamburg', country: 'DE' },
    owner_id: 'alice',
  });
  for (const [title, amount] of [
    ['Six windows', '1299.90'],
    ['Patio door', '2450.00'],
  ] as const) {
    await asAdmin.post('/v1/deals', {
      title,
      contact_id: mueller.id,
      owner_id: 'alice',
      pipeline_id: pipelineId,
      amount: { amount, currency: 'EUR' },
    });
  }
  const inAnHour = new Date(Date.now() + 3600_000).toISOString();
  const yesterday = new Date(Date.now() - 86400_000).toISOString();
  await asAdmin.post('/v1/tasks', { title: 'Call Jürgen back', assignee_id: 'alice', contact_id: mueller.id, due_at: inAnHour });
  await asAdmin.post('/v1/tasks', { title: 'Send the quote', assignee_id: 'alice', contact_id: mueller.id, due_at: yesterday });
  await asAdmin.post(`/v1/contacts/${mueller.id}/notes`, {
    kind: 'call',
    direction: 'outbound',
    body: 'Wants six windows measured before Christmas.',
  });
  const asRita = await apiAs(request, rita);
  const ritas = (await asRita.post('/v1/contacts', {
    first_name: 'Greta',
    last_name: 'Lind',
    address: { country: 'DE' },
  })) as { id: string };
  ritasContact = ritas.id;
});

/** The CSP the gateway sets must never block the application's own code or styles. */
function watchConsole(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(error.message));
  return problems;
}

test('an admin signs in and sees the day', async ({ page }) => {
  const problems = watchConsole(page);
  await signIn(page, admin);
  await expect(page.getByRole('heading', { name: 'Hello, Alice Admin' })).toBeVisible();
  await expect(page.getByText('Call Jürgen back')).toBeVisible();
  await expect(page.getByText('Send the quote')).toBeVisible();
  await expect(page.getByText('Overdue', { exact: true })).toBeVisible();
  await expect(page.getByRole('link', { name: 'Six windows' })).toBeVisible();
  const nav = page.getByRole('navigation', { name: 'Main' });
  await expect(nav.getByRole('link')).toHaveText([
    'My day',
    'Contacts',
    'Companies',
    'Pipeline',
    'Tasks',
    'Reports',
    'Import',
    'Compliance',
    'Settings',
  ]);
  await shoot(page, '01-home-admin');
  expect(problems.filter((p) => /Content Security Policy|Refused/.test(p))).toEqual([]);
  // The token lives in the tab's session storage, never in the URL.
  expect(page.url()).not.toContain('token');
  await signOut(page);
  expect(await page.evaluate(() => sessionStorage.getItem('atlas.session'))).toBeNull();
});

test('a sales rep signs in and is offered no settings or compliance', async ({ page }) => {
  await page.goto('/sign-in');
  await page.getByLabel('Tenant').fill(tenant);
  await page.getByRole('combobox', { name: 'User' }).click();
  // The directory's users are offered by name.
  await expect(page.getByRole('option', { name: /Rita Rep/ })).toBeVisible();
  await shoot(page, '00-sign-in');
  await page.keyboard.press('Escape');
  await signIn(page, rita);
  const nav = page.getByRole('navigation', { name: 'Main' });
  await expect(nav.getByRole('link')).toHaveText([
    'My day',
    'Contacts',
    'Companies',
    'Pipeline',
    'Tasks',
    'Import',
  ]);
  await expect(page.getByText(/settings|compliance|reports/i)).toHaveCount(0);
  await shoot(page, '02-home-sales-rep');
});

test('a bad phone is shown under the phone field, and the fixed form creates the contact', async ({
  page,
}) => {
  await signIn(page, admin);
  await page.getByRole('link', { name: 'Contacts' }).click();
  await page.getByRole('link', { name: 'New contact' }).click();
  await page.getByLabel('First name').fill('Luise');
  await page.getByLabel('Last name').fill('Becker');
  await page.getByLabel('Email').fill('luise.becker@example.de');
  await page.getByLabel('Phone').fill('12');
  await page.getByRole('combobox', { name: 'Country' }).fill('Germany');
  await page.getByRole('option', { name: 'Germany (DE)' }).click();
  await page.getByRole('button', { name: 'Create contact' }).click();
  const phone = page.getByLabel('Phone');
  await expect(phone).toHaveAttribute('aria-invalid', 'true');
  const errorId = (await phone.getAttribute('aria-describedby'))
    ?.split(' ')
    .find((id) => id.endsWith('-error'));
  expect(errorId).toBeTruthy();
  await expect(page.locator(`[id="${errorId}"]`)).toContainText(/phone/i);
  await expect(page.getByLabel('Email')).not.toHaveAttribute('aria-invalid', 'true');
  await shoot(page, '03-contact-form-error');

  await phone.fill('030 98765432');
  await expect(phone).not.toHaveAttribute('aria-invalid', 'true');
  await page.getByRole('button', { name: 'Create contact' }).click();
  await expect(page.getByTestId('contact-name')).toHaveText('Luise Becker');
  await expect(page).toHaveURL(/\/contacts\/eu_/);
  await expect(page.getByText('+493098765432')).toBeVisible();
  await expect(page.getByTestId('residency')).toHaveText('Stored in region EU');
});

test('typing "mullr" finds Müller, and the contact page shows the timeline', async ({ page }) => {
  await signIn(page, admin);
  await page.getByRole('link', { name: 'Contacts' }).click();
  await expect(page.getByTestId('contacts-rows').getByRole('row')).not.toHaveCount(0);
  await shoot(page, '04-contacts');
  await page.getByRole('searchbox').pressSequentially('mullr', { delay: 60 });
  await expect(page).toHaveURL(/q=mullr/);
  const rows = page.getByTestId('contacts-rows').getByRole('row');
  await expect(rows.first()).toContainText('Jürgen Müller');
  await shoot(page, '05-contacts-search');
  await rows.first().getByRole('link', { name: 'Jürgen Müller' }).click();
  await expect(page.getByTestId('contact-name')).toHaveText('Jürgen Müller');
  await expect(page.getByText('Wants six windows measured before Christmas.')).toBeVisible();
  await page.getByPlaceholder('What happened? What was agreed?').fill('Measurement booked for Friday.');
  await page.getByRole('button', { name: 'Add to timeline' }).click();
  const timeline = page.getByTestId('timeline');
  // Newest first.
  await expect(timeline.locator('.mantine-Timeline-item').first()).toContainText(
    'Measurement booked for Friday.',
  );
  await shoot(page, '06-contact-page');
});

test('a deal is dragged to the next stage; a refused move is rolled back with the reason', async ({
  page,
}) => {
  await signIn(page, admin);
  await page.getByRole('link', { name: 'Pipeline' }).click();
  await page.getByRole('combobox', { name: 'Pipeline' }).click();
  await page.getByRole('option', { name: 'Windows' }).click();
  const column = (name: string) => page.locator(`[data-testid="board-column"][data-stage="${name}"]`);
  const card = (title: string) => page.locator(`[data-testid="deal-card"][data-deal="${title}"]`);
  await expect(column('First call').getByTestId('column-count')).toHaveText('2');
  await expect(column('First call').getByTestId('column-total')).toHaveText('€3,749.90');
  await shoot(page, '07-board');

  // With the mouse.
  const from = await card('Six windows').boundingBox();
  const to = await column('Measurement').boundingBox();
  if (!from || !to) throw new Error('board not laid out');
  await page.mouse.move(from.x + from.width / 2, from.y + 20);
  await page.mouse.down();
  await page.mouse.move(from.x + from.width / 2 + 20, from.y + 30, { steps: 4 });
  await page.mouse.move(to.x + to.width / 2, to.y + 80, { steps: 12 });
  await page.mouse.up();
  await expect(column('Measurement').locator(card('Six windows'))).toBeVisible();
  await expect(page.getByText('“Six windows” moved to Measurement')).toBeVisible();
  await expect(column('Measurement').getByTestId('column-count')).toHaveText('1');

  // With the keyboard: Space picks the card up, arrows move it, Space drops it.
  await card('Patio door').focus();
  await page.keyboard.press('Space');
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('Space');
  await expect(column('Payment').locator(card('Patio door'))).toBeVisible();
  await expect(page.getByText('“Patio door” moved to Payment')).toBeVisible();

  // The server kept both moves.
  await page.reload();
  await expect(column('Measurement').locator(card('Six windows'))).toBeVisible();
  await expect(column('Payment').locator(card('Patio door'))).toBeVisible();

  // Lost needs a reason: the API refuses, the card goes back, the message says why.
  await card('Six windows').getByRole('button', { name: 'Move to…' }).click();
  await page.getByRole('menuitem', { name: 'Lost' }).click();
  await expect(page.getByText('“Six windows” could not be moved to Lost')).toBeVisible();
  await expect(page.getByText(/Lost reason: required/)).toBeVisible();
  await expect(column('Measurement').locator(card('Six windows'))).toBeVisible();
  await expect(column('Lost').locator(card('Six windows'))).toHaveCount(0);
  await shoot(page, '08-board-refused');
});

test('in Persian the whole application is laid out right to left', async ({ page }) => {
  await signIn(page, admin);
  await page.getByTestId('language').click();
  await page.getByRole('option', { name: 'فارسی' }).click();
  await expect(page.locator('html')).toHaveAttribute('dir', 'rtl');
  await expect(page.locator('html')).toHaveAttribute('lang', 'fa');
  const nav = page.getByRole('navigation', { name: 'Main' });
  await expect(nav.getByRole('link').first()).toHaveText('روز من');
  // The navigation sits on the right.
  const box = await nav.boundingBox();
  expect(box && box.x > 700).toBeTruthy();
  await shoot(page, '09-home-persian');
  await nav.getByRole('link', { name: 'قیف فروش' }).click();
  await expect(page.getByTestId('board')).toBeVisible();
  await shoot(page, '10-board-persian');
  await page.getByTestId('language').click();
  await page.getByRole('option', { name: 'English' }).click();
  await expect(page.locator('html')).toHaveAttribute('dir', 'ltr');
});

test("a sales rep never sees another rep's contact, even by its URL", async ({ page }) => {
  await signIn(page, raj);
  await page.goto(`/contacts/${ritasContact}`);
  await expect(page.getByRole('heading', { name: 'Not found' })).toBeVisible();
  await expect(page.getByText('Greta')).toHaveCount(0);
  await shoot(page, '11-not-found');
  await signOut(page);
  await signIn(page, rita);
  await page.goto(`/contacts/${ritasContact}`);
  await expect(page.getByTestId('contact-name')).toHaveText('Greta Lind');
});
