package statuspage

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/freshtoken/freshtoken/internal/store"
)

// The HTML pages through a connection's accounts with links that need no JavaScript. Table
// Storage pages only forward, so each Next link carries, in prev, the continuations of the pages
// before it (at most maxTrail, the oldest dropped first; a First page link is always there).
const maxTrail = 20

// splitTrail splits a prev parameter into its continuations.
func splitTrail(prev string) []string {
	if prev == "" {
		return nil
	}
	return strings.Split(prev, ",")
}

// checkTrail validates a prev parameter for q: it needs q's connection, and each of its
// continuations must be one of that listing. It is never more than echoed into links.
func checkTrail(prev string, q Query) error {
	trail := splitTrail(prev)
	if len(trail) == 0 {
		return nil
	}
	if q.Connection == "" || q.Continuation == "" {
		return fmt.Errorf("%w: prev pages back from a continuation of one connection", ErrBadQuery)
	}
	if len(trail) > maxTrail {
		return fmt.Errorf("%w: prev holds %d continuations; want at most %d", ErrBadQuery, len(trail), maxTrail)
	}
	for _, tok := range trail {
		if _, _, err := store.ParseContinuation(tok, q.Connection, storeState(q.State)); err != nil {
			return fmt.Errorf("%w: prev: the continuation is not valid for this listing; start again from the first page", ErrBadQuery)
		}
	}
	return nil
}

// queryMessage is what a client is told of a bad query: the reason, which quotes nothing
// longer than a state's first 40 characters.
func queryMessage(err error) string {
	msg := err.Error()
	if _, after, ok := strings.Cut(msg, ErrBadQuery.Error()+": "); ok {
		msg = after
	}
	if msg == "" {
		return "The query is not valid."
	}
	return strings.ToUpper(msg[:1]) + msg[1:] + "."
}

// manyView is a many-account connection's part of the page.
type manyView struct {
	Summary            string
	Filters            []linkView
	Accounts           []connView
	First, Prev, Next  string
	Empty              string
	FilterName, AllURL string
}

type linkView struct {
	Label, URL string
	Current    bool
}

// pageLink is the relative URL of a page of connection name's accounts, with the function key.
func pageLink(name string, st State, cont string, trail []string, key string) string {
	v := url.Values{}
	v.Set("connection", name)
	if st != "" {
		v.Set("state", string(st))
	}
	if cont != "" {
		v.Set("continuation", cont)
	}
	if len(trail) > 0 {
		v.Set("prev", strings.Join(trail, ","))
	}
	if key != "" {
		v.Set("code", key)
	}
	return "?" + v.Encode()
}

func countsWords(c Counts) string {
	noun := "accounts"
	if c.Total() == 1 {
		noun = "account"
	}
	s := fmt.Sprintf("%d %s", c.Total(), noun)
	var parts []string
	for _, st := range []State{OK, Retrying, NeedsConsent} {
		if n := c.Of(st); n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, strings.ToLower(st.Words())))
		}
	}
	if len(parts) > 0 {
		s += ": " + strings.Join(parts, ", ")
	}
	return s
}

func (h *Handler) manyView(s Status, key, prev string, account func(Status) connView) *manyView {
	a := s.Accounts
	mv := &manyView{Summary: countsWords(a.Counts)}
	all := linkView{Label: fmt.Sprintf("All (%d)", a.Counts.Total()), URL: pageLink(s.Name, "", "", nil, key), Current: a.State == ""}
	mv.Filters = append(mv.Filters, all)
	for _, st := range []State{OK, Retrying, NeedsConsent} {
		mv.Filters = append(mv.Filters, linkView{Label: fmt.Sprintf("%s (%d)", st.Words(), a.Counts.Of(st)), URL: pageLink(s.Name, st, "", nil, key), Current: a.State == st})
	}
	if a.State != "" {
		mv.FilterName = strings.ToLower(a.State.Words())
	}
	for _, acc := range a.List {
		mv.Accounts = append(mv.Accounts, account(acc))
	}
	switch {
	case a.Counts.Total() == 0:
		mv.Empty = "No account is connected yet: invite one with freshtoken invite " + s.Name + " LABEL."
	case len(a.List) == 0 && a.From == "":
		mv.Empty = "No account is in state " + mv.FilterName + "."
	case len(a.List) == 0:
		mv.Empty = "No more accounts."
	}
	trail := splitTrail(prev)
	if a.From != "" {
		mv.First = pageLink(s.Name, a.State, "", nil, key)
		if len(trail) == 0 {
			mv.Prev = mv.First
		} else {
			mv.Prev = pageLink(s.Name, a.State, trail[len(trail)-1], trail[:len(trail)-1], key)
		}
	}
	if a.Continuation != "" {
		next := trail
		if a.From != "" {
			next = append(append([]string(nil), trail...), a.From)
		}
		if len(next) > maxTrail {
			next = next[len(next)-maxTrail:]
		}
		mv.Next = pageLink(s.Name, a.State, a.Continuation, next, key)
	}
	return mv
}
