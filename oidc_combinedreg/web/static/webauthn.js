/* oidc-combinedreg: security keys and passkeys (WebAuthn) in the browser. No framework, no CDN.
 *
 * Three hooks, found by data attributes in the server's pages:
 *   form[data-webauthn="register"]  the key's name: fetch creation options, create, post the answer
 *   [data-webauthn="create"]        a button whose data-options holds creation options
 *   form[data-webauthn="get"]       the MFA step: fetch request options, get, post the answer
 * The answer goes back in form#webauthn-verify (a normal POST, so the server's redirect is
 * followed by the browser). Served under CSP script-src 'self': nothing here is inline.
 */
(function () {
  "use strict";

  function b64uToBuf(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) { b64 += "="; }
    var bin = atob(b64), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }

  function bufToB64u(buf) {
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (d) {
      return Object.assign({}, d, { id: b64uToBuf(d.id) });
    });
  }

  // Fallbacks for browsers without PublicKeyCredential.parse*OptionsFromJSON / toJSON.
  function creationOptions(pk) {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) {
      return PublicKeyCredential.parseCreationOptionsFromJSON(pk);
    }
    return Object.assign({}, pk, {
      challenge: b64uToBuf(pk.challenge),
      user: Object.assign({}, pk.user, { id: b64uToBuf(pk.user.id) }),
      excludeCredentials: descriptors(pk.excludeCredentials)
    });
  }

  function requestOptions(pk) {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) {
      return PublicKeyCredential.parseRequestOptionsFromJSON(pk);
    }
    return Object.assign({}, pk, {
      challenge: b64uToBuf(pk.challenge),
      allowCredentials: descriptors(pk.allowCredentials)
    });
  }

  function credentialJSON(cred) {
    if (typeof cred.toJSON === "function") {
      try { return cred.toJSON(); } catch (e) { /* fall through to the manual form */ }
    }
    var r = cred.response, response = { clientDataJSON: bufToB64u(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = bufToB64u(r.attestationObject);
      if (r.getTransports) { response.transports = r.getTransports(); }
    } else {
      response.authenticatorData = bufToB64u(r.authenticatorData);
      response.signature = bufToB64u(r.signature);
      if (r.userHandle) { response.userHandle = bufToB64u(r.userHandle); }
    }
    return {
      id: cred.id, rawId: bufToB64u(cred.rawId), type: cred.type, response: response,
      authenticatorAttachment: cred.authenticatorAttachment || null,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {}
    };
  }

  function status(key) {
    var el = document.getElementById("webauthn-status");
    if (!el) { return; }
    el.textContent = el.getAttribute("data-msg-" + key) || "";
    el.hidden = false;
  }

  function postJSON(form, body) {
    var token = form.elements.csrf_token ? form.elements.csrf_token.value : "";
    body.csrf_token = token;
    return fetch(window.location.href, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json",
                 "X-CSRF-Token": token },
      body: JSON.stringify(body)
    });
  }

  function sendAnswer(cred) {
    var form = document.getElementById("webauthn-verify");
    form.elements.credential.value = JSON.stringify(credentialJSON(cred));
    form.submit();
  }

  function create(options) {
    return navigator.credentials.create({ publicKey: creationOptions(options.publicKey) })
      .then(sendAnswer);
  }

  function supported() {
    if (window.PublicKeyCredential && navigator.credentials) { return true; }
    status("unsupported");
    return false;
  }

  function onRegister(event) {
    var form = event.currentTarget;
    event.preventDefault();
    if (!supported()) { return; }
    postJSON(form, { action: "options", name: form.elements.name.value })
      .then(function (resp) {
        if (!resp.ok) { form.submit(); return null; }  // the server shows what was wrong
        return resp.json();
      })
      .then(function (page) { return page && create(page.options); })
      .catch(function () { status("failed"); });
  }

  function onCreate(event) {
    if (!supported()) { return; }
    var options = JSON.parse(event.currentTarget.getAttribute("data-options"));
    create(options).catch(function () { status("failed"); });
  }

  function onGet(event) {
    var form = event.currentTarget;
    event.preventDefault();
    if (!supported()) { return; }
    postJSON(form, { action: "start", method_id: form.elements.method_id.value })
      .then(function (resp) {
        if (!resp.ok) { throw new Error("start refused"); }
        return resp.json();
      })
      .then(function (page) {
        return navigator.credentials.get({ publicKey: requestOptions(page.challenge.publicKey) });
      })
      .then(sendAnswer)
      .catch(function () { status("failed"); });
  }

  function bind(selector, type, handler) {
    var nodes = document.querySelectorAll(selector);
    for (var i = 0; i < nodes.length; i++) { nodes[i].addEventListener(type, handler); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    bind('form[data-webauthn="register"]', "submit", onRegister);
    bind('[data-webauthn="create"]', "click", onCreate);
    bind('form[data-webauthn="get"]', "submit", onGet);
  });
}());
