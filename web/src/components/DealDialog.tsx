import { Button, Group, Modal, Select, SimpleGrid, Stack, Text, TextInput, Textarea } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { useNavigate } from 'react-router';
import { ApiError, api, call, idempotencyKey } from '../api/client';
import type { Deal } from '../api/types';
import { useI18n } from '../i18n/I18nProvider';
import { dealChanges, dealForm, dealFormField, newDealBody, type DealForm } from '../lib/dealForm';
import { usePipelines } from '../pages/DealPage';
import { ContactPicker } from './ContactPicker';
import { useErrorText } from './States';

/**
 * A new deal of a contact (then its page opens, or `onCreated` says where it went), a new
 * deal from the board (the contact picked by search, the board's pipeline preset), or the
 * fields of an existing one edited in place (only what changed is sent). Problems appear
 * under the input the API names.
 */
export function DealDialog({
  contactId,
  deal,
  pipelineId: presetPipeline,
  onCreated,
  onClose,
}: {
  contactId?: string;
  deal?: Deal;
  pipelineId?: string;
  onCreated?: (deal: Deal) => void;
  onClose: () => void;
}) {
  const { t } = useI18n();
  const errorText = useErrorText();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const pipelines = usePipelines();
  const fallback = pipelines.data?.find((p) => p.is_default)?.id ?? pipelines.data?.[0]?.id ?? '';
  const [form, setForm] = useState<DealForm>(dealForm(deal, presetPipeline));
  const [contact, setContact] = useState(contactId ?? '');
  const pipelineId = form.pipeline_id || fallback;
  const save = useMutation({
    mutationFn: () =>
      deal
        ? call<Deal>(
            api.PATCH('/v1/deals/{deal_id}', {
              params: { path: { deal_id: deal.id } },
              body: dealChanges(form, deal) as never,
            }),
          )
        : call<Deal>(
            api.POST('/v1/deals', {
              headers: { 'Idempotency-Key': idempotencyKey() },
              body: newDealBody({ ...form, pipeline_id: pipelineId }, contact) as never,
            }),
          ),
    onSuccess: (saved) => {
      notifications.show({
        color: 'green',
        message: t(deal ? 'dealForm.saved' : 'dealForm.created', { title: saved.title }),
      });
      void queryClient.invalidateQueries({ queryKey: ['deals'] });
      void queryClient.invalidateQueries({ queryKey: ['deal', saved.id] });
      void queryClient.invalidateQueries({ queryKey: ['board'] });
      onClose();
      if (!deal) {
        if (onCreated) onCreated(saved);
        else void navigate(`/deals/${saved.id}`);
      }
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!form.title.trim() || (!deal && !contact)) return;
    if (deal && Object.keys(dealChanges(form, deal)).length === 0) {
      onClose();
      return;
    }
    save.mutate();
  };
  const field = (name: keyof DealForm) => {
    if (!(save.error instanceof ApiError)) return undefined;
    const found = save.error.fieldErrors.filter((e) => dealFormField(e.field) === name);
    return found.length ? found.map((e) => e.message).join('; ') : undefined;
  };
  const other =
    save.error &&
    !(save.error instanceof ApiError && save.error.fieldErrors.some((e) => dealFormField(e.field) || e.field === 'contact_id'))
      ? errorText(save.error)
      : null;
  const set = (name: keyof DealForm, value: string) => setForm({ ...form, [name]: value });

  return (
    <Modal opened onClose={onClose} title={deal ? t('dealForm.edit') : t('dealForm.new')} size="lg">
      <form onSubmit={submit}>
        <Stack gap="sm">
          <TextInput
            label={t('dealForm.title')}
            required
            data-autofocus
            value={form.title}
            onChange={(e) => set('title', e.currentTarget.value)}
            error={field('title')}
          />
          {deal || contactId ? null : (
            <ContactPicker
              label={t('dealForm.contact')}
              value={contact}
              onChange={setContact}
              error={save.error instanceof ApiError ? save.error.fieldErrors.filter((e) => e.field === 'contact_id').map((e) => e.message).join('; ') || undefined : undefined}
            />
          )}
          {deal ? null : (
            <Select
              label={t('board.pipeline')}
              allowDeselect={false}
              value={pipelineId || null}
              onChange={(value) => set('pipeline_id', value ?? '')}
              data={(pipelines.data ?? []).map((p) => ({ value: p.id, label: p.name }))}
              error={field('pipeline_id')}
            />
          )}
          <SimpleGrid cols={{ base: 1, sm: 3 }}>
            <TextInput
              label={t('dealForm.amount')}
              inputMode="decimal"
              placeholder="1299.90"
              value={form.amount}
              onChange={(e) => set('amount', e.currentTarget.value)}
              error={field('amount')}
              dir="ltr"
            />
            <TextInput
              label={t('dealForm.currency')}
              maxLength={3}
              value={form.currency}
              onChange={(e) => set('currency', e.currentTarget.value)}
              error={field('currency')}
              dir="ltr"
            />
            <TextInput
              type="date"
              label={t('deal.expectedClose')}
              value={form.expected_close_date}
              onChange={(e) => set('expected_close_date', e.currentTarget.value)}
              error={field('expected_close_date')}
            />
          </SimpleGrid>
          <Textarea
            label={t('deal.description')}
            autosize
            minRows={2}
            value={form.description}
            onChange={(e) => set('description', e.currentTarget.value)}
            error={field('description')}
          />
          {other ? (
            <Text size="sm" c="red" role="alert">
              {other}
            </Text>
          ) : null}
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              {t('common.cancel')}
            </Button>
            <Button type="submit" loading={save.isPending} disabled={!form.title.trim() || (!deal && (!pipelineId || !contact))}>
              {deal ? t('common.save') : t('dealForm.create')}
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
