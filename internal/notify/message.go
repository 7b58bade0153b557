package notify

import (
	"fmt"
	"time"

	"github.com/freshtoken/freshtoken/internal/human"
)

// Message is one notification: a title and one or two sentences.
type Message struct {
	Title string
	Body  string
}

// Target is the connection a message is about.
type Target struct {
	Name string
	// AuthorizeURL is where a person consents again (without any function key).
	AuthorizeURL string
	// Hint is the preset's reconnect hint ("consent again through the google preset ..."), or "".
	Hint string
}

// Compose writes the message for ev. It uses only the event, the target and the times given,
// never a failure message: those quote providers, and a notification must carry no token,
// code, secret or raw provider body.
func Compose(ev Event, t Target, failingSince, deadline, now time.Time) Message {
	// The Authorize function asks for its key, which a message must not carry: say how to add it,
	// or the link answers 401.
	link := t.AuthorizeURL + " (add ?code= and the Authorize function's key)"
	open := "Open " + link + " to connect it again."
	if t.Hint != "" {
		open = "Open " + link + " to connect it again (" + t.Hint + ")."
	}
	switch ev.Kind {
	case NeedsConsent:
		return Message{Title: "freshtoken: " + t.Name + " needs consent", Body: needsConsentText(ev.Reason, t.Name, deadline) + " " + open}
	case Reminder:
		return Message{
			Title: "freshtoken: " + t.Name + " still needs consent",
			Body:  fmt.Sprintf("%s has needed consent since %s: %s %s", t.Name, stamp(failingSince), lower(needsConsentText(ev.Reason, t.Name, deadline)), open),
		}
	case Failing:
		return Message{
			Title: "freshtoken: " + t.Name + " is failing",
			Body: fmt.Sprintf("Refreshing %s has failed since %s (%s); freshtoken keeps retrying and the stored tokens are intact. "+
				"If it does not recover, check the provider and its settings, or open %s to connect it again.", t.Name, stamp(failingSince), human.Duration(now.Sub(failingSince)), link),
		}
	case DeadlineSoon:
		return Message{
			Title: "freshtoken: " + t.Name + " must be reconnected by " + deadline.UTC().Format("2006-01-02"),
			Body: fmt.Sprintf("The refresh token of %s reaches its known deadline at %s (in %s). Open %s before then to connect it again.",
				t.Name, stamp(deadline), human.Duration(deadline.Sub(now)), link),
		}
	case Recovered:
		return Message{Title: "freshtoken: " + t.Name + " recovered", Body: t.Name + " refreshes again; nothing needs to be done."}
	}
	return Message{Title: "freshtoken: " + t.Name, Body: "Open " + link + " to check it."}
}

func needsConsentText(r Reason, name string, deadline time.Time) string {
	switch r {
	case LostInFlight:
		return "A refresh of " + name + " was lost in flight and the provider may have rotated the refresh token, so it is not resent."
	case Gone:
		return "The provider's API for " + name + " is shut down."
	case DeadlinePassed:
		return "The refresh token of " + name + " passed its known deadline " + stamp(deadline) + "."
	}
	return "The provider no longer accepts the refresh token of " + name + ": the grant was revoked or expired."
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// lower lowers the first letter of a sentence that continues another.
func lower(s string) string {
	if s != "" && s[0] >= 'A' && s[0] <= 'Z' {
		return string(s[0]+'a'-'A') + s[1:]
	}
	return s
}
