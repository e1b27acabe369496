// Web Push for the authenticator app (docs/methods/push.md, "Notifications (Web Push)"), optional.
// Offered when the server has Web Push configured (its poll answer carries the application server
// key). Permission is asked only when the user presses the button; the subscription goes to the
// server in a request signed by each account's device key. A notice carries no request: the app
// fetches it with its signed poll, so the push service learns timing only.
(function (root) {
  "use strict";
  var C = root.AuthCrypto;
  var t = root.AppI18n.t;
  var app = null;  // what app.js lends: accounts(), post, errorText, poll, remember(name, value)

  function byId(id) { return document.getElementById(id); }

  var pushKey = null;      // the server's application server key (RFC 8292 3.2), base64url
  var subscribed = {};     // device id -> does the server hold this device's subscription?
  var notifyShown = "";

  function note(account, info) {
    if (!info) { return; }
    pushKey = info.application_server_key;
    subscribed[account.device_id] = !!info.subscribed;
  }

  function pushSupported() {
    return "serviceWorker" in navigator && "PushManager" in self && "Notification" in self;
  }

  function notifyStatus(text, isError) {
    var box = byId("notify-status");
    box.textContent = text || "";
    box.className = isError ? "error" : "";
  }

  function render() {
    var section = byId("notify");
    if (!pushKey || !pushSupported() || !app.accounts().length) { section.hidden = true; return; }
    var denied = Notification.permission === "denied";
    var on = !denied && Notification.permission === "granted" &&
      app.accounts().every(function (a) { return subscribed[a.device_id]; });
    var state = denied ? "denied" : on ? "on" : "off";
    section.hidden = false;
    byId("notify-on").hidden = on || denied;
    byId("notify-off").hidden = !on;
    if (state !== notifyShown) {
      notifyShown = state;
      notifyStatus(denied ? t("notify_denied") : on ? t("notify_on") : "");
    }
  }

  function b64uDecode(text) {
    var raw = atob(String(text).replace(/-/g, "+").replace(/_/g, "/"));
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { out[i] = raw.charCodeAt(i); }
    return out;
  }

  // The browser's subscription for the server's key: the one it has, or a new one (a subscription
  // made for another key, after the server's key changed, is replaced).
  function browserSubscription(registration) {
    var manager = registration.pushManager;
    return manager.getSubscription().then(function (existing) {
      var key = existing && existing.options && existing.options.applicationServerKey;
      if (existing && key && C.b64uEncode(key) === pushKey) { return existing; }
      return (existing ? existing.unsubscribe() : Promise.resolve()).then(function () {
        return manager.subscribe({ userVisibleOnly: true, applicationServerKey: b64uDecode(pushKey) });
      });
    });
  }

  function sendSubscription(a, json) {
    var now = Math.floor(Date.now() / 1000);
    var keys = json.keys || {};
    return C.sign(a.key, ["subscribe", a.device_id, now, json.endpoint, keys.p256dh, keys.auth])
      .then(function (signature) {
        return app.post(a.url + "/device/subscribe", {
          device_id: a.device_id, timestamp: now, signature: signature,
          subscription: { endpoint: json.endpoint, keys: { p256dh: keys.p256dh, auth: keys.auth } }
        });
      }).then(function (answer) {
        if (answer.status !== 200) { throw new Error(app.errorText(answer)); }
        subscribed[a.device_id] = true;
      });
  }

  function pushError(err) {
    if (err instanceof TypeError) { return t("network_error"); }
    if (err && err.name === "NotAllowedError") { return t("notify_denied"); }
    if (err && (err.name === "AbortError" || err.name === "NotSupportedError" ||
                err.name === "InvalidStateError")) { return t("notify_unavailable"); }
    return (err && err.message) || t("notify_unavailable");
  }

  // Runs on the button's click: the permission prompt needs that user gesture.
  function enableNotifications() {
    var button = byId("notify-on");
    button.disabled = true;
    Notification.requestPermission().then(function (permission) {
      if (permission !== "granted") {
        var denied = new Error(t("notify_denied"));
        denied.name = "NotAllowedError";
        throw denied;
      }
      return navigator.serviceWorker.ready;
    }).then(browserSubscription).then(function (subscription) {
      var json = subscription.toJSON();
      return Promise.all(app.accounts().map(function (a) { return sendSubscription(a, json); }));
    }).then(function () {
      render();
    }).catch(function (err) {
      notifyShown = "";
      notifyStatus(pushError(err), true);
    }).then(function () { button.disabled = false; });
  }

  function disableNotifications() {
    var button = byId("notify-off");
    button.disabled = true;
    var now = Math.floor(Date.now() / 1000);
    Promise.all(app.accounts().map(function (a) {
      return C.sign(a.key, ["unsubscribe", a.device_id, now]).then(function (signature) {
        return app.post(a.url + "/device/unsubscribe", { device_id: a.device_id, timestamp: now,
                                                      signature: signature });
      }).then(function (answer) {
        if (answer.status !== 200) { throw new Error(app.errorText(answer)); }
        subscribed[a.device_id] = false;
      });
    })).then(function () {
      return navigator.serviceWorker.ready.then(function (registration) {
        return registration.pushManager.getSubscription();
      }).then(function (subscription) { return subscription && subscription.unsubscribe(); });
    }).then(function () {
      render();
      notifyShown = "off";
      notifyStatus(t("notify_off"));
    }).catch(function (err) {
      notifyStatus(pushError(err), true);
    }).then(function () { button.disabled = false; });
  }

  // The service worker shows the notice; an open app polls at once instead of at its next turn.
  function listen() {
    byId("notify-on").addEventListener("click", enableNotifications);
    byId("notify-off").addEventListener("click", disableNotifications);
    if (!("serviceWorker" in navigator)) { return; }
    navigator.serviceWorker.addEventListener("message", function (event) {
      if (event.data && event.data.type === "sign-in-request") { app.poll(); }
    });
    // The worker reads the app's language from here to word its notices like the app.
    app.remember("lang", self.AppI18n.lang).catch(function () {});
  }

  root.AppWebPush = {
    start: function (lent) {
      app = lent;
      return { note: note, render: render, listen: listen };
    }
  };
})(self);
