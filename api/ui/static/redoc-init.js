// ReDoc for /redoc, from the vendored standalone bundle (no CDN, no web fonts).
Redoc.init("/openapi.json", { hideDownloadButton: false }, document.getElementById("redoc"));
