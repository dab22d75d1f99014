package host

import (
	"bytes"
	"embed"
	"io/fs"
	"net/http"
	"strings"
	"time"
)

// web holds the page served at /: plain HTML, CSS and JavaScript, no build
// step. It talks to the API and the WebSocket of the daemon that serves it.
//
//go:embed web
var webFiles embed.FS

func (d *Daemon) webRoutes(mux *http.ServeMux) {
	sub, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic(err)
	}
	files := http.FileServerFS(sub)
	index, err := fs.ReadFile(sub, "index.html")
	if err != nil {
		panic(err)
	}
	page := func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws://"+r.Host+" wss://"+r.Host+
			"; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
		h.Set("Cache-Control", "no-cache")
		if r.URL.Path == "/" {
			// The page learns here whether it needs a key, so that it asks
			// for one before its first call rather than after a 401.
			body := index
			if !d.api.cfg.checkKey(r) {
				body = bytes.Replace(index, []byte("<body>"), []byte(`<body data-auth="key">`), 1)
			}
			h.Set("Content-Type", "text/html; charset=utf-8")
			http.ServeContent(w, r, "index.html", time.Time{}, bytes.NewReader(body))
			return
		}
		if r.URL.Path == "/favicon.ico" {
			// Browsers ask for it on their own; the type is not left to the
			// system's MIME table.
			h.Set("Content-Type", "image/x-icon")
		}
		if strings.HasSuffix(r.URL.Path, "/") || strings.Contains(r.URL.Path, "..") {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	}
	mux.HandleFunc("GET /{$}", page)
	mux.HandleFunc("GET /assets/", page)
	mux.HandleFunc("GET /favicon.ico", page)
}
