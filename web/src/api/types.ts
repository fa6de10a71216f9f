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
}

export interface Pipeline {
  id: string;
  name: string;
  is_default: boolean;
  stages: Stage[];
}

export interface Deal {
  id: string;
  region: string;
  title: string;
  contact_id: string;
  owner_id: string;
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
