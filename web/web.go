package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed placeholder
var placeholder embed.FS

// Handler serves the UI.
func Handler() http.Handler {
	sub, err := fs.Sub(placeholder, "placeholder")
	if err != nil {
		panic("BUG: embedded placeholder directory missing: " + err.Error())
	}
	return http.FileServerFS(sub)
}
