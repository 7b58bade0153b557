package faults

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/freshtoken/freshtoken/e2e/faultproxy"
	"github.com/freshtoken/freshtoken/e2e/oauthserver"
)

// Server modes.
const (
	// Strict: every refresh rotates; presenting a rotated refresh token revokes the grant.
	Strict = "strict"
	// Grace: as Strict, but an identical refresh repeated within the grace window gets the
	// same pair again (Fitbit, Withings).
	Grace = "grace"
)

// Status states as the handler writes them (store.State).
const (
	stateOK           = "ok"
	stateNeedsConsent = "needs_consent"
	classAmbiguous    = "ambiguous"
)

// Run is everything one run observed.
type Run struct {
	Seed uint64
	Mode string
	// RepeatWindow is the connections' preset's (0 in strict mode).
	RepeatWindow time.Duration
	Conns        []string
	// Calls are the token endpoint requests, as the OAuth2-side proxies saw them.
	Calls []Call
	Kills []Kill
	// Faults counts injected faults by "side/kind/fault".
	Faults          map[string]int
	AzuriteRestarts int
	Steps           []Step
	Final           map[string]Final
	Stats           oauthserver.Stats
	// Texts is every text to search for secrets: each handler log line of every process and
	// incarnation, each invocation answer, and the suite's own output for the run.
	Texts []Text
	// Secrets are every secret that crossed the OAuth2-side proxies, and the client secret.
	Secrets []string
	// Keys says the run set TOKEN_ENCRYPTION_KEYS. Table is then every row of the token table as
	// stored, at each snapshot: no refresh token may appear there in plain text (the access
	// tokens do, for readers).
	Keys  bool
	Table []Text
	// Exits describes handler processes that ended other than by the suite's SIGKILL or a
	// clean stop.
	Exits []string
}

// Call is one token endpoint request.
type Call struct {
	Slot        string // the handler process ("A", "B")
	Incarnation int    // which start of that process (1 = the first; each kill starts another)
	Step        int    // 0 during consent
	Time        time.Time
	SimTime     time.Time // the OAuth2 server's clock
	Kind        string    // faultproxy.KindExchange or KindRefresh
	// Conn is the connection being consented, for exchanges; Evaluate fills it for refreshes
	// by following the refresh tokens.
	Conn      string
	Presented string // the refresh token sent (refreshes)
	Fault     faultproxy.Fault
	Forwarded bool
	Status    int // the server's status; 0 when it did not answer
	// IssuedAT and IssuedRT are the pair in the server's answer (also when the handler never
	// got it).
	IssuedAT, IssuedRT string
	// Delivered: the server's answer reached the handler whole and in time.
	Delivered bool
}

// Kill is a SIGKILL of a handler process by the suite.
type Kill struct {
	Slot        string
	Incarnation int
	Step        int
	At          string // after-lease, after-answer, commit-before, commit-after
	Time        time.Time
}

// Step is one step: invocations with the faults drawn for it, or a fault-free recovery pass.
type Step struct {
	Index    int
	Recovery bool
	SimStart time.Time // the OAuth2 server's clock when the step began
	// Due, LiveLease, Before: each connection at the start of the step; DueAfter and After at
	// its end.
	Due         map[string]bool
	LiveLease   map[string]bool
	Before      map[string]Pair
	DueAfter    map[string]bool
	After       map[string]Pair
	Invocations []Invocation
	Plan        []string // the faults drawn, for the report
}

// Pair is a stored token pair.
type Pair struct{ AT, RT string }

// Invocation is one RefreshTimer invocation.
type Invocation struct {
	Slot        string
	Incarnation int
	Status      int  // the handler's HTTP status; 0 when no answer came
	Killed      bool // its process was killed by the suite while it ran
	Lines       []string
}

// Final is a connection after the run.
type Final struct {
	Pair
	Accepted bool // the server accepts the stored refresh token
	ATActive bool // the server accepts the stored access token
	State    string
	Class    string // LastFailureClass
	Message  string // LastFailureMessage
	InFlight string
}

// Text is a text searched for secrets.
type Text struct {
	Source string
	Body   string
}

// Verdict is what Evaluate found in one run. The must-be-0 figures are ChainsLost,
// ReuseDetections, Silent, SecretLeaks, Mishandled and Crashes.
type Verdict struct {
	// ChainsLost: connections whose stored refresh token the server no longer accepts although
	// every pair the server issued for them reached the handler.
	ChainsLost []string
	// ReuseDetections at the server: the handler sent a refresh token the server had rotated.
	ReuseDetections int
	// Silent: a step in which a due connection got no fresh pair while an invocation answered
	// 2xx and nothing reported the failure, or a connection left ok while its pair is dead.
	Silent []string
	// SecretLeaks: a secret found in a log line, an invocation answer or the suite's output.
	SecretLeaks []string
	// LossEvents counts answers that the server produced and the handler never stored: lost
	// by the proxy after the server processed the request, or held by a process killed before
	// it stored them.
	LossEvents int
	// Unrecoverable: connections for which a pair the server issued never reached the handler
	// (strict server, or a grace window that closed before a pass could repeat).
	Unrecoverable []string
	// GraceRecovered: connections whose lost pair a grace server's repeat brought back.
	GraceRecovered []string
	// Mishandled: an unrecoverable loss handled against the requirements (strict: resent,
	// answered 2xx, or status not needs_consent/ambiguous; grace: not recovered in the window).
	Mishandled []string
	// Conservative: connections left needing consent whose chain is intact at the server.
	Conservative []string
	// NeedsConsent: connections left needing consent.
	NeedsConsent []string
	// Crashes: panics, data races or unexpected exits of the handler.
	Crashes []string
	// TransientFailures counts connection outcomes classed transient, and TransientRecovered
	// those later followed by a refresh of the same connection.
	TransientFailures, TransientRecovered int
}

// Failed says whether a must-be-0 figure is not 0.
func (v Verdict) Failed() bool {
	return len(v.ChainsLost)+v.ReuseDetections+len(v.Silent)+len(v.SecretLeaks)+len(v.Mishandled)+len(v.Crashes) > 0
}

// Problems lists the must-be-0 findings, one line each.
func (v Verdict) Problems() []string {
	var out []string
	for _, c := range v.ChainsLost {
		out = append(out, "refresh chain lost: "+c)
	}
	if v.ReuseDetections > 0 {
		out = append(out, fmt.Sprintf("reuse detections at the server: %d", v.ReuseDetections))
	}
	for _, s := range v.Silent {
		out = append(out, "silent failure: "+s)
	}
	for _, s := range v.SecretLeaks {
		out = append(out, "secret in logs: "+s)
	}
	for _, s := range v.Mishandled {
		out = append(out, "unrecoverable loss mishandled: "+s)
	}
	for _, s := range v.Crashes {
		out = append(out, "handler crash: "+s)
	}
	return out
}

// minSecretLen: shorter strings are not searched for (they would match by chance).
const minSecretLen = 8

// Evaluate computes a run's figures.
func Evaluate(r Run) Verdict {
	v := Verdict{ReuseDetections: r.Stats.ReuseDetections}
	calls := attribute(r.Calls)
	for _, c := range r.Conns {
		evalChain(r, c, calls, &v)
	}
	evalSteps(r, &v)
	evalSecrets(r, &v)
	evalCrashes(r, &v)
	return v
}

// attribute sorts the calls by arrival and names the connection of each refresh by following
// refresh tokens from the consent exchanges. A refresh token is always issued (read whole by
// the proxy) before a request presenting it is read.
func attribute(in []Call) []Call {
	calls := append([]Call(nil), in...)
	sort.SliceStable(calls, func(i, j int) bool { return calls[i].Time.Before(calls[j].Time) })
	owner := map[string]string{}
	for i := range calls {
		c := &calls[i]
		if c.Kind == faultproxy.KindRefresh {
			c.Conn = owner[c.Presented]
		}
		if c.Conn != "" && c.IssuedRT != "" {
			owner[c.IssuedRT] = c.Conn
		}
	}
	return calls
}

// evalChain judges one connection's refresh chain.
func evalChain(r Run, conn string, calls []Call, v *Verdict) {
	fin, ok := r.Final[conn]
	if !ok {
		v.Mishandled = append(v.Mishandled, conn+": no final state was read")
		return
	}
	stored := map[string]bool{fin.RT: true}
	for _, s := range r.Steps {
		stored[s.Before[conn].RT] = true
		stored[s.After[conn].RT] = true
	}
	presented := map[string]bool{}
	for _, c := range calls {
		if c.Conn == conn && c.Presented != "" {
			presented[c.Presented] = true
		}
	}
	// killedAt is the kill of the process that received c, at or after c; nil if none.
	killedAt := func(c Call) *Kill {
		for i, k := range r.Kills {
			if k.Slot == c.Slot && k.Incarnation == c.Incarnation && !k.Time.Before(c.Time) {
				return &r.Kills[i]
			}
		}
		return nil
	}
	// storedBy: rt was in the table at a step boundary up to the end of the step of a kill
	// (what a killed process had not stored by then, it never stores).
	storedBy := func(rt string, step int) bool {
		for _, s := range r.Steps {
			if s.Index <= step && (s.Before[conn].RT == rt || s.After[conn].RT == rt) {
				return true
			}
		}
		return false
	}

	// A pair reached the handler when it was stored or presented later, or delivered to a
	// process that was not killed afterwards (which then holds it, in the table or in memory).
	// An answer is lost (a loss event) when it was not delivered, or when the process that got
	// it was killed before the pair was in the table; a grace server may hand the same pair out
	// again, so a lost answer's pair can still reach the handler.
	var issued []string
	reached := map[string]bool{}
	var losses []Call
	for _, c := range calls {
		if c.Conn != conn || c.IssuedRT == "" || c.Status != 200 {
			continue
		}
		rt := c.IssuedRT
		if _, seen := reached[rt]; !seen {
			issued = append(issued, rt)
			reached[rt] = false
		}
		k := killedAt(c)
		if !c.Delivered || k != nil && !storedBy(rt, k.Step) {
			losses = append(losses, c)
		}
		if c.Delivered && k == nil || stored[rt] || presented[rt] {
			reached[rt] = true
		}
	}
	unreachedRT := map[string]bool{}
	for _, rt := range issued {
		if !reached[rt] {
			unreachedRT[rt] = true
		}
	}
	v.LossEvents += len(losses)

	if fin.State == stateNeedsConsent {
		v.NeedsConsent = append(v.NeedsConsent, conn)
		if fin.Accepted {
			v.Conservative = append(v.Conservative, conn)
		}
	}
	if fin.State == stateOK && !fin.Accepted {
		v.Silent = append(v.Silent, conn+": Status says ok but the stored refresh token is dead at the server")
	}
	if len(unreachedRT) == 0 && (len(losses) == 0 || r.Mode != Grace) {
		// Every pair the server issued reached the handler (in strict mode a lost answer
		// whose pair still reached it counts as reached: a late answer that made it).
		if !fin.Accepted {
			v.ChainsLost = append(v.ChainsLost, conn)
		}
		return
	}
	desc := fmt.Sprintf("%s (%s server, %d answer(s) lost, first at step %d by %s)", conn, r.Mode, len(losses), firstStep(losses), lossCause(losses))

	if r.Mode == Grace {
		switch {
		case fin.State == stateOK && fin.Accepted:
			v.GraceRecovered = append(v.GraceRecovered, conn)
		case windowClosed(r, losses):
			v.Unrecoverable = append(v.Unrecoverable, conn)
		default:
			v.Mishandled = append(v.Mishandled, fmt.Sprintf("%s: not recovered within the grace window: Status %s/%s, stored refresh token accepted=%v",
				desc, fin.State, fin.Class, fin.Accepted))
		}
		return
	}

	v.Unrecoverable = append(v.Unrecoverable, conn)
	if fin.State != stateNeedsConsent || fin.Class != classAmbiguous {
		v.Mishandled = append(v.Mishandled, fmt.Sprintf("%s: Status %s/%s; want needs_consent/ambiguous (a refresh was lost in flight)", desc, fin.State, fin.Class))
	}
	for _, l := range losses {
		if !unreachedRT[l.IssuedRT] {
			continue
		}
		if !l.Delivered && !stepFailedOn(r, l.Step, l.Slot) {
			v.Mishandled = append(v.Mishandled, fmt.Sprintf("%s: the pass that lost the answer at step %d answered 2xx", desc, l.Step))
		}
		for _, c := range calls {
			if c.Conn == conn && c.Time.After(l.Time) && c.Presented == l.Presented {
				v.Mishandled = append(v.Mishandled, fmt.Sprintf("%s: the refresh token whose answer was lost was sent again at step %d", desc, c.Step))
				break
			}
		}
	}
}

func firstStep(losses []Call) int {
	if len(losses) == 0 {
		return 0
	}
	return losses[0].Step
}

func lossCause(losses []Call) string {
	if len(losses) == 0 {
		return ""
	}
	if losses[0].Delivered {
		return "a kill"
	}
	return string(losses[0].Fault)
}

// windowClosed: the simulated time from the first loss to the last step reached the repeat
// window, so no pass could repeat the refresh in time (a few seconds of margin).
func windowClosed(r Run, losses []Call) bool {
	if len(losses) == 0 || len(r.Steps) == 0 || r.RepeatWindow <= 0 {
		return false
	}
	last := r.Steps[len(r.Steps)-1].SimStart
	return last.Sub(losses[0].SimTime) >= r.RepeatWindow-5*time.Second
}

// stepFailedOn: an invocation on slot in the step did not answer 2xx (failed or killed).
func stepFailedOn(r Run, step int, slot string) bool {
	for _, s := range r.Steps {
		if s.Index != step {
			continue
		}
		for _, inv := range s.Invocations {
			if inv.Slot == slot && !is2xx(inv.Status) {
				return true
			}
		}
	}
	return false
}

func is2xx(status int) bool { return status >= 200 && status <= 299 }

// evalSteps finds silent failures. For each step and connection c, it is one when all hold:
//   - c was due at the start of the step, and at its end c's stored pair (access and refresh
//     token) is the same and c is still due (a pair rewritten with a fresh expiry, as when a
//     pass writes a pair it held in memory that had in fact been stored, counts as stored);
//   - an invocation of the step answered 2xx;
//   - nothing reported the failure: no invocation of the step answered non-2xx with a
//     "c: failed" line or a "pass failed" line, none was killed by the suite (the host fails a
//     crashed invocation and logs the crash), and no lease on c was live at the start of the
//     step (held by an earlier pass, which makes "in progress elsewhere" true).
//
// So "in progress elsewhere" is fine when the invocation holding the lease in the same step
// stored a pair or reported its failure, and silent when no one did. Separately, an invocation
// that answered 2xx with "c: refreshed" while c's pair did not change over the step is silent.
func evalSteps(r Run, v *Verdict) {
	for _, s := range r.Steps {
		for _, c := range r.Conns {
			unchanged := s.Before[c].AT == s.After[c].AT && s.Before[c].RT == s.After[c].RT
			var answered2xx, reported bool
			var outcomes []string
			for _, inv := range s.Invocations {
				line := lineFor(inv.Lines, c)
				outcomes = append(outcomes, fmt.Sprintf("%s#%d %d %q", inv.Slot, inv.Incarnation, inv.Status, outcome(line, c)))
				if is2xx(inv.Status) && strings.HasPrefix(line, c+": refreshed") && unchanged {
					v.Silent = append(v.Silent, fmt.Sprintf("step %d: %s: an invocation answered %q but the stored pair did not change", s.Index, c, outcome(line, c)))
				}
				if strings.Contains(line, "(transient)") {
					v.TransientFailures++
					if refreshedLater(r, s.Index, c) {
						v.TransientRecovered++
					}
				}
				switch {
				case is2xx(inv.Status):
					answered2xx = true
				case inv.Killed || inv.Status == 0:
					reported = true
				case strings.HasPrefix(line, c+": failed") || hasPassFailed(inv.Lines):
					reported = true
				}
			}
			if !s.Due[c] || !s.DueAfter[c] || !unchanged || !answered2xx || reported || s.LiveLease[c] {
				continue
			}
			v.Silent = append(v.Silent, fmt.Sprintf("step %d: %s was due, no fresh pair was stored and no invocation reported a failure (%s)",
				s.Index, c, strings.Join(outcomes, "; ")))
		}
	}
}

// lineFor is the invocation line about conn ("<conn>: <outcome>...").
func lineFor(lines []string, conn string) string {
	for _, l := range lines {
		if strings.HasPrefix(l, conn+": ") {
			return l
		}
	}
	return ""
}

// outcome is the line's outcome without its detail (which is safe, but long).
func outcome(line, conn string) string {
	s := strings.TrimPrefix(line, conn+": ")
	if i := strings.Index(s, ":"); i >= 0 {
		s = s[:i]
	}
	if i := strings.Index(s, ";"); i >= 0 {
		s = s[:i]
	}
	return s
}

func hasPassFailed(lines []string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, "pass failed") {
			return true
		}
	}
	return false
}

func refreshedLater(r Run, after int, conn string) bool {
	for _, s := range r.Steps {
		if s.Index <= after {
			continue
		}
		for _, inv := range s.Invocations {
			if strings.HasPrefix(lineFor(inv.Lines, conn), conn+": refreshed") {
				return true
			}
		}
	}
	return false
}

// evalSecrets searches every text for every secret, and the table rows of a run with keys for
// every refresh token the server issued or was sent.
func evalSecrets(r Run, v *Verdict) {
	seen := map[string]bool{}
	for i, s := range r.Secrets {
		if len(s) < minSecretLen || seen[s] {
			continue
		}
		seen[s] = true
		for _, t := range r.Texts {
			if strings.Contains(t.Body, s) {
				v.SecretLeaks = append(v.SecretLeaks, fmt.Sprintf("secret #%d (length %d) in %s", i, len(s), t.Source))
			}
		}
	}
	if !r.Keys {
		return
	}
	if len(r.Table) == 0 {
		v.SecretLeaks = append(v.SecretLeaks, "keys were set but no table rows were captured to search")
	}
	seen = map[string]bool{}
	for i, c := range r.Calls {
		for _, rt := range []string{c.IssuedRT, c.Presented} {
			if len(rt) < minSecretLen || seen[rt] {
				continue
			}
			seen[rt] = true
			for _, t := range r.Table {
				if strings.Contains(t.Body, rt) {
					v.SecretLeaks = append(v.SecretLeaks, fmt.Sprintf("refresh token of call #%d (length %d) in plain text in %s", i, len(rt), t.Source))
				}
			}
		}
	}
}

// crashMarks are what a Go program prints when it panics or the race detector fires.
var crashMarks = []string{"WARNING: DATA RACE", "panic: ", "fatal error: "}

func evalCrashes(r Run, v *Verdict) {
	for _, t := range r.Texts {
		if !strings.HasPrefix(t.Source, "handler") {
			continue
		}
		for _, m := range crashMarks {
			if strings.Contains(t.Body, m) {
				v.Crashes = append(v.Crashes, fmt.Sprintf("%q in %s", strings.TrimSpace(m), t.Source))
			}
		}
	}
	v.Crashes = append(v.Crashes, r.Exits...)
}
