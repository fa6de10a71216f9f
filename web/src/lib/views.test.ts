import { describe, expect, it } from 'vitest';
import { filtersFrom, filtersOfView, filtersTo, sameAsView, viewBody, type ContactView } from './contacts';

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
