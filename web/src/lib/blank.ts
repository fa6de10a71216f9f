import type { ReactNode } from 'react';

/**
 * Nothing to show: no value, an empty string, or a list of such (`{a}{b}` with both
 * empty). An element is a value. A field that is blank shows "—", never an empty line.
 */
export function isBlank(value: ReactNode): boolean {
  if (value === null || value === undefined || value === false || value === true) return true;
  if (typeof value === 'string') return value.trim() === '';
  if (Array.isArray(value)) return value.every((item) => isBlank(item as ReactNode));
  return false;
}
