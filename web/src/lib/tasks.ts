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
