import { Button, Group, Modal, Stack, Text } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { IconTrash } from '@tabler/icons-react';
import { useMutation } from '@tanstack/react-query';
import { useState } from 'react';
import { useErrorText } from './States';
import { useI18n } from '../i18n/I18nProvider';

/** A delete button that asks first: the dialog names the record and says what becomes of
 * its data; the API's refusal is shown in the dialog, which stays open. */
export function ConfirmDelete({
  name,
  consequence,
  remove,
  onDeleted,
}: {
  /** What the record is called, as the user sees it. */
  name: string;
  /** What happens to the data it holds, in one or two sentences. */
  consequence: string;
  remove: () => Promise<unknown>;
  onDeleted: () => void;
}) {
  const { t } = useI18n();
  const errorText = useErrorText();
  const [open, setOpen] = useState(false);
  const deletion = useMutation({
    mutationFn: remove,
    onSuccess: () => {
      setOpen(false);
      notifications.show({ color: 'green', message: t('common.deletedNamed', { name }) });
      onDeleted();
    },
  });
  return (
    <>
      <Button
        size="xs"
        variant="subtle"
        color="red"
        leftSection={<IconTrash size={14} />}
        aria-label={t('common.deleteNamed', { name })}
        onClick={() => {
          deletion.reset();
          setOpen(true);
        }}
      >
        {t('common.delete')}
      </Button>
      {open ? (
        <Modal opened onClose={() => setOpen(false)} title={t('common.deleteQuestion', { name })}>
          <Stack gap="sm">
            <Text size="sm">{consequence}</Text>
            {deletion.isError ? (
              <Text size="sm" c="red" role="alert">
                {errorText(deletion.error)}
              </Text>
            ) : null}
            <Group justify="flex-end">
              <Button variant="default" onClick={() => setOpen(false)}>
                {t('common.cancel')}
              </Button>
              <Button color="red" loading={deletion.isPending} onClick={() => deletion.mutate()}>
                {t('common.delete')}
              </Button>
            </Group>
          </Stack>
        </Modal>
      ) : null}
    </>
  );
}
