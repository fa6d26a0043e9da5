// Security keys and passkeys (WebAuthn). Forms carry the server's challenge as JSON in
// data-webauthn-create (registration) or data-webauthn-get (login); this script asks the
// authenticator and posts its answer as JSON in the form's hidden field (`credential` or `code`).
// No inline script: the page's CSP allows only scripts from 'self'.
(function () {
  'use strict';
  function toBytes(b64url) {
    var s = b64url.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) s += '=';
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function toB64url(buf) {
    var bytes = new Uint8Array(buf), bin = '';
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }
  function creationOptions(json) {
    var o = JSON.parse(json).publicKey;
    o.challenge = toBytes(o.challenge);
    o.user.id = toBytes(o.user.id);
    (o.excludeCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
    return { publicKey: o };
  }
  function requestOptions(json) {
    var o = JSON.parse(json).publicKey;
    o.challenge = toBytes(o.challenge);
    (o.allowCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
    return { publicKey: o };
  }
  function registrationAnswer(cred) {
    return JSON.stringify({
      id: cred.id, rawId: toB64url(cred.rawId), type: cred.type, extensions: {},
      response: {
        attestationObject: toB64url(cred.response.attestationObject),
        clientDataJSON: toB64url(cred.response.clientDataJSON)
      }
    });
  }
  function loginAnswer(cred) {
    var r = cred.response;
    return JSON.stringify({
      id: cred.id, rawId: toB64url(cred.rawId), type: cred.type, extensions: {},
      response: {
        authenticatorData: toB64url(r.authenticatorData),
        clientDataJSON: toB64url(r.clientDataJSON),
        signature: toB64url(r.signature),
        userHandle: r.userHandle ? toB64url(r.userHandle) : null
      }
    });
  }
  function wire(form, attr, field, ask) {
    form.addEventListener('submit', function (ev) {
      var input = form.querySelector('input[name="' + field + '"]');
      if (input.value) return;
      ev.preventDefault();
      ask(form.getAttribute(attr)).then(function (answer) {
        input.value = answer;
        form.submit();
      }).catch(function (err) {
        var p = form.querySelector('[data-webauthn-error]');
        if (p) { p.hidden = false; p.textContent = p.getAttribute('data-webauthn-error') + ' (' + err.name + ')'; }
      });
    });
  }
  document.querySelectorAll('form[data-webauthn-create]').forEach(function (form) {
    wire(form, 'data-webauthn-create', 'credential', function (json) {
      return navigator.credentials.create(creationOptions(json)).then(registrationAnswer);
    });
  });
  document.querySelectorAll('form[data-webauthn-get]').forEach(function (form) {
    wire(form, 'data-webauthn-get', 'code', function (json) {
      return navigator.credentials.get(requestOptions(json)).then(loginAnswer);
    });
  });
})();
