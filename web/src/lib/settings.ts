import type { DirectoryUser } from '../api/types';

/** A user of the directory as the settings screen edits it (GET /v1/users). */
export interface User extends DirectoryUser {
  manager_id?: string;
  working_hours_start?: string;
  working_hours_end?: string;
  working_days?: number[];
  phone?: string;
}

export interface UserForm {
  display_name: string;
  email: string;
  team: string;
  manager_id: string;
  /** Comma-separated job roles, e.g. "measurer, installer". */
  job_roles: string;
  time_zone: string;
  locale: string;
  working_hours_start: string;
  working_hours_end: string;
  /** ISO weekdays, 1 = Monday … 7 = Sunday, as strings (checkbox values). */
  working_days: string[];
}

export function userForm(user: Partial<User>): UserForm {
  return {
    display_name: user.display_name ?? '',
    email: user.email ?? '',
    team: user.team ?? '',
    manager_id: user.manager_id ?? '',
    job_roles: (user.job_roles ?? []).join(', '),
    time_zone: user.time_zone ?? '',
    locale: user.locale ?? '',
    working_hours_start: user.working_hours_start ?? '',
    working_hours_end: user.working_hours_end ?? '',
    working_days: (user.working_days ?? []).map(String),
  };
}

/** The body of PUT /v1/users/{id}: trimmed, job roles as a list, weekdays in order. */
export function userBody(form: UserForm): Record<string, unknown> {
  return {
    display_name: form.display_name.trim(),
    email: form.email.trim(),
    team: form.team.trim(),
    manager_id: form.manager_id.trim(),
    job_roles: form.job_roles
      .split(',')
      .map((r) => r.trim())
      .filter(Boolean),
    time_zone: form.time_zone.trim(),
    locale: form.locale.trim(),
    working_hours_start: form.working_hours_start.trim(),
    working_hours_end: form.working_hours_end.trim(),
    working_days: [...new Set(form.working_days.map(Number))].sort((a, b) => a - b),
  };
}

/** Teams with their members and managers, by name; users without a team last. */
export function teamsOf(users: User[]): { team: string; members: User[]; managers: string[] }[] {
  const byTeam = new Map<string, User[]>();
  for (const user of users) {
    const members = byTeam.get(user.team) ?? [];
    members.push(user);
    byTeam.set(user.team, members);
  }
  return [...byTeam.entries()]
    .sort(([a], [b]) => (a === '' ? 1 : b === '' ? -1 : a.localeCompare(b)))
    .map(([team, members]) => ({
      team,
      members: [...members].sort((a, b) => (a.display_name || a.id).localeCompare(b.display_name || b.id)),
      managers: [...new Set(members.map((m) => m.manager_id ?? '').filter(Boolean))].sort(),
    }));
}

export interface StageForm {
  name: string;
  kind: 'open' | 'won' | 'lost';
  win_probability: number;
  /** An existing stage's id (kept on edit, so its deals stay); absent for a new one. */
  id?: string;
  /** Comma-separated deal custom fields a deal needs to enter the stage. */
  required_fields?: string;
}

/** A pipeline's stages (named ones only, in order; won is 100 %, lost 0 %) as the body of
 * POST /v1/pipelines or PATCH /v1/pipelines/{id}. */
export function pipelineBody(name: string, stages: StageForm[]): Record<string, unknown> {
  return {
    name: name.trim(),
    stages: stages
      .filter((s) => s.name.trim())
      .map((s) => ({
        ...(s.id ? { id: s.id } : {}),
        name: s.name.trim(),
        kind: s.kind,
        win_probability: s.kind === 'won' ? 100 : s.kind === 'lost' ? 0 : s.win_probability,
        required_fields: [
          ...new Set(
            (s.required_fields ?? '')
              .split(',')
              .map((f) => f.trim())
              .filter(Boolean),
          ),
        ],
      })),
  };
}

/** An existing pipeline's stages as the editor's rows, in order. */
export function stageForms(
  stages: { id: string; name: string; kind: string; win_probability: number; position: number; required_fields?: string[] }[],
): StageForm[] {
  return [...stages]
    .sort((a, b) => a.position - b.position)
    .map((s) => ({
      id: s.id,
      name: s.name,
      kind: s.kind === 'won' || s.kind === 'lost' ? s.kind : 'open',
      win_probability: s.win_probability,
      required_fields: (s.required_fields ?? []).join(', '),
    }));
}

/** The list with the item at `index` moved by `by` places (kept inside the list). */
export function moved<T>(items: T[], index: number, by: number): T[] {
  const to = Math.max(0, Math.min(items.length - 1, index + by));
  if (to === index) return items;
  const out = [...items];
  const [item] = out.splice(index, 1);
  out.splice(to, 0, item as T);
  return out;
}

/** Which row of the stage form an API problem such as `stages[2].name` is about. */
export function stageIndex(field: string): number | null {
  const match = /^stages\[(\d+)\]/.exec(field);
  return match ? Number(match[1]) : null;
}

export interface Rule {
  id: string;
  name: string;
  enabled: boolean;
  trigger: { event_type: string; conditions?: Record<string, string> };
  actions: Record<string, unknown>[];
  version?: number;
}

export const RULE_EVENTS = [
  'deals.deal.created',
  'deals.deal.stage_changed',
  'deals.deal.won',
  'deals.deal.lost',
  'contacts.contact.created',
  'tasks.task.overdue',
  'tasks.task.completed',
] as const;

export interface RuleForm {
  name: string;
  event_type: string;
  /** deals.deal.stage_changed: the stage entered (its id); empty for any. */
  to_stage_id: string;
  title: string;
  /** "owner", "user:<id>" or "role:<job role>". */
  assignee: string;
  /** "+2h", "+1d", "next working day 09:00" or "field:<name>". */
  due: string;
}

/** A simple rule: on an event (optionally entering one stage), create a task. */
export function ruleBody(form: RuleForm, enabled = true): Record<string, unknown> {
  const conditions: Record<string, string> = {};
  if (form.event_type === 'deals.deal.stage_changed' && form.to_stage_id) {
    conditions.to_stage_id = form.to_stage_id;
  }
  const action: Record<string, unknown> = {
    type: 'create_task',
    title: form.title.trim(),
    assignee: form.assignee.trim() || 'owner',
  };
  if (form.due.trim()) action.due = form.due.trim();
  return {
    name: form.name.trim(),
    enabled,
    trigger: { event_type: form.event_type, conditions },
    actions: [action],
  };
}

/** The same rule with enabled switched, for PUT /v1/automations/{id} (the API replaces it). */
export function toggled(rule: Rule, enabled: boolean): Record<string, unknown> {
  return {
    name: rule.name,
    enabled,
    trigger: { event_type: rule.trigger.event_type, conditions: rule.trigger.conditions ?? {} },
    actions: rule.actions.map((action) =>
      // The API answers every action field; it takes back only the non-empty ones.
      Object.fromEntries(
        Object.entries(action).filter(
          ([, v]) => v !== '' && v !== null && v !== undefined && !(Array.isArray(v) && v.length === 0),
        ),
      ),
    ),
  };
}

/** Which form input an API problem about a rule belongs to. */
export function ruleField(field: string): keyof RuleForm | null {
  if (field === 'name') return 'name';
  if (field.startsWith('trigger.conditions')) return 'to_stage_id';
  if (field.startsWith('trigger')) return 'event_type';
  if (/^actions\[0\]\.title/.test(field)) return 'title';
  if (/^actions\[0\]\.assignee/.test(field)) return 'assignee';
  if (/^actions\[0\]\.due/.test(field)) return 'due';
  return null;
}
