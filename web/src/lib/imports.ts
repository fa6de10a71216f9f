/** The contact fields a column can fill (the importer's own list), in the order shown. */
export const IMPORT_FIELDS = [
  'first_name',
  'last_name',
  'name',
  'email',
  'phone',
  'country',
  'city',
  'street',
  'postal_code',
  'birthday',
  'tags',
  'language',
  'lifecycle_stage',
] as const;
export type ImportField = (typeof IMPORT_FIELDS)[number];

export const DUPLICATE_POLICIES = ['skip', 'update', 'create'] as const;
export type DuplicatePolicy = (typeof DUPLICATE_POLICIES)[number];

export interface ImportCounts {
  total: number;
  created: number;
  updated: number;
  skipped: number;
  failed: number;
  processed: number;
  forwarded: number;
}

export interface ImportPreviewRow {
  row: number;
  action: string;
  error: string;
  region: string;
  contact: Record<string, unknown>;
}

export interface ImportJob {
  id: string;
  file_name: string;
  format: string;
  status: string;
  headers: string[];
  mapping: Record<string, string>;
  duplicate_policy: string;
  default_country: string;
  encoding: string;
  delimiter: string;
  counts: ImportCounts;
  preview: ImportPreviewRow[];
  error: string;
}

/** The format the API is told, from the file's name (the API also sniffs the bytes). */
export function importFormat(fileName: string): 'csv' | 'xlsx' | null {
  const name = fileName.toLowerCase();
  if (name.endsWith('.xlsx')) return 'xlsx';
  if (name.endsWith('.csv') || name.endsWith('.txt')) return 'csv';
  return null;
}

/**
 * The mapping sent with the dry run and the start: every column of the file, mapped to
 * the field chosen or to '' (ignored); a field is filled by one column only, so choosing
 * it for a second column takes it from the first.
 */
export function remap(
  mapping: Record<string, string>,
  column: string,
  field: string,
): Record<string, string> {
  const next: Record<string, string> = {};
  for (const [c, f] of Object.entries(mapping)) {
    next[c] = field && f === field && c !== column ? '' : f;
  }
  next[column] = field;
  return next;
}

/** The rows the dry run refuses, in file order, and how many more the file has. */
export function rowErrors(job: Pick<ImportJob, 'preview' | 'counts'>): {
  rows: ImportPreviewRow[];
  notShown: number;
} {
  const rows = job.preview.filter((r) => r.action === 'error').sort((a, b) => a.row - b.row);
  return { rows, notShown: Math.max(job.counts.failed - rows.length, 0) };
}

/** Finished rows out of all, 0–100, for the progress bar. */
export function progress(counts: Pick<ImportCounts, 'total' | 'processed'>): number {
  if (!counts.total) return 0;
  return Math.min(100, Math.round((counts.processed / counts.total) * 100));
}

export const FINISHED = ['completed', 'cancelled', 'failed', 'expired'];
