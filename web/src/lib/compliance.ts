import { zonedToUtc } from './time';

/** The shapes of the compliance API (gateway answers PrivacyRequest, AuditRecord, …). */
export type RequestKind = 'export' | 'rectification' | 'erasure';
export const REQUEST_KINDS: readonly RequestKind[] = ['export', 'rectification', 'erasure'];
export const REQUEST_STATUSES = ['received', 'in_progress', 'completed', 'failed'] as const;

export interface PrivacyRequest {
  id: string;
  kind: string;
  contact_id: string;
  status: string;
  law: string;
  due_at?: string;
  requested_by?: string;
  created_at?: string;
  completed_at?: string;
  error?: string;
  attempts?: number;
  receipt?: string;
  receipt_signature?: string;
  public_key?: string;
  rectified_fields?: string[];
}

export interface AuditRecord {
  seq: string;
  service: string;
  region: string;
  kind: string;
  action: string;
  actor_id: string;
  actor_home_region?: string;
  record_id?: string;
  legal_basis?: string;
  at: string;
  hash?: string;
}

export const AUDIT_KINDS = [
  'cross_region_access',
  'export',
  'privacy_request',
  'policy_change',
  'elevated_login',
  'retention',
  'relocation',
] as const;

export interface AuditChain {
  service: string;
  region: string;
  records_checked: number;
  intact: boolean;
  problems: { seq: number; problem?: string; detail?: string }[];
  head_hash?: string;
}

export interface ResidencyReport {
  tenant_id: string;
  generated_at: string;
  regions: {
    region: string;
    services: Record<string, Record<string, { subjects: number; records: number }>>;
    subjects: number;
    violations: number;
  }[];
  violations: {
    service: string;
    kind: string;
    stored_in: string;
    required_region: string;
    subjects: number;
    records: number;
  }[];
}

export interface TenantPolicy {
  default_region?: string;
  residency_overrides?: Record<string, string>;
  access_grants?: { from_region: string; to_region: string; legal_basis: string }[];
  retention_rules?: { rule: string; after_months: number }[];
  version?: number;
  updated_by?: string;
  updated_at?: string;
}

export interface PolicyVersion {
  version: number;
  policy?: TenantPolicy;
  changes?: string[];
  changed_by?: string;
  changed_at?: string;
}

export interface RequestForm {
  kind: RequestKind;
  by: 'email' | 'contact_id';
  subject: string;
  /** Rectification: field → corrected value. */
  changes: { field: string; value: string }[];
}

/**
 * The body of POST /v1/privacy/requests: the subject by email or by contact id, and for a
 * rectification the fields to correct (empty rows left out; the API names a bad one).
 */
export function requestBody(form: RequestForm): Record<string, unknown> {
  const subject = form.subject.trim();
  const body: Record<string, unknown> = { kind: form.kind };
  if (form.by === 'email') body.email = subject;
  else body.contact_id = subject;
  if (form.kind === 'rectification') {
    const changes = Object.fromEntries(
      form.changes.filter((c) => c.field.trim()).map((c) => [c.field.trim(), c.value.trim()]),
    );
    body.changes = changes;
  }
  return body;
}

/** Which form field shows a problem the API named (the subject's field is one input). */
export function formField(apiField: string): 'subject' | 'changes' | 'kind' | null {
  if (apiField === 'email' || apiField === 'contact_id' || apiField === 'phone') return 'subject';
  if (apiField === 'changes' || apiField.startsWith('changes.')) return 'changes';
  if (apiField === 'kind') return 'kind';
  return null;
}

/** How close a request is to its legal due date: done, overdue, due within 7 days, or on time. */
export function dueState(
  request: Pick<PrivacyRequest, 'status' | 'due_at'>,
  now: Date,
): 'done' | 'overdue' | 'soon' | 'ok' {
  if (request.status === 'completed') return 'done';
  if (!request.due_at) return 'ok';
  const left = new Date(request.due_at).getTime() - now.getTime();
  if (left < 0) return 'overdue';
  return left <= 7 * 86_400_000 ? 'soon' : 'ok';
}

export interface AuditFilters {
  kind: string;
  actor: string;
  /** Calendar days (YYYY-MM-DD) in the officer's zone, both included. */
  from: string;
  to: string;
}

/** The audit query: the period's days in the officer's zone, as UTC instants. */
export function auditQuery(filters: AuditFilters, timeZone: string): Record<string, string> {
  const query: Record<string, string> = {};
  if (filters.kind) query.kind = filters.kind;
  if (filters.actor.trim()) query.actor = filters.actor.trim();
  if (filters.from) {
    const since = zonedToUtc(`${filters.from}T00:00`, timeZone);
    if (since) query.since = since;
  }
  if (filters.to) {
    // Up to the end of that day: the start of the next.
    const next = new Date(`${filters.to}T00:00:00Z`);
    next.setUTCDate(next.getUTCDate() + 1);
    const until = zonedToUtc(`${next.toISOString().slice(0, 10)}T00:00`, timeZone);
    if (until) query.until = until;
  }
  return query;
}

export function auditFiltersFrom(params: URLSearchParams): AuditFilters {
  return {
    kind: params.get('kind') ?? '',
    actor: params.get('actor') ?? '',
    from: params.get('from') ?? '',
    to: params.get('to') ?? '',
  };
}

/** One row per region, service and kind of record, as the residency proof lists them. */
export function residencyRows(
  report: ResidencyReport,
): { region: string; service: string; kind: string; subjects: number; records: number }[] {
  return report.regions.flatMap((entry) =>
    Object.keys(entry.services)
      .sort()
      .flatMap((service) =>
        Object.keys(entry.services[service] ?? {})
          .sort()
          .map((kind) => ({
            region: entry.region,
            service,
            kind,
            ...(entry.services[service]?.[kind] ?? { subjects: 0, records: 0 }),
          })),
      ),
  );
}

export interface ReceiptSummary {
  contactId: string;
  region: string;
  completedAt: string;
  services: { service: string; verification: string; erased: unknown }[];
}

/** What an erasure receipt says, read from its canonical JSON (null when it is not one). */
export function readReceipt(receipt: string | undefined): ReceiptSummary | null {
  if (!receipt) return null;
  try {
    const document = JSON.parse(receipt) as Record<string, unknown>;
    if (document.type !== 'erasure_receipt') return null;
    const services = Array.isArray(document.services) ? document.services : [];
    return {
      contactId: String(document.contact_id ?? ''),
      region: String(document.region ?? ''),
      completedAt: String(document.completed_at ?? ''),
      services: services.map((s: Record<string, unknown>) => ({
        service: String(s.service ?? ''),
        verification: String(s.verification ?? ''),
        erased: s.erased,
      })),
    };
  } catch {
    return null;
  }
}

/** The export ZIP's file name, when the answer's Content-Disposition gives none. */
export function fileNameFrom(disposition: string | null, fallback: string): string {
  const star = /filename\*=UTF-8''([^;]+)/i.exec(disposition ?? '');
  if (star?.[1]) return decodeURIComponent(star[1]);
  const plain = /filename="?([^";]+)"?/i.exec(disposition ?? '');
  return plain?.[1] ?? fallback;
}

/** The residency and access policy as the console edits it. */
export interface PolicyForm {
  default_region: string;
  /** One override a line: "CH = eu". */
  overrides: string;
  grants: { from_region: string; to_region: string; legal_basis: string }[];
  retention: { rule: string; after_months: number }[];
}

export const RETENTION_RULES = ['delete_inactive_leads', 'anonymize_lost_deals'] as const;

export function policyForm(policy: TenantPolicy): PolicyForm {
  return {
    default_region: policy.default_region || 'us',
    overrides: Object.entries(policy.residency_overrides ?? {})
      .map(([country, region]) => `${country} = ${region}`)
      .join('\n'),
    grants: (policy.access_grants ?? []).map((g) => ({ ...g })),
    retention: (policy.retention_rules ?? []).map((r) => ({ ...r })),
  };
}

/** The body of PUT /v1/compliance/policies: overrides parsed from their lines (a line
 * without "=" is sent as it is, so the API names it), empty grant rows left out. */
export function policyBody(form: PolicyForm): Record<string, unknown> {
  const overrides: Record<string, string> = {};
  for (const line of form.overrides.split('\n')) {
    if (!line.trim()) continue;
    const [country = '', region = ''] = line.split('=').map((part) => part.trim());
    overrides[country.toUpperCase()] = region.toLowerCase();
  }
  return {
    default_region: form.default_region.trim().toLowerCase(),
    residency_overrides: overrides,
    access_grants: form.grants
      .filter((g) => g.from_region || g.to_region || g.legal_basis.trim())
      .map((g) => ({ from_region: g.from_region, to_region: g.to_region, legal_basis: g.legal_basis.trim() })),
    retention_rules: form.retention.map((r) => ({ rule: r.rule, after_months: r.after_months })),
  };
}

/** Which part of the policy form an API problem such as `access_grants[0].legal_basis` is about. */
export function policyField(apiField: string): 'default_region' | 'overrides' | 'grants' | 'retention' | null {
  if (apiField.startsWith('default_region')) return 'default_region';
  if (apiField.startsWith('residency_overrides')) return 'overrides';
  if (apiField.startsWith('access_grants')) return 'grants';
  if (apiField.startsWith('retention_rules')) return 'retention';
  return null;
}

/** The steps of relocations, newest first, from the audit trail: the contacts service's
 * records (one per step and region; other services record the same steps). */
export function relocationSteps(records: AuditRecord[]): AuditRecord[] {
  return records
    .filter((r) => r.kind === 'relocation' && r.service === 'contacts')
    .sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
}
