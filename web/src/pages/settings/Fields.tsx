import {
  Badge,
  Button,
  Card,
  Checkbox,
  Group,
  SegmentedControl,
  Select,
  SimpleGrid,
  Stack,
  Table,
  Text,
  TextInput,
  Title,
} from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { api, call } from '../../api/client';
import type { components } from '../../api/schema';
import { ConfirmDelete } from '../../components/ConfirmDelete';
import { Empty, ErrorState, Loading, QueryState, useErrorText } from '../../components/States';
import { useI18n } from '../../i18n/I18nProvider';
import { fieldError, keyFromLabel, listOf, unnamed, workingHoursBody } from '../../lib/integrations';

type CustomField = components['schemas']['CustomField'];
type WorkingHours = components['schemas']['WorkingHours'];

export const FIELD_TYPES = [
  'text',
  'number',
  'integer',
  'boolean',
  'date',
  'select',
  'multi_select',
  'email',
  'url',
  'phone',
] as const;

// ------------------------------------------------------------------ custom fields

export function CustomFields() {
  const { t } = useI18n();
  const errorText = useErrorText();
  const queryClient = useQueryClient();
  const [entity, setEntity] = useState<'contact' | 'company'>('contact');
  const empty = { label: '', key: '', type: 'text', options: '', required: false };
  const [form, setForm] = useState(empty);
  const [keyTouched, setKeyTouched] = useState(false);
  const fields = useQuery({
    queryKey: ['custom-fields', entity],
    queryFn: () =>
      call<{ data: CustomField[] }>(api.GET('/v1/custom-fields', { params: { query: { entity } } })).then((r) => r.data),
  });
  const define = useMutation({
    mutationFn: () =>
      call<CustomField>(
        api.POST('/v1/custom-fields', {
          body: {
            entity,
            key: form.key.trim(),
            label: form.label.trim(),
            type: form.type,
            options: form.type === 'select' || form.type === 'multi_select' ? listOf(form.options.replace(/\n/g, ',')) : [],
            required: form.required,
          },
        }),
      ),
    onSuccess: (saved) => {
      notifications.show({ color: 'green', message: t('fields.saved', { name: saved.label }) });
      setForm(empty);
      setKeyTouched(false);
      void queryClient.invalidateQueries({ queryKey: ['custom-fields'] });
    },
  });
  const err = (name: string) => fieldError(define.error, (f) => f === name || f.startsWith(`${name}[`) || f.endsWith(`.${name}`));
  const choice = form.type === 'select' || form.type === 'multi_select';

  return (
    <Stack gap="md">
      <Card>
        <Group justify="space-between" mb="sm">
          <Title order={2} size="h4">
            {t('settings.tab.fields')}
          </Title>
          <SegmentedControl
            size="xs"
            value={entity}
            onChange={(value) => setEntity(value as 'contact' | 'company')}
            data={[
              { value: 'contact', label: t('fields.contacts') },
              { value: 'company', label: t('fields.companies') },
            ]}
          />
        </Group>
        <QueryState query={fields} empty={<Empty title={t('fields.none')} hint={t('fields.noneHint')} />}>
          {(rows) => (
            <Table striped data-testid="custom-fields">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>{t('fields.label')}</Table.Th>
                  <Table.Th>{t('fields.key')}</Table.Th>
                  <Table.Th>{t('fields.type')}</Table.Th>
                  <Table.Th>{t('fields.options')}</Table.Th>
                  <Table.Th>{t('fields.required')}</Table.Th>
                  <Table.Th />
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {rows.map((field) => (
                  <Table.Tr key={field.key} data-testid="custom-field" data-key={field.key}>
                    <Table.Td>{field.label}</Table.Td>
                    <Table.Td dir="ltr">
                      <code>{field.key}</code>
                    </Table.Td>
                    <Table.Td>{t(`fields.type.${field.type as (typeof FIELD_TYPES)[number]}`)}</Table.Td>
                    <Table.Td>
                      <Group gap={4}>
                        {field.options.length
                          ? field.options.map((o) => (
                              <Badge key={o} variant="light" size="sm">
                                {o}
                              </Badge>
                            ))
                          : '—'}
                      </Group>
                    </Table.Td>
                    <Table.Td>{field.required ? t('common.yes') : t('common.no')}</Table.Td>
                    <Table.Td>
                      <ConfirmDelete
                        name={field.label}
                        consequence={t('fields.deleteConsequence')}
                        remove={() =>
                          call(
                            api.DELETE('/v1/custom-fields/{key}', {
                              params: { path: { key: field.key }, query: { entity } },
                            }),
                          )
                        }
                        onDeleted={() => void queryClient.invalidateQueries({ queryKey: ['custom-fields'] })}
                      />
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          )}
        </QueryState>
      </Card>
      <Card>
        <Title order={2} size="h4" mb={4}>
          {t('fields.new')}
        </Title>
        <Text size="sm" c="dimmed" mb="sm">
          {t('fields.newHint')}
        </Text>
        <form
          onSubmit={(event) => {
            event.preventDefault();
            define.mutate();
          }}
        >
          <SimpleGrid cols={{ base: 1, sm: 2 }}>
            <TextInput
              label={t('fields.label')}
              required
              value={form.label}
              onChange={(e) => {
                const label = e.currentTarget.value;
                setForm({ ...form, label, key: keyTouched ? form.key : keyFromLabel(label) });
              }}
              error={err('label')}
            />
            <TextInput
              label={t('fields.key')}
              description={t('fields.keyHint')}
              required
              dir="ltr"
              value={form.key}
              onChange={(e) => {
                setKeyTouched(true);
                setForm({ ...form, key: e.currentTarget.value });
              }}
              error={err('key')}
            />
            <Select
              label={t('fields.type')}
              allowDeselect={false}
              value={form.type}
              onChange={(value) => setForm({ ...form, type: value ?? 'text' })}
              data={FIELD_TYPES.map((type) => ({ value: type, label: t(`fields.type.${type}`) }))}
              error={err('type')}
            />
            {choice ? (
              <TextInput
                label={t('fields.options')}
                description={t('fields.optionsHint')}
                value={form.options}
                onChange={(e) => setForm({ ...form, options: e.currentTarget.value })}
                error={err('options')}
              />
            ) : null}
          </SimpleGrid>
          <Checkbox
            mt="sm"
            label={t('fields.requiredHint')}
            checked={form.required}
            onChange={(e) => setForm({ ...form, required: e.currentTarget.checked })}
          />
          {unnamed(define.error, ['key', 'label', 'type', 'options', 'definition']) ? (
            <Text size="sm" c="red" mt="sm" role="alert">
              {errorText(define.error)}
            </Text>
          ) : null}
          <Group justify="flex-end" mt="md">
            <Button type="submit" loading={define.isPending} disabled={!form.label.trim() || !form.key.trim()}>
              {t('fields.define')}
            </Button>
          </Group>
        </form>
      </Card>
    </Stack>
  );
}

// ------------------------------------------------------------------ working hours

const WEEKDAYS = [1, 2, 3, 4, 5, 6, 7] as const;

export function TenantWorkingHours() {
  const { t } = useI18n();
  const errorText = useErrorText();
  const queryClient = useQueryClient();
  const hours = useQuery({
    queryKey: ['working-hours'],
    queryFn: () => call<WorkingHours>(api.GET('/v1/notifications/working-hours', {})),
  });
  const [start, setStart] = useState('');
  const [end, setEnd] = useState('');
  const [days, setDays] = useState<string[]>([]);
  useEffect(() => {
    if (hours.data) {
      setStart(hours.data.start);
      setEnd(hours.data.end);
      setDays(hours.data.days.map(String));
    }
  }, [hours.data]);
  const save = useMutation({
    mutationFn: () =>
      call<WorkingHours>(api.PUT('/v1/notifications/working-hours', { body: workingHoursBody(start, end, days) })),
    onSuccess: (saved) => {
      notifications.show({ color: 'green', message: t('hours.saved') });
      queryClient.setQueryData(['working-hours'], saved);
    },
  });
  const weekday = (day: number) =>
    new Intl.DateTimeFormat(document.documentElement.lang || 'en', { weekday: 'short' }).format(
      new Date(Date.UTC(2024, 0, day)), // 1 Jan 2024 was a Monday
    );
  const err = (name: string) => fieldError(save.error, (f) => f === name || f.startsWith(`${name}[`) || f.endsWith(`.${name}`));

  return (
    <Card maw={640}>
      <Title order={2} size="h4" mb={4}>
        {t('hours.title')}
      </Title>
      <Text size="sm" c="dimmed" mb="sm">
        {t('hours.hint')}
      </Text>
      {hours.isPending ? (
        <Loading />
      ) : hours.isError ? (
        <ErrorState error={hours.error} onRetry={() => void hours.refetch()} />
      ) : (
        <form
          onSubmit={(event) => {
            event.preventDefault();
            save.mutate();
          }}
        >
          <Stack gap="sm">
            {!hours.data.configured ? (
              <Text size="sm" data-testid="hours-default">
                {t('hours.notSet')}
              </Text>
            ) : null}
            <Group gap="sm" align="flex-start">
              <TextInput type="time" label={t('settings.from')} value={start} onChange={(e) => setStart(e.currentTarget.value)} error={err('start')} />
              <TextInput type="time" label={t('settings.until')} value={end} onChange={(e) => setEnd(e.currentTarget.value)} error={err('end')} />
            </Group>
            <Checkbox.Group label={t('settings.workingDays')} value={days} onChange={setDays} error={err('days')}>
              <Group gap="sm" mt={4}>
                {WEEKDAYS.map((day) => (
                  <Checkbox key={day} value={String(day)} label={weekday(day)} />
                ))}
              </Group>
            </Checkbox.Group>
            {unnamed(save.error, ['start', 'end', 'days', 'working_hours']) ? (
              <Text size="sm" c="red" role="alert">
                {errorText(save.error)}
              </Text>
            ) : null}
            {hours.data.updated_by ? (
              <Text size="xs" c="dimmed">
                {t('hours.updatedBy', { name: hours.data.updated_by })}
              </Text>
            ) : null}
            <Group justify="flex-end">
              <Button type="submit" loading={save.isPending}>
                {t('common.save')}
              </Button>
            </Group>
          </Stack>
        </form>
      )}
    </Card>
  );
}
