import { ApiError } from '../api/client';

/** The message the API gave for the inputs a test accepts (joined), or undefined. */
export function fieldError(error: unknown, test: (field: string) => boolean): string | undefined {
  if (!(error instanceof ApiError)) return undefined;
  const found = error.fieldErrors.filter((e) => test(e.field));
  return found.length ? found.map((e) => e.message).join('; ') : undefined;
}

/** True when the API named none of the form's own inputs, so the problem is shown as a whole. */
export function unnamed(error: unknown, inputs: readonly string[]): boolean {
  if (!error) return false;
  if (!(error instanceof ApiError)) return true;
  return !error.fieldErrors.some((e) => inputs.some((i) => e.field === i || e.field.startsWith(`${i}.`) || e.field.startsWith(`${i}[`)));
}

/** A list typed with commas, spaces or new lines: trimmed, without blanks or repeats. */
export function listOf(text: string): string[] {
  return [...new Set(text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean))];
}

/** A field key suggested from its label: "Measurement date" → "measurement_date". */
export function keyFromLabel(label: string): string {
  const key = label
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/ß/g, 'ss')
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^[^a-z]+/, '')
    .replace(/_+$/, '');
  return key.slice(0, 63);
}

/** A form's field mapping as lines "submitted field = CRM field". */
export function mappingText(mapping: Record<string, string>): string {
  return Object.entries(mapping)
    .map(([field, target]) => `${field} = ${target}`)
    .join('\n');
}

/** Lines "submitted field = CRM field" (or ":" / "→") back to the mapping; blank lines ignored. */
export function parseMapping(text: string): Record<string, string> {
  const mapping: Record<string, string> = {};
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const [field = '', ...rest] = line.split(/=|:|→/);
    mapping[field.trim()] = rest.join('').trim();
  }
  return mapping;
}

export const FORM_TARGETS = [
  'first_name',
  'last_name',
  'name',
  'email',
  'phone',
  'country',
  'city',
  'language',
  'note',
  'deal_title',
] as const;

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);
}

/**
 * The HTML a website pastes to post a form to Atlas: one input per mapped field, the
 * honeypot hidden from people (a bot fills it and the submission is dropped).
 */
export function embedSnippet(
  origin: string,
  form: { key: string; field_mapping: Record<string, string>; honeypot_field?: string },
): string {
  const inputType = (target: string) =>
    target === 'email' ? 'email' : target === 'phone' ? 'tel' : 'text';
  const lines = [`<form method="post" action="${escapeHtml(`${origin}/public/forms/${form.key}`)}">`];
  for (const [field, target] of Object.entries(form.field_mapping)) {
    const name = escapeHtml(field);
    if (target === 'note') {
      lines.push(`  <label>${name} <textarea name="${name}"></textarea></label>`);
    } else {
      lines.push(`  <label>${name} <input type="${inputType(target)}" name="${name}"></label>`);
    }
  }
  if (form.honeypot_field) {
    const name = escapeHtml(form.honeypot_field);
    lines.push(
      `  <input type="text" name="${name}" tabindex="-1" autocomplete="off" style="position:absolute;left:-9999px" aria-hidden="true">`,
    );
  }
  lines.push('  <button type="submit">Send</button>', '</form>');
  return lines.join('\n');
}

/** The tenant's working hours as PUT /v1/notifications/working-hours takes them. */
export function workingHoursBody(start: string, end: string, days: string[]): { start: string; end: string; days: number[] } {
  return {
    start: start.trim(),
    end: end.trim(),
    days: [...new Set(days.map(Number))].filter((d) => d >= 1 && d <= 7).sort((a, b) => a - b),
  };
}

/** A document template's variables typed as JSON: the object, or null when it is not one. */
export function parseVariables(text: string): Record<string, unknown> | null {
  if (!text.trim()) return {};
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** A delivery's state as shown: one pending after a failed attempt is being retried. */
export function deliveryState(d: { status: string; attempts: number }): 'delivered' | 'pending' | 'retrying' | 'failed' {
  if (d.status === 'delivered') return 'delivered';
  if (d.status === 'pending') return d.attempts > 0 ? 'retrying' : 'pending';
  return 'failed';
}

/** A webhook delivery may be sent again (now) unless it has not been tried yet. */
export function replayable(d: { status: string; attempts: number }): boolean {
  return deliveryState(d) !== 'pending';
}
