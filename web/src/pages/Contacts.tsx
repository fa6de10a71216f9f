import {
  Anchor,
  Badge,
  Button,
  Card,
  Group,
  Select,
  Stack,
  Switch,
  Table,
  Text,
  TextInput,
  Title,
  UnstyledButton,
} from '@mantine/core';
import { useDebouncedCallback } from '@mantine/hooks';
import { IconArrowsSort, IconPlus, IconSearch, IconSortAscending, IconSortDescending } from '@tabler/icons-react';
import { keepPreviousData, useInfiniteQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router';
import { api, call } from '../api/client';
import type { Contact, Page } from '../api/types';
import { useSignedIn } from '../auth/useSession';
import { ContactViews } from '../components/ContactViews';
import { Empty, ErrorState, Loading } from '../components/States';
import { useI18n } from '../i18n/I18nProvider';
import {
  filtersFrom,
  filtersTo,
  fullName,
  LIFECYCLE_STAGES,
  SORTABLE,
  ariaSort,
  nextSort,
  stageLabel,
  type ContactFilters,
} from '../lib/contacts';

const PAGE = 50;

export default function Contacts() {
  const session = useSignedIn();
  const { t, format } = useI18n();
  const navigate = useNavigate();
  const [params, setParams] = useSearchParams();
  const filters = filtersFrom(params);
  const [typed, setTyped] = useState(filters.q);

  const update = (changes: Partial<ContactFilters>) =>
    setParams(filtersTo({ ...filtersFrom(params), ...changes }), { replace: true });
  // A view applied: its filters replace the list's (a new history entry, so Back returns).
  const apply = (next: ContactFilters) => {
    setTyped(next.q);
    setParams(filtersTo(next));
  };
  // Search as you type: the URL (and so the query) follows a short pause in typing.
  const search = useDebouncedCallback((q: string) => update({ q: q.trim() }), 250);

  const list = useInfiniteQuery({
    queryKey: ['contacts', filters, session.user],
    initialPageParam: null as string | null,
    queryFn: ({ pageParam, signal }) =>
      call<Page<Contact>>(
        api.GET('/v1/contacts', {
          params: {
            query: {
              q: filters.q || undefined,
              lifecycle_stage: filters.stage || undefined,
              tag: filters.tag || undefined,
              country: filters.country || undefined,
              owner_id: filters.mine ? session.user : undefined,
              sort: filters.sort || undefined,
              limit: PAGE,
              cursor: pageParam ?? undefined,
            },
          },
          signal,
        }),
      ),
    getNextPageParam: (last) => last.next_cursor ?? undefined,
    placeholderData: keepPreviousData,
  });
  const contacts = list.data?.pages.flatMap((p) => p.data) ?? [];

  return (
    <Stack gap="md">
      <Group justify="space-between">
        <Title order={1} size="h2">
          {t('contacts.title')}
        </Title>
        <Button component={Link} to="/contacts/new" leftSection={<IconPlus size={16} />}>
          {t('contacts.new')}
        </Button>
      </Group>
      <Card padding="md">
        <ContactViews filters={filters} onApply={apply} />
        <Group gap="sm" align="flex-end" wrap="wrap" mt="sm">
          <TextInput
            flex={1}
            miw={240}
            type="search"
            aria-label={t('contacts.search')}
            placeholder={t('contacts.search')}
            leftSection={<IconSearch size={16} />}
            value={typed}
            onChange={(e) => {
              setTyped(e.currentTarget.value);
              search(e.currentTarget.value);
            }}
          />
          <Select
            aria-label={t('contacts.stage')}
            placeholder={t('contacts.anyStage')}
            w={170}
            clearable
            value={filters.stage || null}
            onChange={(value) => update({ stage: value ?? '' })}
            data={LIFECYCLE_STAGES.map((s) => ({ value: s, label: t(`stage.${s}`) }))}
          />
          <TextInput
            aria-label={t('contacts.tag')}
            placeholder={t('contacts.tag')}
            w={130}
            key={`tag-${filters.tag}`}
            defaultValue={filters.tag}
            onBlur={(e) => update({ tag: e.currentTarget.value.trim() })}
            onKeyDown={(e) => e.key === 'Enter' && update({ tag: e.currentTarget.value.trim() })}
          />
          <TextInput
            aria-label={t('contacts.country')}
            placeholder={t('contacts.country')}
            w={100}
            maxLength={2}
            key={`country-${filters.country}`}
            defaultValue={filters.country}
            onBlur={(e) => update({ country: e.currentTarget.value.trim().toUpperCase() })}
            onKeyDown={(e) =>
              e.key === 'Enter' && update({ country: e.currentTarget.value.trim().toUpperCase() })
            }
          />
          <Switch
            label={t('contacts.onlyMine')}
            checked={filters.mine}
            onChange={(e) => update({ mine: e.currentTarget.checked })}
            mb={8}
          />
        </Group>
      </Card>
      <Card padding={0}>
        {list.isPending ? (
          <Loading label={t('common.loading')} />
        ) : list.isError && contacts.length === 0 ? (
          <Stack p="md">
            <ErrorState error={list.error} onRetry={() => void list.refetch()} />
          </Stack>
        ) : contacts.length === 0 ? (
          <Empty title={t('contacts.empty')} hint={t('contacts.emptyHint')} />
        ) : (
          <Table.ScrollContainer minWidth={720}>
            <Table highlightOnHover verticalSpacing="sm" className="contacts-table">
              <Table.Thead>
                <Table.Tr>
                  <SortableTh column="name" label={t('contacts.name')} sort={filters.sort} onSort={(sort) => update({ sort })} />
                  <Table.Th>{t('contacts.email')}</Table.Th>
                  <Table.Th>{t('contacts.phone')}</Table.Th>
                  <Table.Th>{t('contacts.stage')}</Table.Th>
                  <Table.Th>{t('contacts.owner')}</Table.Th>
                  <Table.Th>{t('contacts.region')}</Table.Th>
                  <SortableTh column="created_at" label={t('contacts.created')} sort={filters.sort} onSort={(sort) => update({ sort })} />
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody data-testid="contacts-rows">
                {contacts.map((contact) => (
                  <Table.Tr key={contact.id} onClick={() => navigate(`/contacts/${contact.id}`)}>
                    <Table.Td>
                      <Anchor
                        component={Link}
                        to={`/contacts/${contact.id}`}
                        fw={500}
                        onClick={(e) => e.stopPropagation()}
                      >
                        {fullName(contact)}
                      </Anchor>
                    </Table.Td>
                    <Table.Td>{contact.emails[0] ?? ''}</Table.Td>
                    <Table.Td dir="ltr" style={{ unicodeBidi: 'isolate' }}>
                      {contact.phones[0] ?? ''}
                    </Table.Td>
                    <Table.Td>
                      {contact.lifecycle_stage ? (
                        <Badge variant="light">
                          {stageLabel(t, contact.lifecycle_stage)}
                        </Badge>
                      ) : null}
                    </Table.Td>
                    <Table.Td>{contact.owner_id}</Table.Td>
                    <Table.Td>
                      <Badge variant="outline" color="gray">
                        {contact.region.toUpperCase()}
                        {contact.address.country ? ` · ${contact.address.country}` : ''}
                      </Badge>
                    </Table.Td>
                    <Table.Td>{format.date(contact.created_at)}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
        )}
        {contacts.length > 0 ? (
          <Group justify="space-between" p="md">
            <Text size="sm" c="dimmed">
              {t('contacts.shown', { count: format.number(contacts.length) })}
            </Text>
            {list.hasNextPage ? (
              <Button
                variant="default"
                onClick={() => void list.fetchNextPage()}
                loading={list.isFetchingNextPage}
              >
                {t('common.loadMore')}
              </Button>
            ) : null}
          </Group>
        ) : null}
      </Card>
    </Stack>
  );
}

/** A column header that sorts the list: a button, its state in aria-sort. */
function SortableTh({
  column,
  label,
  sort,
  onSort,
}: {
  column: (typeof SORTABLE)[number];
  label: string;
  sort: string | undefined;
  onSort: (sort: string) => void;
}) {
  const { t } = useI18n();
  const state = ariaSort(sort, column);
  const Icon = state === 'ascending' ? IconSortAscending : state === 'descending' ? IconSortDescending : IconArrowsSort;
  return (
    <Table.Th aria-sort={state}>
      <UnstyledButton
        onClick={() => onSort(nextSort(sort, column))}
        fw={700}
        fz="sm"
        title={t('contacts.sortBy', { column: label })}
      >
        <Group gap={4} wrap="nowrap">
          {label}
          <Icon size={14} aria-hidden opacity={state === 'none' ? 0.4 : 1} />
        </Group>
      </UnstyledButton>
    </Table.Th>
  );
}
