import { readFileSync } from 'node:fs';
import { expect, test, type Page } from '@playwright/test';
import { apiAs, shoot, signIn, type Who } from './helpers';

// The deal page, tasks, companies and the reports dashboard, on a tenant of their own.
const tenant = `scr${Date.now().toString(36)}`;
const admin: Who = { tenant, user: 'alice', role: 'admin' };
const mona: Who = { tenant, user: 'mona', role: 'manager', team: 'north' };
const rita: Who = { tenant, user: 'rita', role: 'sales_rep', team: 'north' };
const year = new Date().getUTCFullYear();

let pipelineId = '';
let dealId = '';
let companyId = '';
const stageIds: Record<string, string> = {};

test.describe.configure({ mode: 'serial' });

test.beforeAll(async ({ request }) => {
  const asAdmin = await apiAs(request, admin);
  for (const [id, name, team, zone] of [
    ['alice', 'Alice Admin', '', 'Europe/Berlin'],
    // Mona's clock is in India while the browser runs on Berlin time: her due times
    // must follow her zone, not the machine's.
    ['mona', 'Mona Manager', 'north', 'Asia/Kolkata'],
    ['rita', 'Rita Rep', 'north', 'Europe/Berlin'],
    ['sven', 'Sven South', 'south', 'Europe/Berlin'],
  ] as const) {
    await asAdmin.put(`/v1/users/${id}`, { display_name: name, team, time_zone: zone });
  }
  await asAdmin.put('/v1/document-templates/invoice', {
    name: 'Invoice',
    locale: 'de_DE',
    body: '<h1>Invoice {{ deal.title }}</h1><p>{{ contact.first_name }} {{ contact.last_name }}</p><p>{{ amount_formatted }}</p>',
  });
  const pipeline = (await asAdmin.post('/v1/pipelines', {
    name: 'Windows',
    stages: [
      { name: 'First call', win_probability: 10 },
      { name: 'Measurement', win_probability: 30 },
      { name: 'Payment', win_probability: 70 },
      { name: 'Won', win_probability: 100, kind: 'won' },
      { name: 'Lost', kind: 'lost' },
    ],
  })) as { id: string; stages: { id: string; name: string }[] };
  pipelineId = pipeline.id;
  for (const stage of pipeline.stages) stageIds[stage.name] = stage.id;

  const company = (await asAdmin.post('/v1/companies', {
    name: 'Fensterbau Nord GmbH',
    domain: 'fensterbau-nord.de',
    industry: 'Construction',
    address: { city: 'Hamburg', country: 'DE' },
  })) as { id: string };
  companyId = company.id;
  // More companies than one page holds, so the list offers "Load more".
  for (let i = 1; i <= 52; i += 1) {
    await asAdmin.post('/v1/companies', {
      name: `Glaserei ${String(i).padStart(2, '0')}`,
      address: { country: 'DE' },
    });
  }
  const person = async (first: string, last: string, role: string, owner: string) =>
    (await asAdmin.post('/v1/contacts', {
      first_name: first,
      last_name: last,
      address: { city: 'Hamburg', country: 'DE' },
      owner_id: owner,
      companies: [{ company_id: companyId, role }],
    })) as { id: string };
  const juergen = await person('Jürgen', 'Müller', 'director', 'rita');
  await person('Petra', 'Paulsen', 'accountant', 'rita');

  const deal = async (title: string, owner: string, team: string, amount: string) =>
    (await asAdmin.post('/v1/deals', {
      title,
      contact_id: juergen.id,
      company_id: companyId,
      owner_id: owner,
      owner_team: team,
      pipeline_id: pipelineId,
      amount: { amount, currency: 'EUR' },
    })) as { id: string; version: number };
  const six = await deal('Six windows', 'rita', 'north', '1299.90');
  dealId = six.id;
  await deal('Patio door', 'rita', 'north', '2450.00');
  const roof = await deal('Roof window', 'sven', 'south', '800.00');
  const asRita = await apiAs(request, rita);
  await asRita.post(`/v1/deals/${six.id}/stage`, { stage_id: stageIds.Measurement });
  await asAdmin.post(`/v1/deals/${roof.id}/stage`, { stage_id: stageIds.Won });

  const hour = 3600_000;
  await asAdmin.post('/v1/tasks', {
    title: 'Measure the six windows',
    assignee_id: 'rita',
    deal_id: six.id,
    due_at: new Date(Date.now() + 26 * hour).toISOString(),
  });
  await asAdmin.post('/v1/tasks', {
    title: 'Send the quote to Jürgen',
    assignee_id: 'rita',
    contact_id: juergen.id,
    due_at: new Date(Date.now() - 30 * hour).toISOString(),
  });
  await asAdmin.post('/v1/tasks', {
    title: 'Plan the week',
    assignee_id: 'mona',
    due_at: new Date(Date.now() + 2 * hour).toISOString(),
  });
  await asAdmin.post(`/v1/contacts/${juergen.id}/notes`, {
    kind: 'call',
    direction: 'outbound',
    body: 'Talked about the windows.',
  });
});

function watchConsole(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(error.message));
  return problems;
}

test('board cards show the contact, filter by owner and team in the URL, and open the deal', async ({
  page,
}) => {
  await signIn(page, admin);
  await page.goto(`/pipeline?pipeline=${pipelineId}`);
  const card = (title: string) => page.locator(`[data-testid="deal-card"][data-deal="${title}"]`);
  await expect(card('Six windows').getByTestId('deal-contact')).toHaveText('Jürgen Müller');
  await expect(card('Roof window')).toBeVisible();

  await page.getByRole('combobox', { name: 'Team' }).click();
  await page.getByRole('option', { name: 'north' }).click();
  await expect(page).toHaveURL(/team=north/);
  await expect(card('Roof window')).toHaveCount(0);
  await expect(card('Patio door')).toBeVisible();
  const first = page.locator('[data-testid="board-column"][data-stage="First call"]');
  await expect(first.getByTestId('column-count')).toHaveText('1');
  await shoot(page, '20-board-team-filter');

  // The filter is a link: opened afresh, the same board.
  await page.goto(`/pipeline?pipeline=${pipelineId}&owner=sven`);
  await expect(card('Roof window')).toBeVisible();
  await expect(card('Six windows')).toHaveCount(0);

  await page.goto(`/pipeline?pipeline=${pipelineId}`);
  await card('Six windows').getByTestId('deal-link').click();
  await expect(page).toHaveURL(new RegExp(`/deals/${dealId}$`));
  await expect(page.getByTestId('deal-title')).toHaveText('Six windows');
});

test('the deal page shows contact, amount, owner, stage history, tasks and the invoice PDF', async ({
  page,
}) => {
  const problems = watchConsole(page);
  await signIn(page, admin);
  await page.goto(`/deals/${dealId}`);
  await expect(page.getByTestId('deal-title')).toHaveText('Six windows');
  await expect(page.getByTestId('deal-amount')).toHaveText('€1,299.90');
  await expect(page.getByTestId('deal-owner')).toHaveText('rita · north');
  await expect(page.getByTestId('deal-stage')).toHaveText('Measurement');
  await expect(page.getByTestId('deal-contact').getByRole('link')).toHaveText('Jürgen Müller');
  const history = page.getByTestId('stage-history');
  await expect(history.locator('.mantine-Timeline-item').first()).toContainText(
    'First call → Measurement',
  );
  await expect(page.getByTestId('task-row').filter({ hasText: 'Measure the six windows' })).toBeVisible();

  await page.getByRole('button', { name: 'Generate' }).click();
  const documents = page.getByTestId('documents');
  await expect(documents).toContainText(/Invoice/i);
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    documents.getByRole('button', { name: 'PDF' }).first().click(),
  ]);
  expect(download.suggestedFilename()).toMatch(/\.pdf$/);
  const path = await download.path();
  expect(readFileSync(path).subarray(0, 5).toString()).toBe('%PDF-');
  await shoot(page, '21-deal-page');

  await page.getByTestId('deal-contact').getByRole('link').click();
  await expect(page.getByTestId('contact-name')).toHaveText('Jürgen Müller');
  expect(problems.filter((p) => /Content Security Policy|Refused/.test(p))).toEqual([]);
});

test("a manager sees the team's tasks overdue first, adds one in her zone and completes one", async ({
  page,
  request,
}) => {
  await signIn(page, mona);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Tasks' }).click();
  await expect(page).toHaveURL(/\/tasks$/);
  const rows = page.getByTestId('task-row');
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText('Plan the week');

  await page.getByText('My team', { exact: true }).click();
  await expect(page).toHaveURL(/scope=team/);
  await expect(rows).toHaveCount(3);
  await expect(rows.first()).toHaveAttribute('data-task', 'Send the quote to Jürgen');
  await expect(rows.first()).toHaveAttribute('data-overdue', 'true');
  await expect(rows.first().getByText('Overdue')).toBeVisible();
  await shoot(page, '22-tasks-team');

  // 10:00 on Mona's clock in India is 04:30 UTC, whatever zone the browser is in.
  await page.getByLabel('What is to be done?').fill('Call the glazier');
  await expect(page.getByText('Your time (Asia/Kolkata)')).toBeVisible();
  await page.getByLabel('Due').fill(`${year + 1}-01-15T10:00`);
  await page.getByRole('button', { name: 'Add task' }).click();
  await expect(page.getByText('Task “Call the glazier” added')).toBeVisible();
  await expect(rows.filter({ hasText: 'Call the glazier' })).toBeVisible();
  const asMona = await apiAs(request, mona);
  const mine = (await asMona.get('/v1/tasks?assignee_id=mona&status=open')) as {
    data: { title: string; due_at: string }[];
  };
  expect(mine.data.find((t) => t.title === 'Call the glazier')?.due_at).toBe(
    `${year + 1}-01-15T04:30:00Z`,
  );

  // One click completes it; it leaves the open list.
  await page.getByRole('button', { name: 'Mark “Send the quote to Jürgen” as done' }).click();
  await expect(page.getByText('“Send the quote to Jürgen” done')).toBeVisible();
  await expect(rows.filter({ hasText: 'Send the quote to Jürgen' })).toHaveCount(0);
});

test('companies: search, load more, and a company page with its people and roles', async ({
  page,
}) => {
  await signIn(page, admin);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Companies' }).click();
  const rows = page.getByTestId('companies-rows').getByRole('row');
  await expect(rows).toHaveCount(50);
  await page.getByRole('button', { name: 'Load more' }).click();
  await expect(rows).toHaveCount(53);
  await shoot(page, '23-companies');
  await page.getByRole('searchbox').pressSequentially('fensterbau', { delay: 40 });
  await expect(page).toHaveURL(/q=fensterbau/);
  await expect(rows.first()).toContainText('Fensterbau Nord GmbH');
  await rows.first().getByRole('link', { name: 'Fensterbau Nord GmbH' }).click();
  await expect(page).toHaveURL(new RegExp(`/companies/${companyId}$`));
  await expect(page.getByTestId('company-name')).toHaveText('Fensterbau Nord GmbH');
  const people = page.getByTestId('company-person');
  await expect(people).toHaveCount(2);
  await expect(people.filter({ hasText: 'Jürgen Müller' })).toContainText('director');
  await expect(people.filter({ hasText: 'Petra Paulsen' })).toContainText('accountant');
  await expect(page.getByRole('link', { name: 'Six windows' })).toBeVisible();
  await shoot(page, '24-company-page');
  await people.filter({ hasText: 'Petra Paulsen' }).getByRole('link').click();
  await expect(page.getByTestId('contact-name')).toHaveText('Petra Paulsen');
});

test("the manager's dashboard shows the API's numbers for the same filter", async ({
  page,
  request,
}) => {
  const problems = watchConsole(page);
  const asMona = await apiAs(request, mona);
  const filter = `from=${year}-01-01&team=north`;
  const report = async (name: string) =>
    (await asMona.get(`/v1/reports/${name}?${filter}&region=all`)) as {
      reporting_currency: string;
      data: Record<string, unknown>[];
    };
  // Reports are read models fed by events: wait until they have caught up with set-up.
  await expect
    .poll(async () => {
      const funnel = await report('funnel');
      return funnel.data.find((r) => r.stage === 'First call')?.entered;
    })
    .toBe(2);
  await expect
    .poll(async () => (await report('funnel')).data.find((r) => r.stage === 'Measurement')?.entered)
    .toBe(1);

  await signIn(page, mona);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Reports' }).click();
  await page.getByRole('combobox', { name: 'Team' }).click();
  await page.getByRole('option', { name: 'north' }).click();
  await expect(page).toHaveURL(new RegExp(`from=${year}-01-01.*team=north`));

  const funnel = await report('funnel');
  const currency = funnel.reporting_currency;
  const money = (v: unknown) =>
    new Intl.NumberFormat('en', { style: 'currency', currency }).format(Number(v));
  const number = (v: unknown) => new Intl.NumberFormat('en').format(Number(v));
  const percent = (v: unknown) =>
    v === null || v === undefined
      ? '—'
      : new Intl.NumberFormat('en', { style: 'percent', maximumFractionDigits: 1 }).format(Number(v));
  const table = page.getByTestId('report-table-funnel').locator('tbody tr');
  await expect(table).toHaveCount(funnel.data.length);
  for (const [i, row] of funnel.data.entries()) {
    await expect(table.nth(i).locator('td')).toHaveText([
      String(row.stage),
      number(row.entered),
      number(row.deals),
      money(row.value),
      percent(row.conversion_to_next),
    ]);
  }
  const winRate = (await report('win_rate')).data[0] ?? {};
  await expect(page.getByTestId('stat-won')).toHaveText(number(winRate.deals_won));
  await expect(page.getByTestId('stat-lost')).toHaveText(number(winRate.deals_lost));
  await expect(page.getByTestId('stat-win-rate')).toHaveText(percent(winRate.win_rate));
  await expect(page.getByTestId('stat-value-won')).toHaveText(money(winRate.value_won));
  const forecast = await report('forecast');
  const forecastRows = page.getByTestId('report-table-forecast').locator('tbody tr');
  if (forecast.data.length) {
    await expect(forecastRows).toHaveCount(forecast.data.length);
    for (const [i, row] of forecast.data.entries()) {
      await expect(forecastRows.nth(i).locator('td').nth(2)).toHaveText(money(row.value));
      await expect(forecastRows.nth(i).locator('td').nth(3)).toHaveText(money(row.weighted));
    }
  }
  const activity = await report('activity');
  const activityRows = page.getByTestId('report-table-activity').locator('tbody tr');
  await expect(activityRows).toHaveCount(activity.data.length);
  // The charts are drawn (ECharts, loaded on demand).
  await expect(page.getByRole('img', { name: 'Funnel' }).locator('canvas')).toHaveCount(1);
  await shoot(page, '25-reports-manager');

  const [csv] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Download Funnel as CSV' }).click(),
  ]);
  expect(csv.suggestedFilename()).toBe(`funnel-${year}-01-01.csv`);
  expect(readFileSync(await csv.path(), 'utf8')).toContain('First call');
  expect(problems.filter((p) => /Content Security Policy|Refused/.test(p))).toEqual([]);
});

test('an import with a bad row runs through the wizard to its error report', async ({ page }) => {
  // An import is a background job in the importer's region: give it room on a busy machine.
  test.setTimeout(180_000);
  await signIn(page, admin);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Import' }).click();
  const csv = [
    'Vorname;Nachname;E-Mail;Handy;Land;Notiz',
    'Lena;Vogel;lena.vogel@example.org;0151 23456789;DE;VIP',
    'Max;Bauer;not-an-email;030 1234567;DE;',
    'Ute;Klein;ute.klein@example.org;0171 7654321;DE;',
  ].join('\r\n');
  await page.locator('input[type="file"]').setInputFiles({
    name: 'kunden.csv',
    mimeType: 'text/csv',
    buffer: Buffer.from(csv, 'utf8'),
  });
  await page.getByRole('button', { name: 'Upload', exact: true }).click();
  await expect(page.getByTestId('import-file-info')).toContainText('kunden.csv: 6 columns');
  // The suggested mapping, edited: the phone column named for sure, the note ignored.
  await expect(page.getByRole('combobox', { name: 'Field for Vorname' })).toHaveValue('First name');
  await page.getByRole('combobox', { name: 'Field for Handy' }).click();
  await page.getByRole('option', { name: 'Phone', exact: true }).click();
  await page.getByRole('combobox', { name: 'Field for Notiz' }).click();
  await page.getByRole('option', { name: 'Ignore this column' }).click();
  await expect(page.getByRole('combobox', { name: 'Field for Notiz' })).toHaveValue('Ignore this column');
  await shoot(page, '27-import-mapping');

  await page.getByRole('button', { name: 'Dry run', exact: true }).click();
  const dryRun = page.getByTestId('import-dry-run');
  await expect(dryRun.getByTestId('count-total')).toHaveText('3');
  await expect(dryRun.getByTestId('count-failed')).toHaveText('1');
  const errors = page.getByTestId('import-errors').locator('tbody tr');
  await expect(errors).toHaveCount(1);
  await expect(errors.first().locator('td').first()).toHaveText('3');
  await expect(errors.first()).toContainText(/mail/i);
  await shoot(page, '28-import-dry-run');

  await page.getByRole('button', { name: 'Import 2 rows' }).click();
  const run = page.getByTestId('import-run');
  await expect(run.getByTestId('import-status')).toHaveText('Completed');
  await expect(run.getByTestId('count-created')).toHaveText('2');
  await expect(run.getByTestId('count-failed')).toHaveText('1');
  await expect(run.getByTestId('import-progress').locator('[role="progressbar"]')).toHaveAttribute(
    'aria-valuenow',
    '100',
  );
  await shoot(page, '29-import-done');
  const [report] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Download the error report' }).click(),
  ]);
  expect(report.suggestedFilename()).toBe('kunden-errors.csv');
  const text = readFileSync(await report.path(), 'utf8');
  expect(text).toContain('not-an-email');
  expect(text).toContain('3');
});

test('a sales rep is offered no reports, and Russian is the seventh language', async ({ page }) => {
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
  await page.goto('/reports');
  await expect(page.getByRole('heading', { name: 'Not found' })).toBeVisible();
  await page.getByTestId('language').click();
  await page.getByRole('option', { name: 'Русский' }).click();
  await expect(page.locator('html')).toHaveAttribute('lang', 'ru');
  await expect(page.locator('html')).toHaveAttribute('dir', 'ltr');
  await expect(nav.getByRole('link', { name: 'Задачи' })).toBeVisible();
  await nav.getByRole('link', { name: 'Задачи' }).click();
  await expect(page.getByRole('heading', { name: 'Задачи', exact: true })).toBeVisible();
  await shoot(page, '26-tasks-russian');
  await page.getByTestId('language').click();
  await page.getByRole('option', { name: 'English' }).click();
  await expect(page.locator('html')).toHaveAttribute('lang', 'en');
});
