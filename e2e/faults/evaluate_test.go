package faults

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/e2e/faultproxy"
	"github.com/freshtoken/freshtoken/e2e/oauthserver"
)

var t0 = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

// cleanRun is a strict run in which alpha was consented (rt1) and refreshed once (rt2) by
// slot A at step 1, and the recovery step found it not due.
func cleanRun() Run {
	return Run{
		Seed: 7, Mode: Strict, Conns: []string{"alpha"},
		Calls: []Call{
			{Slot: "A", Incarnation: 1, Time: at(0), SimTime: at(0), Kind: faultproxy.KindExchange, Conn: "alpha", Fault: faultproxy.Pass,
				Forwarded: true, Status: 200, IssuedAT: "access-token-1", IssuedRT: "refresh-token-1", Delivered: true},
			{Slot: "A", Incarnation: 1, Step: 1, Time: at(10), SimTime: at(10), Kind: faultproxy.KindRefresh, Presented: "refresh-token-1",
				Fault: faultproxy.Pass, Forwarded: true, Status: 200, IssuedAT: "access-token-2", IssuedRT: "refresh-token-2", Delivered: true},
		},
		Steps: []Step{
			{Index: 1, SimStart: at(5),
				Due: map[string]bool{"alpha": true}, DueAfter: map[string]bool{"alpha": false}, LiveLease: map[string]bool{},
				Before:      map[string]Pair{"alpha": {AT: "access-token-1", RT: "refresh-token-1"}},
				After:       map[string]Pair{"alpha": {AT: "access-token-2", RT: "refresh-token-2"}},
				Invocations: []Invocation{{Slot: "A", Incarnation: 1, Status: 200, Lines: []string{"alpha: refreshed; access token expires soon"}}}},
			{Index: 2, Recovery: true, SimStart: at(20),
				Due: map[string]bool{}, DueAfter: map[string]bool{}, LiveLease: map[string]bool{},
				Before:      map[string]Pair{"alpha": {AT: "access-token-2", RT: "refresh-token-2"}},
				After:       map[string]Pair{"alpha": {AT: "access-token-2", RT: "refresh-token-2"}},
				Invocations: []Invocation{{Slot: "B", Incarnation: 1, Status: 200, Lines: []string{"alpha: not due"}}}},
		},
		Final: map[string]Final{"alpha": {Pair: Pair{AT: "access-token-2", RT: "refresh-token-2"}, Accepted: true, ATActive: true, State: "ok"}},
		Stats: oauthserver.Stats{CodeExchanges: 1, Refreshes: 1},
		Texts: []Text{
			{Source: "handler A#1 logs", Body: "alpha: refreshed\nfingerprint 3f2a\n"},
			{Source: "suite output", Body: "step 1: alpha refreshed\n"},
		},
		Secrets: []string{"client-secret-xyz", "refresh-token-1", "refresh-token-2", "access-token-1", "access-token-2", "the-code-123", "short"},
	}
}

// loseAnswer makes the refresh at step 1 lose its answer after the server rotated, and the
// pass end as the requirement says for a strict server.
func loseAnswer(r *Run) {
	r.Calls[1].Fault, r.Calls[1].Delivered = faultproxy.ResetAfter, false
	r.Steps[0].After["alpha"] = r.Steps[0].Before["alpha"]
	r.Steps[0].DueAfter["alpha"] = true
	r.Steps[0].Invocations[0] = Invocation{Slot: "A", Incarnation: 1, Status: 500,
		Lines: []string{"alpha: failed (ambiguous): a refresh was lost in flight"}}
	r.Steps[1].Before["alpha"], r.Steps[1].After["alpha"] = r.Steps[0].Before["alpha"], r.Steps[0].Before["alpha"]
	r.Steps[1].Invocations[0] = Invocation{Slot: "B", Incarnation: 1, Status: 500, Lines: []string{"alpha: failed (ambiguous): needs consent"}}
	r.Final["alpha"] = Final{Pair: Pair{AT: "access-token-1", RT: "refresh-token-1"}, Accepted: false, State: "needs_consent", Class: "ambiguous"}
}

func TestEvaluate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Run)
		check  func(v Verdict) string // "" when v is as wanted
	}{
		{"clean run", func(*Run) {}, func(v Verdict) string {
			if v.Failed() || v.LossEvents != 0 || len(v.Unrecoverable) != 0 {
				return fmt.Sprintf("problems %q, losses %d; want none", v.Problems(), v.LossEvents)
			}
			return ""
		}},
		{"reuse detected by the server", func(r *Run) { r.Stats.ReuseDetections = 1 }, func(v Verdict) string {
			if v.ReuseDetections != 1 || !v.Failed() {
				return fmt.Sprintf("reuse %d failed=%v; want 1, true", v.ReuseDetections, v.Failed())
			}
			return ""
		}},
		{"chain lost although every pair arrived", func(r *Run) {
			f := r.Final["alpha"]
			f.Accepted = false
			r.Final["alpha"] = f
		}, func(v Verdict) string {
			if len(v.ChainsLost) != 1 || len(v.Silent) != 1 {
				return fmt.Sprintf("chains lost %v, silent %v; want alpha lost and ok-while-dead", v.ChainsLost, v.Silent)
			}
			return ""
		}},
		{"due, unchanged, 2xx in progress with nobody holding the lease", func(r *Run) {
			s := &r.Steps[0]
			s.After["alpha"], s.DueAfter["alpha"] = s.Before["alpha"], true
			s.Invocations[0] = Invocation{Slot: "A", Incarnation: 1, Status: 200, Lines: []string{"alpha: in progress elsewhere: another pass took the lease first"}}
			r.Calls = r.Calls[:1]
			r.Final["alpha"] = Final{Pair: s.Before["alpha"], Accepted: true, State: "ok"}
		}, func(v Verdict) string {
			if len(v.Silent) != 1 || !strings.Contains(v.Silent[0], "step 1") {
				return fmt.Sprintf("silent %q; want one at step 1", v.Silent)
			}
			return ""
		}},
		{"in progress while another invocation reported the failure", func(r *Run) {
			s := &r.Steps[0]
			s.After["alpha"], s.DueAfter["alpha"] = s.Before["alpha"], true
			s.Invocations = []Invocation{
				{Slot: "A", Incarnation: 1, Status: 200, Lines: []string{"alpha: in progress elsewhere"}},
				{Slot: "B", Incarnation: 1, Status: 500, Lines: []string{"alpha: failed (transient): HTTP 503"}},
			}
			r.Calls = r.Calls[:1]
			r.Final["alpha"] = Final{Pair: s.Before["alpha"], Accepted: true, State: "ok"}
		}, func(v Verdict) string {
			if len(v.Silent) != 0 || v.TransientFailures != 1 {
				return fmt.Sprintf("silent %q transient %d; want none and 1", v.Silent, v.TransientFailures)
			}
			return ""
		}},
		{"in progress behind a lease held since an earlier step", func(r *Run) {
			s := &r.Steps[0]
			s.After["alpha"], s.DueAfter["alpha"], s.LiveLease["alpha"] = s.Before["alpha"], true, true
			s.Invocations[0].Lines = []string{"alpha: in progress elsewhere"}
			r.Calls = r.Calls[:1]
			r.Final["alpha"] = Final{Pair: s.Before["alpha"], Accepted: true, State: "ok"}
		}, func(v Verdict) string {
			if len(v.Silent) != 0 {
				return fmt.Sprintf("silent %q; want none", v.Silent)
			}
			return ""
		}},
		{"refreshed claimed but nothing stored", func(r *Run) {
			s := &r.Steps[0]
			s.After["alpha"], s.DueAfter["alpha"] = s.Before["alpha"], true
		}, func(v Verdict) string {
			if len(v.Silent) < 1 || !strings.Contains(v.Silent[0], "did not change") {
				return fmt.Sprintf("silent %q; want a refreshed-but-unchanged finding", v.Silent)
			}
			return ""
		}},
		{"secret in a log line", func(r *Run) {
			r.Texts = append(r.Texts, Text{Source: "handler B#2 logs", Body: `{"level":"error","message":"refresh-token-2 rejected"}` + "\nshort\n"})
		}, func(v Verdict) string {
			if len(v.SecretLeaks) != 1 || !strings.Contains(v.SecretLeaks[0], "handler B#2 logs") || strings.Contains(v.SecretLeaks[0], "refresh-token-2") {
				return fmt.Sprintf("leaks %q; want one in handler B#2 logs, naming no secret (and none for a short one)", v.SecretLeaks)
			}
			return ""
		}},
		{"keys: table rows hold sealed refresh tokens and plain access tokens", func(r *Run) {
			r.Keys = true
			r.Table = []Text{{Source: "table snapshot #1", Body: `{"RowKey":"AccessToken","Value":"access-token-2"} {"RowKey":"RefreshToken","Value":"ft1:k:AAAA"}`}}
		}, func(v Verdict) string {
			if v.Failed() {
				return fmt.Sprintf("problems %q; want none", v.Problems())
			}
			return ""
		}},
		{"keys: a refresh token in plain text in a table row", func(r *Run) {
			r.Keys = true
			r.Table = []Text{{Source: "table snapshot #1", Body: `{"RowKey":"AccessToken","Value":"access-token-2"}`},
				{Source: "table snapshot #2", Body: `{"RowKey":"RefreshToken","Value":"refresh-token-1"}`}}
		}, func(v Verdict) string {
			if len(v.SecretLeaks) != 1 || !strings.Contains(v.SecretLeaks[0], "table snapshot #2") || strings.Contains(v.SecretLeaks[0], "refresh-token-1") {
				return fmt.Sprintf("leaks %q; want one in table snapshot #2, naming no token", v.SecretLeaks)
			}
			return ""
		}},
		{"keys: no table rows captured", func(r *Run) { r.Keys = true }, func(v Verdict) string {
			if len(v.SecretLeaks) != 1 || !strings.Contains(v.SecretLeaks[0], "no table rows") {
				return fmt.Sprintf("leaks %q; want the missing capture reported", v.SecretLeaks)
			}
			return ""
		}},
		{"client secret in the suite's output", func(r *Run) {
			r.Texts = append(r.Texts, Text{Source: "suite output", Body: "env: client-secret-xyz"})
		}, func(v Verdict) string {
			if len(v.SecretLeaks) != 1 {
				return fmt.Sprintf("leaks %q; want one", v.SecretLeaks)
			}
			return ""
		}},
		{"strict: lost answer handled as required", loseAnswer, func(v Verdict) string {
			if v.Failed() || v.LossEvents != 1 || len(v.Unrecoverable) != 1 || len(v.ChainsLost) != 0 {
				return fmt.Sprintf("problems %q losses %d unrecoverable %v; want none, 1, [alpha]", v.Problems(), v.LossEvents, v.Unrecoverable)
			}
			return ""
		}},
		{"strict: lost answer, pass answered 2xx and status ok", func(r *Run) {
			loseAnswer(r)
			r.Steps[0].Invocations[0] = Invocation{Slot: "A", Incarnation: 1, Status: 200, Lines: []string{"alpha: in progress elsewhere"}}
			f := r.Final["alpha"]
			f.State, f.Class = "ok", ""
			r.Final["alpha"] = f
		}, func(v Verdict) string {
			if len(v.Mishandled) != 2 || len(v.Silent) < 1 {
				return fmt.Sprintf("mishandled %q silent %q; want the status and the 2xx named, and a silent failure", v.Mishandled, v.Silent)
			}
			return ""
		}},
		{"strict: lost answer, old token resent", func(r *Run) {
			loseAnswer(r)
			r.Calls = append(r.Calls, Call{Slot: "B", Incarnation: 1, Step: 2, Time: at(30), Kind: faultproxy.KindRefresh,
				Presented: "refresh-token-1", Fault: faultproxy.Pass, Forwarded: true, Status: 400, Delivered: true})
			r.Stats.ReuseDetections = 1
		}, func(v Verdict) string {
			if v.ReuseDetections != 1 || len(v.Mishandled) != 1 || !strings.Contains(v.Mishandled[0], "sent again at step 2") {
				return fmt.Sprintf("reuse %d mishandled %q; want 1 and a resend at step 2", v.ReuseDetections, v.Mishandled)
			}
			return ""
		}},
		{"strict: killed after the answer arrived, never stored", func(r *Run) {
			loseAnswer(r)
			r.Calls[1].Fault, r.Calls[1].Delivered = faultproxy.Pass, true
			r.Kills = []Kill{{Slot: "A", Incarnation: 1, Step: 1, At: "after-answer", Time: at(11)}}
			r.Steps[0].Invocations[0] = Invocation{Slot: "A", Incarnation: 1, Status: 0, Killed: true}
		}, func(v Verdict) string {
			if v.Failed() || v.LossEvents != 1 || len(v.Unrecoverable) != 1 {
				return fmt.Sprintf("problems %q losses %d unrecoverable %v; want none, 1, [alpha]", v.Problems(), v.LossEvents, v.Unrecoverable)
			}
			return ""
		}},
		{"killed after the pair was stored", func(r *Run) {
			r.Kills = []Kill{{Slot: "A", Incarnation: 1, Step: 1, At: "commit-after", Time: at(11)}}
			r.Steps[0].Invocations[0] = Invocation{Slot: "A", Incarnation: 1, Status: 0, Killed: true}
		}, func(v Verdict) string {
			if v.Failed() || v.LossEvents != 0 {
				return fmt.Sprintf("problems %q losses %d; want none", v.Problems(), v.LossEvents)
			}
			return ""
		}},
		{"grace: lost answer recovered by an identical repeat", func(r *Run) {
			r.Mode, r.RepeatWindow = Grace, time.Hour
			r.Calls[1].Fault, r.Calls[1].Delivered = faultproxy.Malformed200, false
			repeat := r.Calls[1]
			repeat.Time, repeat.Fault, repeat.Delivered = at(12), faultproxy.Pass, true
			r.Calls = append(r.Calls, repeat)
			r.Stats.GraceRepeats = 1
		}, func(v Verdict) string {
			if v.Failed() || v.LossEvents != 1 || len(v.GraceRecovered) != 1 {
				return fmt.Sprintf("problems %q losses %d recovered %v; want none, 1, [alpha]", v.Problems(), v.LossEvents, v.GraceRecovered)
			}
			return ""
		}},
		{"grace: killed after the answer arrived, recovered by a repeat", func(r *Run) {
			r.Mode, r.RepeatWindow = Grace, time.Hour
			r.Kills = []Kill{{Slot: "A", Incarnation: 1, Step: 1, At: "after-answer", Time: at(11)}}
			r.Steps[0].After["alpha"], r.Steps[0].DueAfter["alpha"] = r.Steps[0].Before["alpha"], true
			r.Steps[0].Invocations[0] = Invocation{Slot: "A", Incarnation: 1, Status: 0, Killed: true}
			repeat := r.Calls[1]
			repeat.Slot, repeat.Step, repeat.Time, repeat.SimTime = "B", 2, at(21), at(21)
			r.Calls = append(r.Calls, repeat)
			r.Steps[1].Due["alpha"] = true
			r.Steps[1].Before["alpha"] = r.Steps[0].Before["alpha"]
			r.Steps[1].Invocations[0].Lines = []string{"alpha: refreshed"}
		}, func(v Verdict) string {
			if v.Failed() || v.LossEvents != 1 || len(v.GraceRecovered) != 1 {
				return fmt.Sprintf("problems %q losses %d recovered %v; want none, 1, [alpha]", v.Problems(), v.LossEvents, v.GraceRecovered)
			}
			return ""
		}},
		{"grace: lost answer not recovered inside the window", func(r *Run) {
			loseAnswer(r)
			r.Mode, r.RepeatWindow = Grace, time.Hour
		}, func(v Verdict) string {
			if len(v.Mishandled) != 1 || !strings.Contains(v.Mishandled[0], "not recovered") {
				return fmt.Sprintf("mishandled %q; want not recovered", v.Mishandled)
			}
			return ""
		}},
		{"grace: window closed before the next pass", func(r *Run) {
			loseAnswer(r)
			r.Mode, r.RepeatWindow = Grace, time.Minute
			r.Calls[1].SimTime = at(10)
			r.Steps[1].SimStart = at(10 + 120)
		}, func(v Verdict) string {
			if v.Failed() || len(v.Unrecoverable) != 1 {
				return fmt.Sprintf("problems %q unrecoverable %v; want none, [alpha]", v.Problems(), v.Unrecoverable)
			}
			return ""
		}},
		{"needs consent with the chain intact is conservative", func(r *Run) {
			s := &r.Steps[0]
			s.After["alpha"], s.DueAfter["alpha"] = s.Before["alpha"], true
			s.Invocations[0] = Invocation{Slot: "A", Incarnation: 1, Status: 500, Lines: []string{"alpha: failed (ambiguous)"}}
			r.Calls[1].Fault, r.Calls[1].Forwarded, r.Calls[1].Status = faultproxy.ResetBefore, false, 0
			r.Calls[1].IssuedAT, r.Calls[1].IssuedRT, r.Calls[1].Delivered = "", "", false
			r.Final["alpha"] = Final{Pair: s.Before["alpha"], Accepted: true, State: "needs_consent", Class: "ambiguous"}
		}, func(v Verdict) string {
			if v.Failed() || len(v.Conservative) != 1 || len(v.NeedsConsent) != 1 {
				return fmt.Sprintf("problems %q conservative %v; want none, [alpha]", v.Problems(), v.Conservative)
			}
			return ""
		}},
		{"data race reported by the handler", func(r *Run) {
			r.Texts = append(r.Texts, Text{Source: "handler A#1 logs", Body: "==================\nWARNING: DATA RACE\nRead at ..."})
		}, func(v Verdict) string {
			if len(v.Crashes) != 1 {
				return fmt.Sprintf("crashes %q; want one", v.Crashes)
			}
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cleanRun()
			tt.mutate(&r)
			if msg := tt.check(Evaluate(r)); msg != "" {
				t.Error(msg)
			}
		})
	}
}

// TestSummary: the must-be-0 figures name the seeds of the runs that made them.
func TestSummary(t *testing.T) {
	var s Summary
	ok := cleanRun()
	s.Add(ok, Evaluate(ok))
	bad := cleanRun()
	bad.Seed = 99
	bad.Stats.ReuseDetections = 2
	s.Add(bad, Evaluate(bad))
	s.AddBroken(123)
	off := s.Offending()
	if len(off) != 2 || !strings.Contains(off[0], "reuse detections = 2") || !strings.Contains(off[0], "99") ||
		strings.Contains(off[0], " 7") || !strings.Contains(off[1], "123") {
		t.Errorf("offending %q; want the reuse figure with seed 99 only, and the broken run 123", off)
	}
	table := s.Table()
	for _, want := range []string{"runs (strict / grace)", "2 (2 / 0)", "reuse detections", "offending runs"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}
