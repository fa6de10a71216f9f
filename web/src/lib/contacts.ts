import type { Contact } from '../api/types';

export const LIFECYCLE_STAGES = ['lead', 'prospect', 'customer', 'churned'] as const;
export const SOURCES = [
  'manual',
  'web_form',
  'import',
  'call',
  'email',
  'referral',
  'event',
  'other',
] as const;

export function fullName(contact: Pick<Contact, 'first_name' | 'last_name' | 'emails'>): string {
  return (
    [contact.first_name, contact.last_name].filter(Boolean).join(' ') || contact.emails[0] || '—'
  );
}

/** The filters of the contacts list, as kept in the URL (so a filtered list is a link). */
export interface ContactFilters {
  q: string;
  stage: string;
  tag: string;
  country: string;
  mine: boolean;
  /** The order (`name`, `-name`, `created_at`, `-created_at`); absent: the API's default. */
  sort?: string;
  /** The saved view the list was opened from (its id), if any. */
  view?: string;
}

export const SORTABLE = ['name', 'created_at'] as const;

/** A click on a column's header: ascending, then descending, then the default order. */
export function nextSort(current: string | undefined, column: (typeof SORTABLE)[number]): string {
  if (current === column) return `-${column}`;
  if (current === `-${column}`) return '';
  return column;
}

/** The header's aria-sort for a column. */
export function ariaSort(current: string | undefined, column: string): 'ascending' | 'descending' | 'none' {
  return current === column ? 'ascending' : current === `-${column}` ? 'descending' : 'none';
}

export function filtersFrom(params: URLSearchParams): ContactFilters {
  const filters: ContactFilters = {
    q: params.get('q') ?? '',
    stage: params.get('stage') ?? '',
    tag: params.get('tag') ?? '',
    country: params.get('country') ?? '',
    mine: params.get('mine') === '1',
  };
  const sort = params.get('sort');
  if (sort) filters.sort = sort;
  const view = params.get('view');
  if (view) filters.view = view;
  return filters;
}

export function filtersTo(filters: ContactFilters): URLSearchParams {
  const params = new URLSearchParams();
  if (filters.q) params.set('q', filters.q);
  if (filters.stage) params.set('stage', filters.stage);
  if (filters.tag) params.set('tag', filters.tag);
  if (filters.country) params.set('country', filters.country);
  if (filters.mine) params.set('mine', '1');
  if (filters.sort) params.set('sort', filters.sort);
  if (filters.view) params.set('view', filters.view);
  return params;
}

/** A saved view of the list (GET /v1/contacts/views). */
export interface ContactView {
  id: string;
  name: string;
  owner_id: string;
  team: string;
  shared: boolean;
  filters: Record<string, string>;
  sort: string;
}

/** The list's filters as a view stores them: only those set, by the API's names. */
export function viewBody(filters: ContactFilters): { filters: Record<string, string>; sort: string } {
  const stored: Record<string, string> = {};
  if (filters.q) stored.q = filters.q;
  if (filters.stage) stored.stage = filters.stage;
  if (filters.tag) stored.tag = filters.tag;
  if (filters.country) stored.country = filters.country;
  if (filters.mine) stored.mine = '1';
  return { filters: stored, sort: filters.sort ?? '' };
}

/** The list opened from a view: its filters, and the view remembered. */
export function filtersOfView(view: ContactView): ContactFilters {
  return {
    q: view.filters.q ?? '',
    stage: view.filters.stage ?? '',
    tag: view.filters.tag ?? '',
    country: view.filters.country ?? '',
    mine: view.filters.mine === '1',
    ...(view.sort ? { sort: view.sort } : {}),
    view: view.id,
  };
}

/** Whether the list still shows what the view stores (else it can be saved again). */
export function sameAsView(filters: ContactFilters, view: ContactView): boolean {
  const now = viewBody(filters);
  const entries = (f: Record<string, string>) => JSON.stringify(Object.entries(f).sort());
  return entries(now.filters) === entries(view.filters) && now.sort === view.sort;
}

/** A problem's field ("phones[0]", "address.country") → the form field that shows it. */
export function formField(apiField: string): string {
  const head = apiField.replace(/\[\d+\]/g, '');
  const map: Record<string, string> = {
    first_name: 'first_name',
    last_name: 'last_name',
    emails: 'email',
    phones: 'phone',
    'address.country': 'country',
    'address.city': 'city',
    address: 'country',
    source: 'source',
    lifecycle_stage: 'lifecycle_stage',
    tags: 'tags',
  };
  return map[head] ?? '';
}

/** Field errors by form field; those no field shows are returned apart. */
export function fieldErrors(
  errors: { field: string; message: string }[],
): { byField: Record<string, string>; other: string[] } {
  const byField: Record<string, string> = {};
  const other: string[] = [];
  for (const error of errors) {
    const field = formField(error.field);
    if (field && !byField[field]) byField[field] = error.message;
    else if (!field) other.push(`${error.field}: ${error.message}`);
  }
  return { byField, other };
}

type Translate = (key: `stage.${(typeof LIFECYCLE_STAGES)[number]}` | `source.${(typeof SOURCES)[number]}`) => string;

/** A lifecycle stage or source in the interface's language (unknown values as they are). */
export function stageLabel(t: Translate, stage: string): string {
  return (LIFECYCLE_STAGES as readonly string[]).includes(stage)
    ? t(`stage.${stage as (typeof LIFECYCLE_STAGES)[number]}`)
    : stage;
}

export function sourceLabel(t: Translate, source: string): string {
  return (SOURCES as readonly string[]).includes(source)
    ? t(`source.${source as (typeof SOURCES)[number]}`)
    : source;
}
