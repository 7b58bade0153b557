package refresh

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/freshtoken/freshtoken/internal/connection"
	"github.com/freshtoken/freshtoken/internal/redact"
	"github.com/freshtoken/freshtoken/internal/store"
)

// Scanner is the paged reading of a large table, which *store.Store and *store.Lazy provide.
// A pass over a Store without it reads the whole table with List, as before accounts.
//
// # Which rows an idle pass reads
//
// A pass reads every row of the single-account connections (GetMany, 12 partitions a
// request), and of the many-account connections only what Scan selects: the AccessToken rows
// that expire within the horizon (or hold no value), and the Status rows that are not plainly
// ok (needs_consent, retrying, a lease, an in-flight marker) or whose refresh token's deadline
// is within two weeks. Every transition of the state machine (doc.go) starts from a partition
// so selected: "due" is an access token expiring within the margin; needs_consent, retrying,
// leased and in-flight are Status states; a deadline warning is Status.RefreshDeadline. A
// partition Scan leaves out is ok, not leased, not in flight, and not due: its outcome is
// "not due" and it is only counted. A partition selected by its expiry comes from the scan
// whole (Candidate.Record), so that a due account costs no read of its own; the other selected
// partitions are read whole (GetMany) just ahead of the workers. What the scan cannot see: an
// account partition without an AccessToken row, which no freshtoken write leaves (Commit and
// SaveConsent write all three rows together).
type Scanner interface {
	Scan(ctx context.Context, o store.ScanOptions) (map[string]store.Candidate, error)
	GetMany(ctx context.Context, names []string) (map[string]*store.Record, error)
}

// horizon bounds due over the connections cs: an access token expiring more than horizon from
// now is due at none of them (Timing.Horizon). Zero means no bound is known, and the scan then
// reads every AccessToken row (still one request per 1,000 accounts).
func (r *Refresher) horizon(cs map[string]*connection.Connection) time.Duration {
	var h time.Duration
	for _, c := range cs {
		ch := r.o.Timing.Horizon(c.Preset)
		if ch <= 0 {
			return 0
		}
		h = max(h, ch)
	}
	return h
}

// storedSlack widens the observed lifetime idle assumes: the AccessToken row's UpdatedAt is
// written a moment after the Status row's LastSuccess that due reads.
const storedSlack = time.Minute

// idle says from the scan alone that account c is not due: its access token has a value and
// an expiry, its Status row needs no attention, and the timing does not find it due even with
// the longest lifetime the row allows (a margin only grows with the lifetime). When the row's
// UpdatedAt is unknown it cannot say, and the account is read.
func (r *Refresher) idle(c *connection.Connection, cand store.Candidate, now time.Time) bool {
	if !cand.Access || cand.Empty || cand.Attention || cand.Expiry.IsZero() || cand.Stored.IsZero() {
		return false
	}
	return !r.o.Timing.Due(now, TokenAge{Expiry: cand.Expiry, Stored: cand.Stored.Add(-storedSlack)}, c.Preset)
}

// item is one partition a pass looks at.
type item struct {
	conn   *connection.Connection // the connection, or the value of one account of it
	rec    *store.Record          // as read; nil: no rows, or (fetch) not read yet
	fetch  bool                   // read it whole before deciding
	expiry time.Time
	left   bool // left over by the previous pass
	many   bool // an account: an idle outcome is only counted
	idle   bool // not due, known from the scan alone: counted, never read
}

// Report is a whole pass.
type Report struct {
	// Results are the outcomes worth a line: every single-account connection's, and the
	// accounts' that are not idle (idle: not due, no warning; those are only counted).
	Results []Result
	// Summaries count the accounts of each many-account connection by outcome.
	Summaries []Summary
	// Err is set when the pass could not run at all (the table could not be read).
	Err error
}

// Summary counts one many-account connection's accounts by outcome in a pass.
type Summary struct {
	Connection string
	Counts     map[Outcome]int
	// Bound, when set, is the horizon of the scan: no account left uncounted has an access
	// token expiring before it. Zero: every account was counted.
	Bound time.Time
}

// Line renders s, e.g. "strava: 3 accounts looked at: 2 refreshed, 1 left for the next
// pass; every other account's access token expires after 2026-12-01T23:00:00Z".
func (s Summary) Line() string {
	total := 0
	var parts []string
	for _, o := range outcomeOrder {
		if n := s.Counts[o]; n > 0 {
			total += n
			parts = append(parts, fmt.Sprintf("%d %s", n, o))
		}
	}
	line := fmt.Sprintf("%s: %d accounts looked at", s.Connection, total)
	if len(parts) > 0 {
		line += ": " + strings.Join(parts, ", ")
	}
	if !s.Bound.IsZero() {
		line += "; every other account's access token expires after " + s.Bound.UTC().Format(time.RFC3339)
	}
	return line
}

var outcomeOrder = []Outcome{Refreshed, Failed, InProgress, Deferred, NotDue, NotConnected}

// Failed says whether the invocation must be reported as failed: the table could not be read,
// or a due connection ended the pass without a fresh pair stored.
func (r Report) Failed() bool {
	if r.Err != nil {
		return true
	}
	for _, res := range r.Results {
		if res.Outcome == Failed {
			return true
		}
	}
	return false
}

// MaxAccountLines bounds the account lines of Lines (the invocation's Logs answer); the
// handler's own log has every line.
const MaxAccountLines = 100

// Lines renders the report for the invocation's Logs: one line per single-account
// connection, the accounts' lines (failures first, at most MaxAccountLines), and one summary
// line per many-account connection.
func (r Report) Lines() []string {
	var lines, accounts []string
	if r.Err != nil {
		lines = append(lines, "pass failed: "+redact.String(r.Err.Error(), 300))
	}
	var failed []Result
	for _, res := range r.Results {
		switch {
		case !strings.Contains(res.Connection, connection.LabelSeparator):
			lines = append(lines, res.Line())
		case res.Outcome == Failed:
			failed = append(failed, res)
		default:
			accounts = append(accounts, res.Line())
		}
	}
	for i := len(failed) - 1; i >= 0; i-- {
		accounts = append([]string{failed[i].Line()}, accounts...)
	}
	if len(accounts) > MaxAccountLines {
		more := len(accounts) - MaxAccountLines
		accounts = append(accounts[:MaxAccountLines], fmt.Sprintf("... and %d more account lines in the handler's log", more))
	}
	lines = append(lines, accounts...)
	for _, s := range r.Summaries {
		lines = append(lines, s.Line())
	}
	return lines
}

// Run performs one pass. It never panics on provider or storage misbehaviour and never
// returns before every partition it looked at has an outcome. It starts no refresh later than
// Options.Reserve before ctx's deadline; the due partitions it leaves go first next pass.
func (r *Refresher) Run(ctx context.Context) Report {
	owner := r.nextOwner()
	r.flushPending(ctx)

	items, bound, err := r.plan(ctx)
	if err != nil {
		r.o.Log.Error().Str("error", redact.String(err.Error(), 300)).Msg("read the token table")
		return Report{Err: fmt.Errorf("read the token table: %w", err)}
	}
	results := r.work(ctx, owner, items)
	return r.report(items, results, bound)
}

// plan lists the partitions of this pass: every single-account connection, and the accounts
// the scan selects, due ones ordered by the previous pass's left-overs first, then expiry.
func (r *Refresher) plan(ctx context.Context) ([]item, time.Time, error) {
	var singles []*connection.Connection
	many := map[string]*connection.Connection{}
	for _, c := range r.o.Connections {
		if c.Many {
			many[c.Name] = c
		} else {
			singles = append(singles, c)
		}
	}
	account := func(pk string) *connection.Connection {
		name, label, ok := connection.SplitPartition(pk)
		if c := many[name]; ok && c != nil {
			a, err := c.Account(label)
			if err == nil {
				return a
			}
		}
		return nil
	}
	r.mu.Lock()
	left := r.left
	r.mu.Unlock()

	var items []item
	var bound time.Time
	sc, scanning := r.o.Store.(Scanner)
	if !scanning {
		all, err := r.o.Store.List(ctx)
		if err != nil {
			return nil, time.Time{}, err
		}
		for _, c := range singles {
			items = append(items, item{conn: c, rec: all[c.Name]})
		}
		for pk, rec := range all {
			if a := account(pk); a != nil {
				items = append(items, item{conn: a, rec: rec, expiry: rec.Tokens.ExpiresAt, left: left[pk], many: true})
			}
		}
	} else {
		if len(singles) > 0 {
			names := make([]string, len(singles))
			for i, c := range singles {
				names[i] = c.Name
			}
			recs, err := sc.GetMany(ctx, names)
			if err != nil {
				return nil, time.Time{}, err
			}
			for _, c := range singles {
				items = append(items, item{conn: c, rec: recs[c.Name]})
			}
		}
		if len(many) > 0 {
			now := r.o.Now()
			o := store.ScanOptions{DeadlineBefore: now.Add(deadlineNotice)}
			if h := r.horizon(many); h > 0 {
				o.ExpiresBefore = now.Add(h)
				bound = o.ExpiresBefore
			}
			cands, err := sc.Scan(ctx, o)
			if err != nil {
				return nil, time.Time{}, err
			}
			for pk, cand := range cands {
				if a := account(pk); a != nil {
					it := item{conn: a, expiry: cand.Expiry, left: left[pk], many: true}
					switch {
					case r.idle(a, cand, now):
						it.idle = true
					case cand.Record != nil:
						it.rec = cand.Record // read whole by the scan
					default:
						it.fetch = true
					}
					items = append(items, it)
				}
			}
		}
	}
	accounts := items[len(singles):]
	slices.SortFunc(accounts, func(a, b item) int {
		if a.idle != b.idle {
			// Last, out of the way of the batches of reads.
			if b.idle {
				return -1
			}
			return 1
		}
		if a.left != b.left {
			if a.left {
				return -1
			}
			return 1
		}
		if a.expiry.IsZero() != b.expiry.IsZero() {
			if a.expiry.IsZero() {
				return 1
			}
			return -1
		}
		if c := a.expiry.Compare(b.expiry); c != 0 {
			return c
		}
		return cmp.Compare(a.conn.Name, b.conn.Name)
	})
	return items, bound, nil
}

// readAhead is how many batches of accounts are read ahead of the refreshes, concurrently.
const readAhead = 4

// work decides and acts for every item, Concurrency at a time, in order. Accounts to fetch are
// read in batches of up to store.GetManyBatch, readAhead batches at once just ahead of the
// workers, so that reads keep up with the refreshes and what a refresh decides on is fresh.
func (r *Refresher) work(ctx context.Context, owner string, items []item) []Result {
	results := make([]Result, len(items))
	jobs := make(chan int, r.o.Concurrency)
	var wg sync.WaitGroup
	for range r.o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				results[i] = r.one(ctx, owner, items[i].conn, items[i].rec)
				items[i].rec = nil
			}
		}()
	}
	// Batches in order, each with the channel its read is answered on.
	type read struct {
		batch []int
		done  chan error
	}
	reads := make(chan read, readAhead)
	stop := make(chan struct{})
	go func() {
		defer close(reads)
		sem := make(chan struct{}, readAhead)
		// Every read started has ended before reads closes.
		defer func() {
			for range readAhead {
				sem <- struct{}{}
			}
		}()
		for i := 0; i < len(items); {
			batch := []int{i}
			i++
			for items[batch[0]].fetch && i < len(items) && items[i].fetch && len(batch) < store.GetManyBatch {
				batch = append(batch, i)
				i++
			}
			rd := read{batch: batch, done: make(chan error, 1)}
			if !items[batch[0]].fetch {
				rd.done <- nil
			} else {
				select {
				case sem <- struct{}{}:
				case <-stop:
					return
				}
				go func() {
					defer func() { <-sem }()
					rd.done <- r.fetch(ctx, items, batch)
				}()
			}
			select {
			case reads <- rd:
			case <-stop:
				return
			}
		}
	}()
	stopped := false
	handled := make([]bool, len(items))
	for rd := range reads {
		err := <-rd.done
		if !stopped && !items[rd.batch[0]].idle {
			if last := r.lastStart(ctx); ctx.Err() != nil || !last.IsZero() && !time.Now().Before(last) {
				stopped = true
				close(stop)
			}
		}
		for _, k := range rd.batch {
			handled[k] = true
			switch {
			case items[k].idle:
				results[k] = Result{Connection: items[k].conn.Name, Outcome: NotDue, Expiry: items[k].expiry}
			case stopped:
				results[k] = Result{Connection: items[k].conn.Name, Outcome: Deferred, Expiry: items[k].expiry,
					Detail: "due, not started before the pass's end"}
			case err != nil:
				results[k] = r.fail(Result{Connection: items[k].conn.Name}, ClassStorage,
					"could not read the account: "+redact.String(err.Error(), 300))
			case items[k].fetch && items[k].rec == nil:
				// Removed since the scan.
				results[k] = Result{Connection: items[k].conn.Name, Outcome: NotConnected, Detail: "the account's rows are gone"}
			default:
				jobs <- k
			}
		}
	}
	if stopped {
		// The batches never handed out were never read either.
		for k := range items {
			if !handled[k] && items[k].idle {
				results[k] = Result{Connection: items[k].conn.Name, Outcome: NotDue, Expiry: items[k].expiry}
			} else if !handled[k] {
				results[k] = Result{Connection: items[k].conn.Name, Outcome: Deferred, Expiry: items[k].expiry,
					Detail: "due, not started before the pass's end"}
			}
		}
	}
	close(jobs)
	wg.Wait()
	return results
}

// fetch reads the accounts of batch into items.
func (r *Refresher) fetch(ctx context.Context, items []item, batch []int) error {
	names := make([]string, len(batch))
	for j, k := range batch {
		names[j] = items[k].conn.Name
	}
	recs, err := r.o.Store.(Scanner).GetMany(ctx, names)
	if err != nil {
		return err
	}
	for _, k := range batch {
		items[k].rec = recs[items[k].conn.Name]
	}
	return nil
}

// report logs the pass and builds its Report: a line per result worth one, a summary per
// many-account connection.
func (r *Refresher) report(items []item, results []Result, bound time.Time) Report {
	var rep Report
	sums := map[string]*Summary{}
	for _, c := range r.o.Connections {
		if c.Many {
			s := &Summary{Connection: c.Name, Counts: map[Outcome]int{}, Bound: bound}
			sums[c.Name] = s
			rep.Summaries = append(rep.Summaries, *s)
		}
	}
	left := map[string]bool{}
	for i, res := range results {
		if !items[i].many {
			rep.Results = append(rep.Results, res)
			continue
		}
		sums[items[i].conn.App()].Counts[res.Outcome]++
		if res.Outcome == Deferred {
			left[res.Connection] = true
			continue
		}
		if res.Outcome == NotDue && res.Warning == nil {
			continue
		}
		rep.Results = append(rep.Results, res)
	}
	r.mu.Lock()
	r.left = left
	r.mu.Unlock()
	for i := range rep.Summaries {
		rep.Summaries[i] = *sums[rep.Summaries[i].Connection]
	}

	slices.SortStableFunc(rep.Results, func(a, b Result) int { return cmp.Compare(a.Connection, b.Connection) })
	for _, res := range rep.Results {
		ev := r.o.Log.Info()
		switch {
		case res.Outcome == Failed:
			ev = r.o.Log.Error()
		case res.Warning != nil || res.Outcome == Deferred:
			ev = r.o.Log.Warn()
		}
		ev = ev.Str("connection", res.Connection).Str("outcome", string(res.Outcome))
		if res.Class != "" {
			ev = ev.Str("class", string(res.Class))
		}
		ev.Msg(res.Line())
	}
	for _, s := range rep.Summaries {
		ev := r.o.Log.Info()
		if s.Counts[Deferred] > 0 {
			ev = r.o.Log.Warn()
		}
		ev = ev.Str("connection", s.Connection)
		for _, o := range outcomeOrder {
			if n := s.Counts[o]; n > 0 {
				ev = ev.Int(strings.ReplaceAll(string(o), " ", "_"), n)
			}
		}
		ev.Msg(s.Line())
	}
	return rep
}
