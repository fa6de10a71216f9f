import { Select } from '@mantine/core';
import { useDebouncedValue } from '@mantine/hooks';
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { api, call } from '../api/client';
import type { Contact, Page } from '../api/types';
import { useI18n } from '../i18n/I18nProvider';
import { fullName } from '../lib/contacts';

/** A contact found by typing (the API's search: accents and typos tolerated). */
export function ContactPicker({
  value,
  onChange,
  error,
  label,
}: {
  value: string;
  onChange: (id: string) => void;
  error?: string;
  label: string;
}) {
  const { t } = useI18n();
  const [typed, setTyped] = useState('');
  const [q] = useDebouncedValue(typed.trim(), 250);
  const found = useQuery<Contact[]>({
    queryKey: ['contact-picker', q],
    queryFn: ({ signal }) =>
      call<Page<Contact>>(api.GET('/v1/contacts', { params: { query: { q: q || undefined, limit: 20 } }, signal })).then(
        (r) => r.data,
      ),
    placeholderData: keepPreviousData,
  });
  const [chosen, setChosen] = useState<{ value: string; label: string } | null>(null);
  const options = (found.data ?? []).map((c) => ({
    value: c.id,
    label: `${fullName(c)}${c.emails[0] && fullName(c) !== c.emails[0] ? ` · ${c.emails[0]}` : ''}`,
  }));
  // The chosen contact stays an option while another search is shown.
  const data = chosen && !options.some((o) => o.value === chosen.value) ? [chosen, ...options] : options;
  return (
    <Select
      label={label}
      required
      searchable
      clearable
      placeholder={t('contactPicker.placeholder')}
      nothingFoundMessage={found.isFetching ? t('common.loading') : t('contactPicker.none')}
      searchValue={typed}
      onSearchChange={setTyped}
      // Results are the API's, already matched: no second filter in the browser.
      filter={({ options: all }) => all}
      value={value || null}
      onChange={(id, option) => {
        setChosen(option ? { value: option.value, label: option.label } : null);
        onChange(id ?? '');
      }}
      data={data}
      error={error}
    />
  );
}
