import { createElement } from 'react';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../api/client';
import { isBlank } from './blank';
import { fileKind, fileSize, newestFirst, refusal, type Attachment } from './files';

const file = (id: string, created_at: string): Attachment => ({
  id,
  contact_id: 'eu_c',
  deal_id: '',
  filename: `${id}.pdf`,
  media_type: 'application/pdf',
  size: 1,
  sha256: '',
  uploaded_by: 'olga',
  created_at,
});

describe('files on contacts and deals', () => {
  it('says how big a file is in the locale', () => {
    expect(fileSize(512, 'en')).toBe('512 B');
    expect(fileSize(1536, 'en')).toBe('1.5 KB');
    expect(fileSize(48213, 'en')).toBe('47 KB');
    expect(fileSize(3 * 1024 * 1024, 'de')).toBe('3 MB');
    expect(fileSize(2.5 * 1024 * 1024, 'de')).toBe('2,5 MB');
  });

  it('names the type the API read from the content', () => {
    expect(fileKind('application/pdf', 'x.bin')).toBe('PDF');
    expect(
      fileKind('application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', 'a.xlsx'),
    ).toBe('XLSX');
    expect(fileKind('application/x-unknown', 'notes.md')).toBe('MD');
  });

  it('lists the newest first', () => {
    const files = [file('a', '2026-12-01T10:00:00Z'), file('b', '2026-12-02T10:00:00Z')];
    expect(newestFirst(files).map((f) => f.id)).toEqual(['b', 'a']);
  });

  it('shows why the API refused a file, and nothing of its own for an outage', () => {
    const refused = new ApiError(422, {
      title: 'Invalid input',
      status: 422,
      errors: [{ field: 'file', message: 'text/html files are not accepted' }],
    });
    expect(refusal(refused)).toBe('text/html files are not accepted');
    expect(refusal(new ApiError(413, { title: 'Payload too large', status: 413, detail: 'at most 10 MiB' }))).toBe(
      'at most 10 MiB',
    );
    expect(refusal(new ApiError(503, { title: 'Service unavailable', status: 503 }))).toBeNull();
  });
});

describe('an empty field', () => {
  it('is blank when it has no value, an empty string or only empty parts', () => {
    expect(isBlank('')).toBe(true);
    expect(isBlank(null)).toBe(true);
    expect(isBlank(['', ''])).toBe(true);
    expect(isBlank(['olga', ''])).toBe(false);
    expect(isBlank(createElement('span', null, ''))).toBe(false);
  });
});
