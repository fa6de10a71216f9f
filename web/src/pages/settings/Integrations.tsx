import {
  Badge,
  Button,
  Card,
  Code,
  CopyButton,
  Group,
  Modal,
  NumberInput,
  ScrollArea,
  Select,
  SimpleGrid,
  Stack,
  Switch,
  Table,
  Text,
  TextInput,
  Textarea,
  Title,
} from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { IconCopy, IconPencil, IconPlus } from '@tabler/icons-react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api, call, idempotencyKey } from '../../api/client';
import type { components } from '../../api/schema';
import type { DirectoryUser } from '../../api/types';
import { ConfirmDelete } from '../../components/ConfirmDelete';
import { Empty, ErrorState, Loading, QueryState, useErrorText } from '../../components/States';
import { useI18n } from '../../i18n/I18nProvider';
import {
  FORM_TARGETS,
  embedSnippet,
  fieldError,
  listOf,
  mappingText,
  parseMapping,
  replayable,
  deliveryState,
  unnamed,
} from '../../lib/integrations';
import { usePipelines } from '../DealPage';

type WebForm = components['schemas']['Form'];
type Webhook = components['schemas']['Webhook'];
type Delivery = components['schemas']['WebhookDelivery'];
type ApiKey = components['schemas']['ApiKey'];
type ApiKeyCreated = components['schemas']['ApiKeyCreated'];

const err = (error: unknown, name: string) =>
  fieldError(error, (f) => f === name || f.startsWith(`${name}.`) || f.startsWith(`${name}[`));

function CopyText({ value, label }: { value: string; label: string }) {
  const { t } = useI18n();
  return (
    <CopyButton value={value}>
      {({ copied, copy }) => (
        <Button size="xs" variant="light" color={copied ? 'teal' : 'blue'} leftSection={<IconCopy size={14} />} onClick={copy}>
          {copied ? t('integrations.copied') : label}
        </Button>
      )}
    </CopyButton>
  );
}

// ------------------------------------------------------------------ web forms

export function WebForms() {
  const { t } = useI18n();
  const queryClient = useQueryClient();
  const forms = useQuery({
    queryKey: ['forms'],
    queryFn: () => call<{ data: WebForm[] }>(api.GET('/v1/forms', {})).then((r) => r.data),
  });
  const pipelines = usePipelines();
  const [editing, setEditing] = useState<WebForm | 'new' | null>(null);
  const [snippetOf, setSnippetOf] = useState<WebForm | null>(null);
  const stageName = (form: WebForm) => {
    const pipeline = pipelines.data?.find((p) => p.id === form.pipeline_id);
    const stage = pipeline?.stages.find((s) => s.id === form.stage_id);
    return pipeline ? `${pipeline.name} / ${stage?.name ?? '—'}` : '—';
  };
  return (
    <Stack gap="md">
      <Card>
        <Group justify="space-between" mb="sm">
          <Title order={2} size="h4">
            {t('forms.title')}
          </Title>
          <Button size="xs" leftSection={<IconPlus size={14} />} onClick={() => setEditing('new')}>
            {t('forms.new')}
          </Button>
        </Group>
        <QueryState query={forms} empty={<Empty title={t('forms.none')} hint={t('forms.noneHint')} />}>
          {(rows) => (
            <ScrollArea>
              <Table striped miw={760} data-testid="forms">
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>{t('forms.name')}</Table.Th>
                    <Table.Th>{t('forms.stage')}</Table.Th>
                    <Table.Th>{t('forms.owner')}</Table.Th>
                    <Table.Th>{t('forms.fields')}</Table.Th>
                    <Table.Th>{t('forms.status')}</Table.Th>
                    <Table.Th />
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {rows.map((form) => (
                    <Table.Tr key={form.id} data-testid="form-row" data-form={form.name}>
                      <Table.Td>{form.name}</Table.Td>
                      <Table.Td>{stageName(form)}</Table.Td>
                      <Table.Td dir="ltr">{form.owner}</Table.Td>
                      <Table.Td>{Object.keys(form.field_mapping).join(', ')}</Table.Td>
                      <Table.Td>
                        <Badge color={form.active ? 'green' : 'gray'} variant="light">
                          {form.active ? t('integrations.active') : t('integrations.inactive')}
                        </Badge>
                      </Table.Td>
                      <Table.Td>
                        <Group gap={4} wrap="nowrap">
                          <Button size="xs" variant="subtle" onClick={() => setSnippetOf(form)} aria-label={t('forms.embedNamed', { name: form.name })}>
                            {t('forms.embed')}
                          </Button>
                          <Button
                            size="xs"
                            variant="subtle"
                            leftSection={<IconPencil size={14} />}
                            aria-label={t('settings.editNamed', { name: form.name })}
                            onClick={() => setEditing(form)}
                          >
                            {t('settings.edit')}
                          </Button>
                          <ConfirmDelete
                            name={form.name}
                            consequence={t('forms.deleteConsequence')}
                            remove={() => call(api.DELETE('/v1/forms/{form_id}', { params: { path: { form_id: form.id } } }))}
                            onDeleted={() => void queryClient.invalidateQueries({ queryKey: ['forms'] })}
                          />
                        </Group>
                      </Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            </ScrollArea>
          )}
        </QueryState>
      </Card>
      {editing ? (
        <FormDialog
          form={editing === 'new' ? null : editing}
          onClose={() => setEditing(null)}
          onSaved={(saved) => {
            setEditing(null);
            setSnippetOf(saved);
          }}
        />
      ) : null}
      {snippetOf ? (
        <Modal opened onClose={() => setSnippetOf(null)} title={t('forms.embedNamed', { name: snippetOf.name })} size="xl">
          <Stack gap="sm">
            <Text size="sm">{t('forms.embedHint')}</Text>
            <Code block dir="ltr" data-testid="embed-snippet" style={{ whiteSpace: 'pre-wrap', wordBreak: 'break-all' }}>
              {embedSnippet(window.location.origin, snippetOf)}
            </Code>
            <Text size="xs" c="dimmed" dir="ltr">
              POST {window.location.origin}
              {snippetOf.submit_url}
            </Text>
            <Group justify="flex-end">
              <CopyText value={embedSnippet(window.location.origin, snippetOf)} label={t('forms.copySnippet')} />
              <Button onClick={() => setSnippetOf(null)}>{t('common.close')}</Button>
            </Group>
          </Stack>
        </Modal>
      ) : null}
    </Stack>
  );
}

function FormDialog({ form, onClose, onSaved }: { form: WebForm | null; onClose: () => void; onSaved: (form: WebForm) => void }) {
  const { t } = useI18n();
  const errorText = useErrorText();
  const queryClient = useQueryClient();
  const pipelines = usePipelines();
  const users = useQuery({
    queryKey: ['users'],
    queryFn: () => call<{ data: DirectoryUser[] }>(api.GET('/v1/users', {})).then((r) => r.data),
  });
  const [name, setName] = useState(form?.name ?? '');
  const [pipelineId, setPipelineId] = useState(form?.pipeline_id ?? '');
  const [stageId, setStageId] = useState(form?.stage_id ?? '');
  const [owner, setOwner] = useState(form?.owner ?? '');
  const [mapping, setMapping] = useState(form ? mappingText(form.field_mapping) : 'name = name\nemail = email\nphone = phone\nmessage = note');
  const [honeypot, setHoneypot] = useState(form?.honeypot_field ?? 'website');
  const [dealTitle, setDealTitle] = useState(form?.deal_title ?? '');
  const [country, setCountry] = useState(form?.default_country ?? '');
  const [active, setActive] = useState(form?.active ?? true);
  const [perKey, setPerKey] = useState<number>(form?.rate_limit_per_key ?? 60);
  const [perIp, setPerIp] = useState<number>(form?.rate_limit_per_ip ?? 10);
  const pipeline = pipelines.data?.find((p) => p.id === pipelineId);
  const save = useMutation({
    mutationFn: () => {
      const body = {
        name: name.trim(),
        pipeline_id: pipelineId,
        stage_id: stageId,
        owner,
        field_mapping: parseMapping(mapping),
        honeypot_field: honeypot.trim(),
        deal_title: dealTitle.trim(),
        default_country: country.trim().toUpperCase(),
        active,
        rate_limit_per_key: perKey,
        rate_limit_per_ip: perIp,
      };
      return form
        ? call<WebForm>(api.PUT('/v1/forms/{form_id}', { params: { path: { form_id: form.id } }, body }))
        : call<WebForm>(api.POST('/v1/forms', { headers: { 'Idempotency-Key': idempotencyKey() }, body }));
    },
    onSuccess: (saved) => {
      notifications.show({ color: 'green', message: t('forms.saved', { name: saved.name }) });
      void queryClient.invalidateQueries({ queryKey: ['forms'] });
      onSaved(saved);
    },
  });
  const teams = [...new Set((users.data ?? []).map((u) => u.team).filter(Boolean))].sort();
  const owners = [
    { group: t('forms.ownerTeams'), items: teams.map((team) => ({ value: `team:${team}`, label: t('forms.roundRobin', { team }) })) },
    { group: t('forms.ownerUsers'), items: (users.data ?? []).map((u) => ({ value: `user:${u.id}`, label: u.display_name || u.id })) },
  ].filter((g) => g.items.length);
  const inputs = ['name', 'pipeline_id', 'stage_id', 'owner', 'field_mapping', 'honeypot_field', 'deal_title', 'default_country', 'rate_limit_per_key', 'rate_limit_per_ip'];
  return (
    <Modal opened onClose={onClose} title={form ? t('settings.editNamed', { name: form.name }) : t('forms.new')} size="lg">
      <form
        onSubmit={(event) => {
          event.preventDefault();
          save.mutate();
        }}
      >
        <Stack gap="sm">
          <TextInput label={t('forms.name')} required value={name} onChange={(e) => setName(e.currentTarget.value)} error={err(save.error, 'name')} />
          <SimpleGrid cols={{ base: 1, sm: 2 }}>
            <Select
              label={t('board.pipeline')}
              required
              value={pipelineId || null}
              onChange={(value) => {
                setPipelineId(value ?? '');
                const first = [...(pipelines.data?.find((p) => p.id === value)?.stages ?? [])].sort((a, b) => a.position - b.position)[0];
                setStageId(first?.id ?? '');
              }}
              data={(pipelines.data ?? []).map((p) => ({ value: p.id, label: p.name }))}
              error={err(save.error, 'pipeline_id')}
            />
            <Select
              label={t('forms.stage')}
              required
              value={stageId || null}
              onChange={(value) => setStageId(value ?? '')}
              data={[...(pipeline?.stages ?? [])].sort((a, b) => a.position - b.position).map((s) => ({ value: s.id, label: s.name }))}
              error={err(save.error, 'stage_id')}
            />
            <Select
              label={t('forms.owner')}
              description={t('forms.ownerHint')}
              required
              searchable
              value={owner || null}
              onChange={(value) => setOwner(value ?? '')}
              data={owners}
              error={err(save.error, 'owner')}
            />
            <TextInput
              label={t('forms.dealTitle')}
              description={t('forms.dealTitleHint')}
              value={dealTitle}
              onChange={(e) => setDealTitle(e.currentTarget.value)}
              error={err(save.error, 'deal_title')}
            />
          </SimpleGrid>
          <Textarea
            label={t('forms.mapping')}
            description={t('forms.mappingHint', { targets: FORM_TARGETS.join(', ') })}
            autosize
            minRows={4}
            dir="ltr"
            value={mapping}
            onChange={(e) => setMapping(e.currentTarget.value)}
            error={err(save.error, 'field_mapping')}
          />
          <SimpleGrid cols={{ base: 1, sm: 2 }}>
            <TextInput
              label={t('forms.honeypot')}
              description={t('forms.honeypotHint')}
              dir="ltr"
              value={honeypot}
              onChange={(e) => setHoneypot(e.currentTarget.value)}
              error={err(save.error, 'honeypot_field')}
            />
            <TextInput
              label={t('forms.defaultCountry')}
              placeholder="DE"
              maxLength={2}
              dir="ltr"
              value={country}
              onChange={(e) => setCountry(e.currentTarget.value)}
              error={err(save.error, 'default_country')}
            />
            <NumberInput
              label={t('forms.perKey')}
              min={1}
              value={perKey}
              onChange={(v) => setPerKey(Number(v) || 1)}
              error={err(save.error, 'rate_limit_per_key')}
            />
            <NumberInput
              label={t('forms.perIp')}
              min={1}
              value={perIp}
              onChange={(v) => setPerIp(Number(v) || 1)}
              error={err(save.error, 'rate_limit_per_ip')}
            />
          </SimpleGrid>
          <Switch label={t('integrations.active')} checked={active} onChange={(e) => setActive(e.currentTarget.checked)} />
          {unnamed(save.error, inputs) ? (
            <Text size="sm" c="red" role="alert">
              {errorText(save.error)}
            </Text>
          ) : null}
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              {t('common.cancel')}
            </Button>
            <Button type="submit" loading={save.isPending} disabled={!name.trim()}>
              {t('common.save')}
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}

// ------------------------------------------------------------------ webhooks

export function Webhooks() {
  const { t, format } = useI18n();
  const errorText = useErrorText();
  const queryClient = useQueryClient();
  const hooks = useQuery({
    queryKey: ['webhooks'],
    queryFn: () => call<{ data: Webhook[] }>(api.GET('/v1/webhooks', {})).then((r) => r.data),
  });
  const [url, setUrl] = useState('');
  const [events, setEvents] = useState('deals.*');
  const [description, setDescription] = useState('');
  const [secret, setSecret] = useState<Webhook | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const create = useMutation({
    mutationFn: () =>
      call<Webhook>(
        api.POST('/v1/webhooks', {
          headers: { 'Idempotency-Key': idempotencyKey() },
          body: { url: url.trim(), event_types: listOf(events), description: description.trim(), active: true },
        }),
      ),
    onSuccess: (hook) => {
      setUrl('');
      setDescription('');
      setSecret(hook);
      void queryClient.invalidateQueries({ queryKey: ['webhooks'] });
    },
  });
  const toggle = useMutation({
    mutationFn: ({ hook, active }: { hook: Webhook; active: boolean }) =>
      call<Webhook>(
        api.PUT('/v1/webhooks/{webhook_id}', {
          params: { path: { webhook_id: hook.id } },
          body: { url: hook.url, event_types: hook.event_types, description: hook.description, active },
        }),
      ),
    onError: (error) => notifications.show({ color: 'red', title: t('webhooks.failed'), message: errorText(error) }),
    onSettled: () => void queryClient.invalidateQueries({ queryKey: ['webhooks'] }),
  });
  return (
    <Stack gap="md">
      <Card>
        <Title order={2} size="h4" mb="sm">
          {t('webhooks.title')}
        </Title>
        <QueryState query={hooks} empty={<Empty title={t('webhooks.none')} hint={t('webhooks.noneHint')} />}>
          {(rows) => (
            <Stack gap="sm" data-testid="webhooks">
              {rows.map((hook) => (
                <Card key={hook.id} withBorder padding="sm" data-testid="webhook" data-url={hook.url}>
                  <Group justify="space-between" wrap="nowrap" align="flex-start">
                    <div style={{ minWidth: 0 }}>
                      <Text fw={600} size="sm" dir="ltr" style={{ wordBreak: 'break-all' }}>
                        {hook.url}
                      </Text>
                      <Text size="xs" c="dimmed">
                        {hook.event_types.join(', ')}
                        {hook.description ? ` · ${hook.description}` : ''}
                        {hook.created_at ? ` · ${format.dateTime(hook.created_at)}` : ''}
                      </Text>
                      {hook.disabled_reason ? (
                        <Text size="xs" c="red">
                          {t('webhooks.disabled', { reason: hook.disabled_reason })}
                        </Text>
                      ) : null}
                    </div>
                    <Group gap="xs" wrap="nowrap">
                      <Button size="xs" variant="subtle" onClick={() => setOpen(open === hook.id ? null : hook.id)} aria-expanded={open === hook.id}>
                        {t('webhooks.deliveries')}
                      </Button>
                      <Switch
                        checked={hook.active}
                        label={hook.active ? t('settings.on') : t('settings.off')}
                        aria-label={t('webhooks.activeNamed', { url: hook.url })}
                        disabled={toggle.isPending && toggle.variables?.hook.id === hook.id}
                        onChange={(e) => toggle.mutate({ hook, active: e.currentTarget.checked })}
                      />
                      <ConfirmDelete
                        name={hook.url}
                        consequence={t('webhooks.deleteConsequence')}
                        remove={() => call(api.DELETE('/v1/webhooks/{webhook_id}', { params: { path: { webhook_id: hook.id } } }))}
                        onDeleted={() => {
                          if (open === hook.id) setOpen(null);
                          void queryClient.invalidateQueries({ queryKey: ['webhooks'] });
                        }}
                      />
                    </Group>
                  </Group>
                  {open === hook.id ? <Deliveries hook={hook} /> : null}
                </Card>
              ))}
            </Stack>
          )}
        </QueryState>
      </Card>
      <Card>
        <Title order={2} size="h4" mb={4}>
          {t('webhooks.new')}
        </Title>
        <Text size="sm" c="dimmed" mb="sm">
          {t('webhooks.newHint')}
        </Text>
        <form
          onSubmit={(event) => {
            event.preventDefault();
            create.mutate();
          }}
        >
          <SimpleGrid cols={{ base: 1, sm: 2 }}>
            <TextInput label={t('webhooks.url')} placeholder="https://example.com/hooks/atlas" required dir="ltr" value={url} onChange={(e) => setUrl(e.currentTarget.value)} error={err(create.error, 'url')} />
            <TextInput
              label={t('webhooks.events')}
              description={t('webhooks.eventsHint')}
              required
              dir="ltr"
              value={events}
              onChange={(e) => setEvents(e.currentTarget.value)}
              error={err(create.error, 'event_types')}
            />
            <TextInput label={t('webhooks.description')} value={description} onChange={(e) => setDescription(e.currentTarget.value)} error={err(create.error, 'description')} />
          </SimpleGrid>
          {unnamed(create.error, ['url', 'event_types', 'description']) ? (
            <Text size="sm" c="red" mt="sm" role="alert">
              {errorText(create.error)}
            </Text>
          ) : null}
          <Group justify="flex-end" mt="md">
            <Button type="submit" loading={create.isPending} disabled={!url.trim() || !events.trim()}>
              {t('webhooks.create')}
            </Button>
          </Group>
        </form>
      </Card>
      {secret ? (
        <Modal opened onClose={() => setSecret(null)} title={t('webhooks.created')} size="lg">
          <Stack gap="sm">
            <Text size="sm">{t('webhooks.secretHint')}</Text>
            <Code block dir="ltr" data-testid="webhook-secret" style={{ wordBreak: 'break-all' }}>
              {secret.secret}
            </Code>
            <Group justify="flex-end">
              <CopyText value={secret.secret} label={t('integrations.copy')} />
              <Button onClick={() => setSecret(null)}>{t('common.close')}</Button>
            </Group>
          </Stack>
        </Modal>
      ) : null}
    </Stack>
  );
}

function Deliveries({ hook }: { hook: Webhook }) {
  const { t, format } = useI18n();
  const errorText = useErrorText();
  const queryClient = useQueryClient();
  const deliveries = useQuery({
    queryKey: ['webhook-deliveries', hook.id],
    queryFn: () =>
      call<{ data: Delivery[] }>(
        api.GET('/v1/webhooks/{webhook_id}/deliveries', { params: { path: { webhook_id: hook.id }, query: { limit: 50 } } }),
      ).then((r) => r.data),
    // The log is live while something waits to be sent.
    refetchInterval: (query) => (query.state.data?.some((d) => d.status === 'pending') ? 5000 : false),
  });
  const replay = useMutation({
    mutationFn: (delivery: Delivery) =>
      call<Delivery>(api.POST('/v1/webhooks/deliveries/{delivery_id}/replay', { params: { path: { delivery_id: delivery.id } } })),
    onSuccess: () => notifications.show({ color: 'green', message: t('webhooks.replayed') }),
    onError: (error) => notifications.show({ color: 'red', title: t('webhooks.failed'), message: errorText(error) }),
    onSettled: () => void queryClient.invalidateQueries({ queryKey: ['webhook-deliveries', hook.id] }),
  });
  if (deliveries.isPending) return <Loading />;
  if (deliveries.isError) return <ErrorState error={deliveries.error} onRetry={() => void deliveries.refetch()} />;
  if (deliveries.data.length === 0) return <Empty title={t('webhooks.noDeliveries')} />;
  const color = { delivered: 'green', pending: 'blue', retrying: 'orange', failed: 'red' } as const;
  return (
    <ScrollArea mt="sm">
      <Table miw={720} data-testid="deliveries">
        <Table.Thead>
          <Table.Tr>
            <Table.Th>{t('webhooks.event')}</Table.Th>
            <Table.Th>{t('forms.status')}</Table.Th>
            <Table.Th>{t('webhooks.attempts')}</Table.Th>
            <Table.Th>{t('webhooks.answer')}</Table.Th>
            <Table.Th>{t('webhooks.when')}</Table.Th>
            <Table.Th />
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {deliveries.data.map((d) => (
            <Table.Tr key={d.id} data-testid="delivery" data-status={d.status}>
              <Table.Td dir="ltr">{d.event_type}</Table.Td>
              <Table.Td>
                <Badge variant="light" color={color[deliveryState(d)]}>
                  {t(`webhooks.status.${deliveryState(d)}`)}
                </Badge>
              </Table.Td>
              <Table.Td>{d.attempts}</Table.Td>
              <Table.Td>
                {d.last_status_code ? `HTTP ${d.last_status_code}` : ''}
                {d.last_error ? (
                  <Text size="xs" c="dimmed" lineClamp={2}>
                    {d.last_error}
                  </Text>
                ) : null}
              </Table.Td>
              <Table.Td>{d.created_at ? format.dateTime(d.created_at) : '—'}</Table.Td>
              <Table.Td>
                {replayable(d) ? (
                  <Button
                    size="xs"
                    variant="light"
                    loading={replay.isPending && replay.variables?.id === d.id}
                    onClick={() => replay.mutate(d)}
                  >
                    {t('webhooks.replay')}
                  </Button>
                ) : null}
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </ScrollArea>
  );
}

// ------------------------------------------------------------------ API keys

export function ApiKeys() {
  const { t, format } = useI18n();
  const errorText = useErrorText();
  const queryClient = useQueryClient();
  const keys = useQuery({
    queryKey: ['api-keys'],
    queryFn: () => call<{ data: ApiKey[] }>(api.GET('/v1/api-keys', {})).then((r) => r.data),
  });
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState('contacts:read');
  const [created, setCreated] = useState<ApiKeyCreated | null>(null);
  const [revoking, setRevoking] = useState<ApiKey | null>(null);
  const create = useMutation({
    mutationFn: () =>
      call<ApiKeyCreated>(
        api.POST('/v1/api-keys', { headers: { 'Idempotency-Key': idempotencyKey() }, body: { name: name.trim(), scopes: listOf(scopes) } }),
      ),
    onSuccess: (key) => {
      setName('');
      setCreated(key);
      void queryClient.invalidateQueries({ queryKey: ['api-keys'] });
    },
  });
  const revoke = useMutation({
    mutationFn: (key: ApiKey) => call<ApiKey>(api.DELETE('/v1/api-keys/{key_id}', { params: { path: { key_id: key.id } } })),
    onSuccess: (key) => {
      notifications.show({ color: 'green', message: t('keys.revoked', { name: key.name }) });
      setRevoking(null);
    },
    onSettled: () => void queryClient.invalidateQueries({ queryKey: ['api-keys'] }),
  });
  return (
    <Stack gap="md">
      <Card>
        <Title order={2} size="h4" mb="sm">
          {t('keys.title')}
        </Title>
        <QueryState query={keys} empty={<Empty title={t('keys.none')} hint={t('keys.noneHint')} />}>
          {(rows) => (
            <ScrollArea>
              <Table striped miw={760} data-testid="api-keys">
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>{t('forms.name')}</Table.Th>
                    <Table.Th>{t('keys.prefix')}</Table.Th>
                    <Table.Th>{t('keys.scopes')}</Table.Th>
                    <Table.Th>{t('keys.created')}</Table.Th>
                    <Table.Th>{t('keys.lastUsed')}</Table.Th>
                    <Table.Th />
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {rows.map((key) => (
                    <Table.Tr key={key.id} data-testid="api-key" data-key={key.name}>
                      <Table.Td>{key.name}</Table.Td>
                      <Table.Td dir="ltr">
                        <code>{key.prefix}…</code>
                      </Table.Td>
                      <Table.Td dir="ltr">{key.scopes.join(', ')}</Table.Td>
                      <Table.Td>
                        {key.created_at ? format.dateTime(key.created_at) : '—'}
                        <Text size="xs" c="dimmed">
                          {key.created_by}
                        </Text>
                      </Table.Td>
                      <Table.Td>{key.last_used_at ? format.dateTime(key.last_used_at) : '—'}</Table.Td>
                      <Table.Td>
                        {key.revoked_at ? (
                          <Badge color="gray" variant="light">
                            {t('keys.revokedAt', { when: format.dateTime(key.revoked_at) })}
                          </Badge>
                        ) : (
                          <Button size="xs" variant="subtle" color="red" onClick={() => setRevoking(key)} aria-label={t('keys.revokeNamed', { name: key.name })}>
                            {t('keys.revoke')}
                          </Button>
                        )}
                      </Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            </ScrollArea>
          )}
        </QueryState>
      </Card>
      <Card>
        <Title order={2} size="h4" mb="sm">
          {t('keys.new')}
        </Title>
        <form
          onSubmit={(event) => {
            event.preventDefault();
            create.mutate();
          }}
        >
          <SimpleGrid cols={{ base: 1, sm: 2 }}>
            <TextInput label={t('forms.name')} required value={name} onChange={(e) => setName(e.currentTarget.value)} error={err(create.error, 'name')} />
            <TextInput
              label={t('keys.scopes')}
              description={t('keys.scopesHint')}
              required
              dir="ltr"
              value={scopes}
              onChange={(e) => setScopes(e.currentTarget.value)}
              error={err(create.error, 'scopes')}
            />
          </SimpleGrid>
          {unnamed(create.error, ['name', 'scopes']) ? (
            <Text size="sm" c="red" mt="sm" role="alert">
              {errorText(create.error)}
            </Text>
          ) : null}
          <Group justify="flex-end" mt="md">
            <Button type="submit" loading={create.isPending} disabled={!name.trim() || !scopes.trim()}>
              {t('keys.create')}
            </Button>
          </Group>
        </form>
      </Card>
      {created ? (
        <Modal opened onClose={() => setCreated(null)} title={t('keys.createdNamed', { name: created.name })} size="lg">
          <Stack gap="sm">
            <Text size="sm" fw={500}>
              {t('keys.secretOnce')}
            </Text>
            <Code block dir="ltr" data-testid="api-key-secret" style={{ wordBreak: 'break-all' }}>
              {created.secret}
            </Code>
            <Group justify="flex-end">
              <CopyText value={created.secret} label={t('integrations.copy')} />
              <Button onClick={() => setCreated(null)}>{t('common.close')}</Button>
            </Group>
          </Stack>
        </Modal>
      ) : null}
      {revoking ? (
        <Modal opened onClose={() => setRevoking(null)} title={t('keys.revokeNamed', { name: revoking.name })}>
          <Stack gap="sm">
            <Text size="sm">{t('keys.revokeQuestion')}</Text>
            {revoke.error ? (
              <Text size="sm" c="red" role="alert">
                {errorText(revoke.error)}
              </Text>
            ) : null}
            <Group justify="flex-end">
              <Button variant="default" onClick={() => setRevoking(null)}>
                {t('common.cancel')}
              </Button>
              <Button color="red" loading={revoke.isPending} onClick={() => revoke.mutate(revoking)}>
                {t('keys.revoke')}
              </Button>
            </Group>
          </Stack>
        </Modal>
      ) : null}
    </Stack>
  );
}
