// The authenticator web app: enrolls with the one-time link from the sign-in page, answers
// sign-in requests with number matching, shows offline codes. Speaks the push protocol of
// docs/methods/push.md (version 1) to the device API of its own origin; keeps its keys as
// non-extractable CryptoKeys in IndexedDB. Builds the page with textContent only.
(function () {
  "use strict";
  var C = self.AuthCrypto;
  var t = self.AppI18n.t;
  var PREFIX = "combinedreg-push://enroll?";
  var POLL_MS = 3000;

  // -- IndexedDB: accounts (keyPath device_id) and the app's AES key -----------------------------

  var dbPromise = null;
  function db() {
    if (!dbPromise) {
      dbPromise = new Promise(function (resolve, reject) {
        var open = indexedDB.open("combinedreg-authenticator", 1);
        open.onupgradeneeded = function () {
          open.result.createObjectStore("accounts", { keyPath: "device_id" });
          open.result.createObjectStore("keys");
        };
        open.onsuccess = function () { resolve(open.result); };
        open.onerror = function () { reject(open.error); };
      });
    }
    return dbPromise;
  }
  function request(storeName, mode, action) {
    return db().then(function (d) {
      return new Promise(function (resolve, reject) {
        var tx = d.transaction(storeName, mode);
        var req = action(tx.objectStore(storeName));
        tx.oncomplete = function () { resolve(req ? req.result : undefined); };
        tx.onerror = function () { reject(tx.error); };
        tx.onabort = function () { reject(tx.error); };
      });
    });
  }
  function allAccounts() { return request("accounts", "readonly", function (s) { return s.getAll(); }); }
  function putAccount(a) { return request("accounts", "readwrite", function (s) { return s.put(a); }); }
  function deleteAccount(id) { return request("accounts", "readwrite", function (s) { return s.delete(id); }); }
  function seedKey() {
    return request("keys", "readonly", function (s) { return s.get("seed"); }).then(function (key) {
      if (key) { return key; }
      return C.newSeedKey().then(function (fresh) {
        return request("keys", "readwrite", function (s) { return s.put(fresh, "seed"); })
          .then(function () { return fresh; });
      });
    });
  }

  // -- the device API ----------------------------------------------------------------------------

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "omit",
      cache: "no-store",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        return { status: r.status, data: data };
      });
    });
  }

  function errorText(answer) {
    var e = answer.data && answer.data.error;
    if (answer.status === 410 || e === "expired") { return t("expired_link"); }
    if (e === "limit_reached") { return t("limit_reached"); }
    return t("server_error", { error: e || answer.status });
  }

  // -- the page ----------------------------------------------------------------------------------

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") { node.textContent = attrs[name]; }
      else { node.setAttribute(name, attrs[name]); }
    });
    (children || []).forEach(function (child) { if (child) { node.appendChild(child); } });
    return node;
  }
  function byId(id) { return document.getElementById(id); }
  function notice(text, isError) {
    var box = byId("notice");
    box.textContent = text || "";
    box.className = isError ? "error" : "";
  }

  // -- enrollment --------------------------------------------------------------------------------

  // The payload: a combinedreg-push URI, or this app's link carrying it in the fragment.
  function parsePayload(text) {
    var value = String(text || "").trim();
    var hash = value.indexOf("#enroll=");
    if (hash >= 0) { value = decodeURIComponent(value.slice(hash + 8)); }
    if (value.indexOf(PREFIX) !== 0) { return null; }
    var q = new URLSearchParams(value.slice(PREFIX.length));
    if (q.get("v") !== "1" || !q.get("url") || !q.get("token")) { return null; }
    return { url: q.get("url").replace(/\/+$/, ""), token: q.get("token"),
             account: q.get("account") || "", issuer: q.get("issuer") || "" };
  }

  function sameOrigin(url) {
    try { return new URL(url).origin === location.origin; } catch (e) { return false; }
  }

  function showConfirm(payload) {
    var section = byId("confirm");
    section.replaceChildren(
      el("h2", { text: t("confirm_heading") }),
      el("p", { text: t("confirm_text", { account: payload.account, issuer: payload.issuer }) })
    );
    var form = el("form", { id: "confirm-form" });
    var input = el("input", { id: "device-name", name: "device_name", maxlength: "64",
                              required: "", autocomplete: "off" });
    input.value = t("default_device_name");
    form.append(
      el("label", { "for": "device-name", text: t("device_name") }), input,
      el("div", { "class": "row" }, [
        el("button", { type: "submit", id: "confirm-add", text: t("add_button") }),
        el("button", { type: "button", id: "confirm-cancel", "class": "secondary", text: t("cancel") })
      ])
    );
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      enroll(payload, input.value);
    });
    section.appendChild(form);
    section.hidden = false;
    byId("confirm-cancel").addEventListener("click", function () { section.hidden = true; });
    input.focus();
  }

  function enroll(payload, deviceName) {
    var name = String(deviceName).replace(/\s+/g, " ").trim().slice(0, 64) || t("default_device_name");
    var section = byId("confirm");
    notice(t("adding"));
    var keys, spki;
    C.newDeviceKey().then(function (pair) {
      keys = pair;
      return C.publicKeySpki(pair.publicKey);
    }).then(function (encoded) {
      spki = encoded;
      return C.sign(keys.privateKey, ["enroll", payload.token, spki, name]);
    }).then(function (signature) {
      return post(payload.url + "/device/enroll", {
        token: payload.token, public_key: spki, device_name: name, signature: signature
      });
    }).then(function (answer) {
      if (answer.status !== 201) { throw new Error(errorText(answer)); }
      var d = answer.data;
      return seedKey().then(function (aes) {
        return C.sealSeed(aes, C.base32Decode(d.totp.secret));
      }).then(function (sealed) {
        return putAccount({
          device_id: d.device_id, account: d.account || payload.account,
          issuer: d.issuer || payload.issuer, url: payload.url, device_name: name,
          key: keys.privateKey, seed: sealed,
          digits: d.totp.digits || 6, period: d.totp.period || 30, added_at: Date.now()
        });
      });
    }).then(function () {
      section.hidden = true;
      notice(t("added"));
      return renderAccounts();
    }).catch(function (err) {
      section.hidden = true;
      notice(err instanceof TypeError ? t("network_error") : err.message, true);
    });
  }

  function startEnrollment(text) {
    var payload = parsePayload(text);
    if (!payload) { notice(t("bad_link"), true); return; }
    if (!sameOrigin(payload.url)) { notice(t("other_server"), true); return; }
    showConfirm(payload);
  }

  // -- accounts and codes ------------------------------------------------------------------------

  var accounts = [];

  function renderAccounts() {
    return allAccounts().then(function (list) {
      accounts = list.sort(function (a, b) { return a.added_at - b.added_at; });
      var box = byId("account-list");
      box.replaceChildren();
      if (!accounts.length) {
        box.appendChild(el("p", { text: t("no_accounts") }));
        return;
      }
      accounts.forEach(function (a) {
        var code = el("output", { "class": "code", "data-device": a.device_id,
                                  "aria-label": t("code_label", { account: a.account }) });
        var remove = el("button", { type: "button", "class": "secondary", text: t("remove") });
        remove.addEventListener("click", function () { removeAccount(a); });
        box.appendChild(el("article", { "class": "account" }, [
          el("h3", { text: a.account }),
          el("p", { "class": "issuer", text: a.issuer }),
          code,
          el("p", { "class": "left", "data-left": a.device_id }),
          remove
        ]));
      });
      return refreshCodes();
    });
  }

  function refreshCodes() {
    var now = Date.now() / 1000;
    return seedKey().then(function (aes) {
      return Promise.all(accounts.map(function (a) {
        return C.openSeed(aes, a.seed).then(function (seed) {
          return C.totp(seed, now, a.period, a.digits);
        }).then(function (code) {
          var out = document.querySelector('output[data-device="' + CSS.escape(a.device_id) + '"]');
          var left = document.querySelector('[data-left="' + CSS.escape(a.device_id) + '"]');
          if (out) { out.textContent = code; }
          if (left) {
            left.textContent = t("seconds_left", { seconds: a.period - Math.floor(now % a.period) });
          }
        });
      }));
    });
  }

  // The server forgets the device first; only then does the app drop its key. A device the
  // server still needs (the user's only MFA method: replace_first) or cannot reach stays, so
  // the user is never left with a registration nothing can answer. An unknown device (already
  // deleted on the security-info page) is removed here as well.
  function removeAccount(a) {
    if (!window.confirm(t("remove_confirm", { account: a.account }))) { return; }
    var now = Math.floor(Date.now() / 1000);
    C.sign(a.key, ["remove", a.device_id, now]).then(function (signature) {
      return post(a.url + "/device/remove", { device_id: a.device_id, timestamp: now,
                                               signature: signature });
    }).then(function (answer) {
      var gone = answer.status === 200 || answer.status === 410 ||
        (answer.status === 401 && answer.data.reason === "unknown device");
      if (!gone) {
        throw new Error(answer.data.error === "replace_first" ? t("replace_first") : errorText(answer));
      }
      return deleteAccount(a.device_id);
    }).then(function () {
      notice(t("removed"));
      return renderAccounts();
    }).catch(function (err) {
      notice(err instanceof TypeError ? t("network_error") : err.message, true);
    });
  }

  // -- sign-in requests --------------------------------------------------------------------------

  var shown = {};  // transaction id -> its card, kept across polls so typing is not lost

  function poll() {
    if (document.visibilityState === "hidden" || !accounts.length) { return Promise.resolve(); }
    var now = Math.floor(Date.now() / 1000);
    return Promise.all(accounts.map(function (a) {
      return C.sign(a.key, ["pending", a.device_id, now]).then(function (signature) {
        return post(a.url + "/device/pending", { device_id: a.device_id, timestamp: now,
                                                  signature: signature });
      }).then(function (answer) {
        if (answer.status === 200) { push.note(a, answer.data.web_push); }
        var list = (answer.status === 200 && answer.data.requests) || [];
        return list.map(function (r) { return { account: a, request: r }; });
      });
    })).then(function (lists) {
      byId("offline").hidden = true;
      renderRequests([].concat.apply([], lists));
      push.render();
    }).catch(function () {
      byId("offline").hidden = false;
    });
  }

  function renderRequests(items) {
    var box = byId("request-list");
    var seen = {};
    items.forEach(function (item) {
      var id = item.request.transaction_id;
      seen[id] = true;
      if (!shown[id]) {
        shown[id] = requestCard(item.account, item.request);
        box.appendChild(shown[id]);
      }
    });
    Object.keys(shown).forEach(function (id) {
      if (!seen[id] && !shown[id].answered) { shown[id].remove(); delete shown[id]; }
    });
    byId("requests").hidden = !box.children.length;
  }

  function fact(label, value) {
    return [el("dt", { text: label }), el("dd", { text: value })];
  }

  function requestCard(account, r) {
    var id = "n-" + r.transaction_id.replace(/[^A-Za-z0-9_-]/g, "");
    var input = el("input", { id: id, name: "number", inputmode: "numeric", pattern: "[0-9]*",
                              maxlength: "2", autocomplete: "off", "class": "number" });
    var result = el("p", { role: "status", "class": "result" });
    var form = el("form", { "class": "request" });
    var when = new Date(r.created_at * 1000).toLocaleTimeString(self.AppI18n.lang);
    var facts = el("dl", {}, [].concat(
      fact(t("request_account"), r.account || account.account),
      fact(t("request_app"), r.app || ""),
      fact(t("request_network"), r.client_ip || ""),
      fact(t("request_time"), when)
    ));
    var approve = el("button", { type: "submit", name: "approve", text: t("approve") });
    var deny = el("button", { type: "button", name: "deny", "class": "secondary", text: t("deny") });
    var report = el("button", { type: "button", name: "report", "class": "secondary", text: t("report") });
    form.append(el("h3", { text: t("request_heading") }), facts,
                el("label", { "for": id, text: t("number_label") }), input,
                el("div", { "class": "row" }, [approve, deny, report]), result);
    function answer(decision) {
      var number = 0;
      if (decision === "approve") {
        number = /^[0-9]{1,2}$/.test(input.value.trim()) ? parseInt(input.value, 10) : -1;
        if (number < 0) { result.textContent = t("number_needed"); input.focus(); return; }
      }
      form.answered = true;
      [approve, deny, report, input].forEach(function (b) { b.disabled = true; });
      C.sign(account.key, ["respond", r.transaction_id, r.challenge, number, decision])
        .then(function (signature) {
          return post(account.url + "/device/respond", {
            device_id: account.device_id, transaction_id: r.transaction_id, number: number,
            decision: decision, signature: signature
          });
        }).then(function (a) {
          if (a.status === 200) { result.textContent = t(a.data.result); }
          else if (a.status === 410) { result.textContent = t("request_gone"); }
          // Deleted on the security-info page (a lost phone): its key no longer counts.
          else if (a.status === 401 && a.data.reason === "unknown device") {
            result.textContent = t("device_deleted");
          }
          else { result.textContent = errorText(a); }
          form.setAttribute("data-result", a.status === 200 ? a.data.result : "error");
        }).catch(function () { result.textContent = t("network_error"); });
    }
    form.addEventListener("submit", function (event) { event.preventDefault(); answer("approve"); });
    deny.addEventListener("click", function () { answer("deny"); });
    report.addEventListener("click", function () { answer("report"); });
    return form;
  }

  // -- notifications (Web Push, optional): webpush.js --------------------------------------------

  var push = self.AppWebPush.start({
    accounts: function () { return accounts; }, post: post, errorText: errorText, poll: poll,
    remember: function (name, value) {
      return request("keys", "readwrite", function (s) { return s.put(value, name); });
    }
  });

  // -- start -------------------------------------------------------------------------------------

  // Under the app's CSP (require-trusted-types-for 'script') a script URL must be a
  // TrustedScriptURL: the one policy the CSP allows ("trusted-types authenticator") makes the
  // worker's, and nothing else.
  function workerUrl() {
    if (!self.trustedTypes) { return "sw.js"; }
    return self.trustedTypes.createPolicy("authenticator", {
      createScriptURL: function (url) {
        if (url !== "sw.js") { throw new TypeError("not the app's worker: " + url); }
        return url;
      }
    }).createScriptURL("sw.js");
  }

  function start() {
    document.documentElement.lang = self.AppI18n.lang;
    document.documentElement.dir = self.AppI18n.dir;
    document.title = t("title");
    document.querySelectorAll("[data-t]").forEach(function (node) {
      node.textContent = t(node.getAttribute("data-t"));
    });
    push.listen();
    byId("add-form").addEventListener("submit", function (event) {
      event.preventDefault();
      startEnrollment(byId("add-link").value);
    });
    if (location.hash.indexOf("#enroll=") === 0) {
      var link = location.href;
      // Out of the address bar and the history at once: the token is single use anyway.
      history.replaceState(null, "", location.pathname);
      startEnrollment(link);
    }
    renderAccounts().then(function () {
      document.body.setAttribute("data-ready", "1");
      poll();
    });
    window.setInterval(function () { refreshCodes(); }, 1000);
    window.setInterval(poll, POLL_MS);
    document.addEventListener("visibilitychange", function () { poll(); });
    if ("serviceWorker" in navigator) {
      navigator.serviceWorker.register(workerUrl(), { scope: "./" }).catch(function () {});
    }
  }

  start();
})();
