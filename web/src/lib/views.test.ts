import { describe, expect, it } from 'vitest';
import { ariaSort, filtersFrom, filtersOfView, filtersTo, nextSort, sameAsView, viewBody, type ContactView } from './contacts';

const view: ContactView = {
  id: 'eu_01VIEW',
  name: 'Hot leads DE',
  owner_id: 'rita',
  team: 'north',
  shared: true,
  filters: { stage: 'lead', country: 'DE' },
  sort: '',
};

describe('saved views of the contacts list', () => {
  it('stores only the filters that are set', () => {
    expect(viewBody({ q: '', stage: 'lead', tag: '', country: 'DE', mine: false })).toEqual({
      filters: { stage: 'lead', country: 'DE' },
      sort: '',
    });
    expect(viewBody({ q: 'müller', stage: '', tag: 'vip', country: '', mine: true }).filters).toEqual({
      q: 'müller',
      tag: 'vip',
      mine: '1',
    });
  });

  it('opens a view as the list filtered, the view kept in the URL', () => {
    const filters = filtersOfView(view);
    expect(filters).toEqual({ q: '', stage: 'lead', tag: '', country: 'DE', mine: false, view: 'eu_01VIEW' });
    expect(filtersTo(filters).toString()).toBe('stage=lead&country=DE&view=eu_01VIEW');
    expect(filtersFrom(filtersTo(filters))).toEqual(filters);
  });

  it('knows when the list no longer shows what the view stores', () => {
    const filters = filtersOfView(view);
    expect(sameAsView(filters, view)).toBe(true);
    expect(sameAsView({ ...filters, tag: 'vip' }, view)).toBe(false);
    expect(sameAsView({ ...filters, country: '' }, view)).toBe(false);
  });
});

describe('sortable columns of the contacts list', () => {
  it('cycles a column ascending, descending, then back to the default order', () => {
    expect(nextSort(undefined, 'name')).toBe('name');
    expect(nextSort('name', 'name')).toBe('-name');
    expect(nextSort('-name', 'name')).toBe('');
    expect(nextSort('-name', 'created_at')).toBe('created_at');
    expect(ariaSort('-created_at', 'created_at')).toBe('descending');
    expect(ariaSort('-created_at', 'name')).toBe('none');
  });

  it('keeps the order in the URL and in a saved view', () => {
    const filters = { q: '', stage: 'lead', tag: '', country: '', mine: false, sort: '-name' };
    expect(filtersTo(filters).toString()).toBe('stage=lead&sort=-name');
    expect(filtersFrom(filtersTo(filters))).toEqual(filters);
    expect(viewBody(filters)).toEqual({ filters: { stage: 'lead' }, sort: '-name' });
    expect(filtersOfView({ ...view, sort: 'name' }).sort).toBe('name');
    expect(sameAsView({ ...filtersOfView(view), sort: 'name' }, view)).toBe(false);
  });
});
