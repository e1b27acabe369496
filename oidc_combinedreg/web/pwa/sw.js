// Keeps the app shell for offline use (codes need no network). Network first, so a fixed app
// reaches the phone at once; the cache answers only when the network cannot. The device API is
// never cached: it is POST only, and a sign-in request must never come from a cache.
"use strict";
// The texts of the notices (the app's catalog, six languages). Under the app's CSP a script URL
// must be a TrustedScriptURL (Trusted Types): one policy, for this one file.
importScripts(self.trustedTypes ? self.trustedTypes.createPolicy("authenticator", {
  createScriptURL: function (url) {
    if (url !== "i18n.js") { throw new TypeError("not the app's catalog: " + url); }
    return url;
  }
}).createScriptURL("i18n.js") : "i18n.js");
var CACHE = "combinedreg-authenticator-v1";
var SHELL = ["./", "app.js", "authcrypto.js", "webpush.js", "i18n.js", "app.css", "manifest.webmanifest",
             "icon.svg"];
var SCOPE = new URL("./", self.location).pathname;

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(CACHE).then(function (cache) { return cache.addAll(SHELL); })
    .then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (n) { return n !== CACHE; })
      .map(function (n) { return caches.delete(n); }));
  }).then(function () { return self.clients.claim(); }));
});

self.addEventListener("fetch", function (event) {
  var request = event.request;
  var url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin ||
      url.pathname.indexOf(SCOPE) !== 0) {
    return;
  }
  event.respondWith(fetch(request).then(function (response) {
    if (response.ok) {
      var copy = response.clone();
      caches.open(CACHE).then(function (cache) { cache.put(request, copy); });
    }
    return response;
  }).catch(function () {
    return caches.match(request, { ignoreSearch: true }).then(function (hit) {
      return hit || caches.match("./");
    });
  }));
});

// -- notifications (Web Push; docs/methods/push.md, "Notifications (Web Push)") ----------------
// A push only says that a sign-in request is waiting: whatever it carries, the notice shows the
// catalog's generic words, never a number, an application or an address (the app fetches the
// request itself with its signed poll when it opens). Every push shows a notice: browsers
// require that of a subscription made with userVisibleOnly.

// The language the app last ran in (kept by the app in its IndexedDB); else the phone's.
function language() {
  return new Promise(function (resolve) {
    var open = indexedDB.open("combinedreg-authenticator");
    // No database yet: create none (the app makes it, with its stores, at its first start).
    open.onupgradeneeded = function () { open.transaction.abort(); };
    open.onerror = function () { resolve(self.AppI18n.lang); };
    open.onsuccess = function () {
      var db = open.result;
      try {
        var get = db.transaction("keys", "readonly").objectStore("keys").get("lang");
        get.onsuccess = function () {
          db.close();
          resolve(self.AppI18n.texts[get.result] ? get.result : self.AppI18n.lang);
        };
        get.onerror = function () { db.close(); resolve(self.AppI18n.lang); };
      } catch (e) {
        db.close();
        resolve(self.AppI18n.lang);
      }
    };
  });
}

function text(lang, key) {
  var texts = self.AppI18n.texts;
  return (texts[lang] && texts[lang][key]) || texts.en[key];
}

self.addEventListener("push", function (event) {
  event.waitUntil(language().then(function (lang) {
    return self.registration.showNotification(text(lang, "push_title"), {
      body: text(lang, "push_body"),
      lang: lang,
      dir: lang === "ar" ? "rtl" : "ltr",
      icon: "icon.svg",
      tag: "sign-in-request",  // a newer notice replaces the older one
      renotify: true,
      data: { url: SCOPE + "#requests" }
    });
  }).then(function () {
    return self.clients.matchAll({ type: "window" });
  }).then(function (windows) {
    windows.forEach(function (client) { client.postMessage({ type: "sign-in-request" }); });
  }));
});

// Opens the app where the requests are, or brings an open one forward (it polls at once).
self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  event.waitUntil(self.clients.matchAll({ type: "window", includeUncontrolled: true })
    .then(function (windows) {
      for (var i = 0; i < windows.length; i++) {
        if (new URL(windows[i].url).pathname.indexOf(SCOPE) === 0) {
          windows[i].postMessage({ type: "sign-in-request" });
          return windows[i].focus();
        }
      }
      return self.clients.openWindow(SCOPE + "#requests");
    }));
});
