/**
 * Blogs: every member may publish posts that the whole neighbourhood reads.
 *
 * A post is two Yjs documents, both created by its author:
 * - the post (type `blog-post`, only the author may write): map `post` with `title`, `body`
 *   (Markdown), `date` (ms) and `comments` (the hex feed id of the comments document);
 * - its comments (type `blog-comments`, anyone may write; name = nothing): array `comments`
 *   of `{text, date}` items whose writer is read from the item's Yjs client id (authors.ts).
 * Keeping them apart means a commenter can never touch the post itself. The post's id is its
 * feed id. Bodies are rendered with markdown.ts, which escapes everything first.
 */
import { toHex } from '../../mesh/bytes.ts';
import { clientIdFor } from '../../mesh/document-update.ts';
import type { DocumentReplica } from '../../mesh/document.ts';
import type { Identity } from '../../mesh/identity.ts';
import type { MeshNode } from '../../mesh/node.ts';
import { RecordKind } from '../../mesh/record.ts';
import * as Y from 'yjs';
import { isDateMs } from '../date-ms.ts';
import { AppError } from '../errors.ts';
import type { BlogComment, BlogPostView, BlogService, BlogSummary } from '../daemon/services.ts';
import { AuthorNames, itemsWithClient } from '../chat/authors.ts';
import { settledDoc } from '../chat/document-repair.ts';
import { renderMarkdown } from './markdown.ts';

export const POST_TYPE = 'blog-post';
export const COMMENTS_TYPE = 'blog-comments';
export const MAX_TITLE_CHARS = 120;
export const MAX_POST_CHARS = 12_000;
export const MAX_COMMENT_CHARS = 2000;
const POST_ID = /^[0-9a-f]{16}$/;

export interface BlogDeps {
  node: MeshNode;
  memberIdentity(name: string): Promise<Identity>;
  /** Milliseconds since the epoch, for the dates inside documents. Default Date.now. */
  nowMs?: () => number;
}

interface PostFields {
  title: string;
  body: string;
  date: number;
  comments: string | null;
}

export class Blog implements BlogService {
  private readonly names: AuthorNames;
  /** Document records stored since start: the cached list is stale once it moves. */
  private documentsVersion = 0;
  private listed: { version: number; names: number; list: BlogSummary[] } | null = null;

  constructor(private readonly deps: BlogDeps) {
    this.names = new AuthorNames(deps.node);
    deps.node.on('record', (record) => {
      if (record.kind === RecordKind.DocumentGenesis || record.kind === RecordKind.DocumentUpdate || record.kind === RecordKind.DocumentAcl) this.documentsVersion++;
    });
  }

  /** A post's fields, if the replica is a post whose owner wrote them. */
  private async fields(replica: DocumentReplica): Promise<PostFields | null> {
    const meta = replica.meta;
    if (meta?.type !== POST_TYPE) return null;
    const map = (await settledDoc(this.deps.node, replica)).getMap<unknown>('post');
    const title = map.get('title');
    const body = map.get('body');
    const date = map.get('date');
    const comments = map.get('comments');
    if (typeof title !== 'string' || typeof body !== 'string' || !isDateMs(date)) return null;
    return { title, body, date, comments: typeof comments === 'string' && POST_ID.test(comments) ? comments : null };
  }

  /** Every post, newest first; kept until a document record arrives or the names known change. */
  async list(): Promise<BlogSummary[]> {
    const version = this.documentsVersion;
    const names = this.names.version;
    if (this.listed && this.listed.version === version && this.listed.names === names) return this.listed.list;
    const out: BlogSummary[] = [];
    let settled = true;
    for (const replica of this.deps.node.documents) {
      const f = await this.fields(replica);
      if (replica.meta?.type === POST_TYPE && replica.ydoc.store.pendingStructs !== null) settled = false;
      if (!f) continue;
      out.push({ id: toHex(replica.feed), author: this.names.ofKey(replica.meta!.owner), title: f.title, date: new Date(f.date).toISOString() });
    }
    out.sort((a, b) => (a.date < b.date ? 1 : a.date > b.date ? -1 : a.id.localeCompare(b.id)));
    // A post Yjs still holds back may complete on a later read (document-repair.ts): no caching then.
    this.listed = settled && version === this.documentsVersion ? { version, names, list: out } : null;
    return out;
  }

  async publish(user: string, input: { title: string; body: string }): Promise<{ id: string }> {
    const title = input.title.trim();
    if (title.length === 0 || [...title].length > MAX_TITLE_CHARS) throw new AppError('bad_title', `a title has 1 to ${MAX_TITLE_CHARS} characters`);
    // A title is one line of text: no control characters, no bidi overrides that make it read otherwise than it is.
    if (/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/.test(title)) throw new AppError('bad_title', 'a title is one line of plain text, without control characters');
    if (input.body.length > MAX_POST_CHARS) throw new AppError('post_too_long', `a post has at most ${MAX_POST_CHARS} characters`);
    const { node } = this.deps;
    const me = await this.deps.memberIdentity(user);
    try {
      const comments = await node.createDocument(me, { type: COMMENTS_TYPE, name: '', writers: 'anyone' });
      const post = await node.createDocument(me, { type: POST_TYPE, name: '', writers: [] });
      await node.updateDocument(me, post.feed, (doc) => {
        const map = doc.getMap('post');
        map.set('title', title);
        map.set('body', input.body);
        map.set('date', (this.deps.nowMs ?? Date.now)());
        map.set('comments', toHex(comments.feed));
      });
      return { id: toHex(post.feed) };
    } catch (err) {
      // A post the disk refused (a full disk): MeshNode put its documents back as stored.
      this.documentsVersion++;
      throw err;
    }
  }

  private async post(id: string): Promise<{ replica: DocumentReplica; fields: PostFields }> {
    const replica = POST_ID.test(id) ? this.deps.node.documents.get(id) : undefined;
    const fields = replica ? await this.fields(replica) : null;
    if (!replica || !fields) throw new AppError('post_not_found', 'there is no such post here (yet)', 404);
    return { replica, fields };
  }

  /** The comments document of a post: created by the post's own author, or none. */
  private commentsOf(replica: DocumentReplica, fields: PostFields): DocumentReplica | null {
    const comments = fields.comments ? this.deps.node.documents.get(fields.comments) : undefined;
    const meta = comments?.meta;
    if (!comments || meta?.type !== COMMENTS_TYPE || toHex(meta.owner) !== toHex(replica.meta!.owner)) return null;
    return comments;
  }

  async get(id: string): Promise<BlogPostView> {
    const { replica, fields } = await this.post(id);
    const comments: BlogComment[] = [];
    const doc = this.commentsOf(replica, fields);
    if (doc) {
      for (const { value, client, clock } of itemsWithClient((await settledDoc(this.deps.node, doc)).getArray<unknown>('comments'))) {
        const v = value as { text?: unknown; date?: unknown } | null;
        const from = this.names.ofClient(client);
        if (!from || typeof v?.text !== 'string' || !isDateMs(v.date)) continue;
        comments.push({ id: `${client.toString(36)}.${clock}`, from, text: v.text.slice(0, MAX_COMMENT_CHARS), date: new Date(v.date).toISOString() });
      }
    }
    return {
      id,
      author: this.names.ofKey(replica.meta!.owner),
      title: fields.title,
      body: fields.body,
      // A body longer than anyone may write here came from a node that ignores the limit: the
      // page shows what fits (rendering has a cost every reader of the post would pay).
      html: renderMarkdown(fields.body.slice(0, MAX_POST_CHARS)),
      date: new Date(fields.date).toISOString(),
      comments,
    };
  }

  async comment(user: string, id: string, text: string): Promise<{ id: string }> {
    if (text.trim().length === 0) throw new AppError('empty_comment', 'write something first');
    if (text.length > MAX_COMMENT_CHARS) throw new AppError('comment_too_long', `a comment has at most ${MAX_COMMENT_CHARS} characters`);
    const { replica, fields } = await this.post(id);
    const doc = this.commentsOf(replica, fields);
    if (!doc) throw new AppError('comments_unavailable', "this post's comments have not reached this node yet", 409);
    await settledDoc(this.deps.node, doc);
    const me = await this.deps.memberIdentity(user);
    const client = clientIdFor(me.id);
    let clock = 0;
    try {
      await this.deps.node.updateDocument(me, doc.feed, (d) => {
        clock = Y.getState(d.store, client);
        d.getArray('comments').push([{ text, date: (this.deps.nowMs ?? Date.now)() }]);
      });
    } catch (err) {
      this.documentsVersion++; // refused by the disk: MeshNode put the document back as stored
      throw err;
    }
    return { id: `${client.toString(36)}.${clock}` };
  }
}
