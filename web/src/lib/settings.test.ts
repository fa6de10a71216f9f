import { describe, expect, it } from 'vitest';
import { mayUse, navFor } from './nav';
import {
  pipelineBody,
  ruleBody,
  ruleField,
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
        { name: 'First call', kind: 'open', win_probability: 10 },
        { name: 'Won', kind: 'won', win_probability: 100 },
        { name: 'Lost', kind: 'lost', win_probability: 0 },
      ],
    });
    expect(stageIndex('stages[2].name')).toBe(2);
    expect(stageIndex('name')).toBeNull();
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
