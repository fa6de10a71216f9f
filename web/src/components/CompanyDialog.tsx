import { Button, Group, Modal, SimpleGrid, Stack, Text, TextInput } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { useNavigate } from 'react-router';
import { ApiError, api, call, idempotencyKey } from '../api/client';
import type { Company } from '../api/types';
import { useI18n } from '../i18n/I18nProvider';
import { companyBody, companyForm, companyFormField, type CompanyForm } from '../lib/companies';
import { useErrorText } from './States';

/** A new company (then its page opens), or an existing one edited in place: only the
 *  fields changed are sent; problems appear under the input the API names. */
export function CompanyDialog({ company, onClose }: { company?: Company; onClose: () => void }) {
  const { t } = useI18n();
  const errorText = useErrorText();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const [form, setForm] = useState<CompanyForm>(companyForm(company));
  const save = useMutation({
    mutationFn: () =>
      company
        ? call<Company>(
            api.PATCH('/v1/companies/{company_id}', {
              params: { path: { company_id: company.id } },
              body: companyBody(form, company) as never,
            }),
          )
        : call<Company>(
            api.POST('/v1/companies', {
              params: { header: { 'Idempotency-Key': idempotencyKey() } },
              body: companyBody(form) as never,
            }),
          ),
    onSuccess: (saved) => {
      notifications.show({ color: 'green', message: t(company ? 'companyForm.saved' : 'companyForm.created', { name: saved.name }) });
      queryClient.setQueryData(['company', saved.id], saved);
      void queryClient.invalidateQueries({ queryKey: ['companies'] });
      onClose();
      if (!company) void navigate(`/companies/${saved.id}`);
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!form.name.trim()) return;
    if (company && Object.keys(companyBody(form, company)).length === 0) {
      onClose();
      return;
    }
    save.mutate();
  };
  const field = (name: keyof CompanyForm) => {
    if (!(save.error instanceof ApiError)) return undefined;
    const found = save.error.fieldErrors.filter((e) => companyFormField(e.field) === name);
    return found.length ? found.map((e) => e.message).join('; ') : undefined;
  };
  const other =
    save.error && !(save.error instanceof ApiError && save.error.fieldErrors.some((e) => companyFormField(e.field)))
      ? errorText(save.error)
      : null;
  const input = (name: keyof CompanyForm, label: string, extra: Record<string, unknown> = {}) => (
    <TextInput
      label={label}
      value={form[name]}
      onChange={(e) => setForm({ ...form, [name]: e.currentTarget.value })}
      error={field(name)}
      {...extra}
    />
  );
  return (
    <Modal opened onClose={onClose} title={company ? t('settings.editNamed', { name: company.name }) : t('companyForm.new')} size="lg">
      <form onSubmit={submit}>
        <Stack gap="sm">
          {input('name', t('companyForm.name'), { required: true, 'data-autofocus': true })}
          <SimpleGrid cols={{ base: 1, sm: 2 }}>
            {input('domain', t('companies.domain'), { dir: 'ltr', placeholder: 'example.com' })}
            {input('industry', t('companyForm.industry'))}
            {input('phones', t('form.phone'), { dir: 'ltr', description: t('companyForm.listHint') })}
            {input('tags', t('companyForm.tags'), { description: t('companyForm.listHint') })}
            {input('street', t('companyForm.street'))}
            {input('postal_code', t('companyForm.postalCode'), { dir: 'ltr' })}
            {input('city', t('companyForm.city'))}
            {input('country', t('companyForm.country'), { dir: 'ltr', maxLength: 2, placeholder: 'DE', description: t('companyForm.countryHint') })}
          </SimpleGrid>
          {other ? (
            <Text size="sm" c="red" role="alert">
              {other}
            </Text>
          ) : null}
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              {t('common.cancel')}
            </Button>
            <Button type="submit" loading={save.isPending} disabled={!form.name.trim()}>
              {company ? t('common.save') : t('companyForm.create')}
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
