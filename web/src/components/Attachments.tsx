import {
  ActionIcon,
  Anchor,
  Button,
  Card,
  FileButton,
  Group,
  Modal,
  Paper,
  Stack,
  Text,
  Title,
  Tooltip,
} from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { IconDownload, IconFile, IconTrash, IconUpload } from '@tabler/icons-react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type DragEvent } from 'react';
import { api, call, idempotencyKey } from '../api/client';
import { useI18n } from '../i18n/I18nProvider';
import { saveBlob } from '../lib/download';
import { MAX_FILE_BYTES, fileKind, fileSize, newestFirst, refusal, type Attachment } from '../lib/files';
import { ErrorState, Loading, useErrorText } from './States';

/**
 * The files of a contact (with its deals') or of one deal: upload by button or drop,
 * list, download (fetched with the token, saved as a blob) and delete after a question.
 */
export function Attachments({ contactId, dealId }: { contactId?: string; dealId?: string }) {
  const { t, format, language } = useI18n();
  const errorText = useErrorText();
  const queryClient = useQueryClient();
  const [dragging, setDragging] = useState(false);
  const [tooBig, setTooBig] = useState<string | null>(null);
  const [toDelete, setToDelete] = useState<Attachment | null>(null);
  const owner = dealId ? { deal_id: dealId } : { contact_id: contactId ?? '' };
  const key = ['attachments', dealId ?? contactId];

  const files = useQuery({
    queryKey: key,
    queryFn: () =>
      call<{ data: Attachment[] }>(
        dealId
          ? api.GET('/v1/deals/{deal_id}/attachments', { params: { path: { deal_id: dealId } } })
          : api.GET('/v1/contacts/{contact_id}/attachments', {
              params: { path: { contact_id: contactId ?? '' } },
            }),
      ).then((r) => newestFirst(r.data)),
  });

  const refresh = (file: Attachment) => {
    void queryClient.invalidateQueries({ queryKey: ['attachments'] });
    void queryClient.invalidateQueries({ queryKey: ['timeline', file.contact_id] });
  };

  const upload = useMutation({
    mutationFn: (file: File) =>
      call<Attachment>(
        api.POST('/v1/attachments', {
          params: {
            query: { ...owner, filename: file.name },
            header: { 'Idempotency-Key': idempotencyKey() },
          },
          // The raw bytes, named by the query: the API reads the type from the content.
          body: file as never,
          bodySerializer: (body: unknown) => body as BodyInit,
          headers: { 'Content-Type': 'application/octet-stream' },
        }),
      ),
    onSuccess: (file) => {
      notifications.show({ color: 'green', message: t('files.uploaded', { name: file.filename }) });
      refresh(file);
    },
  });

  const send = (file: File | null) => {
    setTooBig(null);
    upload.reset();
    if (!file) return;
    if (file.size > MAX_FILE_BYTES) {
      setTooBig(t('files.tooBig', { name: file.name }));
      return;
    }
    upload.mutate(file);
  };

  const download = useMutation({
    mutationFn: async (file: Attachment) => {
      const { data, error, response } = await api.GET('/v1/attachments/{attachment_id}', {
        params: { path: { attachment_id: file.id } },
        parseAs: 'blob',
      });
      if (!response.ok || !data) {
        await call(Promise.resolve({ data, error, response }));
        return;
      }
      saveBlob(data as Blob, file.filename);
    },
    onError: (error) =>
      notifications.show({ color: 'red', title: t('files.downloadFailed'), message: errorText(error) }),
  });

  const remove = useMutation({
    mutationFn: (file: Attachment) =>
      call<null>(
        api.DELETE('/v1/attachments/{attachment_id}', {
          params: {
            path: { attachment_id: file.id },
            header: { 'Idempotency-Key': idempotencyKey() },
          },
        }),
      ),
    onSuccess: (_none, file) => {
      setToDelete(null);
      notifications.show({ color: 'green', message: t('files.deleted', { name: file.filename }) });
      refresh(file);
    },
    onError: (error) => {
      setToDelete(null);
      notifications.show({ color: 'red', title: t('files.deleteFailed'), message: errorText(error) });
    },
  });

  const onDrop = (event: DragEvent<HTMLDivElement>) => {
    event.preventDefault();
    setDragging(false);
    send(event.dataTransfer.files[0] ?? null);
  };
  const problem = tooBig ?? (upload.error ? (refusal(upload.error) ?? errorText(upload.error)) : null);

  return (
    <Card data-testid="files">
      <Title order={2} size="h4" mb="sm">
        {t('files.title')}
      </Title>
      <Paper
        withBorder
        p="md"
        mb="sm"
        data-testid="drop-zone"
        onDragOver={(event) => {
          event.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={onDrop}
        style={{
          borderStyle: 'dashed',
          borderColor: dragging ? 'var(--mantine-color-indigo-5)' : undefined,
          background: dragging ? 'var(--mantine-color-indigo-0)' : undefined,
        }}
      >
        <Group justify="space-between" wrap="wrap" gap="xs">
          <Text size="sm" c="dimmed">
            {t('files.dropHint')}
          </Text>
          <FileButton onChange={send}>
            {(props) => (
              <Button
                {...props}
                size="xs"
                variant="light"
                leftSection={<IconUpload size={14} />}
                loading={upload.isPending}
              >
                {t('files.upload')}
              </Button>
            )}
          </FileButton>
        </Group>
        {problem ? (
          <Text size="sm" c="red" mt="xs" role="alert" data-testid="upload-error">
            {problem}
          </Text>
        ) : null}
      </Paper>
      {files.isPending ? (
        <Loading />
      ) : files.isError ? (
        <ErrorState error={files.error} onRetry={() => void files.refetch()} />
      ) : files.data.length === 0 ? (
        <Text size="sm" c="dimmed">
          {t('files.empty')}
        </Text>
      ) : (
        <Stack gap="xs" data-testid="file-list">
          {files.data.map((file) => (
            <Group key={file.id} justify="space-between" wrap="nowrap" gap="xs">
              <Group gap={6} wrap="nowrap" miw={0}>
                <IconFile size={18} style={{ flexShrink: 0 }} />
                <div style={{ minWidth: 0 }}>
                  <Anchor
                    component="button"
                    type="button"
                    size="sm"
                    fw={500}
                    onClick={() => download.mutate(file)}
                    style={{ wordBreak: 'break-all', textAlign: 'start' }}
                  >
                    {file.filename}
                  </Anchor>
                  <Text size="xs" c="dimmed">
                    {fileKind(file.media_type, file.filename)} · {fileSize(file.size, language)} ·{' '}
                    {file.uploaded_by} · {format.dateTime(file.created_at)}
                  </Text>
                </div>
              </Group>
              <Group gap={4} wrap="nowrap">
                <Tooltip label={t('files.downloadNamed', { name: file.filename })}>
                  <ActionIcon
                    variant="subtle"
                    aria-label={t('files.downloadNamed', { name: file.filename })}
                    loading={download.isPending && download.variables?.id === file.id}
                    onClick={() => download.mutate(file)}
                  >
                    <IconDownload size={16} />
                  </ActionIcon>
                </Tooltip>
                <Tooltip label={t('files.deleteNamed', { name: file.filename })}>
                  <ActionIcon
                    variant="subtle"
                    color="red"
                    aria-label={t('files.deleteNamed', { name: file.filename })}
                    onClick={() => setToDelete(file)}
                  >
                    <IconTrash size={16} />
                  </ActionIcon>
                </Tooltip>
              </Group>
            </Group>
          ))}
        </Stack>
      )}
      <Modal
        opened={toDelete !== null}
        onClose={() => setToDelete(null)}
        title={t('files.confirmTitle')}
        centered
      >
        <Text size="sm" mb="md">
          {t('files.confirm', { name: toDelete?.filename ?? '' })}
        </Text>
        <Group justify="flex-end">
          <Button variant="default" onClick={() => setToDelete(null)}>
            {t('common.cancel')}
          </Button>
          <Button
            color="red"
            loading={remove.isPending}
            onClick={() => toDelete && remove.mutate(toDelete)}
            data-autofocus
          >
            {t('files.delete')}
          </Button>
        </Group>
      </Modal>
    </Card>
  );
}

