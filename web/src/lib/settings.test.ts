import { describe, expect, it } from 'vitest';
import { mayUse, navFor } from './nav';
import {
  moved,
  pipelineBody,
  ruleBody,
  ruleField,
  stageForms,
  stageIndex,
  teamsOf,
  toggled,
  userBody,
  userForm,
  type Rule,
  type User,
} from './settings';

const user = (id: string, team: string, manager_id = ''): User => ({
  id,
  display_name: id.toUpperCase(),
  email: '',
  team,
  job_roles: [],
  time_zone: '',
  locale: '',
  manager_id,
});

describe('settings', () => {
  it('are offered to admins only', () => {
    expect(navFor('admin').map((i) => i.to)).toContain('/settings');
    expect(navFor('manager').map((i) => i.to)).not.toContain('/settings');
    expect(mayUse('compliance_officer', '/settings')).toBe(false);
  });

  it('sends a user with job roles as a list and the working days in order', () => {
    const form = userForm({ display_name: 'Rita', job_roles: ['measurer'], working_days: [1, 2] });
    expect(form.job_roles).toBe('measurer');
    const body = userBody({ ...form, job_roles: ' measurer, installer ,', working_days: ['5', '1', '1'] });
    expect(body.job_roles).toEqual(['measurer', 'installer']);
    expect(body.working_days).toEqual([1, 5]);
    expect(body.display_name).toBe('Rita');
  });

  it('groups users into teams with their managers, those without a team last', () => {
    const teams = teamsOf([user('rita', 'north', 'mona'), user('sven', ''), user('mona', 'north'), user('ana', 'east')]);
    expect(teams.map((t) => t.team)).toEqual(['east', 'north', '']);
    expect(teams[1]?.members.map((m) => m.id)).toEqual(['mona', 'rita']);
    expect(teams[1]?.managers).toEqual(['mona']);
  });

  it('creates a pipeline from the named stages; won is certain and lost hopeless', () => {
    expect(
      pipelineBody(' Windows ', [
        { name: 'First call', kind: 'open', win_probability: 10 },
        { name: ' ', kind: 'open', win_probability: 50 },
        { name: 'Won', kind: 'won', win_probability: 20 },
        { name: 'Lost', kind: 'lost', win_probability: 20 },
      ]),
    ).toEqual({
      name: 'Windows',
      stages: [
        { name: 'First call', kind: 'open', win_probability: 10, required_fields: [] },
        { name: 'Won', kind: 'won', win_probability: 100, required_fields: [] },
        { name: 'Lost', kind: 'lost', win_probability: 0, required_fields: [] },
      ],
    });
    expect(stageIndex('stages[2].name')).toBe(2);
    expect(stageIndex('name')).toBeNull();
  });

  it('edits a pipeline: existing stages keep their ids, in the order shown, with their required fields', () => {
    const rows = stageForms([
      { id: 'st_won', name: 'Won', kind: 'won', win_probability: 100, position: 2 },
      { id: 'st_lead', name: 'Lead', kind: 'open', win_probability: 10, position: 0, required_fields: ['source'] },
      { id: 'st_visit', name: 'Visit', kind: 'open', win_probability: 40, position: 1 },
    ]);
    expect(rows.map((r) => r.id)).toEqual(['st_lead', 'st_visit', 'st_won']);
    expect(rows[0]?.required_fields).toBe('source');
    const reordered = moved(rows, 1, -1);
    expect(reordered.map((r) => r.id)).toEqual(['st_visit', 'st_lead', 'st_won']);
    expect(moved(rows, 0, -1)).toBe(rows); // already first
    const edited = [
      { ...reordered[0]!, name: 'Measurement', required_fields: 'measurement_at, floor, measurement_at' },
      reordered[1]!,
      { name: 'Installation', kind: 'open' as const, win_probability: 90 },
      reordered[2]!,
    ];
    expect(pipelineBody('Windows', edited).stages).toEqual([
      { id: 'st_visit', name: 'Measurement', kind: 'open', win_probability: 40, required_fields: ['measurement_at', 'floor'] },
      { id: 'st_lead', name: 'Lead', kind: 'open', win_probability: 10, required_fields: ['source'] },
      { name: 'Installation', kind: 'open', win_probability: 90, required_fields: [] },
      { id: 'st_won', name: 'Won', kind: 'won', win_probability: 100, required_fields: [] },
    ]);
  });

  it('writes a simple rule: on entering a stage, a task for the owner', () => {
    expect(
      ruleBody({
        name: 'Measure',
        event_type: 'deals.deal.stage_changed',
        to_stage_id: 'st1',
        title: 'Measure',
        assignee: '',
        due: '+2h',
      }),
    ).toEqual({
      name: 'Measure',
      enabled: true,
      trigger: { event_type: 'deals.deal.stage_changed', conditions: { to_stage_id: 'st1' } },
      actions: [{ type: 'create_task', title: 'Measure', assignee: 'owner', due: '+2h' }],
    });
    expect(ruleField('actions[0].due')).toBe('due');
    expect(ruleField('trigger.event_type')).toBe('event_type');
  });

  it('switches a rule off by sending it back whole, without the empty fields the API answered', () => {
    const rule: Rule = {
      id: 'r1',
      name: 'Measure',
      enabled: true,
      trigger: { event_type: 'deals.deal.won', conditions: {} },
      actions: [{ type: 'create_task', title: 'Thank', assignee: 'owner', due: '', recipients: [], field: '' }],
    };
    expect(toggled(rule, false)).toEqual({
      name: 'Measure',
      enabled: false,
      trigger: { event_type: 'deals.deal.won', conditions: {} },
      actions: [{ type: 'create_task', title: 'Thank', assignee: 'owner' }],
    });
  });
});
