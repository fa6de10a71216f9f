import { Badge, Button, Group, Modal, Select, Stack, Switch, Text, TextInput } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { IconDeviceFloppy, IconTrash } from '@tabler/icons-react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api, call } from '../api/client';
import { useSignedIn } from '../auth/useSession';
import { useI18n } from '../i18n/I18nProvider';
import { fieldError, unnamed } from '../lib/integrations';
import { filtersOfView, sameAsView, viewBody, type ContactFilters, type ContactView } from '../lib/contacts';
import { useErrorText } from './States';

/**
 * Saved views of the contacts list (kept by the API): pick one to apply its filters,
 * save the current filters as a new one (private or shared with the team), and for one's
 * own view save changes, share or unshare it, or delete it.
 */
export function ContactViews({ filters, onApply }: { filters: ContactFilters; onApply: (filters: ContactFilters) => void }) {
  const { t } = useI18n();
  const session = useSignedIn();
  const errorText = useErrorText();
  const queryClient = useQueryClient();
  const views = useQuery({
    queryKey: ['contact-views'],
    queryFn: () => call<{ data: ContactView[] }>(api.GET('/v1/contacts/views', {})).then((r) => r.data),
  });
  const [saving, setSaving] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const current = views.data?.find((v) => v.id === filters.view);
  const own = current?.owner_id === session.user;
  const refresh = () => void queryClient.invalidateQueries({ queryKey: ['contact-views'] });
  const change = useMutation({
    mutationFn: (body: { shared?: boolean; filters?: Record<string, string>; sort?: string }) =>
      call<ContactView>(api.PATCH('/v1/contacts/views/{view_id}', { params: { path: { view_id: current?.id ?? '' } }, body })),
    onSuccess: (view) => notifications.show({ color: 'green', message: t('views.saved', { name: view.name }) }),
    onError: (error) => notifications.show({ color: 'red', title: t('views.failed'), message: errorText(error) }),
    onSettled: refresh,
  });
  const remove = useMutation({
    mutationFn: () => call<null>(api.DELETE('/v1/contacts/views/{view_id}', { params: { path: { view_id: current?.id ?? '' } } })),
    onSuccess: () => {
      notifications.show({ color: 'green', message: t('views.deleted', { name: current?.name ?? '' }) });
      setDeleting(false);
      onApply({ ...filters, view: undefined });
      refresh();
    },
  });
  const mine = (views.data ?? []).filter((v) => v.owner_id === session.user);
  const team = (views.data ?? []).filter((v) => v.owner_id !== session.user);
  const data = [
    { group: t('views.mine'), items: mine.map((v) => ({ value: v.id, label: v.shared ? `${v.name} · ${t('views.sharedShort')}` : v.name })) },
    { group: t('views.team'), items: team.map((v) => ({ value: v.id, label: `${v.name} · ${v.owner_id}` })) },
  ].filter((g) => g.items.length);

  return (
    <Group gap="sm" align="center" wrap="wrap" data-testid="contact-views">
      <Select
        aria-label={t('views.label')}
        placeholder={views.isError ? t('views.unavailable') : views.data?.length ? t('views.pick') : t('views.none')}
        w={260}
        clearable
        disabled={!views.data?.length}
        allowDeselect={false}
        value={current ? current.id : null}
        // Picking the open view again restores its filters after they were changed.
        onOptionSubmit={(id) => {
          const view = views.data?.find((v) => v.id === id);
          if (view) onApply(filtersOfView(view));
        }}
        onChange={(id) => {
          if (!id) onApply({ ...filters, view: undefined });
        }}
        data={data}
      />
      {current && !own ? (
        <Badge variant="light" color="grape">
          {t('views.sharedBy', { name: current.owner_id })}
        </Badge>
      ) : null}
      {current && own ? (
        <>
          <Switch
            label={t('views.shareWithTeam')}
            checked={current.shared}
            disabled={change.isPending}
            onChange={(e) => change.mutate({ shared: e.currentTarget.checked })}
          />
          {!sameAsView(filters, current) ? (
            <Button size="xs" variant="light" loading={change.isPending} onClick={() => change.mutate(viewBody(filters))}>
              {t('views.saveChanges')}
            </Button>
          ) : null}
          <Button size="xs" variant="subtle" color="red" leftSection={<IconTrash size={14} />} onClick={() => setDeleting(true)}>
            {t('views.delete')}
          </Button>
        </>
      ) : null}
      <Button size="xs" variant="default" leftSection={<IconDeviceFloppy size={14} />} onClick={() => setSaving(true)}>
        {t('views.saveAs')}
      </Button>
      {saving ? (
        <SaveViewDialog
          filters={filters}
          onClose={() => setSaving(false)}
          onSaved={(view) => {
            setSaving(false);
            refresh();
            onApply(filtersOfView(view));
          }}
        />
      ) : null}
      {deleting && current ? (
        <Modal opened onClose={() => setDeleting(false)} title={t('views.deleteNamed', { name: current.name })}>
          <Stack gap="sm">
            <Text size="sm">{current.shared ? t('views.deleteShared') : t('views.deleteQuestion')}</Text>
            {remove.error ? (
              <Text size="sm" c="red" role="alert">
                {errorText(remove.error)}
              </Text>
            ) : null}
            <Group justify="flex-end">
              <Button variant="default" onClick={() => setDeleting(false)}>
                {t('common.cancel')}
              </Button>
              <Button color="red" loading={remove.isPending} onClick={() => remove.mutate()}>
                {t('views.delete')}
              </Button>
            </Group>
          </Stack>
        </Modal>
      ) : null}
    </Group>
  );
}

function SaveViewDialog({
  filters,
  onClose,
  onSaved,
}: {
  filters: ContactFilters;
  onClose: () => void;
  onSaved: (view: ContactView) => void;
}) {
  const { t } = useI18n();
  const errorText = useErrorText();
  const [name, setName] = useState('');
  const [shared, setShared] = useState(false);
  const save = useMutation({
    mutationFn: () => call<ContactView>(api.POST('/v1/contacts/views', { body: { name: name.trim(), shared, ...viewBody(filters) } })),
    onSuccess: (view) => {
      notifications.show({ color: 'green', message: t('views.saved', { name: view.name }) });
      onSaved(view);
    },
  });
  return (
    <Modal opened onClose={onClose} title={t('views.saveAs')}>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          if (name.trim()) save.mutate();
        }}
      >
        <Stack gap="sm">
          <Text size="sm" c="dimmed">
            {t('views.saveHint')}
          </Text>
          <TextInput
            label={t('views.name')}
            required
            data-autofocus
            value={name}
            onChange={(e) => setName(e.currentTarget.value)}
            error={fieldError(save.error, (f) => f === 'name')}
          />
          <Switch label={t('views.shareWithTeam')} checked={shared} onChange={(e) => setShared(e.currentTarget.checked)} />
          {unnamed(save.error, ['name']) ? (
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
