import { Badge, Button, Card, Group, Modal, Select, SimpleGrid, Stack, Table, Text, TextInput, Textarea, Title } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { IconPencil, IconPlus } from '@tabler/icons-react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { ApiError, api, call } from '../../api/client';
import type { components } from '../../api/schema';
import { Empty, ErrorState, Loading, useErrorText } from '../../components/States';
import { useI18n } from '../../i18n/I18nProvider';
import { fieldError, parseVariables, unnamed } from '../../lib/integrations';

type DocumentTemplate = components['schemas']['DocumentTemplate'];
type Template = components['schemas']['Template'];

const err = (error: unknown, name: string) =>
  fieldError(error, (f) => f === name || f.startsWith(`${name}.`) || f.startsWith(`${name}[`) || f.endsWith(`.${name}`));

// ------------------------------------------------------------------ document templates

export function DocumentTemplates() {
  const { t, format } = useI18n();
  const templates = useQuery({
    queryKey: ['document-templates'],
    queryFn: () => call<{ data: DocumentTemplate[] }>(api.GET('/v1/document-templates', {})).then((r) => r.data),
  });
  const [editing, setEditing] = useState<DocumentTemplate | 'new' | null>(null);
  return (
    <Card>
      <Group justify="space-between" mb="sm">
        <Title order={2} size="h4">
          {t('docs.title')}
        </Title>
        <Button size="xs" leftSection={<IconPlus size={14} />} onClick={() => setEditing('new')}>
          {t('docs.new')}
        </Button>
      </Group>
      {templates.isPending ? (
        <Loading />
      ) : templates.isError ? (
        <ErrorState error={templates.error} onRetry={() => void templates.refetch()} />
      ) : templates.data.length === 0 ? (
        <Empty title={t('docs.none')} hint={t('docs.noneHint')} />
      ) : (
        <Table striped data-testid="document-templates">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>{t('forms.name')}</Table.Th>
              <Table.Th>{t('docs.key')}</Table.Th>
              <Table.Th>{t('contact.language')}</Table.Th>
              <Table.Th>{t('docs.updated')}</Table.Th>
              <Table.Th />
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {templates.data.map((tpl) => (
              <Table.Tr key={tpl.key} data-testid="document-template" data-key={tpl.key}>
                <Table.Td>{tpl.name}</Table.Td>
                <Table.Td dir="ltr">
                  <code>{tpl.key}</code>
                </Table.Td>
                <Table.Td>{tpl.locale}</Table.Td>
                <Table.Td>{tpl.updated_at ? format.dateTime(tpl.updated_at) : '—'}</Table.Td>
                <Table.Td>
                  <Button size="xs" variant="subtle" leftSection={<IconPencil size={14} />} aria-label={t('settings.editNamed', { name: tpl.name })} onClick={() => setEditing(tpl)}>
                    {t('settings.edit')}
                  </Button>
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
      {editing ? <DocumentDialog template={editing === 'new' ? null : editing} onClose={() => setEditing(null)} /> : null}
    </Card>
  );
}

function DocumentDialog({ template, onClose }: { template: DocumentTemplate | null; onClose: () => void }) {
  const { t } = useI18n();
  const errorText = useErrorText();
  const queryClient = useQueryClient();
  const [key, setKey] = useState(template?.key ?? '');
  const [name, setName] = useState(template?.name ?? '');
  const [locale, setLocale] = useState(template?.locale ?? 'en');
  const [body, setBody] = useState(template?.body ?? '<h1>{{ deal.title }}</h1>\n<p>{{ contact.first_name }} {{ contact.last_name }}</p>');
  const [variables, setVariables] = useState(() => {
    const parsed = parseVariables(template?.variables_json ?? '');
    return parsed && Object.keys(parsed).length ? JSON.stringify(parsed, null, 2) : '';
  });
  const [variablesError, setVariablesError] = useState<string | null>(null);
  const save = useMutation({
    mutationFn: (vars: Record<string, unknown>) =>
      call<DocumentTemplate>(
        api.PUT('/v1/document-templates/{key}', {
          params: { path: { key: key.trim() } },
          body: { name: name.trim(), body, locale: locale.trim() || 'en', variables: vars },
        }),
      ),
    onSuccess: (saved) => {
      notifications.show({ color: 'green', message: t('docs.saved', { name: saved.name }) });
      void queryClient.invalidateQueries({ queryKey: ['document-templates'] });
      onClose();
    },
  });
  const keyError = save.error instanceof ApiError && save.error.status === 404 ? errorText(save.error) : err(save.error, 'key');
  return (
    <Modal opened onClose={onClose} title={template ? t('settings.editNamed', { name: template.name }) : t('docs.new')} size="xl">
      <form
        onSubmit={(event) => {
          event.preventDefault();
          const vars = parseVariables(variables);
          setVariablesError(vars ? null : t('docs.variablesInvalid'));
          if (vars) save.mutate(vars);
        }}
      >
        <Stack gap="sm">
          <SimpleGrid cols={{ base: 1, sm: 3 }}>
            <TextInput label={t('docs.key')} description={t('docs.keyHint')} required disabled={!!template} dir="ltr" value={key} onChange={(e) => setKey(e.currentTarget.value)} error={keyError} />
            <TextInput label={t('forms.name')} value={name} onChange={(e) => setName(e.currentTarget.value)} error={err(save.error, 'name')} />
            <TextInput label={t('contact.language')} dir="ltr" value={locale} onChange={(e) => setLocale(e.currentTarget.value)} error={err(save.error, 'locale')} />
          </SimpleGrid>
          <Textarea
            label={t('docs.body')}
            description={t('docs.bodyHint')}
            required
            autosize
            minRows={8}
            maxRows={20}
            dir="ltr"
            styles={{ input: { fontFamily: 'monospace' } }}
            value={body}
            onChange={(e) => setBody(e.currentTarget.value)}
            error={err(save.error, 'body')}
          />
          <Textarea
            label={t('docs.variables')}
            description={t('docs.variablesHint')}
            autosize
            minRows={2}
            dir="ltr"
            styles={{ input: { fontFamily: 'monospace' } }}
            value={variables}
            onChange={(e) => setVariables(e.currentTarget.value)}
            error={variablesError ?? err(save.error, 'variables')}
          />
          {unnamed(save.error, ['key', 'name', 'locale', 'body', 'variables', 'template']) && !(save.error instanceof ApiError && save.error.status === 404) ? (
            <Text size="sm" c="red" role="alert">
              {errorText(save.error)}
            </Text>
          ) : null}
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              {t('common.cancel')}
            </Button>
            <Button type="submit" loading={save.isPending} disabled={!key.trim() || !body.trim()}>
              {t('common.save')}
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}

// ------------------------------------------------------------------ notification templates

export function NotificationTemplates() {
  const { t, format } = useI18n();
  const templates = useQuery({
    queryKey: ['templates'],
    queryFn: () => call<{ data: Template[] }>(api.GET('/v1/templates', { params: { query: { include_builtin: true } } })).then((r) => r.data),
  });
  const [kind, setKind] = useState<string | null>(null);
  const [editing, setEditing] = useState<Template | null>(null);
  const kinds = [...new Set((templates.data ?? []).map((x) => x.kind))].sort();
  const shown = (templates.data ?? []).filter((x) => !kind || x.kind === kind);
  return (
    <Card>
      <Group justify="space-between" mb="sm">
        <Title order={2} size="h4">
          {t('templates.title')}
        </Title>
        <Select size="xs" aria-label={t('templates.kind')} placeholder={t('templates.allKinds')} clearable value={kind} onChange={setKind} data={kinds} />
      </Group>
      <Text size="sm" c="dimmed" mb="sm">
        {t('templates.hint')}
      </Text>
      {templates.isPending ? (
        <Loading />
      ) : templates.isError ? (
        <ErrorState error={templates.error} onRetry={() => void templates.refetch()} />
      ) : shown.length === 0 ? (
        <Empty title={t('templates.none')} />
      ) : (
        <Table striped data-testid="notification-templates">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>{t('templates.kind')}</Table.Th>
              <Table.Th>{t('contact.language')}</Table.Th>
              <Table.Th>{t('templates.subject')}</Table.Th>
              <Table.Th />
              <Table.Th />
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {shown.map((tpl) => (
              <Table.Tr key={`${tpl.kind}/${tpl.locale}/${tpl.builtin}`} data-testid="notification-template" data-kind={tpl.kind} data-locale={tpl.locale}>
                <Table.Td dir="ltr">{tpl.kind}</Table.Td>
                <Table.Td>{tpl.locale}</Table.Td>
                <Table.Td>
                  <Text size="sm" lineClamp={1}>
                    {tpl.subject}
                  </Text>
                </Table.Td>
                <Table.Td>
                  <Badge variant="light" color={tpl.builtin ? 'gray' : 'blue'}>
                    {tpl.builtin ? t('templates.builtin') : t('templates.custom', { when: tpl.updated_at ? format.date(tpl.updated_at) : '' })}
                  </Badge>
                </Table.Td>
                <Table.Td>
                  <Button size="xs" variant="subtle" leftSection={<IconPencil size={14} />} aria-label={t('templates.editNamed', { kind: tpl.kind, locale: tpl.locale })} onClick={() => setEditing(tpl)}>
                    {t('settings.edit')}
                  </Button>
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
      {editing ? <TemplateDialog template={editing} onClose={() => setEditing(null)} /> : null}
    </Card>
  );
}

function TemplateDialog({ template, onClose }: { template: Template; onClose: () => void }) {
  const { t } = useI18n();
  const errorText = useErrorText();
  const queryClient = useQueryClient();
  const [locale, setLocale] = useState(template.locale);
  const [subject, setSubject] = useState(template.subject);
  const [text, setText] = useState(template.body_text);
  const [html, setHtml] = useState(template.body_html);
  const done = (message: string) => {
    notifications.show({ color: 'green', message });
    void queryClient.invalidateQueries({ queryKey: ['templates'] });
    onClose();
  };
  const save = useMutation({
    mutationFn: () =>
      call<Template>(
        api.PUT('/v1/templates/{kind}/{locale}', {
          params: { path: { kind: template.kind, locale: locale.trim() } },
          body: { subject, body_text: text, body_html: html },
        }),
      ),
    onSuccess: () => done(t('templates.saved', { kind: template.kind })),
  });
  const reset = useMutation({
    mutationFn: () => call<null>(api.DELETE('/v1/templates/{kind}/{locale}', { params: { path: { kind: template.kind, locale: template.locale } } })),
    onSuccess: () => done(t('templates.resetDone', { kind: template.kind })),
  });
  const failure = save.error ?? reset.error;
  return (
    <Modal opened onClose={onClose} title={t('templates.editNamed', { kind: template.kind, locale: template.locale })} size="xl">
      <form
        onSubmit={(event) => {
          event.preventDefault();
          save.mutate();
        }}
      >
        <Stack gap="sm">
          <TextInput label={t('contact.language')} description={t('templates.localeHint')} dir="ltr" value={locale} onChange={(e) => setLocale(e.currentTarget.value)} error={err(save.error, 'locale')} />
          <TextInput label={t('templates.subject')} required value={subject} onChange={(e) => setSubject(e.currentTarget.value)} error={err(save.error, 'subject')} />
          <Textarea label={t('templates.text')} required autosize minRows={5} maxRows={16} value={text} onChange={(e) => setText(e.currentTarget.value)} error={err(save.error, 'body_text')} />
          <Textarea
            label={t('templates.html')}
            autosize
            minRows={3}
            maxRows={16}
            dir="ltr"
            styles={{ input: { fontFamily: 'monospace' } }}
            value={html}
            onChange={(e) => setHtml(e.currentTarget.value)}
            error={err(save.error, 'body_html')}
          />
          {unnamed(failure, ['locale', 'subject', 'body_text', 'body_html']) ? (
            <Text size="sm" c="red" role="alert">
              {errorText(failure)}
            </Text>
          ) : null}
          <Group justify="space-between">
            {!template.builtin ? (
              <Button variant="subtle" color="red" loading={reset.isPending} onClick={() => reset.mutate()}>
                {t('templates.reset')}
              </Button>
            ) : (
              <span />
            )}
            <Group gap="xs">
              <Button variant="default" onClick={onClose}>
                {t('common.cancel')}
              </Button>
              <Button type="submit" loading={save.isPending} disabled={!subject.trim() || !text.trim()}>
                {t('common.save')}
              </Button>
            </Group>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
