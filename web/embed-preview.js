// The embed preview (framed by the Embeds section of a chatflow): includes /embed.js exactly as a
// site would, with the token and title from this page's fragment (`#token=…&title=…`), which the
// browser never sends to a server.
(function () {
  'use strict';
  var params = new URLSearchParams(location.hash.slice(1));
  var token = params.get('token');
  if (!token) return;
  var script = document.createElement('script');
  script.src = '/embed.js';
  script.setAttribute('data-embed-token', token);
  script.setAttribute('data-title', params.get('title') || 'Chat');
  document.head.appendChild(script);
})();
