import { expect, test } from '@playwright/test';
import { apiAs, shoot, signIn, type Who } from './helpers';

// Settings, on a tenant of their own.
const tenant = `set${Date.now().toString(36)}`;
const admin: Who = { tenant, user: 'alice', role: 'admin' };
const mona: Who = { tenant, user: 'mona', role: 'manager', team: 'north' };

test.describe.configure({ mode: 'serial' });

test.beforeAll(async ({ request }) => {
  const asAdmin = await apiAs(request, admin);
  await asAdmin.put('/v1/users/alice', { display_name: 'Alice Admin', time_zone: 'Europe/Berlin' });
  await asAdmin.put('/v1/users/mona', { display_name: 'Mona Manager', team: 'north', time_zone: 'Europe/Berlin' });
  await asAdmin.put('/v1/users/rita', { display_name: 'Rita Rep', team: 'north', manager_id: 'mona' });
});

test('only an admin is offered settings', async ({ page }) => {
  await signIn(page, mona);
  const nav = page.getByRole('navigation', { name: 'Main' });
  await expect(nav.getByRole('link', { name: 'Reports' })).toBeVisible();
  await expect(nav.getByRole('link', { name: 'Settings' })).toHaveCount(0);
  await page.goto('/settings');
  await expect(page.getByRole('heading', { name: 'Not found' })).toBeVisible();
});

test('an admin edits a user: team, manager, roles, zone and working hours; a bad zone is named', async ({
  page,
}) => {
  await signIn(page, admin);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' }).click();
  await expect(page).toHaveURL(/\/settings$/);
  const rita = page.locator('[data-testid="user-row"][data-user="rita"]');
  await expect(rita).toContainText('Rita Rep');
  await expect(rita).toContainText('north');
  await expect(page.getByTestId('teams')).toContainText('Managed by mona');

  await rita.getByRole('button', { name: 'Edit Rita Rep' }).click();
  const dialog = page.getByRole('dialog', { name: 'Edit Rita Rep' });
  await dialog.getByRole('textbox', { name: 'Team' }).fill('south');
  await dialog.getByRole('textbox', { name: /Job roles/ }).fill('measurer, installer');
  await dialog.getByRole('textbox', { name: 'Time zone' }).fill('Mars/Olympus');
  await dialog.getByRole('button', { name: 'Save' }).click();
  // The API names the zone; the dialog stays, with what was typed.
  await expect(dialog.getByText(/time zone|zone/i).nth(1)).toBeVisible();
  await expect(dialog.getByRole('textbox', { name: 'Team' })).toHaveValue('south');
  await dialog.getByRole('textbox', { name: 'Time zone' }).fill('Europe/Lisbon');
  await dialog.getByLabel('From').fill('08:00');
  await dialog.getByLabel('Until').fill('16:30');
  await dialog.getByRole('checkbox', { name: 'Mon' }).check();
  await dialog.getByRole('checkbox', { name: 'Tue' }).check();
  await dialog.getByRole('button', { name: 'Save' }).click();
  await expect(dialog).toHaveCount(0);
  await expect(rita).toContainText('south');
  await expect(rita).toContainText('measurer');
  await expect(rita).toContainText('Europe/Lisbon');
  await expect(rita).toContainText('08:00–16:30');
  await shoot(page, '50-settings-users');
});

test('an admin creates a pipeline, then a rule on it, and switches the rule off', async ({ page }) => {
  await signIn(page, admin);
  await page.goto('/settings?tab=pipelines');
  await page.getByRole('textbox', { name: 'Name of the pipeline' }).fill('Windows');
  await page.getByRole('textbox', { name: 'Stage 1', exact: true }).fill('First call');
  await page.getByRole('textbox', { name: 'Stage 2', exact: true }).fill('Measurement');
  await page.getByRole('textbox', { name: 'Stage 3', exact: true }).fill('Won');
  await page.getByRole('textbox', { name: 'Stage 4', exact: true }).fill('Lost');
  await page.getByRole('button', { name: 'Create pipeline' }).click();
  const pipeline = page.locator('[data-testid="pipeline"][data-pipeline="Windows"]');
  await expect(pipeline).toContainText('Measurement · 50%');
  await expect(pipeline).toContainText('Won · 100%');
  await shoot(page, '51-settings-pipelines');

  await page.getByRole('tab', { name: 'Automation rules' }).click();
  await expect(page.getByText('No automation rules yet.')).toBeVisible();
  await page.getByRole('textbox', { name: 'Name of the rule' }).fill('Measure');
  await page.getByRole('combobox', { name: 'Entering the stage' }).click();
  await page.getByRole('option', { name: 'Measurement' }).click();
  await page.getByRole('textbox', { name: 'Task to create' }).fill('Measure the windows');
  await page.getByRole('textbox', { name: /^Due/ }).fill('in a while');
  await page.getByRole('button', { name: 'Create rule' }).click();
  // A due time the API cannot read is named under Due.
  await expect(page.getByRole('textbox', { name: /^Due/ })).toHaveAttribute('aria-invalid', 'true');
  await page.getByRole('textbox', { name: /^Due/ }).fill('+2h');
  await page.getByRole('button', { name: 'Create rule' }).click();
  const rule = page.locator('[data-testid="rule"][data-rule="Measure"]');
  await expect(rule).toContainText('Windows / Measurement');
  await expect(rule).toContainText('Measure the windows');
  const toggle = rule.getByRole('switch', { name: 'Rule “Measure” active' });
  await expect(toggle).toBeChecked();
  await toggle.click({ force: true });
  await expect(toggle).not.toBeChecked();
  await expect(rule).toContainText('Off');
  await page.reload();
  await expect(page.locator('[data-testid="rule"][data-rule="Measure"]').getByRole('switch')).not.toBeChecked();
  await shoot(page, '52-settings-rules');
});

test('an admin edits a pipeline in use: a stage holding a deal stays, a renamed and moved one keeps it', async ({
  page,
  request,
}) => {
  const asAdmin = await apiAs(request, admin);
  const pipelines = (await asAdmin.get('/v1/pipelines')) as { data: { id: string; name: string; stages: { id: string; name: string }[] }[] };
  const windows = pipelines.data.find((p) => p.name === 'Windows')!;
  const measurement = windows.stages.find((s) => s.name === 'Measurement')!;
  const contact = await asAdmin.post('/v1/contacts', { first_name: 'Paula', last_name: 'Pane', address: { country: 'DE' } });
  const deal = await asAdmin.post('/v1/deals', {
    title: 'Bay window',
    contact_id: contact!.id,
    pipeline_id: windows.id,
    stage_id: measurement.id,
  });

  await signIn(page, admin);
  await page.goto('/settings?tab=pipelines');
  const pipeline = page.locator('[data-testid="pipeline"][data-pipeline="Windows"]');
  await pipeline.getByRole('button', { name: 'Edit Windows' }).click();
  let dialog = page.getByRole('dialog', { name: 'Edit Windows' });
  await expect(dialog.getByRole('textbox', { name: 'Stage 2', exact: true })).toHaveValue('Measurement');
  await dialog.getByRole('button', { name: 'Remove stage 2' }).click();
  await dialog.getByRole('button', { name: 'Save pipeline' }).click();
  // Refused, naming the stage and its deal; nothing changed.
  await expect(dialog.getByRole('alert')).toContainText("'Measurement'");
  await expect(dialog.getByRole('alert')).toContainText('1 deal');
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await expect(pipeline).toContainText('Measurement · 50%');

  await pipeline.getByRole('button', { name: 'Edit Windows' }).click();
  dialog = page.getByRole('dialog', { name: 'Edit Windows' });
  await dialog.getByRole('textbox', { name: 'Name of the pipeline' }).fill('Windows and doors');
  await dialog.getByRole('textbox', { name: 'Stage 2', exact: true }).fill('Site visit');
  await dialog.getByRole('textbox', { name: 'Fields stage 2 requires' }).fill('measurement_at');
  await dialog.getByRole('button', { name: 'Move stage 2 up' }).click();
  await expect(dialog.getByRole('textbox', { name: 'Stage 1', exact: true })).toHaveValue('Site visit');
  await shoot(page, '53-settings-pipeline-edit');
  await dialog.getByRole('button', { name: 'Save pipeline' }).click();
  await expect(dialog).toHaveCount(0);
  const renamed = page.locator('[data-testid="pipeline"][data-pipeline="Windows and doors"]');
  await expect(renamed).toContainText(/Site visit · 50%.*First call · 10%/);

  // The deal stayed in its stage, which now has the new name.
  await page.goto(`/deals/${deal!.id as string}`);
  await expect(page.getByText('Site visit').first()).toBeVisible();
});
