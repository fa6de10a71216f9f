import {
  Alert,
  Anchor,
  Button,
  Card,
  Group,
  Select,
  SimpleGrid,
  Stack,
  TagsInput,
  TextInput,
  Title,
} from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { IconArrowLeft } from '@tabler/icons-react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useMemo, useRef, useState, type FormEvent } from 'react';
import { Link, useNavigate } from 'react-router';
import { ApiError, api, call, idempotencyKey } from '../api/client';
import type { Contact } from '../api/types';
import { useErrorText } from '../components/States';
import { useI18n } from '../i18n/I18nProvider';
import { fieldErrors, LIFECYCLE_STAGES, SOURCES } from '../lib/contacts';
import { countryOptions } from '../lib/countries';

interface Form {
  first_name: string;
  last_name: string;
  email: string;
  phone: string;
  city: string;
  country: string;
  lifecycle_stage: string;
  source: string;
  tags: string[];
}

const EMPTY: Form = {
  first_name: '',
  last_name: '',
  email: '',
  phone: '',
  city: '',
  country: '',
  lifecycle_stage: 'lead',
  source: 'manual',
  tags: [],
};

export default function ContactCreate() {
  const { t, language } = useI18n();
  const errorText = useErrorText();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const [form, setForm] = useState<Form>(EMPTY);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [otherErrors, setOtherErrors] = useState<string[]>([]);
  // One key per form: a double submit or a retry after a lost answer creates one contact.
  const key = useRef(idempotencyKey());
  const countries = useMemo(() => countryOptions(language), [language]);

  const create = useMutation({
    mutationFn: () =>
      call<Contact>(
        api.POST('/v1/contacts', {
          params: { header: { 'Idempotency-Key': key.current } },
          body: {
            first_name: form.first_name.trim(),
            last_name: form.last_name.trim(),
            emails: form.email.trim() ? [form.email.trim()] : [],
            phones: form.phone.trim() ? [form.phone.trim()] : [],
            address: { city: form.city.trim(), country: form.country },
            lifecycle_stage: form.lifecycle_stage,
            source: form.source,
            tags: form.tags,
          },
        }),
      ),
    onSuccess: (contact) => {
      void queryClient.invalidateQueries({ queryKey: ['contacts'] });
      notifications.show({ color: 'green', message: t('form.created') });
      navigate(`/contacts/${contact.id}`);
    },
    onError: (error) => {
      if (error instanceof ApiError && error.status >= 400 && error.status < 500) {
        // Refused, so nothing was written: the corrected form is a new request. (After an
        // outage the key stays, so a retry cannot create the contact twice.)
        key.current = idempotencyKey();
      }
      if (error instanceof ApiError && error.status === 422) {
        const { byField, other } = fieldErrors(error.fieldErrors);
        setErrors(byField);
        setOtherErrors(other);
      }
    },
  });

  const set = <K extends keyof Form>(field: K, value: Form[K]) => {
    setForm((current) => ({ ...current, [field]: value }));
    setErrors((current) => {
      const { [field]: _cleared, ...rest } = current;
      return rest;
    });
  };

  const submit = (event: FormEvent) => {
    event.preventDefault();
    setErrors({});
    setOtherErrors([]);
    create.mutate();
  };

  const invalid = create.error instanceof ApiError && create.error.status === 422;

  return (
    <Stack gap="md" maw={760}>
      <Anchor component={Link} to="/contacts" size="sm">
        <Group gap={4}>
          <IconArrowLeft size={14} className="flip-rtl" />
          {t('contacts.title')}
        </Group>
      </Anchor>
      <Title order={1} size="h2">
        {t('contacts.new')}
      </Title>
      <Card>
        <form onSubmit={submit} noValidate>
          <Stack gap="md">
            {invalid ? (
              <Alert color="red" role="alert" title={t('form.invalid')}>
                {otherErrors.length ? otherErrors.join('; ') : null}
              </Alert>
            ) : create.error ? (
              <Alert color="red" role="alert">
                {errorText(create.error)}
              </Alert>
            ) : null}
            <SimpleGrid cols={{ base: 1, sm: 2 }}>
              <TextInput
                name="first_name"
                label={t('form.firstName')}
                value={form.first_name}
                onChange={(e) => set('first_name', e.currentTarget.value)}
                error={errors.first_name}
                autoFocus
              />
              <TextInput
                name="last_name"
                label={t('form.lastName')}
                value={form.last_name}
                onChange={(e) => set('last_name', e.currentTarget.value)}
                error={errors.last_name}
              />
              <TextInput
                name="email"
                type="email"
                label={t('form.email')}
                value={form.email}
                onChange={(e) => set('email', e.currentTarget.value)}
                error={errors.email}
              />
              <TextInput
                name="phone"
                type="tel"
                label={t('form.phone')}
                description={t('form.phoneHint')}
                value={form.phone}
                onChange={(e) => set('phone', e.currentTarget.value)}
                error={errors.phone}
              />
              <TextInput
                name="city"
                label={t('form.city')}
                value={form.city}
                onChange={(e) => set('city', e.currentTarget.value)}
                error={errors.city}
              />
              <Select
                name="country"
                label={t('form.country')}
                description={t('form.countryHint')}
                searchable
                clearable
                data={countries}
                value={form.country || null}
                onChange={(value) => set('country', value ?? '')}
                error={errors.country}
              />
              <Select
                name="lifecycle_stage"
                label={t('contacts.stage')}
                data={LIFECYCLE_STAGES.map((s) => ({ value: s, label: t(`stage.${s}`) }))}
                value={form.lifecycle_stage}
                allowDeselect={false}
                onChange={(value) => set('lifecycle_stage', value ?? 'lead')}
                error={errors.lifecycle_stage}
              />
              <Select
                name="source"
                label={t('form.source')}
                data={SOURCES.map((s) => ({ value: s, label: t(`source.${s}`) }))}
                value={form.source}
                allowDeselect={false}
                onChange={(value) => set('source', value ?? 'manual')}
                error={errors.source}
              />
            </SimpleGrid>
            <TagsInput
              label={t('form.tags')}
              value={form.tags}
              onChange={(value) => set('tags', value)}
              error={errors.tags}
            />
            <Group justify="flex-end">
              <Button variant="default" component={Link} to="/contacts">
                {t('common.cancel')}
              </Button>
              <Button type="submit" loading={create.isPending}>
                {t('form.create')}
              </Button>
            </Group>
          </Stack>
        </form>
      </Card>
    </Stack>
  );
}
