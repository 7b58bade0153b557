package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const secretPath = "hook-s3cretPathPart-9f8e7d6c5b4a"

func TestParse(t *testing.T) {
	good := []string{
		"generic://127.0.0.1:8080/" + secretPath + "?template=json&disabletls=yes",
		"smtp://user:pa55word@127.0.0.1:2525/?from=ft@example.com&to=me@example.com&auth=None&encryption=None&usestarttls=no",
		"ntfy://ntfy.sh/freshtoken-topic",
	}
	urls, err := Parse("NOTIFY_URLS", strings.Join(good[:2], " ")+" ,"+good[2]+"\n")
	if err != nil {
		t.Fatalf("Parse(good) = %v", err)
	}
	if len(urls) != 3 {
		t.Errorf("got %d URLs; want 3", len(urls))
	}
	tests := []struct {
		name  string
		raw   string
		wants []string
	}{
		{"unknown service", good[0] + ",nosuch://u:" + secretPath + "@host/x", []string{"NOTIFY_URLS: URL 2 of 2", `unknown service "nosuch"`}},
		{"no scheme", secretPath, []string{"NOTIFY_URLS: URL 1 of 1", "not a URL"}},
		{"bad smtp", "smtp://" + secretPath + "@127.0.0.1:2525/?auth=Bogus", []string{"URL 1 of 1", "not a valid smtp URL"}},
		{"two bad", "x%zz://" + secretPath + " " + good[1] + " discord://" + secretPath, []string{"URL 1 of 3", "URL 3 of 3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("NOTIFY_URLS", tt.raw)
			if err == nil {
				t.Fatal("got nil error; want one")
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got error %q; want it to contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), secretPath) || strings.Contains(err.Error(), "pa55word") {
				t.Errorf("error %q quotes the URL", err)
			}
		})
	}
}

func TestSplit(t *testing.T) {
	got := Split(" a,b  c,,\td\n")
	if strings.Join(got, "|") != "a|b|c|d" {
		t.Errorf("got %q; want a b c d", got)
	}
}

func TestSanitize(t *testing.T) {
	raw := "generic+https://user:p4ssw0rdLong@hooks.example.com/" + secretPath + "?token=qwertyuiop1234&template=json"
	text := `failed to send message: sending HTTP request: Post "https://hooks.example.com/` + secretPath + `?token=qwertyuiop1234": dial tcp: p4ssw0rdLong qwertyuiop1234 ` + secretPath
	got := Sanitize(text, raw)
	for _, s := range []string{secretPath, "p4ssw0rdLong", "qwertyuiop1234", "hooks.example.com/"} {
		if strings.Contains(got, s) {
			t.Errorf("Sanitize kept %q: %q", s, got)
		}
	}
	if !strings.Contains(got, "dial tcp") {
		t.Errorf("Sanitize lost the error's words: %q", got)
	}
}

func TestNotifierSend(t *testing.T) {
	type got struct {
		path string
		body map[string]string
	}
	recv := make(chan got, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]string
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("webhook body is not JSON: %v", err)
		}
		recv <- got{r.URL.Path, m}
		if strings.Contains(r.URL.Path, "broken") {
			http.Error(w, "nope", http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	okURL := "generic://" + host + "/" + secretPath + "?template=json&disabletls=yes"
	badURL := "generic://" + host + "/broken-" + secretPath + "?template=json&disabletls=yes"

	urls, err := Parse("NOTIFY_URLS", okURL)
	if err != nil {
		t.Fatal(err)
	}
	n, err := New("NOTIFY_URLS", urls, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := Message{Title: "freshtoken: strava needs consent", Body: "Open http://x/api/authorize/strava to connect it again."}
	if err := n.Send(context.Background(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	g := <-recv
	if g.path != "/"+secretPath || g.body["title"] != m.Title || g.body["message"] != m.Body {
		t.Errorf("got %s %v; want /%s with title %q and message %q", g.path, g.body, secretPath, m.Title, m.Body)
	}

	// A failing URL is an error naming its position, never the URL.
	n, err = New("NOTIFY_URLS", []string{okURL, badURL}, Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = n.Send(context.Background(), m)
	<-recv
	<-recv
	if err == nil {
		t.Fatal("Send to a failing webhook: got nil error; want one")
	}
	if !strings.Contains(err.Error(), "URL 2 (generic)") || strings.Contains(err.Error(), "URL 1") {
		t.Errorf("got error %q; want it to name URL 2 (generic) only", err)
	}
	if strings.Contains(err.Error(), secretPath) || strings.Contains(err.Error(), host) {
		t.Errorf("error %q quotes the URL", err)
	}

	// A receiver that never answers: the timeout ends the delivery.
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	defer slow.Close()
	defer close(hang)
	n, err = New("NOTIFY_URLS", []string{"generic://" + strings.TrimPrefix(slow.URL, "http://") + "/x?template=json&disabletls=yes"}, Options{Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Send(context.Background(), m); err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("Send to a hanging webhook: got %v; want a time-out", err)
	}

	var none *Notifier
	if err := none.Send(context.Background(), m); err != nil {
		t.Errorf("nil Notifier: got %v; want nil", err)
	}
}

func TestCompose(t *testing.T) {
	tg := Target{Name: "strava", AuthorizeURL: "https://ft.example.com/api/authorize/strava"}
	// The link needs the function key, which a message must not carry: it says how to add it.
	const keyNote = "(add ?code= and the Authorize function's key)"
	deadline := t0.Add(13 * 24 * time.Hour)
	tests := []struct {
		ev        Event
		wantTitle string
		wantBody  []string
	}{
		{Event{NeedsConsent, Revoked}, "freshtoken: strava needs consent", []string{"revoked", tg.AuthorizeURL, keyNote}},
		{Event{NeedsConsent, LostInFlight}, "freshtoken: strava needs consent", []string{"lost in flight", tg.AuthorizeURL, keyNote}},
		{Event{NeedsConsent, Gone}, "freshtoken: strava needs consent", []string{"shut down", tg.AuthorizeURL, keyNote}},
		{Event{NeedsConsent, DeadlinePassed}, "freshtoken: strava needs consent", []string{"passed its known deadline 2026-12-14 12:00 UTC", tg.AuthorizeURL, keyNote}},
		{Event{Reminder, Revoked}, "freshtoken: strava still needs consent", []string{"since 2026-12-01 09:00 UTC", tg.AuthorizeURL, keyNote}},
		{Event{Kind: Failing}, "freshtoken: strava is failing", []string{"since 2026-12-01 09:00 UTC (3 hours)", "tokens are intact", tg.AuthorizeURL, keyNote}},
		{Event{Kind: DeadlineSoon}, "freshtoken: strava must be reconnected by 2026-12-14", []string{"in 13 days", tg.AuthorizeURL, keyNote}},
		{Event{Kind: Recovered}, "freshtoken: strava recovered", []string{"refreshes again"}},
	}
	for _, tt := range tests {
		m := Compose(tt.ev, tg, t0.Add(-3*time.Hour), deadline, t0)
		if m.Title != tt.wantTitle {
			t.Errorf("%+v: got title %q; want %q", tt.ev, m.Title, tt.wantTitle)
		}
		for _, w := range tt.wantBody {
			if !strings.Contains(m.Body, w) {
				t.Errorf("%+v: got body %q; want it to contain %q", tt.ev, m.Body, w)
			}
		}
		if n := strings.Count(m.Body, ". "); n > 1 {
			t.Errorf("%+v: body %q has %d sentences; want at most 2", tt.ev, m.Body, n+1)
		}
	}
	withHint := Compose(Event{NeedsConsent, Gone}, Target{Name: "fitbit", AuthorizeURL: "u", Hint: "use the google preset"}, t0, t0, t0)
	if !strings.Contains(withHint.Body, "(use the google preset)") {
		t.Errorf("got body %q; want the preset's hint", withHint.Body)
	}
}
