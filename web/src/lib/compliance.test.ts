import { describe, expect, it } from 'vitest';
import {
  auditQuery,
  dueState,
  fileNameFrom,
  formField,
  policyBody,
  policyField,
  policyForm,
  readReceipt,
  relocationSteps,
  requestBody,
  residencyRows,
  type ResidencyReport,
} from './compliance';
import { mayUse, navFor } from './nav';

describe('the compliance console', () => {
  it('is offered to compliance officers and admins only', () => {
    expect(navFor('compliance_officer').map((i) => i.to)).toContain('/compliance');
    expect(navFor('admin').map((i) => i.to)).toContain('/compliance');
    expect(navFor('sales_rep').map((i) => i.to)).not.toContain('/compliance');
    expect(mayUse('manager', '/compliance')).toBe(false);
    expect(mayUse('compliance_officer', '/compliance')).toBe(true);
  });

  it('asks for a request by email or by contact id, with the fields a rectification corrects', () => {
    expect(requestBody({ kind: 'export', by: 'email', subject: ' a@b.de ', changes: [] })).toEqual({
      kind: 'export',
      email: 'a@b.de',
    });
    expect(
      requestBody({
        kind: 'rectification',
        by: 'contact_id',
        subject: 'eu_01',
        changes: [
          { field: 'last_name', value: ' Mueller ' },
          { field: '', value: 'ignored' },
        ],
      }),
    ).toEqual({ kind: 'rectification', contact_id: 'eu_01', changes: { last_name: 'Mueller' } });
  });

  it('shows each problem the API names under the input it belongs to', () => {
    expect(formField('email')).toBe('subject');
    expect(formField('contact_id')).toBe('subject');
    expect(formField('changes.last_name')).toBe('changes');
    expect(formField('other')).toBeNull();
  });

  it('marks requests overdue or due within a week, never a completed one', () => {
    const now = new Date('2026-12-07T12:00:00Z');
    expect(dueState({ status: 'received', due_at: '2026-12-06T12:00:00Z' }, now)).toBe('overdue');
    expect(dueState({ status: 'received', due_at: '2026-12-10T12:00:00Z' }, now)).toBe('soon');
    expect(dueState({ status: 'received', due_at: '2027-01-07T12:00:00Z' }, now)).toBe('ok');
    expect(dueState({ status: 'completed', due_at: '2026-12-06T12:00:00Z' }, now)).toBe('done');
  });

  it("filters the audit trail by whole days in the officer's zone", () => {
    expect(
      auditQuery({ kind: 'export', actor: ' dana ', from: '2026-12-01', to: '2026-12-07' }, 'Europe/Berlin'),
    ).toEqual({
      kind: 'export',
      actor: 'dana',
      since: '2026-11-30T23:00:00.000Z',
      until: '2026-12-07T23:00:00.000Z',
    });
    expect(auditQuery({ kind: '', actor: '', from: '', to: '' }, 'UTC')).toEqual({});
  });

  it('lists residency counts per region, service and kind', () => {
    const report: ResidencyReport = {
      tenant_id: 't',
      generated_at: '',
      violations: [],
      regions: [
        {
          region: 'eu',
          subjects: 2,
          violations: 0,
          services: {
            deals: { deal: { subjects: 1, records: 3 } },
            contacts: { note: { subjects: 1, records: 4 }, contact: { subjects: 2, records: 2 } },
          },
        },
      ],
    };
    expect(residencyRows(report).map((r) => `${r.region}/${r.service}/${r.kind}=${r.records}`)).toEqual([
      'eu/contacts/contact=2',
      'eu/contacts/note=4',
      'eu/deals/deal=3',
    ]);
  });

  it('reads what an erasure receipt says, and nothing from what is not one', () => {
    const receipt = JSON.stringify({
      type: 'erasure_receipt',
      contact_id: 'eu_01',
      region: 'eu',
      completed_at: '2026-12-07T10:00:00+00:00',
      services: [{ service: 'deals', verification: 'empty', erased: { deal: 1 } }],
    });
    expect(readReceipt(receipt)).toMatchObject({
      contactId: 'eu_01',
      region: 'eu',
      services: [{ service: 'deals', verification: 'empty' }],
    });
    expect(readReceipt('{"type": "other"}')).toBeNull();
    expect(readReceipt('not json')).toBeNull();
  });

  it('saves a download under the name the API gives', () => {
    expect(fileNameFrom('attachment; filename="export-eu_01.zip"', 'x.zip')).toBe('export-eu_01.zip');
    expect(fileNameFrom("attachment; filename*=UTF-8''r%C3%A9sidence.csv", 'x')).toBe('résidence.csv');
    expect(fileNameFrom(null, 'residency.pdf')).toBe('residency.pdf');
  });

  it('edits the policy: overrides one a line, empty grant rows left out, problems placed', () => {
    const form = policyForm({
      default_region: 'us',
      residency_overrides: { CH: 'eu' },
      access_grants: [{ from_region: 'eu', to_region: 'us', legal_basis: 'SCC' }],
      retention_rules: [{ rule: 'delete_inactive_leads', after_months: 24 }],
    });
    expect(form.overrides).toBe('CH = eu');
    form.overrides += '\n no = BR \n\n';
    form.grants.push({ from_region: '', to_region: '', legal_basis: ' ' });
    expect(policyBody(form)).toEqual({
      default_region: 'us',
      residency_overrides: { CH: 'eu', NO: 'br' },
      access_grants: [{ from_region: 'eu', to_region: 'us', legal_basis: 'SCC' }],
      retention_rules: [{ rule: 'delete_inactive_leads', after_months: 24 }],
    });
    expect(policyField('residency_overrides.XX')).toBe('overrides');
    expect(policyField('access_grants[0].legal_basis')).toBe('grants');
    expect(policyField('retention_rules[1].after_months')).toBe('retention');
    expect(policyField('body')).toBeNull();
  });

  it('lists relocation steps from the contacts service, newest first', () => {
    const record = (seq: string, service: string, kind: string, at: string) => ({
      seq,
      service,
      region: 'eu',
      kind,
      action: 'relocation.copy_out',
      actor_id: 'olga',
      at,
    });
    const steps = relocationSteps([
      record('1', 'contacts', 'relocation', '2026-12-01T10:00:00Z'),
      record('2', 'deals', 'relocation', '2026-12-01T10:00:01Z'),
      record('3', 'contacts', 'export', '2026-12-01T10:00:02Z'),
      record('4', 'contacts', 'relocation', '2026-12-01T10:00:03Z'),
    ]);
    expect(steps.map((s) => s.seq)).toEqual(['4', '1']);
  });
});
