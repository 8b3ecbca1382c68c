/*
 * Helpdesk Assistant in the Freshdesk ticket sidebar.
 *
 * Request templates cannot stream, so the app uses one template only, to mint a short-lived
 * widget token with the secure API key (the key stays on Freshworks' servers); the
 * <helpdesk-assistant> widget then talks to the Helpdesk Assistant API directly, streaming
 * drafts over SSE. Inserting a draft puts it into Freshdesk's reply editor.
 */
(function (global) {
  'use strict';

  var TOKEN_TTL_SECONDS = 900;
  /** Mint a new token this long before the old one expires. */
  var TOKEN_REFRESH_MARGIN_MS = 60 * 1000;
  /** A token refused right after minting means something else is wrong: do not loop. */
  var MIN_REMINT_INTERVAL_MS = 30 * 1000;

  // Freshdesk API v2 ticket status codes.
  var FRESHDESK_STATUS = { 2: 'open', 3: 'pending', 4: 'resolved', 5: 'closed' };

  /** Freshdesk's ticket (and the requester contact, when known) as the assistant's Ticket. */
  function toTicket(ticket, contact) {
    var result = {
      id: String(ticket.id),
      source: 'freshdesk',
      subject: ticket.subject || '',
      // description is HTML; description_text is the plain text the assistant wants.
      description: ticket.description_text || stripHtml(ticket.description || ''),
    };
    var status = FRESHDESK_STATUS[ticket.status];
    if (status) result.status = status;
    if (contact && contact.language) result.language = String(contact.language);
    if (contact && contact.email) result.requester = String(contact.email);
    return result;
  }

  function stripHtml(html) {
    var box = document.createElement('div');
    box.innerHTML = html;
    return (box.textContent || '').trim();
  }

  /** The API origin from the api_host iparam ("assist.example.com", tolerating a scheme). */
  function apiBaseFrom(host) {
    var bare = String(host || '')
      .trim()
      .replace(/^https?:\/\//i, '')
      .replace(/\/.*$/, '');
    return bare ? 'https://' + bare : '';
  }

  function mintToken(client, ticketId) {
    return client.request
      .invokeTemplate('mintWidgetToken', {
        body: JSON.stringify({ ticket_id: ticketId, ttl_seconds: TOKEN_TTL_SECONDS }),
      })
      .then(function (reply) {
        // The request method hands back the body as a string.
        var minted = typeof reply.response === 'string' ? JSON.parse(reply.response) : reply.response;
        if (!minted || !minted.token) throw new Error('no token in the reply');
        return minted;
      });
  }

  /** Loads the widget bundle from the API host once; resolves when the element is defined. */
  function loadWidget(doc, apiBase) {
    var win = doc.defaultView;
    if (win.customElements.get('helpdesk-assistant')) return Promise.resolve();
    return new Promise(function (resolve, reject) {
      var script = doc.createElement('script');
      script.src = apiBase + '/widget/helpdesk-widget.js';
      script.async = true;
      script.onload = function () {
        win.customElements.whenDefined('helpdesk-assistant').then(resolve, reject);
      };
      script.onerror = function () {
        reject(new Error('could not load ' + script.src));
      };
      doc.head.appendChild(script);
    });
  }

  /** Puts text into the reply editor; opens the editor with it when none is open yet. */
  function insertIntoReply(client, text) {
    return client.interface
      .trigger('setValue', { id: 'editor', text: text })
      .catch(function () {
        return client.interface.trigger('click', { id: 'reply', text: text });
      });
  }

  function optional(promise) {
    return promise.catch(function () {
      return null;
    });
  }

  /**
   * Mounts the assistant for the ticket in view. `doc` is the sidebar's document. Returns a
   * function that stops the token refresh (for tests and for re-activation).
   */
  function start(client, doc) {
    var element = doc.getElementById('assistant');
    var status = doc.getElementById('sidebar-status');
    var refreshTimer = null;
    var ticketId = null;

    function say(message) {
      if (status) status.textContent = message;
    }

    function applyToken(minted) {
      element.setAttribute('token', minted.token);
      var expires = Date.parse(minted.expires_at);
      if (refreshTimer) clearTimeout(refreshTimer);
      if (!isNaN(expires)) {
        var wait = Math.max(5000, expires - Date.now() - TOKEN_REFRESH_MARGIN_MS);
        refreshTimer = setTimeout(refresh, wait);
      }
    }

    var lastMint = 0;

    function refreshAfterRefusal() {
      if (Date.now() - lastMint < MIN_REMINT_INTERVAL_MS) {
        say('Helpdesk Assistant refused the session; reload the ticket.');
        return;
      }
      refresh();
    }

    function refresh() {
      lastMint = Date.now();
      return mintToken(client, ticketId).then(applyToken, function () {
        say('Helpdesk Assistant: could not renew the session.');
      });
    }

    function onInsert(event) {
      insertIntoReply(client, event.detail.text).then(
        function () {
          client.interface.trigger('showNotify', {
            type: 'success',
            message: 'Draft inserted into the reply.',
          });
        },
        function () {
          client.interface.trigger('showNotify', {
            type: 'danger',
            message: 'Could not insert the draft; use Copy instead.',
          });
        },
      );
    }
    element.addEventListener('helpdesk:insert', onInsert);
    // The widget says when the API refused its token (expired, revoked): mint a new one.
    element.addEventListener('helpdesk:auth-error', refreshAfterRefusal);

    var ready = Promise.all([
      client.iparams.get(),
      client.data.get('ticket'),
      optional(client.data.get('contact')),
      optional(client.data.get('loggedInUser')),
    ]).then(function (results) {
      var iparams = results[0];
      var ticket = results[1].ticket;
      var contact = results[2] && results[2].contact;
      var agent = results[3] && results[3].loggedInUser;
      var apiBase = apiBaseFrom(iparams.api_host);
      ticketId = String(ticket.id);
      element.setAttribute('api-base', apiBase);
      element.setAttribute('company-id', iparams.company_id);
      // The agent's language for the UI; the draft follows the customer's language.
      var agentLanguage = agent && agent.contact && agent.contact.language;
      if (agentLanguage) element.setAttribute('lang', agentLanguage);
      return Promise.all([mintToken(client, ticketId), loadWidget(doc, apiBase)]).then(
        function (done) {
          applyToken(done[0]);
          element.ticket = toTicket(ticket, contact);
          say('');
        },
      );
    });
    ready.catch(function (error) {
      say('Helpdesk Assistant is unavailable: ' + (error && error.message ? error.message : error));
    });
    return {
      ready: ready,
      stop: function () {
        if (refreshTimer) clearTimeout(refreshTimer);
        element.removeEventListener('helpdesk:insert', onInsert);
        element.removeEventListener('helpdesk:auth-error', refreshAfterRefusal);
      },
    };
  }

  global.HelpdeskFreshdeskApp = {
    toTicket: toTicket,
    apiBaseFrom: apiBaseFrom,
    start: start,
  };

  if (global.app && typeof global.app.initialized === 'function') {
    global.app.initialized().then(function (client) {
      var current = null;
      // The sidebar stays loaded while agents move between tickets: remount on activation.
      client.events.on('app.activated', function () {
        if (current) current.stop();
        current = start(client, document);
      });
    });
  }
})(window);
