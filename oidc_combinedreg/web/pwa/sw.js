// Keeps the app shell for offline use (codes need no network). Network first, so a fixed app
// reaches the phone at once; the cache answers only when the network cannot. The device API is
// never cached: it is POST only, and a sign-in request must never come from a cache.
"use strict";
var CACHE = "combinedreg-authenticator-v1";
var SHELL = ["./", "app.js", "authcrypto.js", "i18n.js", "app.css", "manifest.webmanifest", "icon.svg"];
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
