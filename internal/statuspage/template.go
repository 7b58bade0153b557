package statuspage

import (
	"context"
	"html/template"
	"net/http"
	"time"
)

func contextWithTimeout(r *http.Request, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), d)
}

// pageCSS is the page's only style; the CSP allows exactly this text by its hash. State is
// shown in words and a symbol; colour only repeats it.
const pageCSS = `
:root { color-scheme: light dark; --ok: #1a7f37; --retrying: #9a6700; --needs: #cf222e; --none: #6e7781; --line: #d0d7de; }
body { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto; max-width: 60rem; padding: 1.5rem; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
.summary { margin: 0 0 1.5rem; color: var(--none); }
.conn { border: 1px solid var(--line); border-left-width: .5rem; border-radius: .4rem; padding: 1rem 1.25rem; margin: 0 0 1rem; }
.conn.ok { border-left-color: var(--ok); } .conn.retrying { border-left-color: var(--retrying); }
.conn.needs-consent { border-left-color: var(--needs); } .conn.not-connected { border-left-color: var(--none); }
.head { display: flex; flex-wrap: wrap; align-items: baseline; gap: .5rem 1rem; }
h2 { font-size: 1.25rem; margin: 0; }
.provider { color: var(--none); }
.state { font-weight: 700; padding: .05rem .6rem; border-radius: 1rem; border: 2px solid currentColor; }
.state.ok { color: var(--ok); } .state.retrying { color: var(--retrying); }
.state.needs-consent { color: var(--needs); } .state.not-connected { color: var(--none); }
.button { margin-left: auto; display: inline-block; padding: .35rem 1rem; border-radius: .4rem; background: #0969da; color: #fff; text-decoration: none; font-weight: 600; }
.button:focus, .button:hover { background: #0550ae; outline: 3px solid #54aeff; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: .75rem 0 0; }
dt { font-weight: 600; } dd { margin: 0; overflow-wrap: anywhere; }
.warning { margin: .75rem 0 0; padding: .5rem .75rem; border: 2px solid var(--retrying); border-radius: .4rem; }
.rel { color: var(--none); }
.conn > p:last-child { margin-bottom: 0; }
.action { margin: .75rem 0 0; font-weight: 600; }
.account { margin: .75rem 0 .75rem 1.5rem; }
h3 { font-size: 1.1rem; margin: 0; }
.filters a, .pager a { margin-right: .5rem; }
.filters a[aria-current] { font-weight: 700; }
.pager { margin: 1rem 0 0; }
footer { color: var(--none); font-size: .875rem; margin-top: 2rem; }
`

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>freshtoken: connections</title>
<style>{{.CSS}}</style>
</head>
<body>
<main>
<h1>freshtoken connections</h1>
<p class="summary">{{.Summary}}</p>
{{if .AllURL}}<p><a href="{{.AllURL}}">All connections</a></p>{{end}}
{{range .Connections}}{{template "conn" .}}
{{else}}
<p>No connection is configured. Set OAUTH_CONNECTIONS and the settings of each connection.</p>
{{end}}
</main>
<footer>Shown at {{.Generated}}. This page holds no token; its Connect and Reconnect links carry the function key it was opened with.</footer>
</body>
</html>
{{define "time"}}<time datetime="{{.ISO}}">{{.At}}</time> <span class="rel">({{.Relative}})</span>{{end}}
{{define "conn"}}
<section class="conn {{.StateClass}}{{if .Account}} account{{end}}" aria-labelledby="conn-{{.Name}}"{{if .Many}} data-many="true"{{end}}>
<div class="head">
{{if .Account}}<h3 id="conn-{{.Name}}">{{.Name}}</h3>{{else}}<h2 id="conn-{{.Name}}">{{.Name}}</h2>{{end}}
<span class="provider">{{.Provider}}</span>
<span class="state {{.StateClass}}" data-state="{{.State}}"><span aria-hidden="true">{{.Symbol}} </span>{{.StateWords}}</span>
{{if .ButtonURL}}<a class="button" href="{{.ButtonURL}}" rel="noreferrer">{{.Button}} {{.Name}}</a>{{end}}
</div>
{{with .Many}}
<p class="counts" data-counts>{{.Summary}}</p>
<nav class="filters" aria-label="Filter accounts by state">{{range $i, $f := .Filters}}{{if $i}} · {{end}}<a href="{{$f.URL}}"{{if $f.Current}} aria-current="page"{{end}}>{{$f.Label}}</a>{{end}}</nav>
{{if .Empty}}<p class="empty">{{.Empty}}</p>{{end}}
{{range .Accounts}}{{template "conn" .}}{{end}}
{{if or .First .Next}}<nav class="pager" aria-label="Pages of accounts">{{if .First}}<a href="{{.First}}" rel="first">First page</a> <a href="{{.Prev}}" rel="prev">Previous page</a>{{end}} {{if .Next}}<a href="{{.Next}}" rel="next">Next page</a>{{end}}</nav>{{end}}
{{else}}
{{if eq .State "not_connected"}}<p>Not connected yet: use Connect to give consent.</p>{{else}}
{{if eq .State "needs_consent"}}<p class="action">Refreshing has stopped: use Reconnect to give consent again.</p>{{end}}
{{if .Warning}}<p class="warning"><strong>Warning:</strong> {{.Warning}}</p>{{end}}
<dl>
{{if .AccountID}}<dt>Account</dt><dd>{{.AccountID}}</dd>{{end}}
{{if .Expires.Known}}<dt>Access token expires</dt><dd>{{template "time" .Expires}}</dd>{{end}}
<dt>Last success</dt><dd>{{if .Success.Known}}{{template "time" .Success}}{{else}}never{{end}}</dd>
{{if .Failure.Known}}<dt>Last failure</dt><dd>{{template "time" .Failure}}{{if .LastFailureClass}} ({{.LastFailureClass}}){{end}}{{if .LastFailureMessage}}: {{.LastFailureMessage}}{{end}}</dd>{{end}}
{{if .ConsecutiveFailures}}<dt>Consecutive failures</dt><dd>{{.ConsecutiveFailures}}</dd>{{end}}
{{if .Next.Known}}<dt>Next attempt</dt><dd>{{template "time" .Next}}</dd>{{end}}
{{if .Deadline.Known}}<dt>Refresh-token deadline</dt><dd>{{template "time" .Deadline}}</dd>{{end}}
{{if .MissingScopes}}<dt>Scopes not granted</dt><dd>{{range $i, $s := .MissingScopes}}{{if $i}}, {{end}}<code>{{$s}}</code>{{end}}</dd>{{end}}
</dl>
{{end}}
{{end}}
</section>
{{end}}
`))

var errorTemplate = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>freshtoken: {{.Title}}</title>
<style>{{.CSS}}</style>
</head>
<body>
<main>
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
</main>
</body>
</html>
`))
