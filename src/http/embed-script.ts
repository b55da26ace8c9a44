import { Router } from 'express';

/**
 * `GET /embed.js`: the public chat widget of a chatflow. A page includes
 * `<script src="https://switchboard.example/embed.js" data-embed-token="sbe_…">` and gets a chat box
 * (in a shadow root, so the page's styles and the widget's do not mix) that streams answers from
 * `POST /api/v1/embed/public/<token>/chat/stream`. The conversation's `sessionId` is kept in the
 * tab's sessionStorage, so a reload goes on with the same session. Plain ES2017, no dependencies.
 */
export const EMBED_SCRIPT = String.raw`(function () {
  'use strict';
  var script = document.currentScript || document.querySelector('script[data-embed-token]');
  if (!script) return;
  var token = script.getAttribute('data-embed-token') || '';
  var base = new URL(script.src, location.href).origin;
  var title = script.getAttribute('data-title') || 'Chat';
  var url = base + '/api/v1/embed/public/' + encodeURIComponent(token) + '/chat/stream';
  var storeKey = 'switchboard-embed:' + token;
  var sessionId = null;
  try { sessionId = sessionStorage.getItem(storeKey); } catch (e) { /* storage blocked */ }

  var host = document.createElement('div');
  host.setAttribute('data-switchboard-embed', '');
  var root = host.attachShadow ? host.attachShadow({ mode: 'open' }) : host;
  root.innerHTML =
    '<style>' +
    ':host{all:initial}' +
    '.box{position:fixed;right:16px;bottom:16px;width:320px;max-height:460px;display:flex;flex-direction:column;' +
    'font:14px/1.4 system-ui,sans-serif;color:#1b1b1f;background:#fff;border:1px solid #c9c9d1;border-radius:10px;' +
    'box-shadow:0 6px 24px rgba(0,0,0,.15);z-index:2147483000;overflow:hidden}' +
    '.head{padding:8px 12px;background:#24324a;color:#fff;font-weight:600}' +
    '.log{flex:1;overflow-y:auto;padding:8px 12px;min-height:120px}' +
    '.msg{margin:6px 0;white-space:pre-wrap;word-wrap:break-word}' +
    '.user{text-align:right;color:#24324a}.assistant{color:#1b1b1f}' +
    '.error{color:#b00020;padding:0 12px 6px}' +
    'form{display:flex;border-top:1px solid #e3e3e8}' +
    'input{flex:1;border:0;padding:10px;font:inherit;outline:none}' +
    'button{border:0;background:#24324a;color:#fff;padding:0 14px;font:inherit;cursor:pointer}' +
    'button:disabled{opacity:.5;cursor:default}' +
    '</style>' +
    '<div class="box" role="region" aria-label="Chat">' +
    '<div class="head"></div>' +
    '<div class="log" data-role="messages" aria-live="polite"></div>' +
    '<div class="error" data-role="error" role="alert" hidden></div>' +
    '<form data-role="form"><input data-role="input" maxlength="8000" placeholder="Type a message" aria-label="Message">' +
    '<button type="submit" data-role="send">Send</button></form>' +
    '</div>';
  var q = function (role) { return root.querySelector('[data-role="' + role + '"]'); };
  root.querySelector('.head').textContent = title;
  var log = q('messages'), errorBox = q('error'), form = q('form'), input = q('input'), send = q('send');

  function bubble(role, text) {
    var node = document.createElement('div');
    node.className = 'msg ' + role;
    node.setAttribute('data-message-role', role);
    node.textContent = text;
    log.appendChild(node);
    log.scrollTop = log.scrollHeight;
    return node;
  }
  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  /** Reads an SSE body: calls onEvent(name, data) for each complete message. */
  function readEvents(body, onEvent) {
    var reader = body.getReader(), decoder = new TextDecoder(), buffer = '';
    function pump() {
      return reader.read().then(function (step) {
        if (step.done) return;
        buffer += decoder.decode(step.value, { stream: true }).replace(/\r\n?/g, '\n');
        var end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          var block = buffer.slice(0, end), name = 'message', data = [];
          buffer = buffer.slice(end + 2);
          block.split('\n').forEach(function (line) {
            if (line.indexOf('event:') === 0) name = line.slice(6).trim();
            else if (line.indexOf('data:') === 0) data.push(line.slice(5).replace(/^ /, ''));
          });
          if (data.length) onEvent(name, JSON.parse(data.join('\n')));
        }
        return pump();
      });
    }
    return pump();
  }

  form.addEventListener('submit', function (event) {
    event.preventDefault();
    var message = input.value.trim();
    if (!message || send.disabled) return;
    errorBox.hidden = true;
    input.value = '';
    send.disabled = true;
    bubble('user', message);
    var answer = bubble('assistant', '');
    var payload = { message: message };
    if (sessionId) payload.sessionId = sessionId;
    var ended = false;
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) })
      .then(function (response) {
        if (!response.ok || !response.body) {
          return response.json().then(
            function (body) { throw new Error((body && body.error && body.error.message) || 'The chat is not available (' + response.status + ')'); },
            function () { throw new Error('The chat is not available (' + response.status + ')'); }
          );
        }
        return readEvents(response.body, function (name, data) {
          if (name === 'text_chunk') answer.textContent += data.text;
          else if (name === 'final' || name === 'cancelled') {
            ended = true;
            answer.textContent = data.response;
            sessionId = data.sessionId;
            try { sessionStorage.setItem(storeKey, sessionId); } catch (e) { /* storage blocked */ }
          } else if (name === 'error') {
            ended = true;
            showError(data.message || 'The chat could not answer');
          }
        });
      })
      .then(function () { if (!ended) showError('The answer was interrupted; please try again'); })
      .catch(function (error) {
        // A page whose origin the embed does not allow gets no CORS headers: fetch fails without a status.
        showError(error instanceof TypeError ? 'This chat cannot be used on this site' : error.message);
      })
      .then(function () {
        if (!answer.textContent) answer.remove();
        send.disabled = false;
      });
  });

  var mount = function () { document.body.appendChild(host); };
  if (document.body) mount(); else document.addEventListener('DOMContentLoaded', mount);
})();
`;

/**
 * Serves the widget at the site root. Helmet's `Cross-Origin-Resource-Policy: same-origin` would
 * stop other sites from loading it, so this response says `cross-origin`; the script itself is
 * public (the embed token in the page is what the chat endpoint checks, with the page's origin).
 */
export function embedScriptRouter(): Router {
  const router = Router();
  router.get('/embed.js', (_req, res) => {
    res.setHeader('Content-Type', 'text/javascript; charset=utf-8');
    res.setHeader('Cross-Origin-Resource-Policy', 'cross-origin');
    res.setHeader('Cache-Control', 'public, max-age=300');
    res.send(EMBED_SCRIPT);
  });
  return router;
}
