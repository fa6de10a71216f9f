import {
  closestCenter,
  DndContext,
  DragOverlay,
  PointerSensor,
  pointerWithin,
  useDraggable,
  useDroppable,
  useSensor,
  useSensors,
  type CollisionDetection,
  type DragEndEvent,
  type DragStartEvent,
} from '@dnd-kit/core';
import { CSS } from '@dnd-kit/utilities';
import {
  ActionIcon,
  Alert,
  Anchor,
  Badge,
  Button,
  Group,
  Menu,
  Paper,
  Select,
  Stack,
  Text,
  Title,
  VisuallyHidden,
} from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { IconAddressBook, IconDots, IconPlus, IconUser } from '@tabler/icons-react';
import { useMutation, useQueries, useQuery, useQueryClient } from '@tanstack/react-query';
import { createContext, useContext, useState, type KeyboardEvent } from 'react';
import { Link, useSearchParams } from 'react-router';
import { ApiError, api, call, idempotencyKey } from '../api/client';
import type { Board, BoardColumn, Contact, Deal, DirectoryUser, Pipeline, Stage } from '../api/types';
import { useSignedIn } from '../auth/useSession';
import { DealDialog } from '../components/DealDialog';
import { Empty, ErrorState, Loading, useErrorText } from '../components/States';
import { useI18n } from '../i18n/I18nProvider';
import {
  boardFiltersFrom,
  boardFiltersTo,
  contactIds,
  moveCard,
  nextTarget,
  type BoardFilters,
} from '../lib/board';
import { fullName } from '../lib/contacts';

/** Contact names by id, read once per contact on the board (the board carries only ids). */
const ContactNames = createContext<Map<string, string>>(new Map());

// The column under the pointer, else the nearest one.
const collision: CollisionDetection = (args) => {
  const hits = pointerWithin(args);
  return hits.length ? hits : closestCenter(args);
};

export default function PipelineBoard() {
  const { t } = useI18n();
  const session = useSignedIn();
  const [params, setParams] = useSearchParams();
  const filters = boardFiltersFrom(params);
  const update = (changes: Partial<BoardFilters>) =>
    setParams(boardFiltersTo({ ...boardFiltersFrom(params), ...changes }), { replace: true });
  const pipelines = useQuery({
    queryKey: ['pipelines'],
    queryFn: () => call<{ data: Pipeline[] }>(api.GET('/v1/pipelines', {})).then((r) => r.data),
  });
  // A sales rep's board holds only their own deals: the filters are for those who see more.
  const seesOthers = session.role === 'admin' || session.role === 'manager';
  const users = useQuery({
    queryKey: ['users'],
    queryFn: () =>
      call<{ data: DirectoryUser[] }>(api.GET('/v1/users', {})).then((r) => r.data),
    enabled: seesOthers,
    staleTime: 300_000,
  });
  const teams = [...new Set((users.data ?? []).map((u) => u.team).filter(Boolean))].sort();
  const chosen =
    filters.pipeline ||
    pipelines.data?.find((p) => p.is_default)?.id ||
    pipelines.data?.[0]?.id ||
    '';
  const [creating, setCreating] = useState(false);

  return (
    <Stack gap="md">
      <Group justify="space-between">
        <Title order={1} size="h2">
          {t('board.title')}
        </Title>
        <Group gap="sm">
          {seesOthers ? (
            <>
              <Select
                aria-label={t('board.owner')}
                placeholder={t('board.anyOwner')}
                w={190}
                clearable
                searchable
                value={filters.owner || null}
                onChange={(value) => update({ owner: value ?? '' })}
                data={mergeOption(
                  (users.data ?? []).map((u) => ({ value: u.id, label: u.display_name || u.id })),
                  filters.owner,
                )}
              />
              <Select
                aria-label={t('board.team')}
                placeholder={t('board.anyTeam')}
                w={170}
                clearable
                value={filters.team || null}
                onChange={(value) => update({ team: value ?? '' })}
                data={mergeOption(
                  teams.map((team) => ({ value: team, label: team })),
                  filters.team,
                )}
              />
            </>
          ) : null}
          {pipelines.data && pipelines.data.length > 0 ? (
            <Select
              aria-label={t('board.pipeline')}
              w={240}
              allowDeselect={false}
              value={chosen}
              onChange={(value) => value && update({ pipeline: value })}
              data={pipelines.data.map((p) => ({ value: p.id, label: p.name }))}
            />
          ) : null}
          {chosen ? (
            <Button leftSection={<IconPlus size={16} />} onClick={() => setCreating(true)}>
              {t('dealForm.new')}
            </Button>
          ) : null}
        </Group>
      </Group>
      {creating ? <DealDialog pipelineId={chosen} onCreated={() => undefined} onClose={() => setCreating(false)} /> : null}
      {pipelines.isPending ? (
        <Loading label={t('common.loading')} />
      ) : pipelines.isError ? (
        <ErrorState error={pipelines.error} onRetry={() => void pipelines.refetch()} />
      ) : !chosen ? (
        <Empty title={t('board.noPipelines')} />
      ) : (
        <BoardView pipelineId={chosen} owner={filters.owner} team={filters.team} />
      )}
    </Stack>
  );
}

/** A filter value from the URL stays selectable even if the directory does not list it. */
function mergeOption(options: { value: string; label: string }[], value: string) {
  return value && !options.some((o) => o.value === value)
    ? [...options, { value, label: value }]
    : options;
}

function BoardView({ pipelineId, owner, team }: { pipelineId: string; owner: string; team: string }) {
  const { t, format, dir } = useI18n();
  const errorText = useErrorText();
  const queryClient = useQueryClient();
  const queryKey = ['board', pipelineId, owner, team];
  const [dragging, setDragging] = useState<Deal | null>(null);
  // Keyboard moves: Space or Enter picks a card up, arrows choose the column, Space or
  // Enter drops it there, Escape puts it back.
  const [picked, setPicked] = useState<{ deal: Deal; target: number } | null>(null);
  const board = useQuery({
    queryKey,
    queryFn: () =>
      call<Board>(
        api.GET('/v1/pipelines/{pipeline_id}/board', {
          params: {
            path: { pipeline_id: pipelineId },
            query: { owner_id: owner || undefined, team: team || undefined },
          },
        }),
      ),
  });

  const move = useMutation({
    mutationFn: ({ deal, stage }: { deal: Deal; stage: Stage }) =>
      call<Deal>(
        api.POST('/v1/deals/{deal_id}/stage', {
          params: { path: { deal_id: deal.id }, header: { 'Idempotency-Key': idempotencyKey() } },
          body: { stage_id: stage.id, expected_version: deal.version },
        }),
      ),
    // Optimistic: the card lands at once; a refusal puts it back and says why.
    onMutate: async ({ deal, stage }) => {
      await queryClient.cancelQueries({ queryKey });
      const previous = queryClient.getQueryData<Board>(queryKey);
      if (previous) queryClient.setQueryData(queryKey, moveCard(previous, deal.id, stage.id));
      return { previous };
    },
    onError: (error, { deal, stage }, context) => {
      if (context?.previous) queryClient.setQueryData(queryKey, context.previous);
      const fields =
        error instanceof ApiError && error.fieldErrors.length
          ? error.fieldErrors.map((e) => `${humanize(e.field)}: ${e.message}`).join('; ')
          : errorText(error);
      notifications.show({
        color: 'red',
        title: t('board.refused', { deal: deal.title, stage: stage.name }),
        message: fields,
        autoClose: 8000,
      });
    },
    onSuccess: (_moved, { deal, stage }) => {
      notifications.show({
        color: 'green',
        message: t('board.moved', { deal: deal.title, stage: stage.name }),
      });
    },
    onSettled: () => {
      void queryClient.invalidateQueries({ queryKey });
      void queryClient.invalidateQueries({ queryKey: ['deals'] });
    },
  });

  const sensors = useSensors(
    useSensor(PointerSensor, { activationConstraint: { distance: 6 } }),
  );
  // One read per contact (cached across screens); the API has no batch read of contacts.
  const contacts = useQueries({
    queries: (board.data ? contactIds(board.data) : []).map((id) => ({
      queryKey: ['contact', id],
      queryFn: () =>
        call<Contact>(api.GET('/v1/contacts/{contact_id}', { params: { path: { contact_id: id } } })),
      retry: false,
      staleTime: 300_000,
    })),
  });
  const names = new Map<string, string>();
  for (const contact of contacts) {
    if (contact.data) names.set(contact.data.id, fullName(contact.data));
  }

  if (board.isPending) return <Loading label={t('common.loading')} />;
  if (board.isError) return <ErrorState error={board.error} onRetry={() => void board.refetch()} />;
  const data = board.data;
  const stages = data.columns.map((c) => c.stage);

  const moveTo = (deal: Deal, stageId: string) => {
    const stage = stages.find((s) => s.id === stageId);
    if (stage && stage.id !== deal.stage_id) move.mutate({ deal, stage });
  };
  const onDragStart = ({ active }: DragStartEvent) => {
    setPicked(null);
    setDragging((active.data.current as { deal: Deal }).deal);
  };
  const onCardKey = (deal: Deal, event: KeyboardEvent) => {
    const select = event.key === ' ' || event.key === 'Enter';
    if (!picked || picked.deal.id !== deal.id) {
      if (select) {
        event.preventDefault();
        setPicked({ deal, target: stages.findIndex((s) => s.id === deal.stage_id) });
      }
      return;
    }
    if (event.key === 'ArrowLeft' || event.key === 'ArrowRight') {
      event.preventDefault();
      setPicked({ deal, target: nextTarget(picked.target, event.key, stages.length, dir) });
    } else if (select) {
      event.preventDefault();
      setPicked(null);
      const stage = stages[picked.target];
      if (stage) moveTo(deal, stage.id);
    } else if (event.key === 'Escape') {
      setPicked(null);
    }
  };
  const pickedStage = picked ? stages[picked.target] : undefined;
  const onDragEnd = ({ active, over }: DragEndEvent) => {
    setDragging(null);
    if (over) moveTo((active.data.current as { deal: Deal }).deal, String(over.id));
  };

  return (
    <ContactNames.Provider value={names}>
    <Stack gap="sm">
      {data.missing_rates.length ? (
        <Alert color="yellow" variant="light">
          {t('board.missingRates', { currencies: data.missing_rates.join(', ') })}
        </Alert>
      ) : null}
      <Text size="sm" c="dimmed" id="board-hint">
        {t('board.dragHint')}
      </Text>
      <DndContext
        sensors={sensors}
        collisionDetection={collision}
        onDragStart={onDragStart}
        onDragEnd={onDragEnd}
        onDragCancel={() => setDragging(null)}
        accessibility={{ screenReaderInstructions: { draggable: t('board.dragHint') } }}
      >
        <VisuallyHidden aria-live="assertive">
          {picked && pickedStage ? `${picked.deal.title}: ${t('board.moveTo')} ${pickedStage.name}` : ''}
        </VisuallyHidden>
        <div className="board-scroller" data-testid="board">
          {data.columns.map((column) => (
            <Column
              key={column.stage.id}
              column={column}
              currency={data.reporting_currency}
              stages={stages}
              onMove={moveTo}
              onCardKey={onCardKey}
              targeted={pickedStage?.id === column.stage.id}
              pickedId={picked?.deal.id ?? null}
            />
          ))}
        </div>
        <DragOverlay>
          {dragging ? <CardBody deal={dragging} format={format} t={t} /> : null}
        </DragOverlay>
      </DndContext>
    </Stack>
    </ContactNames.Provider>
  );
}

function Column({
  column,
  currency,
  stages,
  onMove,
  onCardKey,
  targeted,
  pickedId,
}: {
  column: BoardColumn;
  currency: string;
  stages: Stage[];
  onMove: (deal: Deal, stageId: string) => void;
  onCardKey: (deal: Deal, event: KeyboardEvent) => void;
  targeted: boolean;
  pickedId: string | null;
}) {
  const { t, format } = useI18n();
  const { setNodeRef, isOver } = useDroppable({ id: column.stage.id });
  return (
    <section
      ref={setNodeRef}
      className="board-column"
      data-over={isOver || targeted}
      data-testid="board-column"
      data-stage={column.stage.name}
      aria-label={column.stage.name}
    >
      <Stack gap={2} mb="sm" px={4}>
        <Group justify="space-between" wrap="nowrap">
          <Text fw={700} size="sm" truncate>
            {column.stage.name}
          </Text>
          <Badge variant="white" color="gray" data-testid="column-count">
            {format.number(column.count)}
          </Badge>
        </Group>
        <Text size="xs" c="dimmed" data-testid="column-total">
          {format.money(column.total.amount, column.total.currency || currency)}
        </Text>
      </Stack>
      <Stack gap="xs">
        {column.deals.length === 0 ? (
          <Text size="xs" c="dimmed" ta="center" py="md">
            {t('board.empty')}
          </Text>
        ) : (
          column.deals.map((deal) => (
            <DealCard
              key={deal.id}
              deal={deal}
              stages={stages}
              onMove={onMove}
              onKey={onCardKey}
              picked={pickedId === deal.id}
            />
          ))
        )}
      </Stack>
    </section>
  );
}

function DealCard({
  deal,
  stages,
  onMove,
  onKey,
  picked,
}: {
  deal: Deal;
  stages: Stage[];
  onMove: (deal: Deal, stageId: string) => void;
  onKey: (deal: Deal, event: KeyboardEvent) => void;
  picked: boolean;
}) {
  const { t, format } = useI18n();
  const { attributes, listeners, setNodeRef, transform, isDragging } = useDraggable({
    id: deal.id,
    data: { deal, stageId: deal.stage_id },
  });
  return (
    <Paper
      ref={setNodeRef}
      withBorder
      shadow="xs"
      p="sm"
      className="deal-card"
      data-dragging={isDragging}
      data-picked={picked}
      data-testid="deal-card"
      data-deal={deal.title}
      style={{ transform: CSS.Translate.toString(transform) }}
      {...attributes}
      aria-pressed={picked}
      {...listeners}
      onKeyDown={(event: KeyboardEvent) => onKey(deal, event)}
    >
      <Group justify="space-between" align="flex-start" wrap="nowrap" gap={4}>
        <CardBody deal={deal} format={format} t={t} bare />
        <Menu position="bottom-end" withinPortal>
          <Menu.Target>
            <ActionIcon
              variant="subtle"
              color="gray"
              size="sm"
              aria-label={t('board.moveTo')}
              // Keys on the menu button open the menu; they must not start a drag.
              onKeyDown={(e) => e.stopPropagation()}
              onPointerDown={(e) => e.stopPropagation()}
            >
              <IconDots size={16} />
            </ActionIcon>
          </Menu.Target>
          <Menu.Dropdown>
            <Menu.Label>{t('board.moveTo')}</Menu.Label>
            {stages
              .filter((s) => s.id !== deal.stage_id)
              .map((s) => (
                <Menu.Item key={s.id} onClick={() => onMove(deal, s.id)}>
                  {s.name}
                </Menu.Item>
              ))}
          </Menu.Dropdown>
        </Menu>
      </Group>
    </Paper>
  );
}

function CardBody({
  deal,
  format,
  t,
  bare = false,
}: {
  deal: Deal;
  format: ReturnType<typeof useI18n>['format'];
  t: ReturnType<typeof useI18n>['t'];
  bare?: boolean;
}) {
  const names = useContext(ContactNames);
  const contactName = deal.contact_id ? names.get(deal.contact_id) : undefined;
  // A link on a card: a click opens it, a drag still moves the card (so no native link
  // drag), and Enter on it follows the link instead of picking the card up.
  const stop = {
    draggable: false,
    onKeyDown: (e: { stopPropagation: () => void }) => e.stopPropagation(),
  };
  const body = (
    <Stack gap={4} miw={0}>
      <Anchor
        component={Link}
        to={`/deals/${deal.id}`}
        fw={600}
        size="sm"
        c="dark"
        lineClamp={2}
        data-testid="deal-link"
        {...stop}
      >
        {deal.title}
      </Anchor>
      <Text size="sm" fw={500} c="indigo.8">
        {format.money(deal.amount?.amount, deal.amount?.currency)}
      </Text>
      <Group gap={6} wrap="nowrap">
        <IconUser size={12} />
        <Text size="xs" c="dimmed" truncate>
          {deal.owner_id}
        </Text>
      </Group>
      {deal.contact_id ? (
        <Group gap={6} wrap="nowrap">
          <IconAddressBook size={12} />
          <Anchor
            component={Link}
            to={`/contacts/${deal.contact_id}`}
            size="xs"
            truncate
            data-testid="deal-contact"
            {...stop}
          >
            {contactName ?? t('deal.contact')}
          </Anchor>
        </Group>
      ) : null}
      <Text size="xs" c="dimmed">
        {t('board.age', { age: format.relative(deal.stage_entered_at || deal.created_at) })}
      </Text>
    </Stack>
  );
  if (bare) return body;
  return (
    <Paper withBorder shadow="md" p="sm" w={256}>
      {body}
    </Paper>
  );
}

/** "lost_reason" → "Lost reason": the field the API names, in words. */
function humanize(field: string): string {
  const words = field.replace(/^custom_fields\./, '').replace(/[_.]/g, ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}
