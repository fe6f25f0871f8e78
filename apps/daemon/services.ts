/**
 * The services the HTTP API serves, as interfaces: the daemon wires real ones (over the mesh
 * node); API tests may pass small fakes. Field names follow SPEC.md §4 exactly.
 */

/** One mail as the API shows it. */
export interface MailView {
  id: string;
  from: string;
  to: string[];
  subject: string;
  body: string;
  /** ISO 8601. */
  date: string;
  read: boolean;
  /** Where a sent mail is, when the mesh can tell: `waiting for keys` until its recipients are known. */
  state?: string;
}

export interface MailInput {
  to: string[];
  subject: string;
  body: string;
}

export interface MailService {
  /** Seal and store a mail from `user` (a member name of this household). Throws AppError on bad input. */
  send(user: string, input: MailInput): Promise<{ id: string }>;
  /** Newest first. */
  list(user: string, folder: 'inbox' | 'sent'): Promise<MailView[]>;
}

/** The object `GET /api/status` and `citizen status` print (SPEC §4). */
export interface StatusView {
  household: string;
  node_id: string;
  fingerprint: string;
  links: Array<{ spec: string; up: boolean; neighbours: number; frames_out: number; frames_in: number; airtime_ms: number }>;
  records: number;
  households_known: number;
  p2p: { peer_id: string; addrs: string[] } | null;
  [more: string]: unknown;
}

export interface NodeServices {
  /** The household's name, e.g. `rose`. */
  household: string;
  mail: MailService;
  status(): Promise<StatusView>;
  /** Prometheus text exposition. */
  metrics(): Promise<string>;
}
