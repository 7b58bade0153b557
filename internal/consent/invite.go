package consent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/freshtoken/freshtoken/internal/connection"
	"github.com/freshtoken/freshtoken/internal/invite"
	"github.com/freshtoken/freshtoken/internal/redact"
	"github.com/freshtoken/freshtoken/internal/store"
)

// askAgain ends every page about an invitation that cannot be used.
const askAgain = "Ask whoever sent it for a new invitation."

// checkAccountPath checks the account part of an Authorize path: a label names an account of a
// many-account connection; a many-account connection needs one.
func checkAccountPath(c *connection.Connection, label string) error {
	switch {
	case label == "" && c.Many:
		return &pageError{
			Status: http.StatusNotFound, Title: "Which account?",
			Message: c.Name + " holds many accounts, each under a label. Open /api/authorize/" + c.Name + "/LABEL for the account called LABEL.",
			LogMsg:  "authorize: no account label for a many-account connection",
		}
	case label != "" && !c.Many:
		return &pageError{
			Status: http.StatusNotFound, Title: "No accounts under " + c.Name,
			Message: c.Name + " holds one account, so it has no account labels (set OAUTH_<NAME>_ACCOUNTS=many for several). Open /api/authorize/" + c.Name + " instead.",
			LogMsg:  "authorize: account label for a single-account connection",
		}
	case label != "":
		if err := connection.CheckLabel(label); err != nil {
			return &pageError{
				Status: http.StatusNotFound, Title: "Not an account label",
				Message: "\"" + redact.Truncate(label, maxName) + "\" cannot name an account of " + c.Name +
					": a label is 1 to 63 lower-case letters, digits and '-'.",
				LogMsg: "authorize: invalid account label", Err: err,
			}
		}
	}
	return nil
}

// signInTarget is where a returning sign-in stores its pair: c itself, or the account its
// pending authorization names.
func signInTarget(c *connection.Connection, a store.AuthState) (*connection.Connection, error) {
	if a.Label == "" {
		if c.Many {
			// Only a setting changed during the sign-in gets here.
			return nil, &pageError{
				Status: http.StatusBadRequest, Title: "Which account?",
				Message: c.Name + " now holds many accounts, and this sign-in named none. Start again at /api/authorize/" + c.Name + "/LABEL.",
				LogMsg:  "callback: sign-in without a label for a many-account connection",
			}
		}
		return c, nil
	}
	acct, err := c.Account(a.Label)
	if err != nil {
		return nil, &pageError{
			Status: http.StatusBadRequest, Title: "Sign-in could not finish",
			Message: "This sign-in was for account " + a.Label + ", but " + c.Name + " no longer holds accounts. Nothing was changed.",
			LogMsg:  "callback: account sign-in for a connection without accounts", Err: err,
		}
	}
	return acct, nil
}

// openInvitation starts the sign-in an invitation grants: for exactly the account it names, never
// replacing another provider account. A forged, altered, expired or spent invitation gets a page
// saying so, and nothing is stored and no cookie set.
func (h *Handler) openInvitation(w http.ResponseWriter, r *http.Request, name string) error {
	c, ok := h.conns[name]
	if !ok {
		return unknownConnection(name)
	}
	if h.invites == nil {
		return &pageError{
			Status: http.StatusNotFound, Title: "Invitations are not enabled",
			Message: "This app accepts no invitations (INVITE_SIGNING_KEY is not set). " + askAgain,
			LogMsg:  "invitation refused: no signing key configured",
		}
	}
	if !c.Many {
		return &pageError{
			Status: http.StatusNotFound, Title: "No invitations for " + c.Name,
			Message: c.Name + " holds one account, and invitations are for connections with many accounts. " + askAgain,
			LogMsg:  "invitation refused: single-account connection",
		}
	}
	inv, err := h.invites.Verify(c.Name, r.URL.Query().Get(invite.Param))
	switch {
	case errors.Is(err, invite.ErrExpired):
		return &pageError{
			Status: http.StatusGone, Title: "Invitation expired",
			Message: "This invitation to connect " + c.Title() + " expired at " + inv.Expires.Format(time.RFC3339) + ". " + askAgain,
			LogMsg:  "invitation refused: expired", Err: fmt.Errorf("account %s, invitation %s: %w", inv.Label, inv.ID, err),
		}
	case err != nil:
		return &pageError{
			Status: http.StatusBadRequest, Title: "Invitation not valid",
			Message: "This invitation link is not valid: it was altered or cut short (copy the whole link), or it is not for " + c.Name + ". " + askAgain,
			LogMsg:  "invitation refused: not valid", Err: err,
		}
	}
	acct, err := c.Account(inv.Label)
	if err != nil {
		return fmt.Errorf("account of a verified invitation: %w", err)
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.storeTimeout)
	spent, err := h.store.GetInvite(ctx, acct.Name, inv.ID)
	cancel()
	switch {
	case err == nil:
		return spentPage(acct, inv.ID, spent)
	case !errors.Is(err, store.ErrNotFound):
		return &pageError{
			Status: http.StatusServiceUnavailable, Title: "Sign-in could not start",
			Message: "The token store is unavailable, so the invitation could not be checked. Try again in a minute.",
			LogMsg:  "read invitation record", Err: err,
		}
	}
	return h.start(w, r, c, store.AuthState{Label: inv.Label, Invite: inv.ID})
}

// saveInvited stores the pair of a sign-in started from invitation id, spending it. Another
// sign-in that spent it first wins, and this one stores nothing.
func (h *Handler) saveInvited(ctx context.Context, c *connection.Connection, t store.Tokens, st store.Status, id string) error {
	inv := store.SpentInvite{ID: id, SpentAt: st.ConnectedAt, Fingerprint: store.Fingerprint(t.AccessToken)}
	wctx, cancel := context.WithTimeout(ctx, h.storeTimeout)
	err := h.store.SaveInvitedConsent(wctx, c.Name, t, st, inv)
	cancel()
	if err == nil {
		return nil
	}
	secrets := []string{t.AccessToken, t.RefreshToken}
	// A write may have landed with its answer lost (then its retry, if any, conflicts with
	// itself): the record tells whose it is.
	gctx, cancel := context.WithTimeout(ctx, h.storeTimeout)
	spent, gerr := h.store.GetInvite(gctx, c.Name, id)
	cancel()
	if gerr == nil && spent.Fingerprint == inv.Fingerprint {
		return nil
	}
	if errors.Is(err, store.ErrConflict) {
		if gerr == nil {
			pe := spentPage(c, id, spent)
			pe.Message = "This invitation was used to connect " + c.Name + " while this sign-in was under way (another tab or device?). Nothing was changed by this one."
			pe.LogMsg = "callback: invitation spent by a concurrent sign-in"
			pe.secrets = secrets
			return pe
		}
	}
	return &pageError{
		Status: http.StatusServiceUnavailable, Title: "Tokens not stored",
		Message: "The provider issued tokens but they could not be stored. Open your invitation link again.",
		LogMsg:  "store invited consent", Err: err, secrets: secrets,
	}
}

// spentPage refuses an invitation that already connected its account.
func spentPage(acct *connection.Connection, id string, spent store.SpentInvite) *pageError {
	when := ""
	if !spent.SpentAt.IsZero() {
		when = " at " + spent.SpentAt.UTC().Format(time.RFC3339)
	}
	return &pageError{
		Status: http.StatusGone, Title: "Invitation already used",
		Message: "This invitation already connected " + acct.Name + when + ", and each invitation connects once. Nothing was changed. " +
			"If the account needs connecting again, ask for a new invitation.",
		LogMsg: "invitation refused: already spent", Err: fmt.Errorf("invitation %s", id),
	}
}
