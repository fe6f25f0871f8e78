/**
 * The first-run page behind the one-time link `npm start` prints: a form that creates the
 * household's first (admin) account through `POST /api/setup`. No inline script or style
 * (the CSP is `default-src 'self'`): the page loads `/setup.js` and `/setup.css`. The token
 * stays in the address bar; the script reads it from there, so the server never echoes it.
 */

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · Citizen Cloud</title>
<link rel="stylesheet" href="/setup.css">
</head>
<body>
<main>
<h1>${escapeHtml(title)}</h1>
${body}
</main>
</body>
</html>
`;
}

/** The set-up form for household `household`. */
export function renderSetupPage(household: string): string {
  return page(
    `Set up ${household}`,
    `<p>Create the first account of the household <strong>${escapeHtml(household)}</strong>. It will be an admin account, able to add the others.</p>
<form id="setup" method="post" action="/api/setup">
<label for="user">Your name (lowercase letters, digits and -)</label>
<input id="user" name="user" autocomplete="username" required pattern="[A-Za-z0-9\\-]{1,32}" maxlength="32" autocapitalize="none" spellcheck="false">
<label for="password">Password (at least 8 characters)</label>
<input id="password" name="password" type="password" autocomplete="new-password" required minlength="8">
<label for="repeat">Password again</label>
<input id="repeat" name="repeat" type="password" autocomplete="new-password" required minlength="8">
<button type="submit">Create admin account</button>
<p id="result" role="status" aria-live="polite"></p>
</form>
<noscript><p>This page needs JavaScript to send the form.</p></noscript>
<script src="/setup.js"></script>`,
  );
}

/** What `/setup` shows when its link is wrong, used up, or the household already has an admin. */
export function renderSetupClosedPage(reason: string): string {
  return page('Set-up link not valid', `<p>${escapeHtml(reason)}</p><p><a href="/">Log in</a> with an existing account, or ask the household's admin.</p>`);
}

/** `/setup.js`: sends the form as JSON (the API takes JSON only) and shows the answer. */
export const SETUP_SCRIPT = `'use strict';
(function () {
  var form = document.getElementById('setup');
  if (!form) return;
  var result = document.getElementById('result');
  form.addEventListener('submit', function (event) {
    event.preventDefault();
    var user = form.elements.user.value.trim().toLowerCase();
    var password = form.elements.password.value;
    if (password !== form.elements.repeat.value) {
      result.textContent = 'The two passwords differ.';
      return;
    }
    var token = new URLSearchParams(location.search).get('token') || '';
    result.textContent = 'Creating the account…';
    fetch('/api/setup', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      credentials: 'same-origin',
      body: JSON.stringify({ token: token, user: user, password: password })
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (response.status === 201) {
          history.replaceState(null, '', '/setup');
          form.replaceChildren(result);
          result.textContent = 'Done: you are ' + body.address + ', signed in as the household admin. ';
          var open = document.createElement('a');
          open.href = '/';
          open.textContent = 'Open the portal';
          result.append(open);
        } else {
          result.textContent = body.message || ('The node answered ' + response.status + '.');
        }
      });
    }, function () {
      result.textContent = 'The node cannot be reached.';
    });
  });
})();
`;

/** `/setup.css`: readable on a phone and a laptop. */
export const SETUP_STYLE = `body { font: 1rem/1.5 system-ui, sans-serif; margin: 0; color: #1b1b1b; background: #f7f7f4; }
main { max-width: 28rem; margin: 0 auto; padding: 1.5rem 1rem; }
label { display: block; margin-top: 1rem; font-weight: 600; }
input { box-sizing: border-box; width: 100%; padding: .6rem; font: inherit; border: 1px solid #767676; border-radius: .3rem; }
button { margin-top: 1.5rem; padding: .7rem 1.2rem; font: inherit; color: #fff; background: #22543d; border: 0; border-radius: .3rem; }
button:focus-visible, input:focus-visible { outline: 3px solid #d69e2e; outline-offset: 2px; }
#result { min-height: 1.5em; }
`;
