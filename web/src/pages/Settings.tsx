import {
  Badge,
  Button,
  Card,
  Checkbox,
  Group,
  Modal,
  ScrollArea,
  Select,
  SimpleGrid,
  Stack,
  Switch,
  Table,
  Text,
  TextInput,
  Title,
} from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { IconPencil, IconPlus } from '@tabler/icons-react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { ApiError, api, call, idempotencyKey } from '../api/client';
import { Empty, ErrorState, Loading, useErrorText } from '../components/States';
import { useI18n } from '../i18n/I18nProvider';
import {
  RULE_EVENTS,
  ruleBody,
  ruleField,
  teamsOf,
  toggled,
  userBody,
  userForm,
  type Rule,
  type RuleForm,
  type User,
  type UserForm,
} from '../lib/settings';
import { usePipelines } from './DealPage';
import { TabbedPage } from '../components/TabbedPage';
import { CustomFields, TenantWorkingHours } from './settings/Fields';
import { ApiKeys, WebForms, Webhooks } from './settings/Integrations';
import { Pipelines } from './settings/Pipelines';
import { DocumentTemplates, NotificationTemplates } from './settings/Templates';

export default function Settings() {
  const { t } = useI18n();
  return (
    <TabbedPage
      title={t('settings.title')}
      tabs={[
        { name: 'users', label: t('settings.tab.users'), panel: <Users /> },
        { name: 'pipelines', label: t('settings.tab.pipelines'), panel: <Pipelines /> },
        { name: 'automations', label: t('settings.tab.automations'), panel: <Automations /> },
        { name: 'fields', label: t('settings.tab.fields'), panel: <CustomFields /> },
        { name: 'forms', label: t('settings.tab.forms'), panel: <WebForms /> },
        { name: 'webhooks', label: t('settings.tab.webhooks'), panel: <Webhooks /> },
        { name: 'api-keys', label: t('settings.tab.apiKeys'), panel: <ApiKeys /> },
        { name: 'documents', label: t('settings.tab.documents'), panel: <DocumentTemplates /> },
        { name: 'templates', label: t('settings.tab.templates'), panel: <NotificationTemplates /> },
        { name: 'hours', label: t('settings.tab.hours'), panel: <TenantWorkingHours /> },
      ]}
    />
  );
}

/** The message the API gave for one input, or for any field starting with a prefix. */
function named(error: unknown, test: (field: string) => boolean): string | undefined {
  if (!(error instanceof ApiError)) return undefined;
  const found = error.fieldErrors.filter((e) => test(e.field));
  return found.length ? found.map((e) => e.message).join('; ') : undefined;
}

// ------------------------------------------------------------------ users and teams

const WEEKDAYS = [1, 2, 3, 4, 5, 6, 7] as const;

function useUsers() {
  return useQuery({
    queryKey: ['users'],
    queryFn: () => call<{ data: User[] }>(api.GET('/v1/users', {})).then((r) => r.data),
  });
}

function Users() {
  const { t } = useI18n();
  const users = useUsers();
  const [editing, setEditing] = useState<{ id: string; isNew: boolean } | null>(null);
  const weekday = (day: number) =>
    new Intl.DateTimeFormat(document.documentElement.lang || 'en', { weekday: 'short' }).format(
      new Date(Date.UTC(2024, 0, day)), // 1 Jan 2024 was a Monday
    );

  return (
    <Stack gap="md">
      <Card>
        <Group justify="space-between" mb="sm">
          <Title order={2} size="h4">
            {t('settings.users')}
          </Title>
          <Button size="xs" leftSection={<IconPlus size={14} />} onClick={() => setEditing({ id: '', isNew: true })}>
            {t('settings.addUser')}
          </Button>
        </Group>
        {users.isPending ? (
          <Loading />
        ) : users.isError ? (
          <ErrorState error={users.error} onRetry={() => void users.refetch()} />
        ) : users.data.length === 0 ? (
          <Empty title={t('settings.noUsers')} />
        ) : (
          <ScrollArea>
            <Table striped highlightOnHover data-testid="users" miw={900}>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>{t('contacts.name')}</Table.Th>
                  <Table.Th>{t('board.team')}</Table.Th>
                  <Table.Th>{t('settings.manager')}</Table.Th>
                  <Table.Th>{t('settings.jobRoles')}</Table.Th>
                  <Table.Th>{t('contact.timeZone')}</Table.Th>
                  <Table.Th>{t('contact.language')}</Table.Th>
                  <Table.Th>{t('settings.workingHours')}</Table.Th>
                  <Table.Th />
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {users.data.map((user) => (
                  <Table.Tr key={user.id} data-testid="user-row" data-user={user.id}>
                    <Table.Td>
                      <Text size="sm" fw={500}>
                        {user.display_name || user.id}
                      </Text>
                      <Text size="xs" c="dimmed">
                        {user.id}
                        {user.email ? ` · ${user.email}` : ''}
                      </Text>
                    </Table.Td>
                    <Table.Td>{user.team || '—'}</Table.Td>
                    <Table.Td>{user.manager_id || '—'}</Table.Td>
                    <Table.Td>
                      <Group gap={4}>
                        {user.job_roles.length
                          ? user.job_roles.map((role) => (
                              <Badge key={role} variant="light" size="sm">
                                {role}
                              </Badge>
                            ))
                          : '—'}
                      </Group>
                    </Table.Td>
                    <Table.Td>{user.time_zone || '—'}</Table.Td>
                    <Table.Td>{user.locale || '—'}</Table.Td>
                    <Table.Td>
                      {user.working_hours_start
                        ? `${user.working_hours_start}–${user.working_hours_end} · ${(user.working_days ?? [])
                            .map(weekday)
                            .join(' ')}`
                        : t('settings.tenantDefault')}
                    </Table.Td>
                    <Table.Td>
                      <Button
                        size="xs"
                        variant="subtle"
                        leftSection={<IconPencil size={14} />}
                        aria-label={t('settings.editNamed', { name: user.display_name || user.id })}
                        onClick={() => setEditing({ id: user.id, isNew: false })}
                      >
                        {t('settings.edit')}
                      </Button>
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </ScrollArea>
        )}
      </Card>
      {users.data && users.data.length > 0 ? (
        <Card>
          <Title order={2} size="h4" mb="sm">
            {t('settings.teams')}
          </Title>
          <SimpleGrid cols={{ base: 1, sm: 2, lg: 3 }} data-testid="teams">
            {teamsOf(users.data).map((team) => (
              <Card key={team.team || '-'} withBorder padding="sm">
                <Text fw={600}>{team.team || t('settings.noTeam')}</Text>
                {team.managers.length ? (
                  <Text size="xs" c="dimmed">
                    {t('settings.managedBy', { names: team.managers.join(', ') })}
                  </Text>
                ) : null}
                <Text size="sm" mt={4}>
                  {team.members.map((m) => m.display_name || m.id).join(', ')}
                </Text>
              </Card>
            ))}
          </SimpleGrid>
        </Card>
      ) : null}
      {editing ? (
        <UserDialog
          user={users.data?.find((u) => u.id === editing.id)}
          isNew={editing.isNew}
          users={users.data ?? []}
          weekday={weekday}
          onClose={() => setEditing(null)}
        />
      ) : null}
    </Stack>
  );
}

function UserDialog({
  user,
  isNew,
  users,
  weekday,
  onClose,
}: {
  user: User | undefined;
  isNew: boolean;
  users: User[];
  weekday: (day: number) => string;
  onClose: () => void;
}) {
  const { t } = useI18n();
  const errorText = useErrorText();
  const queryClient = useQueryClient();
  const [id, setId] = useState(user?.id ?? '');
  const [form, setForm] = useState<UserForm>(userForm(user ?? {}));
  const save = useMutation({
    mutationFn: () =>
      call<User>(
        api.PUT('/v1/users/{user_id}', {
          params: { path: { user_id: id.trim() } },
          body: userBody(form) as never,
        }),
      ),
    onSuccess: (saved) => {
      notifications.show({ color: 'green', message: t('settings.userSaved', { name: saved.display_name || saved.id }) });
      void queryClient.invalidateQueries({ queryKey: ['users'] });
      onClose();
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (id.trim()) save.mutate();
  };
  const field = (name: keyof UserForm) => named(save.error, (f) => f === name || f.startsWith(`${name}[`));
  const set = (name: keyof UserForm, value: string) => setForm({ ...form, [name]: value });
  const shown = ['display_name', 'email', 'team', 'manager_id', 'job_roles', 'time_zone', 'locale', 'working_hours_start', 'working_hours_end', 'working_days'];
  const other =
    save.error && !(save.error instanceof ApiError && save.error.fieldErrors.some((e) => shown.some((s) => e.field.startsWith(s))))
      ? errorText(save.error)
      : null;
  return (
    <Modal
      opened
      onClose={onClose}
      title={isNew ? t('settings.addUser') : t('settings.editNamed', { name: user?.display_name || id })}
      size="lg"
    >
      <form onSubmit={submit}>
        <Stack gap="sm">
          {isNew ? (
            <TextInput
              label={t('settings.userId')}
              description={t('settings.userIdHint')}
              required
              value={id}
              onChange={(e) => setId(e.currentTarget.value)}
              dir="ltr"
            />
          ) : null}
          <SimpleGrid cols={{ base: 1, sm: 2 }}>
            <TextInput
              label={t('settings.displayName')}
              value={form.display_name}
              onChange={(e) => set('display_name', e.currentTarget.value)}
              error={field('display_name')}
            />
            <TextInput
              label={t('form.email')}
              value={form.email}
              onChange={(e) => set('email', e.currentTarget.value)}
              error={field('email')}
            />
            <TextInput
              label={t('board.team')}
              value={form.team}
              onChange={(e) => set('team', e.currentTarget.value)}
              error={field('team')}
            />
            <Select
              label={t('settings.manager')}
              clearable
              searchable
              value={form.manager_id || null}
              onChange={(value) => set('manager_id', value ?? '')}
              data={users.filter((u) => u.id !== id).map((u) => ({ value: u.id, label: u.display_name || u.id }))}
              error={field('manager_id')}
            />
            <TextInput
              label={t('settings.jobRoles')}
              description={t('settings.jobRolesHint')}
              value={form.job_roles}
              onChange={(e) => set('job_roles', e.currentTarget.value)}
              error={field('job_roles')}
            />
            <TextInput
              label={t('contact.timeZone')}
              placeholder="Europe/Berlin"
              value={form.time_zone}
              onChange={(e) => set('time_zone', e.currentTarget.value)}
              error={field('time_zone')}
              dir="ltr"
            />
            <TextInput
              label={t('contact.language')}
              placeholder="de-DE"
              value={form.locale}
              onChange={(e) => set('locale', e.currentTarget.value)}
              error={field('locale')}
              dir="ltr"
            />
          </SimpleGrid>
          <Text size="sm" fw={500} mt="xs">
            {t('settings.workingHours')}
          </Text>
          <Text size="xs" c="dimmed">
            {t('settings.workingHoursHint')}
          </Text>
          <Group gap="sm" align="flex-start">
            <TextInput
              type="time"
              label={t('settings.from')}
              value={form.working_hours_start}
              onChange={(e) => set('working_hours_start', e.currentTarget.value)}
              error={field('working_hours_start')}
            />
            <TextInput
              type="time"
              label={t('settings.until')}
              value={form.working_hours_end}
              onChange={(e) => set('working_hours_end', e.currentTarget.value)}
              error={field('working_hours_end')}
            />
          </Group>
          <Checkbox.Group
            label={t('settings.workingDays')}
            value={form.working_days}
            onChange={(value) => setForm({ ...form, working_days: value })}
            error={field('working_days')}
          >
            <Group gap="sm" mt={4}>
              {WEEKDAYS.map((day) => (
                <Checkbox key={day} value={String(day)} label={weekday(day)} />
              ))}
            </Group>
          </Checkbox.Group>
          {other ? (
            <Text size="sm" c="red" role="alert">
              {other}
            </Text>
          ) : null}
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              {t('common.cancel')}
            </Button>
            <Button type="submit" loading={save.isPending} disabled={!id.trim()}>
              {t('common.save')}
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}

// ------------------------------------------------------------------ automation rules

const NEW_RULE: RuleForm = { name: '', event_type: 'deals.deal.stage_changed', to_stage_id: '', title: '', assignee: 'owner', due: '+1d' };

function Automations() {
  const { t } = useI18n();
  const errorText = useErrorText();
  const queryClient = useQueryClient();
  const pipelines = usePipelines();
  const [form, setForm] = useState<RuleForm>(NEW_RULE);
  const rules = useQuery({
    queryKey: ['automations'],
    queryFn: () => call<{ data: Rule[] }>(api.GET('/v1/automations', {})).then((r) => r.data),
  });
  const create = useMutation({
    mutationFn: () =>
      call<Rule>(
        api.POST('/v1/automations', {
          headers: { 'Idempotency-Key': idempotencyKey() },
          body: ruleBody(form) as never,
        }),
      ),
    onSuccess: (rule) => {
      notifications.show({ color: 'green', message: t('settings.ruleCreated', { name: rule.name }) });
      setForm(NEW_RULE);
      void queryClient.invalidateQueries({ queryKey: ['automations'] });
    },
  });
  const toggle = useMutation({
    mutationFn: ({ rule, enabled }: { rule: Rule; enabled: boolean }) =>
      call<Rule>(
        api.PUT('/v1/automations/{rule_id}', {
          params: { path: { rule_id: rule.id } },
          body: toggled(rule, enabled) as never,
        }),
      ),
    onSuccess: (rule) =>
      notifications.show({
        color: 'green',
        message: t(rule.enabled ? 'settings.ruleEnabled' : 'settings.ruleDisabled', { name: rule.name }),
      }),
    onError: (error) =>
      notifications.show({ color: 'red', title: t('settings.ruleFailed'), message: errorText(error) }),
    onSettled: () => void queryClient.invalidateQueries({ queryKey: ['automations'] }),
  });
  const stageName = (id: string) =>
    pipelines.data?.flatMap((p) => p.stages.map((s) => ({ ...s, pipeline: p.name }))).find((s) => s.id === id);
  const field = (name: keyof RuleForm) =>
    named(create.error, (f) => ruleField(f) === name);
  const other =
    create.error &&
    !(create.error instanceof ApiError && create.error.fieldErrors.some((e) => ruleField(e.field) !== null))
      ? errorText(create.error)
      : null;

  return (
    <Stack gap="md">
      <Card>
        <Title order={2} size="h4" mb="sm">
          {t('settings.rules')}
        </Title>
        {rules.isPending ? (
          <Loading />
        ) : rules.isError ? (
          <ErrorState error={rules.error} onRetry={() => void rules.refetch()} />
        ) : rules.data.length === 0 ? (
          <Empty title={t('settings.noRules')} hint={t('settings.noRulesHint')} />
        ) : (
          <Stack gap="sm" data-testid="rules">
            {rules.data.map((rule) => {
              const conditions = Object.entries(rule.trigger.conditions ?? {});
              return (
                <Group key={rule.id} justify="space-between" wrap="nowrap" data-testid="rule" data-rule={rule.name}>
                  <div>
                    <Text fw={600} size="sm">
                      {rule.name}
                    </Text>
                    <Text size="xs" c="dimmed">
                      {t(`settings.event.${rule.trigger.event_type as (typeof RULE_EVENTS)[number]}`)}
                      {conditions
                        .map(([k, v]) => {
                          const stage = k.endsWith('stage_id') ? stageName(v) : undefined;
                          return ` · ${k}: ${stage ? `${stage.pipeline} / ${stage.name}` : v}`;
                        })
                        .join('')}
                      {' → '}
                      {rule.actions
                        .map((a) => [a.type, a.title, a.assignee, a.due].filter(Boolean).join(' · '))
                        .join('; ')}
                    </Text>
                  </div>
                  <Switch
                    checked={rule.enabled}
                    label={rule.enabled ? t('settings.on') : t('settings.off')}
                    aria-label={t('settings.enableNamed', { name: rule.name })}
                    disabled={toggle.isPending && toggle.variables?.rule.id === rule.id}
                    onChange={(event) => toggle.mutate({ rule, enabled: event.currentTarget.checked })}
                  />
                </Group>
              );
            })}
          </Stack>
        )}
      </Card>
      <Card>
        <Title order={2} size="h4" mb={4}>
          {t('settings.newRule')}
        </Title>
        <Text size="sm" c="dimmed" mb="sm">
          {t('settings.newRuleHint')}
        </Text>
        <form
          onSubmit={(event) => {
            event.preventDefault();
            create.mutate();
          }}
        >
          <SimpleGrid cols={{ base: 1, sm: 2 }}>
            <TextInput
              label={t('settings.ruleName')}
              required
              value={form.name}
              onChange={(e) => setForm({ ...form, name: e.currentTarget.value })}
              error={field('name')}
            />
            <Select
              label={t('settings.when')}
              allowDeselect={false}
              value={form.event_type}
              onChange={(value) => setForm({ ...form, event_type: value ?? NEW_RULE.event_type, to_stage_id: '' })}
              data={RULE_EVENTS.map((e) => ({ value: e, label: t(`settings.event.${e}`) }))}
              error={field('event_type')}
            />
            {form.event_type === 'deals.deal.stage_changed' ? (
              <Select
                label={t('settings.toStage')}
                placeholder={t('settings.anyStage')}
                clearable
                value={form.to_stage_id || null}
                onChange={(value) => setForm({ ...form, to_stage_id: value ?? '' })}
                data={(pipelines.data ?? []).map((p) => ({
                  group: p.name,
                  items: p.stages.map((s) => ({ value: s.id, label: s.name })),
                }))}
                error={field('to_stage_id')}
              />
            ) : null}
            <TextInput
              label={t('settings.taskTitle')}
              required
              value={form.title}
              onChange={(e) => setForm({ ...form, title: e.currentTarget.value })}
              error={field('title')}
            />
            <TextInput
              label={t('settings.assignee')}
              description={t('settings.assigneeHint')}
              value={form.assignee}
              onChange={(e) => setForm({ ...form, assignee: e.currentTarget.value })}
              error={field('assignee')}
              dir="ltr"
            />
            <TextInput
              label={t('tasks.due')}
              description={t('settings.dueHint')}
              value={form.due}
              onChange={(e) => setForm({ ...form, due: e.currentTarget.value })}
              error={field('due')}
              dir="ltr"
            />
          </SimpleGrid>
          {other ? (
            <Text size="sm" c="red" mt="sm" role="alert">
              {other}
            </Text>
          ) : null}
          <Group justify="flex-end" mt="md">
            <Button type="submit" loading={create.isPending} disabled={!form.name.trim() || !form.title.trim()}>
              {t('settings.createRule')}
            </Button>
          </Group>
        </form>
      </Card>
    </Stack>
  );
}
