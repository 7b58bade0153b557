package invite

import (
	"encoding/csv"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"

	"github.com/freshtoken/freshtoken/internal/connection"
)

// Param is the query parameter of the Callback URL that carries an invitation.
const Param = "invite"

// MaxRoster is the most invitations one Roster call prints.
const MaxRoster = 100000

// URL is the invitation URL for value: the connection's Callback URL (its redirect URL, which
// needs no function key) with ?invite=value.
func URL(callbackURL, value string) (string, error) {
	u, err := url.Parse(callbackURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("invite: callback URL %q is not an absolute URL", callbackURL)
	}
	q := u.Query()
	q.Set(Param, value)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// Labels are n labels prefix1..prefixN, the numbers zero-padded to the width of n so that they
// sort in order (p001..p300). Each must be a valid label.
func Labels(prefix string, n int) ([]string, error) {
	if n < 1 || n > MaxRoster {
		return nil, fmt.Errorf("invite: %d invitations; want 1 to %d", n, MaxRoster)
	}
	width := len(strconv.Itoa(n))
	labels := make([]string, n)
	for i := range n {
		l := fmt.Sprintf("%s%0*d", prefix, width, i+1)
		if err := connection.CheckLabel(l); err != nil {
			return nil, fmt.Errorf("invite: prefix %q makes label %q: %w", prefix, l, err)
		}
		labels[i] = l
	}
	return labels, nil
}

// Request says which invitations to make.
type Request struct {
	Connection *connection.Connection // a many-account connection
	Labels     []string
	Valid      time.Duration
}

// Issued is one invitation made by Roster.
type Issued struct {
	Invitation
	URL string
}

// Roster issues one invitation per label of r. It checks every label before issuing any.
func (s *Signer) Roster(r Request) ([]Issued, error) {
	c := r.Connection
	if c == nil {
		return nil, fmt.Errorf("invite: no connection")
	}
	if !c.Many {
		return nil, fmt.Errorf("invite: connection %s holds one account; invitations need OAUTH_<NAME>_ACCOUNTS=many", c.Name)
	}
	seen := make(map[string]bool, len(r.Labels))
	for _, l := range r.Labels {
		if err := connection.CheckLabel(l); err != nil {
			return nil, fmt.Errorf("invite: label %q: %w", l, err)
		}
		if seen[l] {
			return nil, fmt.Errorf("invite: label %q given twice", l)
		}
		seen[l] = true
	}
	out := make([]Issued, 0, len(r.Labels))
	for _, l := range r.Labels {
		inv, v, err := s.Issue(c.Name, l, r.Valid)
		if err != nil {
			return nil, err
		}
		u, err := URL(c.RedirectURL, v)
		if err != nil {
			return nil, err
		}
		out = append(out, Issued{Invitation: inv, URL: u})
	}
	return out, nil
}

// WriteCSV writes issued as CSV with the header label,url: a study's roster.
func WriteCSV(w io.Writer, issued []Issued) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"label", "url"}); err != nil {
		return fmt.Errorf("invite: write roster: %w", err)
	}
	for _, is := range issued {
		if err := cw.Write([]string{is.Label, is.URL}); err != nil {
			return fmt.Errorf("invite: write roster: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("invite: write roster: %w", err)
	}
	return nil
}
