package faults

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/freshtoken/freshtoken/e2e/faultproxy"
)

// reqKey names one request: its proxy and its sequence number there.
type reqKey struct {
	proxy string
	seq   int
}

// reqInfo is what the runner knew when a request arrived.
type reqInfo struct {
	slot      string
	inc, step int
	sim       time.Time
	conn      string // the connection being consented
}

// decide is a proxy's Decide: it notes what the runner knew when the request arrived and
// applies the step's plan.
func (r *runner) decide(s *slot, side string) func(*faultproxy.Request) faultproxy.Action {
	return func(req *faultproxy.Request) faultproxy.Action {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.info[reqKey{req.Proxy, req.Seq}] = reqInfo{slot: s.name, inc: s.incarnation, step: r.step, sim: r.simNow(), conn: r.consenting}
		if !r.stepOpen {
			return faultproxy.Action{}
		}
		r.counts[s.name+"/"+side+"/"+req.Kind]++
		r.counts[anySlot+"/"+side+"/"+req.Kind]++
		var act faultproxy.Action
		for _, it := range r.plan {
			if it.used || it.hook == hookRefuse || (it.slot != s.name && it.slot != anySlot) || it.side != side || it.kind != req.Kind ||
				it.nth != r.counts[it.slot+"/"+side+"/"+req.Kind] {
				continue
			}
			it.used = true
			if it.fault != "" {
				act.Fault, act.Status, act.Delay = it.fault, it.status, it.delay
			}
			switch it.hook {
			case hookKillBefore:
				act.Before = chain(act.Before, r.killHook(s, it.at))
			case hookKillAfter:
				act.After = chain(act.After, r.killHook(s, it.at))
			case hookRestart:
				act.After = chain(act.After, r.restartHook())
			case hookStall:
				if conn := r.batchConn(req.Body); conn != "" {
					act.Before = chain(act.Before, r.stallHook(s, conn))
				}
			}
		}
		return act
	}
}

func chain(a, b func()) func() {
	if a == nil {
		return b
	}
	return func() { a(); b() }
}

// killHook SIGKILLs the slot's process, as a crash would, while the step is open.
func (r *runner) killHook(s *slot, at string) func() {
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if !r.stepOpen {
			return
		}
		r.rec.Kills = append(r.rec.Kills, Kill{Slot: s.name, Incarnation: s.incarnation, Step: r.step, At: at, Time: time.Now()})
		r.logf("  kill %s#%d %s", s.name, s.incarnation, at)
		s.host.Kill()
	}
}

// restartHook restarts Azurite in the background (with its data): requests fail while it is
// down, as in a table service outage.
func (r *runner) restartHook() func() {
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if !r.stepOpen {
			return
		}
		r.rec.AzuriteRestarts++
		r.logf("  restart Azurite")
		r.restarts.Add(1)
		go func() {
			defer r.restarts.Done()
			r.h.azMu.Lock()
			defer r.h.azMu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := r.h.az.Restart(ctx); err != nil {
				r.harnessErr("restart Azurite: %v", err)
			}
		}()
	}
}

// batchConn names the connection whose rows a transaction writes.
func (r *runner) batchConn(body []byte) string {
	for _, c := range r.rec.Conns {
		if strings.Contains(string(body), `"PartitionKey":"`+c+`"`) {
			return c
		}
	}
	return ""
}

// stallHook holds a pass's commit while time passes beyond its lease and the other process
// runs a pass, which finds the lease expired with a refresh in flight; then the commit goes on
// against the table the takeover left.
func (r *runner) stallHook(s *slot, conn string) func() {
	return func() {
		r.mu.Lock()
		open := r.stepOpen
		r.mu.Unlock()
		if !open {
			return
		}
		other := r.slots[0]
		if other == s {
			other = r.slots[1]
		}
		r.logf("  stall %s before its commit of %s; %s takes over", s.name, conn, other.name)
		if err := r.passTime(conn); err != nil {
			r.harnessErr("stall: %v", err)
			return
		}
		inv := r.invokeOne(other.name)
		r.mu.Lock()
		r.extra = append(r.extra, inv)
		r.mu.Unlock()
	}
}

// record is a proxy's Record: it counts faults, keeps the secrets that crossed the OAuth2
// side, and records token requests.
func (r *runner) record(s *slot, side string) func(faultproxy.Exchange) {
	return func(ex faultproxy.Exchange) {
		r.mu.Lock()
		defer r.mu.Unlock()
		key := reqKey{ex.Proxy, ex.Seq}
		info := r.info[key]
		delete(r.info, key)
		if ex.Fault != faultproxy.Pass {
			r.rec.Faults[side+"/"+ex.Kind+"/"+string(ex.Fault)]++
		}
		if side != sideOAuth {
			return
		}
		for _, sec := range faultproxy.OAuthSecrets(ex) {
			r.secrets[sec] = true
		}
		if ex.Kind != faultproxy.KindExchange && ex.Kind != faultproxy.KindRefresh {
			return
		}
		c := Call{
			Slot: info.slot, Incarnation: info.inc, Step: info.step, Time: ex.Time, SimTime: info.sim,
			Kind: ex.Kind, Fault: ex.Fault, Forwarded: ex.Forwarded, Delivered: ex.Delivered,
			Presented: faultproxy.FormValue(&ex.Request, "refresh_token"),
		}
		if ex.Kind == faultproxy.KindExchange {
			c.Conn = info.conn
		}
		if ex.Upstream != nil {
			c.Status = ex.Upstream.Status
			if c.Status == http.StatusOK {
				c.IssuedAT, c.IssuedRT = faultproxy.TokenResponse(ex.Upstream.Body)
			}
		}
		r.rec.Calls = append(r.rec.Calls, c)
	}
}
