import { Anchor, Badge, Button, Card, Group, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { useDebouncedCallback } from '@mantine/hooks';
import { IconPlus, IconSearch } from '@tabler/icons-react';
import { keepPreviousData, useInfiniteQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router';
import { api, call } from '../api/client';
import type { Company, Page } from '../api/types';
import { useSignedIn } from '../auth/useSession';
import { CompanyDialog } from '../components/CompanyDialog';
import { Empty, ErrorState, Loading } from '../components/States';
import { useI18n } from '../i18n/I18nProvider';
import { companyPlace } from '../lib/companies';

const PAGE = 50;

export default function Companies() {
  const { t, format } = useI18n();
  const navigate = useNavigate();
  const [params, setParams] = useSearchParams();
  const q = params.get('q') ?? '';
  const [typed, setTyped] = useState(q);
  // Search as you type: the URL (and so the query) follows a short pause in typing.
  const search = useDebouncedCallback(
    (value: string) => setParams(value.trim() ? { q: value.trim() } : {}, { replace: true }),
    250,
  );
  const list = useInfiniteQuery({
    queryKey: ['companies', q],
    initialPageParam: null as string | null,
    queryFn: ({ pageParam, signal }) =>
      call<Page<Company>>(
        api.GET('/v1/companies', {
          params: { query: { q: q || undefined, limit: PAGE, cursor: pageParam ?? undefined } },
          signal,
        }),
      ),
    getNextPageParam: (last) => last.next_cursor ?? undefined,
    placeholderData: keepPreviousData,
  });
  const companies = list.data?.pages.flatMap((p) => p.data) ?? [];
  const [creating, setCreating] = useState(false);
  // A compliance officer reads companies; records are kept by the sales side.
  const mayEdit = useSignedIn().role !== 'compliance_officer';

  return (
    <Stack gap="md">
      <Group justify="space-between">
        <Title order={1} size="h2">
          {t('companies.title')}
        </Title>
        {mayEdit ? (
          <Button leftSection={<IconPlus size={16} />} onClick={() => setCreating(true)}>
            {t('companyForm.new')}
          </Button>
        ) : null}
      </Group>
      {creating ? <CompanyDialog onClose={() => setCreating(false)} /> : null}
      <Card padding="md">
        <TextInput
          type="search"
          aria-label={t('companies.search')}
          placeholder={t('companies.search')}
          leftSection={<IconSearch size={16} />}
          value={typed}
          onChange={(e) => {
            setTyped(e.currentTarget.value);
            search(e.currentTarget.value);
          }}
        />
      </Card>
      <Card padding={0}>
        {list.isPending ? (
          <Loading label={t('common.loading')} />
        ) : list.isError && companies.length === 0 ? (
          <Stack p="md">
            <ErrorState error={list.error} onRetry={() => void list.refetch()} />
          </Stack>
        ) : companies.length === 0 ? (
          <Empty title={t('companies.empty')} hint={q ? t('companies.emptyHint') : undefined} />
        ) : (
          <Table.ScrollContainer minWidth={640}>
            <Table highlightOnHover verticalSpacing="sm" className="contacts-table">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>{t('companies.name')}</Table.Th>
                  <Table.Th>{t('companies.domain')}</Table.Th>
                  <Table.Th>{t('companies.industry')}</Table.Th>
                  <Table.Th>{t('contact.address')}</Table.Th>
                  <Table.Th>{t('companies.people')}</Table.Th>
                  <Table.Th>{t('contacts.region')}</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody data-testid="companies-rows">
                {companies.map((company) => (
                  <Table.Tr key={company.id} onClick={() => navigate(`/companies/${company.id}`)}>
                    <Table.Td>
                      <Anchor
                        component={Link}
                        to={`/companies/${company.id}`}
                        fw={500}
                        onClick={(e) => e.stopPropagation()}
                      >
                        {company.name || company.domain || company.id}
                      </Anchor>
                    </Table.Td>
                    <Table.Td dir="ltr" style={{ unicodeBidi: 'isolate' }}>
                      {company.domain}
                    </Table.Td>
                    <Table.Td>{company.industry}</Table.Td>
                    <Table.Td>{companyPlace(company)}</Table.Td>
                    <Table.Td>{format.number(company.members.length)}</Table.Td>
                    <Table.Td>
                      <Badge variant="outline" color="gray">
                        {company.region.toUpperCase()}
                      </Badge>
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
        )}
        {companies.length > 0 ? (
          <Group justify="space-between" p="md">
            <Text size="sm" c="dimmed">
              {t('contacts.shown', { count: format.number(companies.length) })}
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
