import { ApiError } from '../api/client';
import type { Attachment } from '../api/types';

export type { Attachment };

/** 10 MiB per file: the API's own limit, checked first so a big file is not sent in vain. */
export const MAX_FILE_BYTES = 10 * 1024 * 1024;

/** A file's size for people: bytes, KB or MB with the locale's digits. */
export function fileSize(bytes: number, locale: string): string {
  const number = (value: number, digits: number) =>
    new Intl.NumberFormat(locale, { maximumFractionDigits: digits }).format(value);
  if (bytes < 1024) return `${number(bytes, 0)} B`;
  if (bytes < 1024 * 1024) return `${number(bytes / 1024, bytes < 10 * 1024 ? 1 : 0)} KB`;
  return `${number(bytes / (1024 * 1024), 1)} MB`;
}

/** A short name for a media type: "PDF", "JPEG", "XLSX"… */
export function fileKind(mediaType: string, fileName: string): string {
  const known: Record<string, string> = {
    'application/pdf': 'PDF',
    'image/jpeg': 'JPEG',
    'image/png': 'PNG',
    'image/gif': 'GIF',
    'image/webp': 'WebP',
    'image/heic': 'HEIC',
    'text/plain': 'TXT',
    'text/csv': 'CSV',
    'application/vnd.openxmlformats-officedocument.wordprocessingml.document': 'DOCX',
    'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet': 'XLSX',
    'application/vnd.oasis.opendocument.text': 'ODT',
    'application/vnd.oasis.opendocument.spreadsheet': 'ODS',
  };
  const base = mediaType.split(';')[0]?.trim().toLowerCase() ?? '';
  if (known[base]) return known[base];
  const extension = fileName.includes('.') ? fileName.split('.').pop() : '';
  return (extension || base || '?').toUpperCase();
}

/** Files newest first (the API's order, kept whatever order a cache holds them in). */
export function newestFirst(files: Attachment[]): Attachment[] {
  return [...files].sort((a, b) => b.created_at.localeCompare(a.created_at) || b.id.localeCompare(a.id));
}

/**
 * Why a file was refused, to show under the upload: the message the API gave for `file`
 * (type, size, the contact's total), else the problem's detail, else null for an outage
 * (shown as the plain "unavailable" note).
 */
export function refusal(error: unknown): string | null {
  if (!(error instanceof ApiError)) return null;
  const named = error.fieldErrors.find((e) => e.field === 'file');
  if (named) return named.message;
  if (error.status === 413) return error.problem.detail || error.problem.title;
  if (error.status >= 400 && error.status < 500) {
    return error.fieldErrors[0]?.message || error.problem.detail || error.problem.title;
  }
  return null;
}
