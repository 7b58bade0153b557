package receiver

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/notify"
)

const wait = 10 * time.Second

// TestNotifyThroughShoutrrr sends one notification through shoutrrr's generic:// and smtp://
// URLs to real receivers on loopback.
func TestNotifyThroughShoutrrr(t *testing.T) {
	hook := NewWebhook()
	defer hook.Close()
	mail, err := NewSMTP("freshtoken", "smtp-pa55-9f8e7d6c5b4a")
	if err != nil {
		t.Fatal(err)
	}
	defer mail.Close()

	const hookPath = "/hooks/s3cret-9f8e7d6c5b4a3210"
	raw := hook.URL(hookPath) + ", " + mail.URL("freshtoken@example.com", "owner@example.com")
	urls, err := notify.Parse("NOTIFY_URLS", raw)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	n, err := notify.New("NOTIFY_URLS", urls, notify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	target := notify.Target{Name: "strava", AuthorizeURL: "https://ft.example.com/api/authorize/strava"}
	now := time.Now()
	m := notify.Compose(notify.Event{Kind: notify.NeedsConsent, Reason: notify.Revoked}, target, now, time.Time{}, now)
	if err := n.Send(context.Background(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}

	p, err := hook.Next(wait)
	if err != nil {
		t.Fatal(err)
	}
	if p.Path != hookPath || p.Body["title"] != "freshtoken: strava needs consent" || !strings.Contains(p.Body["message"], target.AuthorizeURL) {
		t.Errorf("webhook got %s %v; want the title and a message with the Authorize URL", p.Path, p.Body)
	}
	got, err := mail.Next(wait)
	if err != nil {
		t.Fatal(err)
	}
	if got.From != "freshtoken@example.com" || len(got.To) != 1 || got.To[0] != "owner@example.com" {
		t.Errorf("mail from %q to %q; want freshtoken@example.com to owner@example.com", got.From, got.To)
	}
	if !strings.Contains(got.Data, "Subject: freshtoken: strava needs consent") || !strings.Contains(got.Data, target.AuthorizeURL) {
		t.Errorf("mail lacks the subject or the Authorize URL:\n%s", got.Data)
	}

	// A receiver that refuses: the error names the URL's position, not the URL; the SMTP
	// server with a wrong password, likewise.
	hook.SetStatus(http.StatusInternalServerError)
	bad := mail.URL("freshtoken@example.com", "owner@example.com")
	bad = strings.Replace(bad, mail.Password, "wrong-pa55-0a1b2c3d4e5f", 1)
	n, err = notify.New("NOTIFY_URLS", []string{hook.URL(hookPath), bad}, notify.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = n.Send(context.Background(), m)
	if err == nil {
		t.Fatal("Send to refusing receivers: got nil; want an error")
	}
	for _, w := range []string{"URL 1 (generic)", "URL 2 (smtp)"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	for _, s := range []string{"s3cret-9f8e7d6c5b4a3210", "wrong-pa55-0a1b2c3d4e5f", mail.Password, "freshtoken:"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q holds a part of a URL (%q)", err, s)
		}
	}
	t.Logf("refused deliveries reported as: %v", err)
}
