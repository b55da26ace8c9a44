// The embed preview: a page the Embeds section of a chatflow frames, with the chat widget included
// exactly as a site includes /embed.js. It runs only inside a frame of this console's origin, and
// takes the embed token from that frame's parent by postMessage: opened on its own (a link someone
// sent), it runs nothing, so no page of the console's origin can run an embed a stranger chose.
(function () {
  'use strict';
  var parentWindow = window.parent;
  if (parentWindow === window) {
    window.addEventListener('DOMContentLoaded', function () {
      var note = document.querySelector('[data-role="preview-note"]');
      if (note) note.textContent = 'This page only shows a preview inside the Switchboard console.';
    });
    return;
  }
  var started = false;
  window.addEventListener('message', function (event) {
    // Only the console that framed this page, from this very origin, hands the token over.
    if (started || event.source !== parentWindow || event.origin !== location.origin) return;
    var data = event.data;
    if (!data || data.type !== 'switchboard:embed-preview' || typeof data.token !== 'string' || !data.token) return;
    started = true;
    var script = document.createElement('script');
    script.src = '/embed.js';
    script.setAttribute('data-embed-token', data.token);
    script.setAttribute('data-title', typeof data.title === 'string' && data.title ? data.title : 'Chat');
    document.head.appendChild(script);
  });
  // Asks for the token; the origin given makes sure only a parent of this origin receives it.
  parentWindow.postMessage({ type: 'switchboard:embed-preview-ready' }, location.origin);
})();
