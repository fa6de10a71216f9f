import type { Task } from '../api/types';
import { dayIn } from '../i18n/format';

export interface DueTask {
  task: Task;
  overdue: boolean;
}

/** Open tasks due today or earlier, in the user's time zone; overdue first, then by time. */
export function dueTodayOrOverdue(tasks: Task[], now: Date, timeZone: string | undefined): DueTask[] {
  const today = dayIn(now, timeZone);
  return tasks
    .filter((task) => task.status === 'open' && task.due_at)
    .map((task) => {
      const due = new Date(task.due_at as string);
      return { task, due, day: dayIn(due, timeZone) };
    })
    .filter(({ day }) => day <= today)
    .sort((a, b) => a.due.getTime() - b.due.getTime())
    .map(({ task, due }) => ({ task, overdue: due.getTime() < now.getTime() }));
}

/**
 * Open tasks for the task list: overdue first (most overdue on top), then the rest by
 * due time, tasks without a due time last.
 */
export function orderTasks(tasks: Task[], now: Date): DueTask[] {
  const at = (task: Task) => (task.due_at ? new Date(task.due_at).getTime() : Number.POSITIVE_INFINITY);
  return tasks
    .map((task) => ({ task, overdue: task.status === 'open' && at(task) < now.getTime() }))
    .sort((a, b) => Number(b.overdue) - Number(a.overdue) || at(a.task) - at(b.task) || a.task.id.localeCompare(b.task.id));
}
