import { Badge, Button, Card, Group, Modal, NumberInput, Select, Stack, Text, TextInput, Title } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { IconArrowDown, IconArrowUp, IconPencil, IconPlus, IconTrash } from '@tabler/icons-react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { ApiError, api, call, idempotencyKey } from '../../api/client';
import type { Pipeline } from '../../api/types';
import { Empty, QueryState, useErrorText } from '../../components/States';
import { useI18n } from '../../i18n/I18nProvider';
import { moved, pipelineBody, stageForms, stageIndex, type StageForm } from '../../lib/settings';
import { usePipelines } from '../DealPage';

const NEW_STAGES: StageForm[] = [
  { name: '', kind: 'open', win_probability: 10 },
  { name: '', kind: 'open', win_probability: 50 },
  { name: '', kind: 'won', win_probability: 100 },
  { name: '', kind: 'lost', win_probability: 0 },
];

/** The message the API gave for the fields `test` accepts. */
function named(error: unknown, test: (field: string) => boolean): string | undefined {
  if (!(error instanceof ApiError)) return undefined;
  const found = error.fieldErrors.filter((e) => test(e.field));
  return found.length ? found.map((e) => e.message).join('; ') : undefined;
}

export function Pipelines() {
  const { t } = useI18n();
  const pipelines = usePipelines();
  const queryClient = useQueryClient();
  const [editing, setEditing] = useState<Pipeline | null>(null);
  const create = useMutation({
    mutationFn: ({ name, stages }: { name: string; stages: StageForm[] }) =>
      call<Pipeline>(
        api.POST('/v1/pipelines', {
          headers: { 'Idempotency-Key': idempotencyKey() },
          body: pipelineBody(name, stages) as never,
        }),
      ),
    onSuccess: (created) => {
      notifications.show({ color: 'green', message: t('settings.pipelineCreated', { name: created.name }) });
      void queryClient.invalidateQueries({ queryKey: ['pipelines'] });
    },
  });

  return (
    <Stack gap="md">
      <Card>
        <Title order={2} size="h4" mb="sm">
          {t('settings.pipelines')}
        </Title>
        <QueryState query={pipelines} empty={<Empty title={t('board.noPipelines')} />}>
          {(rows) => (
            <Stack gap="sm" data-testid="pipelines">
              {rows.map((pipeline) => (
                <div key={pipeline.id} data-testid="pipeline" data-pipeline={pipeline.name}>
                  <Group gap="xs">
                    <Text fw={600}>{pipeline.name}</Text>
                    {pipeline.is_default ? (
                      <Badge size="sm" variant="light">
                        {t('settings.default')}
                      </Badge>
                    ) : null}
                    <Button
                      size="compact-xs"
                      variant="subtle"
                      leftSection={<IconPencil size={14} />}
                      aria-label={t('settings.editNamed', { name: pipeline.name })}
                      onClick={() => setEditing(pipeline)}
                    >
                      {t('settings.edit')}
                    </Button>
                  </Group>
                  <Group gap={6} mt={4}>
                    {[...pipeline.stages]
                      .sort((a, b) => a.position - b.position)
                      .map((stage) => (
                        <Badge
                          key={stage.id}
                          variant="outline"
                          color={stage.kind === 'won' ? 'green' : stage.kind === 'lost' ? 'red' : 'gray'}
                        >
                          {stage.name} · {stage.win_probability}%
                        </Badge>
                      ))}
                  </Group>
                </div>
              ))}
            </Stack>
          )}
        </QueryState>
      </Card>
      <Card>
        <Title order={2} size="h4" mb="sm">
          {t('settings.newPipeline')}
        </Title>
        <PipelineForm
          initialName=""
          initialStages={NEW_STAGES}
          submitLabel={t('settings.createPipeline')}
          resetOnSuccess
          save={(name, stages) => create.mutateAsync({ name, stages })}
          saving={create.isPending}
          error={create.error}
        />
      </Card>
      {editing ? <EditPipeline pipeline={editing} onClose={() => setEditing(null)} /> : null}
    </Stack>
  );
}

function EditPipeline({ pipeline, onClose }: { pipeline: Pipeline; onClose: () => void }) {
  const { t } = useI18n();
  const queryClient = useQueryClient();
  const update = useMutation({
    mutationFn: ({ name, stages }: { name: string; stages: StageForm[] }) =>
      call<Pipeline>(
        api.PATCH('/v1/pipelines/{pipeline_id}', {
          params: { path: { pipeline_id: pipeline.id } },
          body: pipelineBody(name, stages) as never,
        }),
      ),
    onSuccess: (saved) => {
      notifications.show({ color: 'green', message: t('settings.pipelineSaved', { name: saved.name }) });
      // The board and the deal pages show stage names and order from here.
      void queryClient.invalidateQueries({ queryKey: ['pipelines'] });
      void queryClient.invalidateQueries({ queryKey: ['board'] });
      onClose();
    },
  });
  return (
    <Modal opened onClose={onClose} title={t('settings.editNamed', { name: pipeline.name })} size="xl">
      <Stack gap="sm">
        <Text size="sm" c="dimmed">
          {t('settings.editStagesHint')}
        </Text>
        <PipelineForm
          initialName={pipeline.name}
          initialStages={stageForms(pipeline.stages)}
          submitLabel={t('settings.savePipeline')}
          save={(name, stages) => update.mutateAsync({ name, stages })}
          saving={update.isPending}
          error={update.error}
          onCancel={onClose}
        />
      </Stack>
    </Modal>
  );
}

/** A pipeline's name and ordered stages: for a new pipeline and for editing one. */
function PipelineForm({
  initialName,
  initialStages,
  submitLabel,
  save,
  saving,
  error,
  resetOnSuccess = false,
  onCancel,
}: {
  initialName: string;
  initialStages: StageForm[];
  submitLabel: string;
  save: (name: string, stages: StageForm[]) => Promise<unknown>;
  saving: boolean;
  error: unknown;
  resetOnSuccess?: boolean;
  onCancel?: () => void;
}) {
  const { t } = useI18n();
  const errorText = useErrorText();
  const [name, setName] = useState(initialName);
  const [stages, setStages] = useState<StageForm[]>(initialStages);
  const stageError = (index: number, part: (rest: string) => boolean) => {
    if (!(error instanceof ApiError)) return undefined;
    // The API counts the named stages only, as they were sent.
    const sent = stages.map((s, i) => (s.name.trim() ? i : -1)).filter((i) => i >= 0);
    const found = error.fieldErrors.filter((e) => {
      const at = stageIndex(e.field);
      return at !== null && sent[at] === index && part(e.field.replace(/^stages\[\d+\]\.?/, ''));
    });
    return found.length ? found.map((e) => e.message).join('; ') : undefined;
  };
  const other =
    error &&
    !(error instanceof ApiError && error.fieldErrors.some((e) => e.field === 'name' || stageIndex(e.field) !== null))
      ? errorText(error)
      : named(error, (f) => f === 'stages');
  const setStage = (index: number, change: Partial<StageForm>) =>
    setStages(stages.map((s, i) => (i === index ? { ...s, ...change } : s)));

  return (
    <form
      onSubmit={(event) => {
        event.preventDefault();
        save(name, stages).then(
          () => {
            if (resetOnSuccess) {
              setName(initialName);
              setStages(initialStages);
            }
          },
          () => undefined, // shown from `error`
        );
      }}
    >
      <Stack gap="sm">
        <TextInput
          label={t('settings.pipelineName')}
          required
          value={name}
          onChange={(e) => setName(e.currentTarget.value)}
          error={named(error, (f) => f === 'name')}
        />
        <Text size="sm" fw={500}>
          {t('settings.stages')}
        </Text>
        {stages.map((stage, index) => (
          <Group key={stage.id ?? `new-${index}`} gap="xs" align="flex-start" wrap="nowrap" data-testid="stage-row">
            <Stack gap={4}>
              <Button
                variant="subtle"
                size="compact-xs"
                aria-label={t('settings.moveStageUp', { n: index + 1 })}
                disabled={index === 0}
                onClick={() => setStages(moved(stages, index, -1))}
              >
                <IconArrowUp size={14} />
              </Button>
              <Button
                variant="subtle"
                size="compact-xs"
                aria-label={t('settings.moveStageDown', { n: index + 1 })}
                disabled={index === stages.length - 1}
                onClick={() => setStages(moved(stages, index, 1))}
              >
                <IconArrowDown size={14} />
              </Button>
            </Stack>
            <Stack gap={4} flex={1}>
              <TextInput
                aria-label={t('settings.stageName', { n: index + 1 })}
                placeholder={t('settings.stageName', { n: index + 1 })}
                value={stage.name}
                onChange={(e) => setStage(index, { name: e.currentTarget.value })}
                error={stageError(index, (rest) => !rest.startsWith('required_fields'))}
              />
              <TextInput
                size="xs"
                aria-label={t('settings.requiredFields', { n: index + 1 })}
                placeholder={t('settings.requiredFieldsPlaceholder')}
                value={stage.required_fields ?? ''}
                onChange={(e) => setStage(index, { required_fields: e.currentTarget.value })}
                error={stageError(index, (rest) => rest.startsWith('required_fields'))}
              />
            </Stack>
            <Select
              aria-label={t('settings.stageKind', { n: index + 1 })}
              w={130}
              allowDeselect={false}
              value={stage.kind}
              onChange={(value) => setStage(index, { kind: (value as StageForm['kind']) ?? 'open' })}
              data={(['open', 'won', 'lost'] as const).map((k) => ({ value: k, label: t(`settings.kind.${k}`) }))}
            />
            <NumberInput
              aria-label={t('settings.winProbability', { n: index + 1 })}
              w={100}
              min={0}
              max={100}
              suffix=" %"
              disabled={stage.kind !== 'open'}
              value={stage.kind === 'won' ? 100 : stage.kind === 'lost' ? 0 : stage.win_probability}
              onChange={(value) => setStage(index, { win_probability: Number(value) || 0 })}
            />
            <Button
              variant="subtle"
              color="red"
              px={8}
              aria-label={t('settings.removeStage', { n: index + 1 })}
              disabled={stages.length <= 2}
              onClick={() => setStages(stages.filter((_, i) => i !== index))}
            >
              <IconTrash size={16} />
            </Button>
          </Group>
        ))}
        <Button
          variant="subtle"
          size="xs"
          w="fit-content"
          leftSection={<IconPlus size={14} />}
          onClick={() => setStages([...stages, { name: '', kind: 'open', win_probability: 50 }])}
        >
          {t('settings.addStage')}
        </Button>
        {other ? (
          <Text size="sm" c="red" role="alert">
            {other}
          </Text>
        ) : null}
        <Group justify="flex-end">
          {onCancel ? (
            <Button variant="default" onClick={onCancel}>
              {t('common.cancel')}
            </Button>
          ) : null}
          <Button type="submit" loading={saving} disabled={!name.trim()}>
            {submitLabel}
          </Button>
        </Group>
      </Stack>
    </form>
  );
}
