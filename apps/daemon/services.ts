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
  /** Mails with the same thread key (the subject without Re:/Fwd:, lower case) belong together. */
  thread?: string;
  /** Body length in UTF-8 bytes. */
  size?: number;
  /**
   * Where a sent mail is, as far as this node can know: `waiting for keys` (its recipients are
   * not known yet), `queued` (no neighbour in touch since it was written), `sent to the mesh`,
   * `delivered to k of n households`, `delivered` (every recipient's household acknowledged it).
   */
  state?: string;
  /** Internet mail only: SPF, DKIM and DMARC as the SMTP gateway that took it in found them. */
  authentication?: { spf: string; dkim: string; dmarc: string };
}

export interface MailInput {
  to: string[];
  subject: string;
  body: string;
}

export interface MailService {
  /** Seal and store a mail from `user` (a member name of this household). Throws AppError on bad input. */
  send(user: string, input: MailInput): Promise<{ id: string }>;
  /** Newest first: a page (`limit` mails older than the mail `before`), or one `thread`. */
  list(user: string, folder: 'inbox' | 'sent', options?: { limit?: number; before?: string; thread?: string }): Promise<MailView[]>;
  /** Mark a mail of the inbox read (node-local state). */
  markRead?(user: string, id: string): Promise<void>;
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

/** A chat room as the API shows it; `members: null` is a public room. */
export interface RoomView {
  id: string;
  name: string;
  members: string[] | null;
}

/** One chat message. */
export interface ChatMessageView {
  id: string;
  from: string;
  text: string;
  /** ISO 8601. */
  date: string;
}

export interface ChatService {
  /** Public rooms and the private rooms `user` is a member of. */
  rooms(user: string): Promise<RoomView[]>;
  /** A public room (no members) or a private one sealed to `members` (the creator is added). */
  createRoom(user: string, input: { name: string; members?: string[] }): Promise<{ id: string }>;
  /** Oldest first; with `limit`, only the newest `limit`. Throws AppError room_not_found for a room the member cannot see. */
  messages(user: string, room: string, limit?: number): Promise<ChatMessageView[]>;
  post(user: string, room: string, text: string): Promise<{ id: string }>;
}

/** One file as the API shows it; `shared_with: null` is shared with the whole neighbourhood. */
export interface FileView {
  id: string;
  name: string;
  size: number;
  owner: string;
  shared_with: string[] | null;
  /** Every chunk is in this node's store. */
  complete: boolean;
  /** ISO 8601. */
  date: string;
}

export interface FileUpload {
  /** As sent by the client; the service sanitises it. */
  name: string;
  /** null: the neighbourhood; a list: these members (and the uploader). */
  shareWith: string[] | null;
  /** The bytes, as they arrive (never buffered whole). */
  body: AsyncIterable<Uint8Array>;
}

export interface FilesService {
  /** Largest upload in bytes. */
  readonly maxBytes: number;
  list(user: string): Promise<FileView[]>;
  /** Throws AppError file_too_large (413) when the body passes `maxBytes`. */
  upload(user: string, input: FileUpload): Promise<{ id: string; name: string; size: number }>;
  /** The file's bytes, chunk by chunk. Throws AppError file_not_found / file_incomplete. */
  open(user: string, id: string): Promise<{ view: FileView; chunks: AsyncIterable<Uint8Array> }>;
}

export interface BlogSummary {
  id: string;
  author: string;
  title: string;
  /** ISO 8601. */
  date: string;
}

export interface BlogComment {
  id: string;
  from: string;
  text: string;
  date: string;
}

export interface BlogPostView extends BlogSummary {
  /** Markdown as written. */
  body: string;
  /** The body rendered to safe HTML on the server (no script, no raw HTML from the author). */
  html: string;
  comments: BlogComment[];
}

export interface BlogService {
  /** Every post this node knows, newest first. */
  list(): Promise<BlogSummary[]>;
  publish(user: string, input: { title: string; body: string }): Promise<{ id: string }>;
  /** Throws AppError post_not_found. */
  get(id: string): Promise<BlogPostView>;
  comment(user: string, id: string, text: string): Promise<{ id: string }>;
}

/** A change a logged-in page may want to show (no content: the page asks the API again). */
export interface AppEvent {
  type: 'mail' | 'chat' | 'blog' | 'files' | 'directory';
  /** The room, post or file concerned, when there is one. */
  id?: string;
}

export interface EventsService {
  /** Listen for changes `user` may see; returns the unsubscribe function. */
  subscribe(user: string, listener: (event: AppEvent) => void): () => void;
}

export interface NodeServices {
  /** The household's name, e.g. `rose`. */
  household: string;
  mail: MailService;
  /** The apps of issue 6; routes answer 404 when a service is absent (API tests with fakes). */
  chat?: ChatService;
  files?: FilesService;
  blog?: BlogService;
  events?: EventsService;
  /** Addresses (`member@household`) this node knows, for completion in the portal. */
  directory?(): Promise<string[]>;
  status(): Promise<StatusView>;
  /** Prometheus text exposition. */
  metrics(): Promise<string>;
}
