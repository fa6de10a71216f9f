import { Anchor, Badge, Button, Card, Grid, Group, Stack, Table, Text, Title } from '@mantine/core';
import { IconArrowLeft, IconPencil, IconShieldCheck } from '@tabler/icons-react';
import { useQuery } from '@tanstack/react-query';
import { useState, type ReactNode } from 'react';
import { Link, useParams } from 'react-router';
import { ApiError, api, call } from '../api/client';
import type { Company, Deal, Page } from '../api/types';
import { useSignedIn } from '../auth/useSession';
import { CompanyDialog } from '../components/CompanyDialog';
import { Empty, ErrorState, Loading, NotFoundState } from '../components/States';
import { useI18n } from '../i18n/I18nProvider';
import { peopleOf } from '../lib/companies';

function Field({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div>
      <Text size="xs" c="dimmed" tt="uppercase" fw={600}>
        {label}
      </Text>
      <Text size="sm" component="div">
        {children || '—'}
      </Text>
    </div>
  );
}

export default function CompanyPage() {
  const { companyId = '' } = useParams();
  const { t, format } = useI18n();
  const company = useQuery({
    queryKey: ['company', companyId],
    queryFn: () =>
      call<Company>(
        api.GET('/v1/companies/{company_id}', { params: { path: { company_id: companyId } } }),
      ),
    retry: false,
  });
  const [editing, setEditing] = useState(false);
  const mayEdit = useSignedIn().role !== 'compliance_officer';
  if (company.isPending) return <Loading label={t('common.loading')} />;
  if (company.isError) {
    const status = company.error instanceof ApiError ? company.error.status : 0;
    if (status === 404 || status === 403 || status === 422) return <NotFoundState />;
    return <ErrorState error={company.error} onRetry={() => void company.refetch()} />;
  }
  const c = company.data;
  const people = peopleOf(c.members);
  const address = [c.address.street, c.address.postal_code, c.address.city, c.address.country]
    .filter(Boolean)
    .join(', ');

  return (
    <Stack gap="md">
      <Anchor component={Link} to="/companies" size="sm">
        <Group gap={4}>
          <IconArrowLeft size={14} className="flip-rtl" />
          {t('companies.title')}
        </Group>
      </Anchor>
      <Group justify="space-between" align="flex-start">
        <div>
          <Title order={1} size="h2" data-testid="company-name">
            {c.name}
          </Title>
          <Group gap="xs" mt={6}>
            {c.industry ? <Badge variant="light">{c.industry}</Badge> : null}
            {c.tags.map((tag) => (
              <Badge key={tag} variant="outline" color="gray">
                {tag}
              </Badge>
            ))}
          </Group>
        </div>
        <Group gap="sm">
          <Badge size="lg" variant="light" color="teal" leftSection={<IconShieldCheck size={14} />}>
            {t('contact.residency', { region: c.region.toUpperCase() })}
          </Badge>
          {mayEdit ? (
            <Button variant="light" leftSection={<IconPencil size={16} />} onClick={() => setEditing(true)}>
              {t('settings.edit')}
            </Button>
          ) : null}
        </Group>
      </Group>
      {editing ? <CompanyDialog company={c} onClose={() => setEditing(false)} /> : null}
      <Grid gap="md">
        <Grid.Col span={{ base: 12, md: 4 }}>
          <Card>
            <Title order={2} size="h4" mb="sm">
              {t('contact.details')}
            </Title>
            <Stack gap="sm">
              <Field label={t('companies.domain')}>
                {c.domain ? <span dir="ltr">{c.domain}</span> : null}
              </Field>
              <Field label={t('form.phone')}>
                {c.phones.length ? <span dir="ltr">{c.phones.join(', ')}</span> : null}
              </Field>
              <Field label={t('contact.address')}>{address}</Field>
              <Field label={t('contacts.owner')}>{c.owner_id}</Field>
              <Field label={t('contacts.created')}>{format.dateTime(c.created_at)}</Field>
            </Stack>
          </Card>
        </Grid.Col>
        <Grid.Col span={{ base: 12, md: 8 }}>
          <Stack gap="md">
            <Card padding={0}>
              <Title order={2} size="h4" p="md" pb={0}>
                {t('companies.people')}
              </Title>
              {people.length === 0 ? (
                <Empty title={t('companies.noPeople')} />
              ) : (
                <Table verticalSpacing="sm" horizontalSpacing="md" data-testid="company-people">
                  <Table.Thead>
                    <Table.Tr>
                      <Table.Th>{t('contacts.name')}</Table.Th>
                      <Table.Th>{t('companies.role')}</Table.Th>
                    </Table.Tr>
                  </Table.Thead>
                  <Table.Tbody>
                    {people.map((person) => (
                      <Table.Tr key={person.contactId} data-testid="company-person">
                        <Table.Td>
                          <Anchor component={Link} to={`/contacts/${person.contactId}`}>
                            {person.name}
                          </Anchor>
                        </Table.Td>
                        <Table.Td>
                          <Group gap={4}>
                            {person.roles.length === 0
                              ? t('common.none')
                              : person.roles.map((role) => (
                                  <Badge key={role} variant="light" color="grape">
                                    {role}
                                  </Badge>
                                ))}
                          </Group>
                        </Table.Td>
                      </Table.Tr>
                    ))}
                  </Table.Tbody>
                </Table>
              )}
            </Card>
            <CompanyDeals companyId={c.id} region={c.region} />
          </Stack>
        </Grid.Col>
      </Grid>
    </Stack>
  );
}

function CompanyDeals({ companyId, region }: { companyId: string; region: string }) {
  const { t, format } = useI18n();
  const deals = useQuery({
    queryKey: ['deals', 'company', companyId],
    queryFn: () =>
      call<Page<Deal>>(
        api.GET('/v1/deals', { params: { query: { company_id: companyId, region, limit: 50 } } }),
      ),
  });
  return (
    <Card>
      <Title order={2} size="h4" mb="sm">
        {t('contact.deals')}
      </Title>
      {deals.isPending ? (
        <Loading />
      ) : deals.isError ? (
        <ErrorState error={deals.error} onRetry={() => void deals.refetch()} />
      ) : deals.data.data.length === 0 ? (
        <Text size="sm" c="dimmed">
          {t('contact.noDeals')}
        </Text>
      ) : (
        <Stack gap="xs">
          {deals.data.data.map((deal) => (
            <Group key={deal.id} justify="space-between" wrap="nowrap">
              <div>
                <Anchor component={Link} to={`/deals/${deal.id}`} size="sm">
                  {deal.title}
                </Anchor>
                <Text size="xs" c="dimmed">
                  {deal.stage_name}
                </Text>
              </div>
              <Text size="sm" fw={500}>
                {format.money(deal.amount?.amount, deal.amount?.currency)}
              </Text>
            </Group>
          ))}
        </Stack>
      )}
    </Card>
  );
}
