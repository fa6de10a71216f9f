/**
 * Wall-clock times in a named time zone ↔ instants (UTC), with the platform's Intl only.
 *
 * A due time is typed as the user reads a clock ("2026-12-03T10:00" in Europe/Berlin) and
 * sent as an instant; the offset depends on the date (summer time), so it is looked up
 * for that very moment, not taken from "now".
 */

const LOCAL = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})$/;

const partsFormat = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let format = partsFormat.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    partsFormat.set(timeZone, format);
  }
  return format;
}

/** The wall clock of `instant` (ms since the epoch) in `timeZone`, read as if it were UTC. */
function wallClock(instant: number, timeZone: string): number {
  const parts: Record<string, number> = {};
  for (const part of formatterFor(timeZone).formatToParts(new Date(instant))) {
    if (part.type !== 'literal') parts[part.type] = Number(part.value);
  }
  return Date.UTC(
    parts.year ?? 1970,
    (parts.month ?? 1) - 1,
    parts.day ?? 1,
    parts.hour ?? 0,
    parts.minute ?? 0,
    parts.second ?? 0,
  );
}

/** The zone's offset from UTC at `instant`, in ms (east positive). */
function offsetAt(instant: number, timeZone: string): number {
  const whole = Math.floor(instant / 1000) * 1000;
  return wallClock(whole, timeZone) - whole;
}

/**
 * The instant (ISO 8601, UTC) at which clocks in `timeZone` show `local`
 * ("YYYY-MM-DDTHH:MM"), or null if `local` is not such a time or the zone is unknown.
 *
 * Like Temporal's "compatible" rule: a time that occurs twice (clocks go back) is the
 * first of the two; a time that never occurs (clocks go forward) is moved forward by the
 * length of the gap (02:30 on the night summer time starts in Berlin is 03:30 CEST).
 */
export function zonedToUtc(local: string, timeZone: string): string | null {
  const match = LOCAL.exec(local);
  if (!match) return null;
  const [, y, mo, d, h, mi] = match.map(Number) as [number, number, number, number, number, number];
  const asUtc = Date.UTC(y, mo - 1, d, h, mi);
  const check = new Date(asUtc);
  if (check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d || h > 23 || mi > 59) return null;
  let before: number;
  let after: number;
  try {
    // The offsets in force a day either side cover any one transition in between.
    before = offsetAt(asUtc - 86_400_000, timeZone);
    after = offsetAt(asUtc + 86_400_000, timeZone);
  } catch {
    return null;
  }
  const candidates = [...new Set([before, after])]
    .map((offset) => asUtc - offset)
    .filter((instant) => wallClock(instant, timeZone) === asUtc)
    .sort((a, b) => a - b);
  const instant = candidates[0] ?? asUtc - before;
  return new Date(instant).toISOString();
}

/** What a `datetime-local` input shows for `instant` in `timeZone` ("YYYY-MM-DDTHH:MM"). */
export function utcToZoned(instant: Date, timeZone: string): string {
  return new Date(wallClock(instant.getTime(), timeZone)).toISOString().slice(0, 16);
}

/** The browser's zone, when the directory names none for the user. */
export function browserZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}
