/** The shapes the screens read from the gateway's JSON (protobuf field names). */

export interface Money {
  amount: string;
  currency: string;
}

export interface Address {
  street: string;
  city: string;
  postal_code: string;
  state: string;
  country: string;
}

export interface Contact {
  id: string;
  region: string;
  first_name: string;
  last_name: string;
  emails: string[];
  phones: string[];
  address: Address;
  time_zone: string;
  language: string;
  owner_id: string;
  owner_team: string;
  source: string;
  lifecycle_stage: string;
  tags: string[];
  created_at: string;
  updated_at: string;
  version: number;
  score?: number;
}

export interface Page<T> {
  data: T[];
  next_cursor: string | null;
  regions?: string[];
}

export interface TimelineEntry {
  id: string;
  contact_id: string;
  kind: string;
  body: string;
  occurred_at: string;
  author_id: string;
  created_at: string;
  direction: string;
  subject: string;
  duration_seconds: number;
}

export interface Stage {
  id: string;
  name: string;
  position: number;
  win_probability: number;
  kind: string;
  /** Deal custom fields a deal needs to enter the stage. */
  required_fields?: string[];
}

export interface Pipeline {
  id: string;
  name: string;
  is_default: boolean;
  stages: Stage[];
}

export interface StageChange {
  from_stage_id: string;
  to_stage_id: string;
  moved_by: string;
  moved_at: string;
}

export interface Deal {
  id: string;
  region: string;
  title: string;
  contact_id: string;
  company_id?: string;
  owner_id: string;
  owner_team?: string;
  source?: string;
  expected_close_date?: string;
  lost_reason?: string;
  description?: string;
  custom_fields?: Record<string, unknown>;
  history?: StageChange[];
  closed_at?: string | null;
  pipeline_id: string;
  stage_id: string;
  stage_name: string;
  status: string;
  amount: Money | null;
  stage_entered_at: string;
  created_at: string;
  version: number;
}

export interface BoardColumn {
  stage: Stage;
  count: number;
  total: Money;
  deals: Deal[];
}

export interface Board {
  pipeline: Pipeline;
  reporting_currency: string;
  columns: BoardColumn[];
  missing_rates: string[];
}

export interface Task {
  id: string;
  region: string;
  kind: string;
  title: string;
  assignee_id: string;
  deal_id: string;
  contact_id: string;
  priority: string;
  status: string;
  due_at: string | null;
  time_zone: string;
  due_local: string;
  assignee_team?: string;
  description?: string;
  completed_at?: string | null;
}

export interface DealDocument {
  id: string;
  deal_id: string;
  template_key: string;
  title: string;
  created_at: string;
  pdf_size: number;
}

export interface DocumentTemplate {
  key: string;
  name: string;
  locale: string;
}

export interface CompanyMember {
  contact_id: string;
  role: string;
  display_name: string;
}

export interface Company {
  id: string;
  region: string;
  name: string;
  domain: string;
  industry: string;
  address: Address;
  phones: string[];
  owner_id: string;
  owner_team: string;
  tags: string[];
  members: CompanyMember[];
  created_at: string;
  version: number;
}

export type ReportName = 'funnel' | 'win_rate' | 'revenue' | 'activity' | 'lead_sources' | 'forecast';

export interface FunnelRow {
  pipeline_id: string;
  pipeline: string;
  stage_id: string;
  stage: string;
  kind: string;
  deals: number;
  value: string;
  entered: number;
  conversion_to_next: string | null;
}

export interface WinRateRow {
  deals_won: number;
  deals_lost: number;
  win_rate: string | null;
  value_won: string;
  average_deal_size: string | null;
  cycle_days_median: number | null;
  cycle_days_p90: number | null;
}

export interface RevenueRow {
  period: string;
  granularity: string;
  deals: number;
  value: string;
}

export interface ActivityRow {
  owner_id: string;
  calls: number;
  tasks_on_time: number;
  tasks_late: number;
  overdue_now: number;
  deals_won: number;
  deals_lost: number;
}

export interface LeadSourceRow {
  source: string;
  deals: number;
  won: number;
  lost: number;
  conversion_to_won: string | null;
}

export interface ForecastRow {
  month: string;
  deals: number;
  value: string;
  weighted: string;
}

export interface ReportRows {
  funnel: FunnelRow;
  win_rate: WinRateRow;
  revenue: RevenueRow;
  activity: ActivityRow;
  lead_sources: LeadSourceRow;
  forecast: ForecastRow;
}

export interface Report<N extends ReportName = ReportName> {
  report: N;
  regions: string[];
  reporting_currency: string;
  missing_rates: { currency: string; on: string }[];
  data: ReportRows[N][];
}

export interface DirectoryUser {
  id: string;
  display_name: string;
  email: string;
  team: string;
  job_roles: string[];
  time_zone: string;
  locale: string;
}

/** A file on a contact (deal_id set when it belongs to one of the contact's deals). */
export interface Attachment {
  id: string;
  contact_id: string;
  deal_id: string;
  filename: string;
  media_type: string;
  size: number;
  sha256: string;
  uploaded_by: string;
  created_at: string;
}
