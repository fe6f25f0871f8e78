// Citizen Cloud portal: one plain ES module, no framework and no build step. Pages are built
// with DOM calls (text always goes in as textContent, so nothing a neighbour writes can become
// markup); the only HTML taken from the server is a blog post's body, which the node renders
// from Markdown after escaping everything. Live updates arrive by server-sent events.

const app = document.getElementById('app');
let me = null;
let events = null;
/** Called with each live event while a page is shown; replaced on every page change. */
let onEvent = () => {};

// ---- small helpers

/** Create an element: attributes (functions become listeners), then children (strings are text). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (typeof value === 'function') el.addEventListener(key.replace(/^on/, ''), value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  for (const child of children) el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return el;
}

class ApiError extends Error {
  constructor(status, body) {
    super(body?.message ?? `the node answered ${status}`);
    this.status = status;
    this.code = body?.error;
  }
}

/** Call the API: JSON in and out; throws ApiError with the node's own sentence. */
async function api(path, { method = 'GET', body, headers = {}, raw = false } = {}) {
  const init = { method, headers: { ...headers }, credentials: 'same-origin' };
  if (body !== undefined) {
    if (raw) init.body = body;
    else {
      init.headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
  }
  const res = await fetch(path, init);
  if (res.status === 401 && path !== '/api/login' && path !== '/api/me/password') {
    me = null;
    showLogin();
    throw new ApiError(401, { message: 'please log in again' });
  }
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

/** Addresses as people type them: separated by commas, semicolons or spaces (an address has none of these). */
const addresses = (text) => text.split(/[,;\s]+/).filter(Boolean);

const when = (iso) => {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
};
const size = (n) => (n < 1024 ? `${n} B` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1024 / 1024).toFixed(1)} MB`);
const status = () => h('p', { role: 'status', 'aria-live': 'polite', class: 'meta' });
function say(el, text, kind = 'notice') {
  el.className = kind;
  el.textContent = text;
}
/** Run a form action, showing its error (or success) in `out`, with the button disabled meanwhile. */
async function attempt(form, out, action) {
  const button = form.querySelector('button[type="submit"]');
  if (button) button.disabled = true;
  try {
    await action();
  } catch (err) {
    say(out, err.message, 'error');
  } finally {
    if (button) button.disabled = false;
  }
}
function field(label, input, hint) {
  return h('label', {}, label, hint ? h('span', { class: 'hint' }, hint) : null, input);
}

// ---- shell

const PAGES = [
  ['mail', 'Mail'],
  ['chat', 'Chat'],
  ['files', 'Files'],
  ['blog', 'Blog'],
  ['mesh', 'Mesh'],
  ['account', 'Account'],
];

function setPage(node) {
  const current = document.getElementById('app');
  current.replaceWith(node);
}

function render(page, content) {
  const nav = h('nav', { class: 'apps', 'aria-label': 'Apps' },
    PAGES.map(([id, label]) => h('a', { href: `#/${id}`, 'aria-current': id === page ? 'page' : null }, label)));
  const main = h('main', { id: 'content', tabindex: '-1' }, content);
  setPage(h('div', { id: 'app' },
    h('a', { class: 'skip', href: '#content', onclick: (e) => { e.preventDefault(); main.focus(); } }, 'Skip to content'),
    h('header', { class: 'top' }, h('h1', {}, 'Citizen Cloud'), h('span', { class: 'who' }, me ? me.address : '')),
    nav, main));
  document.title = `${PAGES.find(([id]) => id === page)?.[1] ?? 'Portal'} · Citizen Cloud`;
}

// ---- login

function showLogin() {
  if (events) events.close();
  events = null;
  const user = h('input', { id: 'login-user', name: 'user', autocomplete: 'username', required: true, autocapitalize: 'none' });
  const password = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const out = status();
  const form = h('form', { class: 'stack card', 'aria-labelledby': 'login-title' },
    h('h2', { id: 'login-title' }, 'Log in'),
    field('Name', user), field('Password', password),
    h('button', { type: 'submit' }, 'Log in'), out);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    attempt(form, out, async () => {
      me = await api('/api/login', { method: 'POST', body: { user: user.value, password: password.value } });
      start();
    });
  });
  setPage(h('div', { id: 'app' }, h('header', { class: 'top' }, h('h1', {}, 'Citizen Cloud')), h('main', { id: 'content' }, form)));
  document.title = 'Log in · Citizen Cloud';
  user.focus();
}

// ---- mail

/** The thread a mail belongs to: the node says (`thread`); older nodes did not. */
const threadOf = (mail) => mail.thread ?? (mail.subject.replace(/^(\s*(re|fwd?|aw)\s*:\s*)+/i, '').trim().toLowerCase() || '(no subject)');
/** Mails a list page asks for at a time; "Older mail" asks for the next page. */
const MAIL_PAGE = 50;

function mailState(mail, folder) {
  if (folder !== 'sent') return null;
  const state = mail.state ?? 'sent to the mesh';
  const tone = state === 'delivered' ? 'ok' : state.startsWith('waiting') || state === 'queued' ? 'warn' : 'info';
  return h('span', { class: `badge ${tone}` }, state);
}

/**
 * What the gateway that took an internet mail in found of its sender (SPF, DKIM, DMARC): one
 * line a person can read, and a warning when the sender's domain says the mail is not theirs.
 */
function senderChecks(mail) {
  const a = mail.authentication;
  if (!a) return null;
  const forged = a.dmarc === 'fail' || (a.dmarc !== 'pass' && a.spf === 'fail' && a.dkim !== 'pass');
  const verified = a.dmarc === 'pass' || a.dkim === 'pass';
  const tone = forged ? 'bad' : verified ? 'ok' : 'warn';
  const summary = forged ? 'sender not confirmed: this may be forged' : verified ? 'sender confirmed by its domain' : 'sender could not be confirmed';
  return h('p', { class: 'meta sender-checks' }, h('span', { class: `badge ${tone}` }, summary),
    ` SPF ${a.spf} · DKIM ${a.dkim} · DMARC ${a.dmarc}`);
}

async function mailPage(params) {
  const folder = params.get('folder') ?? 'inbox';
  const content = h('section', { 'aria-labelledby': 'mail-title' }, h('h2', { id: 'mail-title' }, 'Mail'));
  const tabs = h('div', { class: 'tabs', role: 'group', 'aria-label': 'Folders' },
    [['inbox', 'Inbox'], ['sent', 'Sent'], ['compose', 'Write']].map(([id, label]) =>
      h('button', { type: 'button', 'aria-pressed': String(folder === id), onclick: () => go(`mail?folder=${id}`) }, label)));
  content.append(tabs);
  render('mail', content);
  if (folder === 'compose') {
    content.append(await composeForm(params));
    return;
  }
  const box = h('div', { class: 'card' }, 'Loading…');
  content.append(box);
  /** Pages shown so far: a live update reloads as many as the reader has opened. */
  let pages = 1;
  const load = async () => {
    const mails = [];
    let more = false;
    for (let page = 0; page < pages; page++) {
      const before = mails.length ? `&before=${mails.at(-1).id}` : '';
      const got = await api(`/api/mail?folder=${folder}&limit=${MAIL_PAGE}${before}`);
      mails.push(...got);
      more = got.length >= MAIL_PAGE;
      if (!more) break;
    }
    box.replaceChildren();
    if (mails.length === 0) box.append(h('p', { class: 'meta' }, folder === 'inbox' ? 'No mail yet.' : 'Nothing sent yet.'));
    // Threads: mails with the same subject (ignoring Re:/Fwd:) belong together, newest first.
    const threads = new Map();
    for (const mail of mails) {
      const key = threadOf(mail);
      if (!threads.has(key)) threads.set(key, []);
      threads.get(key).push(mail);
    }
    const list = h('ul', { class: 'list', 'aria-label': folder === 'inbox' ? 'Inbox' : 'Sent mail' });
    for (const [key, thread] of threads) {
      const latest = thread[0];
      const unread = thread.some((m) => !m.read);
      list.append(h('li', {},
        h('button', { type: 'button', class: `item${unread ? ' unread' : ''}`, onclick: () => go(`mail?folder=${folder}&thread=${encodeURIComponent(key)}`) },
          h('span', { class: 'title' }, latest.subject || '(no subject)', thread.length > 1 ? ` (${thread.length})` : ''),
          h('span', { class: 'meta' }, folder === 'inbox' ? `From ${latest.from}` : `To ${latest.to.join(', ')}`, ' · ', when(latest.date), ' '),
          mailState(latest, folder),
          unread ? h('span', { class: 'visually-hidden' }, 'unread') : null)));
    }
    box.append(list);
    if (more) {
      box.append(h('p', {}, h('button', { type: 'button', class: 'secondary', onclick: () => { pages++; load().catch(() => undefined); } }, 'Older mail')));
    }
    const thread = params.get('thread');
    if (thread !== null && !content.querySelector('#thread-title')) await showThread(content, thread);
  };
  onEvent = (e) => e.type === 'mail' && load().catch(() => undefined);
  await load();
}

async function showThread(content, key) {
  const ask = (folder) => api(`/api/mail?folder=${folder}&limit=500&thread=${encodeURIComponent(key)}`);
  const [inbox, sent] = await Promise.all([ask('inbox'), ask('sent')]);
  const all = [...inbox.map((m) => ({ ...m, folder: 'inbox' })), ...sent.map((m) => ({ ...m, folder: 'sent' }))]
    .sort((a, b) => (a.date < b.date ? -1 : 1));
  if (all.length === 0) return;
  const section = h('section', { class: 'card', 'aria-labelledby': 'thread-title' }, h('h3', { id: 'thread-title', tabindex: '-1' }, all.at(-1)?.subject || '(no subject)'));
  for (const mail of all) {
    if (mail.folder === 'inbox' && !mail.read) api(`/api/mail/${mail.id}/read`, { method: 'POST' }).catch(() => undefined);
    section.append(h('article', { class: 'bubble' },
      h('p', { class: 'meta' }, `From ${mail.from} to ${mail.to.join(', ')} · ${when(mail.date)} `, mailState(mail, mail.folder)),
      senderChecks(mail),
      h('p', { class: 'body' }, mail.body)));
  }
  const last = all.filter((m) => m.folder === 'inbox').at(-1) ?? all.at(-1);
  if (last) {
    const to = last.folder === 'inbox' ? last.from : last.to.join(', ');
    const subject = /^re:/i.test(last.subject) ? last.subject : `Re: ${last.subject}`;
    section.append(h('p', {}, h('a', { class: 'button', href: `#/mail?folder=compose&to=${encodeURIComponent(to)}&subject=${encodeURIComponent(subject)}` }, 'Reply')));
  }
  content.append(section);
  section.querySelector('h3').focus();
}

async function composeForm(params) {
  const known = await api('/api/directory').catch(() => []);
  const list = h('datalist', { id: 'addresses' }, known.map((a) => h('option', { value: a })));
  const to = h('input', { id: 'mail-to', name: 'to', required: true, list: 'addresses', autocapitalize: 'none', inputmode: 'email', value: params.get('to') ?? '' });
  const subject = h('input', { id: 'mail-subject', name: 'subject', value: params.get('subject') ?? '' });
  const body = h('textarea', { id: 'mail-body', name: 'body', required: true });
  const out = status();
  const form = h('form', { class: 'stack card' },
    field('To', to, 'member@household; several separated by commas'), list,
    field('Subject', subject), field('Message', body),
    h('button', { type: 'submit' }, 'Send'), out);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    attempt(form, out, async () => {
      const recipients = addresses(to.value);
      await api('/api/mail', { method: 'POST', body: { to: recipients, subject: subject.value, body: body.value } });
      form.reset();
      say(out, 'Sent. It travels through the mesh as the radio allows; see Sent for its state.');
    });
  });
  return form;
}

// ---- chat

async function chatPage(params) {
  const roomId = params.get('room');
  const content = h('section', { 'aria-labelledby': 'chat-title' }, h('h2', { id: 'chat-title' }, 'Chat'));
  render('chat', content);
  const rooms = await api('/api/chat/rooms');
  if (roomId) {
    const room = rooms.find((r) => r.id === roomId);
    if (!room) {
      content.append(h('p', { class: 'error' }, 'This room is not here (yet).'));
      return;
    }
    await roomView(content, room);
    return;
  }
  const list = h('ul', { class: 'list', 'aria-label': 'Rooms' }, rooms.map((r) =>
    h('li', {}, h('a', { class: 'item', href: `#/chat?room=${r.id}` },
      h('span', { class: 'title' }, r.name),
      h('span', { class: 'meta' }, r.members === null ? 'Public: the whole neighbourhood' : `Private: ${r.members.join(', ')}`)))));
  content.append(h('div', { class: 'card' }, rooms.length ? list : h('p', { class: 'meta' }, 'No rooms yet: start one below.')));
  const name = h('input', { id: 'room-name', name: 'name', required: true, maxlength: 64 });
  const members = h('input', { id: 'room-members', name: 'members', autocapitalize: 'none' });
  const out = status();
  const form = h('form', { class: 'stack card' }, h('h3', {}, 'New room'),
    field('Name', name), field('Members', members, 'Leave empty for a public room; or list member@household addresses for a private (sealed) room or a direct message'),
    h('button', { type: 'submit' }, 'Create room'), out);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    attempt(form, out, async () => {
      const list = addresses(members.value);
      const { id } = await api('/api/chat/rooms', { method: 'POST', body: list.length ? { name: name.value, members: list } : { name: name.value } });
      go(`chat?room=${id}`);
    });
  });
  content.append(form);
  onEvent = (e) => e.type === 'chat' && !document.activeElement?.closest('form') && chatPage(params).catch(() => undefined);
}

async function roomView(content, room) {
  content.append(h('h3', {}, room.name, ' ', h('span', { class: 'meta' }, room.members === null ? '(public)' : `(private: ${room.members.join(', ')})`)));
  const box = h('div', { class: 'messages card', role: 'log', 'aria-live': 'polite', 'aria-label': `Messages in ${room.name}` });
  const text = h('input', { id: 'chat-text', name: 'text', required: true, maxlength: 4000, autocomplete: 'off' });
  const out = status();
  const form = h('form', { class: 'stack card' }, field('Message', text), h('button', { type: 'submit' }, 'Send'), out);
  const load = async () => {
    const messages = await api(`/api/chat/rooms/${room.id}/messages?limit=200`);
    box.replaceChildren(...(messages.length ? messages.map((m) =>
      h('div', { class: `bubble${m.from === me.address ? ' mine' : ''}` },
        h('div', { class: 'meta' }, `${m.from} · ${when(m.date)}`), h('div', { class: 'body' }, m.text))) : [h('p', { class: 'meta' }, 'No messages yet.')]));
    box.scrollTop = box.scrollHeight;
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    attempt(form, out, async () => {
      await api(`/api/chat/rooms/${room.id}/messages`, { method: 'POST', body: { text: text.value } });
      text.value = '';
      say(out, '');
      await load();
      text.focus();
    });
  });
  content.append(h('p', {}, h('a', { href: '#/chat' }, '← All rooms')), box, form);
  onEvent = (e) => e.type === 'chat' && e.id === room.id && load().catch(() => undefined);
  await load();
}

// ---- files

async function filesPage() {
  const content = h('section', { 'aria-labelledby': 'files-title' }, h('h2', { id: 'files-title' }, 'Files'));
  render('files', content);
  const file = h('input', { id: 'file-input', name: 'file', type: 'file', required: true });
  const share = h('select', { id: 'file-share', name: 'share' },
    h('option', { value: '' }, 'Only me'), h('option', { value: 'neighbourhood' }, 'The whole neighbourhood'), h('option', { value: 'members' }, 'Chosen members'));
  const members = h('input', { id: 'file-members', name: 'members', autocapitalize: 'none' });
  const out = status();
  const form = h('form', { class: 'stack card' }, h('h3', {}, 'Share a file'), field('File', file), field('Share with', share),
    field('Members', members, 'For "Chosen members": member@household addresses, separated by commas'), h('button', { type: 'submit' }, 'Upload'), out);
  const box = h('div', { class: 'card' }, 'Loading…');
  const load = async () => {
    const files = await api('/api/files');
    box.replaceChildren(files.length ? h('ul', { class: 'list', 'aria-label': 'Files' }, files.map((f) => h('li', {},
      h('div', { class: 'item' },
        h('span', { class: 'title' }, f.complete ? h('a', { href: `/api/files/${f.id}`, download: f.name }, f.name) : f.name),
        h('span', { class: 'meta' }, `${size(f.size)} · ${f.owner} · ${when(f.date)} · `,
          f.shared_with === null ? 'neighbourhood' : f.shared_with.join(', '), ' ',
          h('span', { class: `badge ${f.complete ? 'ok' : 'warn'}` }, f.complete ? 'here' : 'arriving')))))) : h('p', { class: 'meta' }, 'No files yet.'));
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    attempt(form, out, async () => {
      const chosen = file.files[0];
      if (!chosen) throw new Error('choose a file first');
      const shareWith = share.value === 'members' ? addresses(members.value).join(',') : share.value;
      say(out, `Uploading ${chosen.name}…`);
      const created = await api('/api/files', {
        method: 'POST', raw: true, body: chosen,
        headers: { 'content-type': 'application/octet-stream', 'x-file-name': encodeURIComponent(chosen.name), ...(shareWith ? { 'x-share-with': shareWith } : {}) },
      });
      form.reset();
      say(out, `Uploaded ${created.name} (${size(created.size)}).`);
      await load();
    });
  });
  content.append(form, box);
  onEvent = (e) => e.type === 'files' && load().catch(() => undefined);
  await load();
}

// ---- blog

async function blogPage(params) {
  const id = params.get('post');
  const content = h('section', { 'aria-labelledby': 'blog-title' }, h('h2', { id: 'blog-title' }, 'Blog'));
  render('blog', content);
  if (id) return postView(content, id);
  const title = h('input', { id: 'post-title', name: 'title', required: true, maxlength: 120 });
  const body = h('textarea', { id: 'post-body', name: 'body' });
  const out = status();
  const form = h('form', { class: 'stack card' }, h('h3', {}, 'Write a post'), field('Title', title),
    field('Text', body, 'Markdown: # heading, **bold**, *italic*, - lists, [link](https://…)'), h('button', { type: 'submit' }, 'Publish'), out);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    attempt(form, out, async () => {
      const { id } = await api('/api/blog', { method: 'POST', body: { title: title.value, body: body.value } });
      go(`blog?post=${id}`);
    });
  });
  const box = h('div', { class: 'card' }, 'Loading…');
  const load = async () => {
    const posts = await api('/api/blog');
    box.replaceChildren(posts.length ? h('ul', { class: 'list', 'aria-label': 'Posts' }, posts.map((p) => h('li', {},
      h('a', { class: 'item', href: `#/blog?post=${p.id}` }, h('span', { class: 'title' }, p.title), h('span', { class: 'meta' }, `${p.author} · ${when(p.date)}`))))) : h('p', { class: 'meta' }, 'No posts yet.'));
  };
  content.append(box, form);
  onEvent = (e) => e.type === 'blog' && load().catch(() => undefined);
  await load();
}

async function postView(content, id) {
  const article = h('article', { class: 'card' }, 'Loading…');
  const text = h('input', { id: 'comment-text', name: 'text', required: true, maxlength: 2000 });
  const out = status();
  const form = h('form', { class: 'stack card' }, field('Comment', text), h('button', { type: 'submit' }, 'Add comment'), out);
  const load = async () => {
    const post = await api(`/api/blog/${id}`);
    const body = h('div', { class: 'post-html' });
    body.innerHTML = post.html; // rendered by the node from Markdown after escaping every character (apps/blog/markdown.ts)
    article.replaceChildren(h('h3', {}, post.title), h('p', { class: 'meta' }, `${post.author} · ${when(post.date)}`), body,
      h('h4', {}, `Comments (${post.comments.length})`),
      h('ul', { class: 'list' }, post.comments.map((c) => h('li', {}, h('p', { class: 'meta' }, `${c.from} · ${when(c.date)}`), h('p', { class: 'body' }, c.text)))));
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    attempt(form, out, async () => {
      await api(`/api/blog/${id}/comments`, { method: 'POST', body: { text: text.value } });
      text.value = '';
      await load();
    });
  });
  content.append(h('p', {}, h('a', { href: '#/blog' }, '← All posts')), article, form);
  onEvent = (e) => e.type === 'blog' && load().catch(() => undefined);
  await load().catch((err) => article.replaceChildren(h('p', { class: 'error' }, err.message)));
}

// ---- mesh status

function meshPicture(st) {
  const neighbours = st.links.flatMap((link, i) => (link.neighbour_list ?? []).map((n) => ({ ...n, link: i, spec: link.spec, up: link.up })));
  const size = 320;
  const height = neighbours.length ? size : 110;
  const c = size / 2;
  const cy = height / 2 - (neighbours.length ? 0 : 10);
  const r = neighbours.length ? 115 : 0;
  const svg = s('svg', { class: 'mesh', viewBox: `0 0 ${size} ${height}`, role: 'img', 'aria-labelledby': 'mesh-svg-title' },
    s('title', { id: 'mesh-svg-title' }, `This node and ${neighbours.length} neighbour${neighbours.length === 1 ? '' : 's'}`));
  neighbours.forEach((n, i) => {
    const a = (2 * Math.PI * i) / neighbours.length - Math.PI / 2;
    const x = c + r * Math.cos(a);
    const y = cy + r * Math.sin(a);
    // Link quality from SNR where the radio reports it: green good, amber fair, red poor.
    const quality = n.snr === undefined ? '#5b8def' : n.snr >= 0 ? '#2e9e50' : n.snr >= -10 ? '#d08a00' : '#d1343a';
    svg.append(s('line', { x1: c, y1: cy, x2: x, y2: y, stroke: quality, 'stroke-width': n.up ? 4 : 2, 'stroke-dasharray': n.up ? '' : '6 4' }));
    svg.append(s('circle', { cx: x, cy: y, r: 16, fill: n.gateway ? '#8a5cf6' : '#5b8def', stroke: '#ffffff', 'stroke-width': 2 }));
    svg.append(s('text', { x, y: y + 30, 'text-anchor': 'middle' }, `${n.name ?? n.id.slice(0, 6)}${n.snr !== undefined ? ` (${n.snr} dB)` : ''}`));
  });
  svg.append(s('circle', { cx: c, cy, r: 22, fill: '#0b5cad', stroke: '#ffffff', 'stroke-width': 3 }));
  svg.append(s('text', { x: c, y: cy + 40, 'text-anchor': 'middle', 'font-weight': 'bold' }, st.household));
  return svg;
}

/** A span of seconds in words: "6 h 5 min", "12 min". */
function span(seconds) {
  const s = Math.round(Math.abs(seconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  return hours > 0 ? `about ${hours} h${minutes ? ` ${minutes} min` : ''}` : `about ${Math.max(1, minutes)} min`;
}

async function meshPage() {
  const content = h('section', { 'aria-labelledby': 'mesh-title' }, h('h2', { id: 'mesh-title' }, 'Mesh'));
  render('mesh', content);
  const box = h('div', {}, 'Loading…');
  content.append(box);
  const load = async () => {
    const st = await api('/api/status');
    // One small two-column table per link: it fits a phone screen whatever the number of links.
    const links = st.links.map((l) => {
      const used = l.duty_cycle ? l.duty_cycle.fraction : null;
      const rows = [
        ['State', h('span', { class: `badge ${l.up ? 'ok' : 'bad'}` }, l.up ? 'up' : 'down')],
        ['Neighbours', String(l.neighbours)],
        ['Frames out / in', `${l.frames_out} / ${l.frames_in}`],
        ['Airtime', `${(l.airtime_ms / 1000).toFixed(1)} s`],
        ['Duty cycle', used === null ? 'no limit on this link' : h('div', {},
          h('div', { class: 'bar', role: 'meter', 'aria-valuemin': 0, 'aria-valuemax': 10, 'aria-valuenow': (used * 100).toFixed(2), 'aria-label': `duty cycle on ${l.spec}` },
            h('span', { 'data-w': Math.min(100, used * 1000).toFixed(1) })),
          h('span', { class: 'meta' }, `${(used * 100).toFixed(2)}% of the last hour on air (bar: 10%)${l.region ? ` · ${l.region}` : ''}`))],
      ];
      return h('table', {}, h('caption', { class: 'meta' }, l.spec), h('tbody', {}, rows.map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, v)))));
    });
    // What stops this node from syncing that the household can fix: a full disk, a wrong clock.
    const problems = [];
    if (st.disk === 'full') problems.push('This node\'s disk is full: new mail, chat, files and records are refused (nothing is lost) until space is freed.');
    if (st.disk === 'read-only') problems.push('This node\'s disk is read-only: new mail, chat, files and records are refused (nothing is lost) until it is writable again.');
    const clock = st.clock_disagreement;
    if (clock) {
      const theirs = new Date(Date.now() + clock.offset_s * 1000).toISOString().slice(0, 16).replace('T', ' ');
      problems.push(`${clock.households === 1 ? 'A neighbouring household\'s clock is' : `${clock.households} neighbouring households' clocks are`} ${span(clock.offset_s)} ${clock.offset_s > 0 ? 'ahead of' : 'behind'} this node's, so their news is refused. If this node's clock is wrong, set it (theirs reads ${theirs} UTC).`);
    }
    box.replaceChildren(
      ...problems.map((text) => h('div', { class: 'card' }, h('p', { class: 'error', role: 'alert' }, text))),
      h('div', { class: 'card' }, meshPicture(st),
        h('p', { class: 'meta' }, 'Lines show link quality from the radio\'s SNR (green good, amber fair, red poor, blue not reported; dashed: link down). A purple neighbour is a gateway to the internet.')),
      h('div', { class: 'card' }, h('h3', {}, 'Links'), st.links.length ? links : h('p', { class: 'meta' }, 'No links: this node syncs with nobody yet (start it with --link).')),
      h('div', { class: 'card' }, h('h3', {}, 'This node'), h('table', {}, h('tbody', {},
        [['Household', st.household], ['Key', st.fingerprint], ['Records stored', st.records], ['Store size', size(st.store_bytes ?? 0)],
          ['Households known', st.households_known], ['Sync queue', st.sync_queue ?? 0], ['Waiting for keys', st.pending_records ?? 0],
          ['Internet (libp2p)', st.p2p ? st.p2p.peer_id : 'off']].map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, String(v))))))));
    // Widths set through the CSSOM (allowed by the CSP), not inline style attributes.
    for (const bar of box.querySelectorAll('[data-w]')) bar.style.width = `${bar.dataset.w}%`;
  };
  onEvent = () => undefined;
  await load();
  const timer = setInterval(() => (location.hash.startsWith('#/mesh') ? load().catch(() => undefined) : clearInterval(timer)), 5000);
}

// ---- account

async function accountPage() {
  const content = h('section', { 'aria-labelledby': 'account-title' }, h('h2', { id: 'account-title' }, 'Account'));
  render('account', content);
  const current = h('input', { id: 'pw-current', type: 'password', autocomplete: 'current-password', required: true });
  const next = h('input', { id: 'pw-new', type: 'password', autocomplete: 'new-password', required: true, minlength: 8 });
  const out = status();
  const pw = h('form', { class: 'stack card' }, h('h3', {}, 'Change your password'), field('Current password', current), field('New password', next, 'At least 8 characters'),
    h('button', { type: 'submit' }, 'Change password'), out);
  pw.addEventListener('submit', (e) => {
    e.preventDefault();
    attempt(pw, out, async () => {
      await api('/api/me/password', { method: 'POST', body: { current: current.value, password: next.value } });
      pw.reset();
      say(out, 'Password changed. Your other devices are logged out.');
    });
  });
  const sessions = h('div', { class: 'card row' },
    h('button', { type: 'button', class: 'secondary', onclick: async () => { await api('/api/logout', { method: 'POST' }); me = null; showLogin(); } }, 'Log out'),
    h('button', { type: 'button', class: 'secondary', onclick: async () => { await api('/api/logout-all', { method: 'POST' }); me = null; showLogin(); } }, 'Log out everywhere'));
  content.append(h('div', { class: 'card' }, h('p', {}, `You are ${me.user}, ${me.address}${me.admin ? ' (admin)' : ''}.`)), pw, sessions);
  if (me.admin) {
    const name = h('input', { id: 'new-user', required: true, autocapitalize: 'none', pattern: '[a-z0-9-]{1,32}' });
    const password = h('input', { id: 'new-password', type: 'password', autocomplete: 'new-password', required: true, minlength: 8 });
    const admin = h('input', { id: 'new-admin', type: 'checkbox' });
    const out2 = status();
    const list = h('ul', { class: 'list', 'aria-label': 'Accounts' });
    const load = async () => list.replaceChildren(...(await api('/api/accounts')).map((a) => h('li', { class: 'item' }, h('span', { class: 'title' }, a.name), h('span', { class: 'meta' }, `${a.admin ? 'admin · ' : ''}since ${when(a.created)}`))));
    const add = h('form', { class: 'stack card' }, h('h3', {}, 'Household members'), list, h('h4', {}, 'Add a member'),
      field('Name', name, 'lowercase letters, digits and -'), field('Password', password),
      h('label', { class: 'row' }, admin, 'Admin (may add members)'), h('button', { type: 'submit' }, 'Add member'), out2);
    add.addEventListener('submit', (e) => {
      e.preventDefault();
      attempt(add, out2, async () => {
        const created = await api('/api/accounts', { method: 'POST', body: { user: name.value, password: password.value, admin: admin.checked } });
        add.reset();
        say(out2, `${created.name} can now log in.`);
        await load();
      });
    });
    content.append(add);
    await load();
  }
  onEvent = () => undefined;
}

// ---- routing and live updates

function go(route) {
  location.hash = `#/${route}`;
}

async function route() {
  if (!me) return;
  const [page, query] = location.hash.replace(/^#\/?/, '').split('?');
  const params = new URLSearchParams(query ?? '');
  onEvent = () => undefined;
  const pages = { mail: mailPage, chat: chatPage, files: filesPage, blog: blogPage, mesh: meshPage, account: accountPage };
  try {
    await (pages[page] ?? mailPage)(params);
  } catch (err) {
    if (err.status !== 401) document.getElementById('content')?.append(h('p', { class: 'error', role: 'alert' }, err.message));
  }
}

function listen() {
  if (events || typeof EventSource === 'undefined') return;
  events = new EventSource('/api/events');
  for (const type of ['mail', 'chat', 'blog', 'files', 'directory']) {
    events.addEventListener(type, (e) => {
      try {
        onEvent(JSON.parse(e.data));
      } catch {
        // a malformed event is ignored
      }
    });
  }
}

function start() {
  listen();
  if (!location.hash || location.hash === '#') go('mail');
  else route();
}

window.addEventListener('hashchange', route);
api('/api/session').then((who) => {
  if (who.user === null) return showLogin();
  me = who;
  start();
}, () => showLogin());
