package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/freshtoken/freshtoken/internal/store"
)

// connState is a connection's rows as read from the table.
type connState struct {
	Pair
	ExpiresAt                              time.Time
	State, Class, Message                  string
	LeaseOwner, InFlight                   string
	LeaseUntil, InFlightSince, NextAttempt time.Time
}

// snapshot reads every connection's rows directly from Azurite; with keys, it also keeps every
// row of the table as stored, for the search for plain refresh tokens.
func (r *runner) snapshot() (map[string]connState, error) {
	if r.keys != nil {
		if err := r.captureTable(); err != nil {
			return nil, err
		}
	}
	out := map[string]connState{}
	for _, c := range r.rec.Conns {
		cs, err := r.read(c)
		if err != nil {
			return nil, err
		}
		out[c] = cs
	}
	return out, nil
}

func (r *runner) read(conn string) (connState, error) {
	var cs connState
	filter := "PartitionKey eq '" + conn + "'" // conn is one of the suite's fixed names
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		cs, err = r.readOnce(conn, filter)
		if err == nil {
			return cs, nil
		}
		time.Sleep(250 * time.Millisecond) // Azurite may still be restarting
	}
	return cs, fmt.Errorf("read %s: %w", conn, err)
}

func (r *runner) readOnce(conn, filter string) (connState, error) {
	var cs connState
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pager := r.tc.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return cs, err
		}
		for _, raw := range page.Entities {
			var row map[string]any
			if err := json.Unmarshal(raw, &row); err != nil {
				return cs, errors.New("a row is not JSON")
			}
			str := func(k string) string { s, _ := row[k].(string); return s }
			tm := func(k string) time.Time {
				t, _ := time.Parse(time.RFC3339Nano, str(k))
				return t
			}
			switch str("RowKey") {
			case "AccessToken":
				cs.AT, cs.ExpiresAt = str("Value"), tm("ExpiresAt")
			case "RefreshToken":
				if cs.RT, err = r.openRT(conn, str("Value")); err != nil {
					return cs, err
				}
			case "Status":
				cs.State, cs.Class, cs.Message = str("State"), str("LastFailureClass"), str("LastFailureMessage")
				cs.LeaseOwner, cs.InFlight = str("LeaseOwner"), str("InFlight")
				cs.LeaseUntil, cs.InFlightSince, cs.NextAttempt = tm("LeaseUntil"), tm("InFlightSince"), tm("NextAttempt")
			}
		}
	}
	return cs, nil
}

// merge sets properties of one row, as another writer (or time) would.
func (r *runner) merge(conn, rowKey string, props map[string]any) error {
	ent := aztables.EDMEntity{Entity: aztables.Entity{PartitionKey: conn, RowKey: rowKey}, Properties: props}
	raw, err := ent.MarshalJSON()
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = r.tc.UpdateEntity(ctx, raw, &aztables.UpdateEntityOptions{UpdateMode: aztables.UpdateModeMerge})
		cancel()
		if err == nil || attempt == 20 {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("merge %s/%s: %w", conn, rowKey, err)
	}
	return nil
}

// expire makes a connection's access token due now.
func (r *runner) expire(conn string) error {
	return r.merge(conn, "AccessToken", map[string]any{"ExpiresAt": aztables.EDMDateTime(time.Now().UTC())})
}

// passTime lets simulated time pass until the leases of conns have expired: their LeaseUntil
// and InFlightSince move back by that much and the OAuth2 server's clock moves forward by as
// much. A retry back-off is cut short (NextAttempt moves to now) without moving the clocks.
func (r *runner) passTime(conns ...string) error {
	states := map[string]connState{}
	for _, c := range conns {
		cs, err := r.read(c)
		if err != nil {
			return err
		}
		states[c] = cs
	}
	now := time.Now()
	var delta time.Duration
	for _, cs := range states {
		if cs.LeaseOwner != "" && cs.LeaseUntil.After(now) {
			delta = max(delta, cs.LeaseUntil.Sub(now)+time.Second)
		}
	}
	if delta > 0 {
		r.simOffset.Add(int64(delta))
		r.logf("time passes: %v", delta.Round(time.Millisecond))
	}
	for _, c := range conns {
		cs := states[c]
		props := map[string]any{}
		if delta > 0 && !cs.LeaseUntil.IsZero() {
			props["LeaseUntil"] = aztables.EDMDateTime(cs.LeaseUntil.Add(-delta))
		}
		if delta > 0 && !cs.InFlightSince.IsZero() {
			props["InFlightSince"] = aztables.EDMDateTime(cs.InFlightSince.Add(-delta))
		}
		if cs.NextAttempt.After(now) {
			props["NextAttempt"] = aztables.EDMDateTime(now.Add(-time.Second))
		}
		if len(props) > 0 {
			if err := r.merge(c, "Status", props); err != nil {
				return err
			}
		}
	}
	return nil
}

// readFinal reads each connection's rows and asks the server about its tokens.
func (r *runner) readFinal() error {
	states, err := r.snapshot()
	if err != nil {
		return err
	}
	for c, cs := range states {
		r.rec.Final[c] = Final{
			Pair: cs.Pair, Accepted: cs.RT != "" && r.server.Accepts(cs.RT), ATActive: cs.AT != "" && r.server.ActiveAccessToken(cs.AT),
			State: cs.State, Class: cs.Class, Message: cs.Message, InFlight: cs.InFlight,
		}
		r.logf("final %s: state=%s class=%s refresh token accepted=%v access token active=%v", c, cs.State, cs.Class,
			r.rec.Final[c].Accepted, r.rec.Final[c].ATActive)
	}
	r.rec.Stats = r.server.Stats()
	r.logf("server: %+v", r.rec.Stats)
	return nil
}

// openRT is the plain refresh token of conn's RefreshToken row Value raw: with keys, raw must be
// sealed for that row and open; a plain value is taken as it is (the table search reports it).
func (r *runner) openRT(conn, raw string) (string, error) {
	if r.keys == nil {
		return raw, nil
	}
	plain, _, err := r.keys.Open(raw, store.Binding(r.table, conn, store.RowRefreshToken, "Value"))
	if err != nil {
		return "", fmt.Errorf("%s: the stored refresh token does not open with the run's key: %w", conn, err)
	}
	return plain, nil
}

// captureTable records every row of the table as stored.
func (r *runner) captureTable() error {
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		var b strings.Builder
		if err = r.dumpTable(&b); err == nil {
			r.mu.Lock()
			r.tableShots++
			r.rec.Table = append(r.rec.Table, Text{Source: fmt.Sprintf("table snapshot #%d", r.tableShots), Body: b.String()})
			r.mu.Unlock()
			return nil
		}
		time.Sleep(250 * time.Millisecond) // Azurite may still be restarting
	}
	return fmt.Errorf("read the table rows: %w", err)
}

func (r *runner) dumpTable(b *strings.Builder) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pager := r.tc.NewListEntitiesPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, raw := range page.Entities {
			b.Write(raw)
			b.WriteByte('\n')
		}
	}
	return nil
}
