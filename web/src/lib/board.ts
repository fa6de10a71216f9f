import { KeyboardCode, type KeyboardCoordinateGetter } from '@dnd-kit/core';
import type { Board } from '../api/types';

/**
 * The board as it looks once `dealId` sits at the top of `toStageId`: what the screen
 * shows while the move is on its way (rolled back if the API refuses it). Counts follow;
 * totals follow where the deal is in the reporting currency (else the server's answer does).
 */
export function moveCard(board: Board, dealId: string, toStageId: string): Board {
  const from = board.columns.find((c) => c.deals.some((d) => d.id === dealId));
  const deal = from?.deals.find((d) => d.id === dealId);
  const to = board.columns.find((c) => c.stage.id === toStageId);
  if (!from || !deal || !to || from === to) return board;
  const sameCurrency = deal.amount?.currency === board.reporting_currency;
  const value = sameCurrency ? Number(deal.amount?.amount ?? 0) : 0;
  const shift = (amount: string, by: number) => String(Number(amount || 0) + by);
  return {
    ...board,
    columns: board.columns.map((column) => {
      if (column === from) {
        return {
          ...column,
          count: column.count - 1,
          total: { ...column.total, amount: shift(column.total.amount, -value) },
          deals: column.deals.filter((d) => d.id !== dealId),
        };
      }
      if (column === to) {
        return {
          ...column,
          count: column.count + 1,
          total: { ...column.total, amount: shift(column.total.amount, value) },
          deals: [
            { ...deal, stage_id: to.stage.id, stage_name: to.stage.name, stage_entered_at: new Date().toISOString() },
            ...column.deals,
          ],
        };
      }
      return column;
    }),
  };
}

/**
 * Keyboard dragging between columns: Left/Right jump to the neighbouring column as the
 * screen shows it (so it is right even when Persian lays the board out right to left).
 */
export const columnCoordinates: KeyboardCoordinateGetter = (event, { context }) => {
  const { active, collisionRect, droppableRects, droppableContainers, over } = context;
  if (!active || !collisionRect) return undefined;
  const step =
    event.code === KeyboardCode.Right ? 1 : event.code === KeyboardCode.Left ? -1 : 0;
  if (event.code === KeyboardCode.Up || event.code === KeyboardCode.Down) {
    event.preventDefault();
    return undefined;
  }
  if (!step) return undefined;
  event.preventDefault();
  const columns = droppableContainers
    .getEnabled()
    .map((container) => ({ id: container.id, rect: droppableRects.get(container.id) }))
    .filter((c): c is { id: typeof c.id; rect: NonNullable<typeof c.rect> } => Boolean(c.rect))
    .sort((a, b) => a.rect.left - b.rect.left);
  const currentId = over?.id ?? (active.data.current as { stageId?: string } | undefined)?.stageId;
  const index = columns.findIndex((c) => c.id === currentId);
  const next = columns[index + step];
  if (!next) return undefined;
  return {
    x: next.rect.left + (next.rect.width - collisionRect.width) / 2,
    y: next.rect.top + 56,
  };
};
