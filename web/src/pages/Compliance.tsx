import {
  Alert,
  Badge,
  Button,
  Card,
  Code,
  Group,
  Modal,
  NumberInput,
  ScrollArea,
  SegmentedControl,
  Select,
  Stack,
  Table,
  Text,
  TextInput,
  Textarea,
  Title,
} from '@mantine/core';
import { notifications } from '@mantine/notifications';
import {
  IconCheck,
  IconDownload,
  IconPlus,
  IconRefresh,
  IconShieldCheck,
  IconTrash,
  IconX,
} from '@tabler/icons-react';
import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { useSearchParams } from 'react-router';
import { ApiError, api, call, idempotencyKey } from '../api/client';
import { useSignedIn } from '../auth/useSession';
import { ContactPicker } from '../components/ContactPicker';
import { Empty, ErrorState, Loading, QueryState, useErrorText } from '../components/States';
import { useI18n } from '../i18n/I18nProvider';
import {
  AUDIT_KINDS,
  REQUEST_KINDS,
  REQUEST_STATUSES,
  auditFiltersFrom,
  auditQuery,
  dueState,
  fileNameFrom,
  formField,
  readReceipt,
  requestBody,
  residencyRows,
  RETENTION_RULES,
  policyBody,
  policyField,
  policyForm,
  relocationSteps,
  type AuditChain,
  type PolicyForm,
  type AuditRecord,
  type PolicyVersion,
  type PrivacyRequest,
  type RequestForm,
  type RequestKind,
  type ResidencyReport,
  type TenantPolicy,
} from '../lib/compliance';
import { saveBlob } from '../lib/download';
import { TabbedPage } from '../components/TabbedPage';

/** A file the API answers (ZIP, CSV, PDF), fetched with the token and saved as a blob. */
async function fetchFile(
  request: Promise<{ data?: unknown; error?: unknown; response: Response }>,
  fallback: string,
): Promise<void> {
  const { data, error, response } = await request;
  if (!response.ok || !data) {
    await call(Promise.resolve({ data, error, response }));
    return;
  }
  saveBlob(data as Blob, fileNameFrom(response.headers.get('Content-Disposition'), fallback));
}

export default function Compliance() {
  const { t } = useI18n();
  return (
    <TabbedPage
      title={t('compliance.title')}
      tabs={[
    { name: 'requests', label: t('compliance.tab.requests'), panel: <Requests /> },
    { name: 'holds', label: t('compliance.tab.holds'), panel: <LegalHolds /> },
    { name: 'residency', label: t('compliance.tab.residency'), panel: <Residency /> },
    { name: 'audit', label: t('compliance.tab.audit'), panel: <AuditTrail /> },
    { name: 'policies', label: t('compliance.tab.policies'), panel: <Policies /> },
    { name: 'relocations', label: t('compliance.tab.relocations'), panel: <Relocations /> },
    { name: 'retention', label: t('compliance.tab.retention'), panel: <Retention /> },
      ]}
    />
  );
}

// ------------------------------------------------------------------ data-subject requests

const EMPTY_FORM: RequestForm = { kind: 'export', by: 'email', subject: '', changes: [{ field: '', value: '' }] };
const RECTIFIABLE = ['first_name', 'last_name', 'emails', 'phones', 'language', 'time_zone'];

function Requests() {
  const { t, format } = useI18n();
  const errorText = useErrorText();
  const queryClient = useQueryClient();
  const [form, setForm] = useState<RequestForm>(EMPTY_FORM);
  const [confirmErase, setConfirmErase] = useState(false);
  const [status, setStatus] = useState<string | null>(null);
  const [receipt, setReceipt] = useState<PrivacyRequest | null>(null);

  const list = useQuery({
    queryKey: ['privacy-requests', status],
    queryFn: () =>
      call<{ data: PrivacyRequest[] }>(
        api.GET('/v1/privacy/requests', { params: { query: { status: status ?? undefined } } }),
      ).then((r) => r.data),
    placeholderData: keepPreviousData,
  });

  const create = useMutation({
    mutationFn: () =>
      call<PrivacyRequest>(
        api.POST('/v1/privacy/requests', {
          params: { header: { 'Idempotency-Key': idempotencyKey() } },
          body: requestBody(form) as never,
        }),
      ),
    onSuccess: (created) => {
      setConfirmErase(false);
      setForm(EMPTY_FORM);
      notifications.show({
        color: created.status === 'failed' ? 'orange' : 'green',
        message: t('compliance.created', {
          kind: t(`compliance.kind.${created.kind as RequestKind}`),
          status: t(`compliance.status.${created.status as (typeof REQUEST_STATUSES)[number]}`),
        }),
      });
      void queryClient.invalidateQueries({ queryKey: ['privacy-requests'] });
    },
    onError: () => setConfirmErase(false),
  });

  const fieldError = (name: 'subject' | 'changes' | 'kind'): string | undefined => {
    if (!(create.error instanceof ApiError)) return undefined;
    const named = create.error.fieldErrors.filter((e) => formField(e.field) === name);
    if (named.length) return named.map((e) => e.message).join('; ');
    // A subject not found is a 404 with the reason: it belongs under the subject.
    if (name === 'subject' && create.error.status === 404) return errorText(create.error);
    return undefined;
  };
  const generalError =
    create.error &&
    !fieldError('subject') &&
    !fieldError('changes') &&
    !fieldError('kind')
      ? errorText(create.error)
      : null;

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!form.subject.trim()) return;
    // Erasure cannot be undone: ask first.
    if (form.kind === 'erasure') setConfirmErase(true);
    else create.mutate();
  };

  const download = useMutation({
    mutationFn: (request: PrivacyRequest) =>
      fetchFile(
        api.GET('/v1/privacy/requests/{request_id}/export', {
          params: { path: { request_id: request.id } },
          parseAs: 'blob',
        }),
        `export-${request.id}.zip`,
      ),
    onError: (error) =>
      notifications.show({ color: 'red', title: t('compliance.downloadFailed'), message: errorText(error) }),
  });
  const retry = useMutation({
    mutationFn: (request: PrivacyRequest) =>
      call<PrivacyRequest>(
        api.POST('/v1/privacy/requests/{request_id}/retry', {
          params: { path: { request_id: request.id } },
        }),
      ),
    onSettled: () => void queryClient.invalidateQueries({ queryKey: ['privacy-requests'] }),
    onError: (error) =>
      notifications.show({ color: 'red', title: t('compliance.retryFailed'), message: errorText(error) }),
  });

  const now = new Date();
  return (
    <Stack gap="md">
      <Card>
        <Title order={2} size="h4" mb="sm">
          {t('compliance.newRequest')}
        </Title>
        <form onSubmit={submit}>
          <Stack gap="sm">
            <SegmentedControl
              aria-label={t('compliance.kind')}
              value={form.kind}
              onChange={(value) => setForm({ ...form, kind: value as RequestKind })}
              data={REQUEST_KINDS.map((k) => ({ value: k, label: t(`compliance.kind.${k}`) }))}
              w="fit-content"
            />
            <Group align="flex-start" gap="sm" wrap="wrap">
              <Select
                label={t('compliance.findBy')}
                w={200}
                allowDeselect={false}
                value={form.by}
                onChange={(value) => setForm({ ...form, by: (value as RequestForm['by']) ?? 'email' })}
                data={[
                  { value: 'email', label: t('form.email') },
                  { value: 'contact_id', label: t('compliance.contactId') },
                ]}
              />
              <TextInput
                label={form.by === 'email' ? t('form.email') : t('compliance.contactId')}
                placeholder={form.by === 'email' ? 'juergen@example.de' : 'eu_01…'}
                flex={1}
                miw={260}
                required
                value={form.subject}
                onChange={(e) => setForm({ ...form, subject: e.currentTarget.value })}
                error={fieldError('subject')}
                dir="ltr"
              />
            </Group>
            {form.kind === 'rectification' ? (
              <Stack gap="xs">
                <Text size="sm" fw={500}>
                  {t('compliance.changes')}
                </Text>
                {form.changes.map((change, index) => (
                  <Group key={index} gap="xs" align="flex-end" wrap="nowrap">
                    <Select
                      aria-label={t('compliance.changeField', { n: index + 1 })}
                      placeholder={t('compliance.field')}
                      w={200}
                      data={RECTIFIABLE}
                      searchable
                      value={change.field || null}
                      onChange={(value) => {
                        const changes = [...form.changes];
                        changes[index] = { ...change, field: value ?? '' };
                        setForm({ ...form, changes });
                      }}
                    />
                    <TextInput
                      aria-label={t('compliance.changeValue', { n: index + 1 })}
                      placeholder={t('compliance.correctValue')}
                      flex={1}
                      value={change.value}
                      onChange={(e) => {
                        const changes = [...form.changes];
                        changes[index] = { ...change, value: e.currentTarget.value };
                        setForm({ ...form, changes });
                      }}
                    />
                  </Group>
                ))}
                {fieldError('changes') ? (
                  <Text size="sm" c="red">
                    {fieldError('changes')}
                  </Text>
                ) : null}
                <Button
                  variant="subtle"
                  size="xs"
                  w="fit-content"
                  leftSection={<IconPlus size={14} />}
                  onClick={() =>
                    setForm({ ...form, changes: [...form.changes, { field: '', value: '' }] })
                  }
                >
                  {t('compliance.addChange')}
                </Button>
              </Stack>
            ) : null}
            {form.kind === 'erasure' ? (
              <Alert color="orange" variant="light">
                {t('compliance.erasureNote')}
              </Alert>
            ) : null}
            {generalError ? (
              <Alert color="red" variant="light" role="alert">
                {generalError}
              </Alert>
            ) : null}
            <Group justify="flex-end">
              <Button type="submit" loading={create.isPending} disabled={!form.subject.trim()}>
                {t('compliance.create')}
              </Button>
            </Group>
          </Stack>
        </form>
      </Card>

      <Card>
        <Group justify="space-between" mb="sm">
          <Title order={2} size="h4">
            {t('compliance.requests')}
          </Title>
          <Select
            aria-label={t('compliance.status')}
            placeholder={t('compliance.anyStatus')}
            clearable
            w={200}
            value={status}
            onChange={setStatus}
            data={REQUEST_STATUSES.map((s) => ({ value: s, label: t(`compliance.status.${s}`) }))}
          />
        </Group>
        {list.isPending ? (
          <Loading />
        ) : list.isError ? (
          <ErrorState error={list.error} onRetry={() => void list.refetch()} />
        ) : list.data.length === 0 ? (
          <Empty title={t('compliance.noRequests')} />
        ) : (
          <ScrollArea>
            <Table striped highlightOnHover data-testid="privacy-requests" miw={820}>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>{t('compliance.received')}</Table.Th>
                  <Table.Th>{t('compliance.kind')}</Table.Th>
                  <Table.Th>{t('compliance.subject')}</Table.Th>
                  <Table.Th>{t('compliance.law')}</Table.Th>
                  <Table.Th>{t('compliance.status')}</Table.Th>
                  <Table.Th>{t('compliance.due')}</Table.Th>
                  <Table.Th />
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {list.data.map((request) => {
                  const due = dueState(request, now);
                  return (
                    <Table.Tr key={request.id} data-testid="privacy-request" data-kind={request.kind}>
                      <Table.Td>{format.dateTime(request.created_at)}</Table.Td>
                      <Table.Td>{t(`compliance.kind.${request.kind as RequestKind}`)}</Table.Td>
                      <Table.Td>
                        <Text size="sm" ff="monospace" dir="ltr">
                          {request.contact_id}
                        </Text>
                        {request.rectified_fields?.length ? (
                          <Text size="xs" c="dimmed">
                            {request.rectified_fields.join(', ')}
                          </Text>
                        ) : null}
                      </Table.Td>
                      <Table.Td>{request.law}</Table.Td>
                      <Table.Td>
                        <Badge
                            variant="light"
                            color={
                              request.status === 'completed'
                                ? 'green'
                                : request.status === 'failed'
                                  ? 'red'
                                  : 'blue'
                            }
                          >
                            {t(`compliance.status.${request.status as (typeof REQUEST_STATUSES)[number]}`)}
                          </Badge>
                        {request.error ? (
                          <Text size="xs" c="red" mt={4} maw={280} lineClamp={3} title={request.error}>
                            {request.error}
                          </Text>
                        ) : null}
                      </Table.Td>
                      <Table.Td>
                        <Text
                          size="sm"
                          c={due === 'overdue' ? 'red' : due === 'soon' ? 'orange' : undefined}
                          fw={due === 'overdue' || due === 'soon' ? 600 : undefined}
                        >
                          {format.date(request.due_at)}
                          {due === 'overdue' ? ` · ${t('home.overdue')}` : ''}
                        </Text>
                      </Table.Td>
                      <Table.Td>
                        <Group gap={4} justify="flex-end" wrap="nowrap">
                          {request.kind === 'export' && request.status === 'completed' ? (
                            <Button
                              size="xs"
                              variant="light"
                              leftSection={<IconDownload size={14} />}
                              loading={download.isPending && download.variables?.id === request.id}
                              onClick={() => download.mutate(request)}
                            >
                              {t('compliance.downloadZip')}
                            </Button>
                          ) : null}
                          {request.receipt ? (
                            <Button
                              size="xs"
                              variant="light"
                              color="teal"
                              leftSection={<IconShieldCheck size={14} />}
                              onClick={() => setReceipt(request)}
                            >
                              {t('compliance.receipt')}
                            </Button>
                          ) : null}
                          {request.status === 'failed' ? (
                            <Button
                              size="xs"
                              variant="light"
                              color="orange"
                              leftSection={<IconRefresh size={14} />}
                              loading={retry.isPending && retry.variables?.id === request.id}
                              onClick={() => retry.mutate(request)}
                            >
                              {t('common.retry')}
                            </Button>
                          ) : null}
                        </Group>
                      </Table.Td>
                    </Table.Tr>
                  );
                })}
              </Table.Tbody>
            </Table>
          </ScrollArea>
        )}
      </Card>

      <Modal
        opened={confirmErase}
        onClose={() => setConfirmErase(false)}
        title={t('compliance.confirmErasure')}
        centered
      >
        <Text size="sm" mb="md">
          {t('compliance.confirmErasureText', { subject: form.subject.trim() })}
        </Text>
        <Group justify="flex-end">
          <Button variant="default" onClick={() => setConfirmErase(false)}>
            {t('common.cancel')}
          </Button>
          <Button color="red" loading={create.isPending} onClick={() => create.mutate()} data-autofocus>
            {t('compliance.erase')}
          </Button>
        </Group>
      </Modal>
      <ReceiptDialog request={receipt} onClose={() => setReceipt(null)} />
    </Stack>
  );
}

function ReceiptDialog({ request, onClose }: { request: PrivacyRequest | null; onClose: () => void }) {
  const { t, format } = useI18n();
  const errorText = useErrorText();
  const [text, setText] = useState('');
  const [signature, setSignature] = useState('');
  const [shownFor, setShownFor] = useState<string | null>(null);
  // A new receipt opened: start from exactly what was issued.
  if (request && shownFor !== request.id) {
    setShownFor(request.id);
    setText(request.receipt ?? '');
    setSignature(request.receipt_signature ?? '');
  }
  const verify = useMutation({
    mutationFn: () =>
      call<{ valid: boolean; reason: string }>(
        api.POST('/v1/privacy/receipts/verify', { body: { receipt: text, signature } }),
      ),
  });
  const summary = readReceipt(text);
  const close = () => {
    verify.reset();
    setShownFor(null);
    onClose();
  };
  return (
    <Modal opened={request !== null} onClose={close} title={t('compliance.receiptTitle')} size="xl">
      <Stack gap="sm">
        {summary ? (
          <div data-testid="receipt-summary">
            <Text size="sm">
              {t('compliance.receiptFor', {
                contact: summary.contactId,
                region: summary.region.toUpperCase(),
                at: format.dateTime(summary.completedAt),
              })}
            </Text>
            <Group gap={6} mt={6}>
              {summary.services.map((s) => (
                <Badge
                  key={s.service}
                  variant="light"
                  color={s.verification === 'empty' ? 'green' : 'red'}
                  leftSection={s.verification === 'empty' ? <IconCheck size={12} /> : <IconX size={12} />}
                >
                  {s.service}
                </Badge>
              ))}
            </Group>
          </div>
        ) : null}
        <Textarea
          label={t('compliance.receiptText')}
          description={t('compliance.receiptHint')}
          autosize
          minRows={4}
          maxRows={10}
          value={text}
          onChange={(e) => {
            setText(e.currentTarget.value);
            verify.reset();
          }}
          styles={{ input: { fontFamily: 'monospace', fontSize: 12 } }}
          dir="ltr"
        />
        <TextInput
          label={t('compliance.signature')}
          value={signature}
          onChange={(e) => {
            setSignature(e.currentTarget.value);
            verify.reset();
          }}
          styles={{ input: { fontFamily: 'monospace', fontSize: 12 } }}
          dir="ltr"
        />
        {request?.public_key ? (
          <Text size="xs" c="dimmed">
            {t('compliance.publicKey')} <Code dir="ltr">{request.public_key}</Code>
          </Text>
        ) : null}
        {verify.data ? (
          <Alert
            color={verify.data.valid ? 'green' : 'red'}
            variant="light"
            role="status"
            data-testid="receipt-verdict"
            icon={verify.data.valid ? <IconCheck size={18} /> : <IconX size={18} />}
            title={verify.data.valid ? t('compliance.valid') : t('compliance.invalid')}
          >
            {verify.data.reason}
          </Alert>
        ) : verify.error ? (
          <Alert color="red" variant="light" role="alert">
            {errorText(verify.error)}
          </Alert>
        ) : null}
        <Group justify="flex-end">
          <Button variant="default" onClick={close}>
            {t('common.close')}
          </Button>
          <Button onClick={() => verify.mutate()} loading={verify.isPending} disabled={!text || !signature}>
            {t('compliance.verify')}
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}

// ------------------------------------------------------------------ legal holds

function LegalHolds() {
  const { t, format } = useI18n();
  const errorText = useErrorText();
  const [contactId, setContactId] = useState('');
  const [reason, setReason] = useState('');
  const [placed, setPlaced] = useState<{ contact_id: string; reason: string; set_by: string; set_at: string }[]>([]);
  const [confirmLift, setConfirmLift] = useState<string | null>(null);
  const place = useMutation({
    mutationFn: () =>
      call<{ contact_id: string; reason: string; set_by: string; set_at: string }>(
        api.PUT('/v1/privacy/legal-holds/{contact_id}', {
          params: { path: { contact_id: contactId.trim() } },
          body: { reason: reason.trim() },
        }),
      ),
    onSuccess: (hold) => {
      setPlaced((held) => [hold, ...held.filter((h) => h.contact_id !== hold.contact_id)]);
      setContactId('');
      setReason('');
      notifications.show({ color: 'green', message: t('compliance.holdPlaced', { contact: hold.contact_id }) });
    },
  });
  const lift = useMutation({
    mutationFn: (id: string) =>
      call<null>(
        api.DELETE('/v1/privacy/legal-holds/{contact_id}', { params: { path: { contact_id: id } } }),
      ),
    onSuccess: (_none, id) => {
      setConfirmLift(null);
      setPlaced((held) => held.filter((h) => h.contact_id !== id));
      notifications.show({ color: 'green', message: t('compliance.holdLifted', { contact: id }) });
    },
    onError: (error) => {
      setConfirmLift(null);
      notifications.show({ color: 'red', title: t('compliance.liftFailed'), message: errorText(error) });
    },
  });
  const named = (field: string) =>
    place.error instanceof ApiError
      ? place.error.fieldErrors.find((e) => e.field === field)?.message
      : undefined;
  const [liftId, setLiftId] = useState('');

  return (
    <Stack gap="md">
      <Card>
        <Title order={2} size="h4" mb={4}>
          {t('compliance.placeHold')}
        </Title>
        <Text size="sm" c="dimmed" mb="sm">
          {t('compliance.holdHint')}
        </Text>
        <form
          onSubmit={(event) => {
            event.preventDefault();
            if (contactId.trim() && reason.trim()) place.mutate();
          }}
        >
          <Stack gap="sm">
            <TextInput
              label={t('compliance.contactId')}
              placeholder="eu_01…"
              required
              value={contactId}
              onChange={(e) => setContactId(e.currentTarget.value)}
              error={named('contact_id')}
              dir="ltr"
            />
            <TextInput
              label={t('compliance.reason')}
              placeholder="litigation 4 O 123/26"
              required
              value={reason}
              onChange={(e) => setReason(e.currentTarget.value)}
              error={named('reason') ?? (place.error && !named('contact_id') ? errorText(place.error) : undefined)}
            />
            <Group justify="flex-end">
              <Button type="submit" loading={place.isPending} disabled={!contactId.trim() || !reason.trim()}>
                {t('compliance.placeHold')}
              </Button>
            </Group>
          </Stack>
        </form>
        {placed.length ? (
          <Stack gap="xs" mt="md" data-testid="holds-placed">
            {placed.map((hold) => (
              <Group key={hold.contact_id} justify="space-between" wrap="nowrap">
                <div>
                  <Text size="sm" ff="monospace" dir="ltr">
                    {hold.contact_id}
                  </Text>
                  <Text size="xs" c="dimmed">
                    {hold.reason} · {hold.set_by} · {format.dateTime(hold.set_at)}
                  </Text>
                </div>
                <Button size="xs" variant="light" color="red" onClick={() => setConfirmLift(hold.contact_id)}>
                  {t('compliance.lift')}
                </Button>
              </Group>
            ))}
          </Stack>
        ) : null}
      </Card>
      <Card>
        <Title order={2} size="h4" mb="sm">
          {t('compliance.liftHold')}
        </Title>
        <form
          onSubmit={(event) => {
            event.preventDefault();
            if (liftId.trim()) setConfirmLift(liftId.trim());
          }}
        >
          <Group align="flex-end" gap="sm">
            <TextInput
              label={t('compliance.contactId')}
              placeholder="eu_01…"
              flex={1}
              value={liftId}
              onChange={(e) => setLiftId(e.currentTarget.value)}
              dir="ltr"
            />
            <Button type="submit" color="red" variant="light" disabled={!liftId.trim()}>
              {t('compliance.lift')}
            </Button>
          </Group>
        </form>
      </Card>
      <Modal opened={confirmLift !== null} onClose={() => setConfirmLift(null)} title={t('compliance.liftHold')} centered>
        <Text size="sm" mb="md">
          {t('compliance.confirmLift', { contact: confirmLift ?? '' })}
        </Text>
        <Group justify="flex-end">
          <Button variant="default" onClick={() => setConfirmLift(null)}>
            {t('common.cancel')}
          </Button>
          <Button
            color="red"
            loading={lift.isPending}
            onClick={() => confirmLift && lift.mutate(confirmLift)}
            data-autofocus
          >
            {t('compliance.lift')}
          </Button>
        </Group>
      </Modal>
    </Stack>
  );
}

// ------------------------------------------------------------------ residency proof

function Residency() {
  const { t, format } = useI18n();
  const errorText = useErrorText();
  const report = useQuery({
    queryKey: ['residency'],
    queryFn: () => call<ResidencyReport>(api.GET('/v1/compliance/residency', {})),
  });
  const download = useMutation({
    mutationFn: (kind: 'csv' | 'pdf') =>
      fetchFile(
        api.GET('/v1/compliance/residency', {
          params: { query: { format: kind } },
          parseAs: 'blob',
        }),
        `residency.${kind}`,
      ),
    onError: (error) =>
      notifications.show({ color: 'red', title: t('compliance.downloadFailed'), message: errorText(error) }),
  });
  return (
    <Card>
      <Group justify="space-between" mb="sm">
        <div>
          <Title order={2} size="h4">
            {t('compliance.residencyTitle')}
          </Title>
          {report.data ? (
            <Text size="xs" c="dimmed">
              {t('compliance.generated', { at: format.dateTime(report.data.generated_at) })}
            </Text>
          ) : null}
        </div>
        <Group gap="xs">
          {(['csv', 'pdf'] as const).map((kind) => (
            <Button
              key={kind}
              size="xs"
              variant="light"
              leftSection={<IconDownload size={14} />}
              loading={download.isPending && download.variables === kind}
              onClick={() => download.mutate(kind)}
            >
              {kind.toUpperCase()}
            </Button>
          ))}
        </Group>
      </Group>
      {report.isPending ? (
        <Loading />
      ) : report.isError ? (
        <ErrorState error={report.error} onRetry={() => void report.refetch()} />
      ) : (
        <Stack gap="md">
          {report.data.violations.length === 0 ? (
            <Alert color="green" variant="light" icon={<IconCheck size={18} />} data-testid="no-violations">
              {t('compliance.noViolations')}
            </Alert>
          ) : (
            <Alert color="red" variant="light" title={t('compliance.violations')} data-testid="violations">
              <Table>
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>{t('compliance.service')}</Table.Th>
                    <Table.Th>{t('compliance.recordKind')}</Table.Th>
                    <Table.Th>{t('compliance.storedIn')}</Table.Th>
                    <Table.Th>{t('compliance.required')}</Table.Th>
                    <Table.Th ta="end">{t('compliance.records')}</Table.Th>
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {report.data.violations.map((v) => (
                    <Table.Tr key={`${v.service}-${v.kind}-${v.stored_in}-${v.required_region}`}>
                      <Table.Td>{v.service}</Table.Td>
                      <Table.Td>{v.kind}</Table.Td>
                      <Table.Td>{v.stored_in.toUpperCase()}</Table.Td>
                      <Table.Td>{v.required_region.toUpperCase()}</Table.Td>
                      <Table.Td ta="end">{format.number(v.records)}</Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            </Alert>
          )}
          <Group gap="sm">
            {report.data.regions.map((r) => (
              <Badge key={r.region} size="lg" variant="light" color="indigo">
                {t('compliance.subjectsIn', { region: r.region.toUpperCase(), count: format.number(r.subjects) })}
              </Badge>
            ))}
          </Group>
          <ScrollArea>
            <Table striped data-testid="residency-table" miw={600}>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>{t('reports.region')}</Table.Th>
                  <Table.Th>{t('compliance.service')}</Table.Th>
                  <Table.Th>{t('compliance.recordKind')}</Table.Th>
                  <Table.Th ta="end">{t('compliance.subjects')}</Table.Th>
                  <Table.Th ta="end">{t('compliance.records')}</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {residencyRows(report.data).map((row) => (
                  <Table.Tr key={`${row.region}-${row.service}-${row.kind}`}>
                    <Table.Td>{row.region.toUpperCase()}</Table.Td>
                    <Table.Td>{row.service}</Table.Td>
                    <Table.Td>{row.kind}</Table.Td>
                    <Table.Td ta="end">{format.number(row.subjects)}</Table.Td>
                    <Table.Td ta="end">{format.number(row.records)}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </ScrollArea>
        </Stack>
      )}
    </Card>
  );
}

// ------------------------------------------------------------------ audit trail

function AuditTrail() {
  const { t, format } = useI18n();
  const session = useSignedIn();
  const [params, setParams] = useSearchParams();
  const filters = auditFiltersFrom(params);
  const [actor, setActor] = useState(filters.actor);
  const zone = session.timeZone || Intl.DateTimeFormat().resolvedOptions().timeZone;
  const setFilter = (name: 'kind' | 'actor' | 'from' | 'to', value: string) => {
    const next = new URLSearchParams(params);
    if (value) next.set(name, value);
    else next.delete(name);
    setParams(next, { replace: true });
  };
  const query = auditQuery(filters, zone);
  const trail = useQuery({
    queryKey: ['audit', query],
    queryFn: () =>
      call<{ data: AuditRecord[]; regions: string[] }>(
        api.GET('/v1/compliance/audit', { params: { query: { ...query, limit: 500 } } }),
      ),
    placeholderData: keepPreviousData,
  });
  const verify = useMutation({
    mutationFn: () =>
      call<{ intact: boolean; chains: AuditChain[] }>(api.GET('/v1/compliance/audit/verify', {})),
  });
  const kindLabel = (kind: string) =>
    (AUDIT_KINDS as readonly string[]).includes(kind)
      ? t(`compliance.audit.${kind as (typeof AUDIT_KINDS)[number]}`)
      : kind;

  return (
    <Stack gap="md">
      <Card>
        <Group justify="space-between" align="flex-start" mb="sm">
          <Title order={2} size="h4">
            {t('compliance.chains')}
          </Title>
          <Button
            size="xs"
            variant="light"
            leftSection={<IconShieldCheck size={14} />}
            loading={verify.isPending}
            onClick={() => verify.mutate()}
          >
            {t('compliance.verifyChains')}
          </Button>
        </Group>
        {verify.isError ? (
          <ErrorState error={verify.error} onRetry={() => verify.mutate()} />
        ) : verify.data ? (
          <Stack gap="xs" data-testid="chain-verdict">
            <Alert
              color={verify.data.intact ? 'green' : 'red'}
              variant="light"
              icon={verify.data.intact ? <IconCheck size={18} /> : <IconX size={18} />}
              title={verify.data.intact ? t('compliance.intact') : t('compliance.broken')}
            >
              {t('compliance.chainsChecked', {
                chains: verify.data.chains.length,
                records: format.number(verify.data.chains.reduce((n, c) => n + c.records_checked, 0)),
              })}
            </Alert>
            {verify.data.chains
              .filter((c) => !c.intact)
              .map((c) => (
                <Text key={`${c.service}-${c.region}`} size="sm" c="red">
                  {c.service} · {c.region.toUpperCase()}:{' '}
                  {c.problems.map((p) => `#${p.seq} ${p.problem ?? ''} ${p.detail ?? ''}`).join('; ')}
                </Text>
              ))}
          </Stack>
        ) : (
          <Text size="sm" c="dimmed">
            {t('compliance.chainsHint')}
          </Text>
        )}
      </Card>
      <Card>
        <Title order={2} size="h4" mb="sm">
          {t('compliance.tab.audit')}
        </Title>
        <Group gap="sm" mb="md" align="flex-end" wrap="wrap">
          <Select
            label={t('compliance.auditKind')}
            placeholder={t('compliance.anyKind')}
            clearable
            w={220}
            value={filters.kind || null}
            onChange={(value) => setFilter('kind', value ?? '')}
            data={AUDIT_KINDS.map((k) => ({ value: k, label: kindLabel(k) }))}
          />
          <form
            onSubmit={(event) => {
              event.preventDefault();
              setFilter('actor', actor.trim());
            }}
          >
            <TextInput
              label={t('compliance.actor')}
              placeholder="dana"
              w={180}
              value={actor}
              onChange={(e) => setActor(e.currentTarget.value)}
              onBlur={() => setFilter('actor', actor.trim())}
            />
          </form>
          <TextInput
            type="date"
            label={t('reports.from')}
            value={filters.from}
            onChange={(e) => setFilter('from', e.currentTarget.value)}
          />
          <TextInput
            type="date"
            label={t('reports.to')}
            value={filters.to}
            onChange={(e) => setFilter('to', e.currentTarget.value)}
          />
        </Group>
        {trail.isPending ? (
          <Loading />
        ) : trail.isError ? (
          <ErrorState error={trail.error} onRetry={() => void trail.refetch()} />
        ) : trail.data.data.length === 0 ? (
          <Empty title={t('compliance.noAudit')} hint={t('reports.emptyHint')} />
        ) : (
          <ScrollArea>
            <Table striped data-testid="audit-trail" miw={860}>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>{t('compliance.when')}</Table.Th>
                  <Table.Th>{t('compliance.auditKind')}</Table.Th>
                  <Table.Th>{t('compliance.action')}</Table.Th>
                  <Table.Th>{t('compliance.actor')}</Table.Th>
                  <Table.Th>{t('compliance.service')}</Table.Th>
                  <Table.Th>{t('compliance.record')}</Table.Th>
                  <Table.Th>{t('compliance.legalBasis')}</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {trail.data.data.map((record) => (
                  <Table.Tr key={`${record.service}-${record.region}-${record.seq}`} data-testid="audit-record">
                    <Table.Td>{format.dateTime(record.at)}</Table.Td>
                    <Table.Td>{kindLabel(record.kind)}</Table.Td>
                    <Table.Td>{record.action}</Table.Td>
                    <Table.Td>
                      {record.actor_id}
                      {record.actor_home_region ? ` (${record.actor_home_region.toUpperCase()})` : ''}
                    </Table.Td>
                    <Table.Td>
                      {record.service} · {record.region.toUpperCase()}
                    </Table.Td>
                    <Table.Td>
                      {/* An opaque id: a contact's, a request's or a deal's, so not a link. */}
                      <Text size="xs" ff="monospace" dir="ltr">
                        {record.record_id}
                      </Text>
                    </Table.Td>
                    <Table.Td>{record.legal_basis}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </ScrollArea>
        )}
      </Card>
    </Stack>
  );
}

// ------------------------------------------------------------------ policies

function PolicySummary({ policy }: { policy: TenantPolicy }) {
  const { t } = useI18n();
  const overrides = Object.entries(policy.residency_overrides ?? {});
  return (
    <Stack gap={6}>
      <Text size="sm">
        <b>{t('compliance.defaultRegion')}:</b> {(policy.default_region || 'us').toUpperCase()}
      </Text>
      <Text size="sm">
        <b>{t('compliance.overrides')}:</b>{' '}
        {overrides.length ? overrides.map(([c, r]) => `${c} → ${r.toUpperCase()}`).join(', ') : t('common.none')}
      </Text>
      <Text size="sm">
        <b>{t('compliance.grants')}:</b>{' '}
        {policy.access_grants?.length
          ? policy.access_grants
              .map((g) => `${g.from_region.toUpperCase()} → ${g.to_region.toUpperCase()} (${g.legal_basis})`)
              .join(', ')
          : t('common.none')}
      </Text>
      <Text size="sm">
        <b>{t('compliance.retention')}:</b>{' '}
        {policy.retention_rules?.length
          ? policy.retention_rules
              .map((r) => t('compliance.retentionRule', { rule: r.rule, months: r.after_months }))
              .join(', ')
          : t('common.none')}
      </Text>
    </Stack>
  );
}

function Policies() {
  const { t, format } = useI18n();
  const current = useQuery({
    queryKey: ['policy'],
    queryFn: () => call<TenantPolicy>(api.GET('/v1/compliance/policies', {})),
  });
  const history = useQuery({
    queryKey: ['policy-history'],
    queryFn: () =>
      call<{ data: PolicyVersion[] }>(api.GET('/v1/compliance/policies/history', {})).then((r) =>
        [...r.data].sort((a, b) => b.version - a.version),
      ),
  });
  return (
    <Stack gap="md">
      <Card data-testid="policy-current">
        <Title order={2} size="h4" mb="sm">
          {t('compliance.currentPolicy')}
          {current.data?.version ? ` · v${current.data.version}` : ''}
        </Title>
        {current.isPending ? (
          <Loading />
        ) : current.isError ? (
          <ErrorState error={current.error} onRetry={() => void current.refetch()} />
        ) : (
          <>
            <PolicySummary policy={current.data} />
            {current.data.updated_by ? (
              <Text size="xs" c="dimmed" mt="xs">
                {t('compliance.changedBy', {
                  who: current.data.updated_by,
                  at: format.dateTime(current.data.updated_at),
                })}
              </Text>
            ) : null}
          </>
        )}
      </Card>
      {current.data ? <PolicyEditor key={current.data.version ?? 0} policy={current.data} /> : null}
      <Card>
        <Title order={2} size="h4" mb="sm">
          {t('compliance.history')}
        </Title>
        {history.isPending ? (
          <Loading />
        ) : history.isError ? (
          <ErrorState error={history.error} onRetry={() => void history.refetch()} />
        ) : history.data.length === 0 ? (
          <Empty title={t('compliance.noHistory')} />
        ) : (
          <Stack gap="sm" data-testid="policy-history">
            {history.data.map((version) => (
              <div key={version.version}>
                <Group gap="xs">
                  <Badge variant="light">v{version.version}</Badge>
                  <Text size="sm" c="dimmed">
                    {t('compliance.changedBy', {
                      who: version.changed_by ?? '',
                      at: format.dateTime(version.changed_at),
                    })}
                  </Text>
                </Group>
                {version.changes?.length ? (
                  <Stack gap={0} mt={4} ps="md">
                    {version.changes.map((change) => (
                      <Text key={change} size="sm" ff="monospace" dir="ltr">
                        {change}
                      </Text>
                    ))}
                  </Stack>
                ) : null}
              </div>
            ))}
          </Stack>
        )}
      </Card>
    </Stack>
  );
}

const REGIONS = ['eu', 'br', 'us'] as const;

/** Edits the residency and access policy; the API names what it refuses, shown in place. */
function PolicyEditor({ policy }: { policy: TenantPolicy }) {
  const { t } = useI18n();
  const errorText = useErrorText();
  const queryClient = useQueryClient();
  const [form, setForm] = useState<PolicyForm>(() => policyForm(policy));
  const save = useMutation({
    mutationFn: () => call<TenantPolicy>(api.PUT('/v1/compliance/policies', { body: policyBody(form) as never })),
    onSuccess: (saved) => {
      notifications.show({ color: 'green', message: t('compliance.policySaved', { version: saved.version ?? '' }) });
      void queryClient.invalidateQueries({ queryKey: ['policy'] });
      void queryClient.invalidateQueries({ queryKey: ['policy-history'] });
    },
  });
  const problem = (part: ReturnType<typeof policyField>) => {
    if (!(save.error instanceof ApiError)) return undefined;
    const found = save.error.fieldErrors.filter((e) => policyField(e.field) === part);
    return found.length ? found.map((e) => `${e.field}: ${e.message}`).join('; ') : undefined;
  };
  const other =
    save.error && !(save.error instanceof ApiError && save.error.fieldErrors.some((e) => policyField(e.field)))
      ? errorText(save.error)
      : undefined;
  const regionOptions = REGIONS.map((r) => ({ value: r, label: r.toUpperCase() }));
  return (
    <Card data-testid="policy-editor">
      <Title order={2} size="h4" mb="sm">
        {t('compliance.editPolicy')}
      </Title>
      <form
        onSubmit={(event: FormEvent) => {
          event.preventDefault();
          save.mutate();
        }}
      >
        <Stack gap="sm">
          <Select
            label={t('compliance.defaultRegion')}
            w={200}
            allowDeselect={false}
            data={regionOptions}
            value={form.default_region}
            onChange={(value) => setForm({ ...form, default_region: value ?? 'us' })}
            error={problem('default_region')}
          />
          <Textarea
            label={t('compliance.overrides')}
            description={t('compliance.overridesHint')}
            dir="ltr"
            autosize
            minRows={2}
            value={form.overrides}
            onChange={(e) => setForm({ ...form, overrides: e.currentTarget.value })}
            error={problem('overrides')}
          />
          <Text size="sm" fw={500}>
            {t('compliance.grants')}
          </Text>
          {form.grants.map((grant, index) => (
            <Group key={index} gap="xs" wrap="nowrap" align="flex-start">
              <Select
                aria-label={t('compliance.grantFrom', { n: index + 1 })}
                w={100}
                data={regionOptions}
                value={grant.from_region || null}
                onChange={(value) =>
                  setForm({ ...form, grants: form.grants.map((g, i) => (i === index ? { ...g, from_region: value ?? '' } : g)) })
                }
              />
              <Select
                aria-label={t('compliance.grantTo', { n: index + 1 })}
                w={100}
                data={regionOptions}
                value={grant.to_region || null}
                onChange={(value) =>
                  setForm({ ...form, grants: form.grants.map((g, i) => (i === index ? { ...g, to_region: value ?? '' } : g)) })
                }
              />
              <TextInput
                aria-label={t('compliance.grantBasis', { n: index + 1 })}
                placeholder={t('compliance.legalBasis')}
                flex={1}
                value={grant.legal_basis}
                onChange={(e) => {
                  const legal_basis = e.currentTarget.value;
                  setForm({ ...form, grants: form.grants.map((g, i) => (i === index ? { ...g, legal_basis } : g)) });
                }}
              />
              <Button
                variant="subtle"
                color="red"
                px={8}
                aria-label={t('compliance.removeGrant', { n: index + 1 })}
                onClick={() => setForm({ ...form, grants: form.grants.filter((_, i) => i !== index) })}
              >
                <IconTrash size={16} />
              </Button>
            </Group>
          ))}
          {problem('grants') ? (
            <Text size="sm" c="red">
              {problem('grants')}
            </Text>
          ) : null}
          <Button
            variant="subtle"
            size="xs"
            w="fit-content"
            leftSection={<IconPlus size={14} />}
            onClick={() => setForm({ ...form, grants: [...form.grants, { from_region: '', to_region: '', legal_basis: '' }] })}
          >
            {t('compliance.addGrant')}
          </Button>
          <Text size="sm" fw={500}>
            {t('compliance.retention')}
          </Text>
          {RETENTION_RULES.map((rule) => {
            const index = form.retention.findIndex((r) => r.rule === rule);
            const months = index >= 0 ? form.retention[index]!.after_months : null;
            return (
              <Group key={rule} gap="xs">
                <NumberInput
                  label={t(`compliance.rule.${rule}`)}
                  description={t('compliance.monthsHint')}
                  w={320}
                  min={1}
                  max={1200}
                  value={months ?? ''}
                  onChange={(value) => {
                    const rest = form.retention.filter((r) => r.rule !== rule);
                    const after = Number(value);
                    setForm({ ...form, retention: value === '' || !after ? rest : [...rest, { rule, after_months: after }] });
                  }}
                />
              </Group>
            );
          })}
          {problem('retention') ? (
            <Text size="sm" c="red">
              {problem('retention')}
            </Text>
          ) : null}
          {other ? (
            <Text size="sm" c="red" role="alert">
              {other}
            </Text>
          ) : null}
          <Group justify="flex-end">
            <Button type="submit" loading={save.isPending}>
              {t('compliance.savePolicy')}
            </Button>
          </Group>
        </Stack>
      </form>
    </Card>
  );
}

// ------------------------------------------------------------------ relocations

interface Relocation {
  old_contact_id: string;
  new_contact_id: string;
  from_region: string;
  to_region: string;
  moved: Record<string, number>;
}

function Relocations() {
  const { t, format } = useI18n();
  const errorText = useErrorText();
  const queryClient = useQueryClient();
  const [contactId, setContactId] = useState('');
  const [country, setCountry] = useState('');
  const [done, setDone] = useState<Relocation | null>(null);
  const steps = useQuery({
    queryKey: ['relocations'],
    queryFn: () =>
      call<{ data: AuditRecord[] }>(api.GET('/v1/compliance/audit', { params: { query: { kind: 'relocation', limit: 500 } } })).then(
        (r) => relocationSteps(r.data),
      ),
  });
  const move = useMutation({
    mutationFn: () =>
      call<Relocation>(api.POST('/v1/compliance/relocations', { body: { contact_id: contactId, country: country.trim() } })),
    onSuccess: (moved) => {
      setDone(moved);
      setContactId('');
      setCountry('');
      void queryClient.invalidateQueries({ queryKey: ['relocations'] });
    },
  });
  const named = (field: string) =>
    move.error instanceof ApiError
      ? move.error.fieldErrors
          .filter((e) => e.field === field)
          .map((e) => e.message)
          .join('; ') || undefined
      : undefined;
  const other =
    move.error && !(move.error instanceof ApiError && move.error.fieldErrors.some((e) => e.field === 'country' || e.field === 'contact_id'))
      ? errorText(move.error)
      : undefined;
  return (
    <Stack gap="md">
      <Card>
        <Title order={2} size="h4" mb={4}>
          {t('compliance.relocate')}
        </Title>
        <Text size="sm" c="dimmed" mb="sm">
          {t('compliance.relocateHint')}
        </Text>
        <form
          onSubmit={(event: FormEvent) => {
            event.preventDefault();
            setDone(null);
            move.mutate();
          }}
        >
          <Stack gap="sm">
            <ContactPicker label={t('compliance.subject')} value={contactId} onChange={setContactId} error={named('contact_id')} />
            <TextInput
              label={t('compliance.newCountry')}
              description={t('compliance.newCountryHint')}
              w={320}
              value={country}
              onChange={(e) => setCountry(e.currentTarget.value)}
              error={named('country')}
            />
            {other ? (
              <Text size="sm" c="red" role="alert">
                {other}
              </Text>
            ) : null}
            <Group justify="flex-end">
              <Button type="submit" loading={move.isPending} disabled={!contactId || !country.trim()}>
                {t('compliance.relocateButton')}
              </Button>
            </Group>
          </Stack>
        </form>
        {done ? (
          <Alert color="green" variant="light" mt="sm" icon={<IconCheck size={18} />} data-testid="relocated">
            <Text size="sm">
              {t('compliance.relocated', { from: done.from_region.toUpperCase(), to: done.to_region.toUpperCase() })}
            </Text>
            <Text size="sm" dir="ltr">
              {done.old_contact_id} → {done.new_contact_id}
            </Text>
            <Text size="xs" c="dimmed">
              {Object.entries(done.moved)
                .map(([service, rows]) => `${service}: ${rows}`)
                .join(' · ')}
            </Text>
          </Alert>
        ) : null}
      </Card>
      <Card>
        <Title order={2} size="h4" mb="sm">
          {t('compliance.relocations')}
        </Title>
        <QueryState query={steps} empty={<Empty title={t('compliance.noRelocations')} />}>
          {(rows) => (
            <ScrollArea>
              <Table striped miw={640} data-testid="relocation-steps">
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>{t('compliance.when')}</Table.Th>
                    <Table.Th>{t('compliance.action')}</Table.Th>
                    <Table.Th>{t('compliance.region')}</Table.Th>
                    <Table.Th>{t('compliance.record')}</Table.Th>
                    <Table.Th>{t('compliance.actor')}</Table.Th>
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {rows.map((step) => (
                    <Table.Tr key={`${step.region}-${step.seq}`} data-testid="relocation-step">
                      <Table.Td>{format.dateTime(step.at)}</Table.Td>
                      <Table.Td>{t(`compliance.step.${step.action.replace('relocation.', '') as 'copy_out' | 'copy_in' | 'remove'}`)}</Table.Td>
                      <Table.Td>{step.region.toUpperCase()}</Table.Td>
                      <Table.Td dir="ltr">{step.record_id}</Table.Td>
                      <Table.Td>{step.actor_id}</Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            </ScrollArea>
          )}
        </QueryState>
      </Card>
    </Stack>
  );
}

// ------------------------------------------------------------------ retention

interface RetentionRun {
  id: string;
  region: string;
  rule: string;
  ran_at?: string;
  affected?: number;
}

function Retention() {
  const { t, format } = useI18n();
  const policy = useQuery({
    queryKey: ['policy'],
    queryFn: () => call<TenantPolicy>(api.GET('/v1/compliance/policies', {})),
  });
  const runs = useQuery({
    queryKey: ['retention-runs'],
    queryFn: () => call<{ data: RetentionRun[] }>(api.GET('/v1/compliance/retention/runs', {})).then((r) => r.data),
  });
  return (
    <Stack gap="md">
      <Card>
        <Title order={2} size="h4" mb={4}>
          {t('compliance.retention')}
        </Title>
        <Text size="sm" c="dimmed" mb="sm">
          {t('compliance.retentionHint')}
        </Text>
        {policy.isPending ? (
          <Loading />
        ) : policy.isError ? (
          <ErrorState error={policy.error} onRetry={() => void policy.refetch()} />
        ) : policy.data.retention_rules?.length ? (
          <Stack gap={4} data-testid="retention-rules">
            {policy.data.retention_rules.map((r) => (
              <Text key={r.rule} size="sm">
                {t('compliance.retentionRule', { rule: r.rule, months: r.after_months })}
              </Text>
            ))}
          </Stack>
        ) : (
          <Empty title={t('compliance.noRetention')} />
        )}
      </Card>
      <Card>
        <Title order={2} size="h4" mb="sm">
          {t('compliance.retentionRuns')}
        </Title>
        <QueryState query={runs} empty={<Empty title={t('compliance.noRuns')} />}>
          {(rows) => (
            <ScrollArea>
              <Table striped miw={560} data-testid="retention-runs">
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>{t('compliance.when')}</Table.Th>
                    <Table.Th>{t('compliance.region')}</Table.Th>
                    <Table.Th>{t('compliance.retention')}</Table.Th>
                    <Table.Th>{t('compliance.records')}</Table.Th>
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {rows.map((run) => (
                    <Table.Tr key={`${run.region}-${run.id}`}>
                      <Table.Td>{run.ran_at ? format.dateTime(run.ran_at) : '—'}</Table.Td>
                      <Table.Td>{run.region.toUpperCase()}</Table.Td>
                      <Table.Td dir="ltr">{run.rule}</Table.Td>
                      <Table.Td>{format.number(run.affected ?? 0)}</Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            </ScrollArea>
          )}
        </QueryState>
      </Card>
    </Stack>
  );
}
