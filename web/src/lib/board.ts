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
 * The column a picked-up card targets after an arrow key. Arrows follow the screen, so
 * in a right-to-left layout (columns run from the right) ArrowRight goes one stage back.
 */
export function nextTarget(
  index: number,
  key: string,
  count: number,
  dir: 'ltr' | 'rtl',
): number {
  const forward = dir === 'rtl' ? 'ArrowLeft' : 'ArrowRight';
  const back = dir === 'rtl' ? 'ArrowRight' : 'ArrowLeft';
  if (key === forward) return Math.min(index + 1, count - 1);
  if (key === back) return Math.max(index - 1, 0);
  return index;
}

export interface BoardFilters {
  pipeline: string;
  owner: string;
  team: string;
}

/** The board's filters live in the URL, so a filtered board is a link to share. */
export function boardFiltersFrom(params: URLSearchParams): BoardFilters {
  return {
    pipeline: params.get('pipeline') ?? '',
    owner: params.get('owner') ?? '',
    team: params.get('team') ?? '',
  };
}

export function boardFiltersTo(filters: BoardFilters): URLSearchParams {
  const params = new URLSearchParams();
  for (const key of ['pipeline', 'owner', 'team'] as const) {
    const value = filters[key].trim();
    if (value) params.set(key, value);
  }
  return params;
}

/** Each contact on the board once: one read per contact, however many deals it has. */
export function contactIds(board: Board): string[] {
  return [...new Set(board.columns.flatMap((c) => c.deals.map((d) => d.contact_id)).filter(Boolean))];
}
