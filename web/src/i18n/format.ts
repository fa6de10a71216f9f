/** Dates, numbers and money for the interface's locale, in the user's time zone (Intl). */

export interface Formatters {
  date: (iso: string | null | undefined) => string;
  dateTime: (iso: string | null | undefined) => string;
  number: (value: number) => string;
  /** 0.4286 → "42.9%" */
  percent: (value: number) => string;
  money: (amount: string | number | null | undefined, currency: string | undefined) => string;
  relative: (iso: string | null | undefined, now?: Date) => string;
}

export function formatters(locale: string, timeZone: string | undefined): Formatters {
  const zone = timeZone || undefined;
  const date = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeZone: zone });
  const dateTime = new Intl.DateTimeFormat(locale, {
    dateStyle: 'medium',
    timeStyle: 'short',
    timeZone: zone,
  });
  const number = new Intl.NumberFormat(locale);
  const percent = new Intl.NumberFormat(locale, { style: 'percent', maximumFractionDigits: 1 });
  const relative = new Intl.RelativeTimeFormat(locale, { numeric: 'auto' });
  const parse = (iso: string | null | undefined): Date | null => {
    if (!iso) return null;
    const value = new Date(iso);
    return Number.isNaN(value.getTime()) ? null : value;
  };
  return {
    date: (iso) => {
      const value = parse(iso);
      return value ? date.format(value) : '';
    },
    dateTime: (iso) => {
      const value = parse(iso);
      return value ? dateTime.format(value) : '';
    },
    number: (value) => number.format(value),
    percent: (value) => percent.format(value),
    money: (amount, currency) => {
      if (amount === null || amount === undefined || amount === '' || !currency) return '';
      const value = typeof amount === 'number' ? amount : Number(amount);
      try {
        return new Intl.NumberFormat(locale, { style: 'currency', currency }).format(value);
      } catch {
        return `${number.format(value)} ${currency}`;
      }
    },
    relative: (iso, now = new Date()) => {
      const value = parse(iso);
      if (!value) return '';
      const seconds = (value.getTime() - now.getTime()) / 1000;
      const steps: [Intl.RelativeTimeFormatUnit, number][] = [
        ['year', 31536000],
        ['month', 2592000],
        ['week', 604800],
        ['day', 86400],
        ['hour', 3600],
        ['minute', 60],
      ];
      for (const [unit, size] of steps) {
        if (Math.abs(seconds) >= size) return relative.format(Math.round(seconds / size), unit);
      }
      return relative.format(Math.round(seconds), 'second');
    },
  };
}

/** The calendar day (YYYY-MM-DD) of an instant in a time zone. */
export function dayIn(instant: Date, timeZone: string | undefined): string {
  return new Intl.DateTimeFormat('en-CA', {
    timeZone: timeZone || undefined,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  }).format(instant);
}
