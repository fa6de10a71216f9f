import type { Deal, Stage } from '../api/types';

export interface HistoryEntry {
  from: string;
  to: string;
  by: string;
  at: string;
  /** Whole days the deal spent in `from` before this move (null for the first entry). */
  daysInFrom: number | null;
}

/**
 * The deal's stage changes, newest first, with stage names instead of ids (a stage
 * since removed keeps its id) and how long the deal stayed in the stage it left.
 */
export function stageHistory(deal: Pick<Deal, 'history' | 'created_at'>, stages: Stage[]): HistoryEntry[] {
  const name = (id: string) => (id ? (stages.find((s) => s.id === id)?.name ?? id) : '');
  const changes = [...(deal.history ?? [])].sort(
    (a, b) => new Date(a.moved_at).getTime() - new Date(b.moved_at).getTime(),
  );
  let enteredAt: string | null = null;
  const entries = changes.map((change) => {
    const since = change.from_stage_id ? (enteredAt ?? deal.created_at) : null;
    const days = since
      ? Math.floor((new Date(change.moved_at).getTime() - new Date(since).getTime()) / 86_400_000)
      : null;
    enteredAt = change.moved_at;
    return {
      from: name(change.from_stage_id),
      to: name(change.to_stage_id),
      by: change.moved_by,
      at: change.moved_at,
      daysInFrom: days !== null && Number.isFinite(days) ? Math.max(days, 0) : null,
    };
  });
  // The deal's start, when the history does not record it: created in the first stage left.
  const first = changes[0];
  if (first?.from_stage_id) {
    entries.unshift({ from: '', to: name(first.from_stage_id), by: '', at: deal.created_at, daysInFrom: null });
  }
  return entries.reverse();
}

/** "invoice.pdf"-style name for a downloaded document. */
export function documentFileName(title: string, id: string): string {
  const base = title.trim().replace(/[\\/:*?"<>|]+/g, ' ').replace(/\s+/g, ' ').trim();
  return `${base || id}.pdf`;
}
