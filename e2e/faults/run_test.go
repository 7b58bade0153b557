package faults

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/freshtoken/freshtoken/e2e/faultproxy"
	"github.com/freshtoken/freshtoken/e2e/funchost"
	"github.com/freshtoken/freshtoken/e2e/oauthserver"
	"github.com/freshtoken/freshtoken/internal/seal"
)

// Timing of the handler under test and of the faults.
const (
	tokenTimeout  = time.Second      // TOKEN_REQUEST_TIMEOUT
	leaseLength   = 20 * time.Second // REFRESH_LEASE: outlives a token request, its repeat and a commit retried past one slow store answer
	refreshMargin = 30 * time.Minute // REFRESH_MARGIN (the default)
	// graceWindow is the server's grace window in grace mode, equal to the repeat window of
	// the google preset used against it (a day).
	graceWindow = 24 * time.Hour
	// oauthSlow holds a token request or answer past the handler's token request timeout.
	oauthSlow = tokenTimeout + 700*time.Millisecond
	// azureSlow holds a table request or answer past the store's per-try and response-header
	// time-outs (10 s each), so that azcore gives up on it and retries.
	azureSlow = 11 * time.Second
)

// Proxy sides.
const (
	sideAzure = "azure"
	sideOAuth = "oauth"
)

// slot is one handler process as the host keeps it: restarted after a kill.
type slot struct {
	name         string
	azure, oauth *faultproxy.Proxy
	env          map[string]string
	host         *funchost.Host // guarded by runner.mu
	incarnation  int            // guarded by runner.mu
	hosts        []*funchost.Host
}

// runner runs one seeded run.
type runner struct {
	h            *harness
	rng          *rand.Rand
	rec          Run
	clientSecret string
	keys         *seal.Keyring // nil: the run sets no TOKEN_ENCRYPTION_KEYS
	keySetting   string
	tableShots   int
	table        string
	svc          *aztables.ServiceClient
	tc           *aztables.Client
	server       *oauthserver.Server
	simOffset    atomic.Int64 // how far the OAuth2 server's clock is ahead
	front        net.Listener
	slots        []*slot

	outMu sync.Mutex
	out   strings.Builder // the suite's own output for this run

	mu            sync.Mutex
	step          int
	stepOpen      bool
	plan          []*planItem
	counts        map[string]int
	consenting    string
	info          map[reqKey]reqInfo
	secrets       map[string]bool
	errs          []string
	restarts      sync.WaitGroup
	slowAzureUsed bool
	script        *script
	extra         []Invocation // invocations run by hooks (takeovers) during the step
}

func (r *runner) simNow() time.Time { return time.Now().Add(time.Duration(r.simOffset.Load())) }

func (r *runner) logf(format string, args ...any) {
	r.outMu.Lock()
	defer r.outMu.Unlock()
	fmt.Fprintf(&r.out, format+"\n", args...)
}

func (r *runner) output() string {
	r.outMu.Lock()
	defer r.outMu.Unlock()
	return r.out.String()
}

func (r *runner) harnessErr(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *runner) addText(source, body string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rec.Texts = append(r.rec.Texts, Text{Source: source, Body: body})
}

// script is a run given in full instead of drawn: the scenario tests use it.
type script struct {
	mode  string
	conns []string
	steps []stepSpec
}

// stepSpec is what a step does. Drawn steps come from drawStep.
type stepSpec struct {
	recovery bool
	passTime bool     // let time pass until leases expire, and cut retry back-offs short
	expire   []string // connections whose access token is made due
	waves    [][]string
	plan     []*planItem
}

// run performs one run, drawn from seed or, when sc is not nil, as scripted, and returns its
// record and the suite's output for it.
func (h *harness) run(seed uint64, sc *script) (Run, string, error) {
	r := &runner{
		h:       h,
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		rec:     Run{Seed: seed, Faults: map[string]int{}, Final: map[string]Final{}},
		info:    map[reqKey]reqInfo{},
		secrets: map[string]bool{},
		script:  sc,
	}
	defer r.cleanup()
	err := r.all()
	r.closeProxies() // no exchange is recorded after this
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil && len(r.errs) > 0 {
		err = errors.New(strings.Join(r.errs, "; "))
	}
	return r.rec, r.output(), err
}

func (r *runner) closeProxies() {
	for _, s := range r.slots {
		s.azure.Close()
		s.oauth.Close()
	}
}

func (r *runner) all() error {
	if err := r.setup(); err != nil {
		return err
	}
	if err := r.consentAll(); err != nil {
		return err
	}
	var steps []stepSpec
	if r.script != nil {
		steps = r.script.steps
	} else {
		for range 2 + r.rng.IntN(4) {
			steps = append(steps, r.drawStep())
		}
	}
	// Recovery: fault-free passes from both processes, after time passed.
	for range 2 {
		steps = append(steps, stepSpec{recovery: true, passTime: true, expire: r.rec.Conns, waves: [][]string{{"A"}, {"B"}}})
	}
	for i, sp := range steps {
		if err := r.runStep(i+1, sp); err != nil {
			return fmt.Errorf("step %d: %w", i+1, err)
		}
	}
	if err := r.readFinal(); err != nil {
		return err
	}
	r.stopAll()
	r.closeProxies()
	r.collect()
	return nil
}

func (r *runner) setup() error {
	if r.script != nil {
		r.rec.Mode, r.rec.Conns = r.script.mode, r.script.conns
	} else {
		r.rec.Mode = []string{Strict, Grace}[r.rng.IntN(2)]
		r.rec.Conns = []string{"alpha", "beta"}[:1+r.rng.IntN(2)]
	}
	if r.rec.Mode == Grace {
		r.rec.RepeatWindow = graceWindow
	}
	r.clientSecret = fmt.Sprintf("faults-secret-%016x%016x", r.rng.Uint64(), r.rng.Uint64())
	var err error
	if r.rec.Keys, err = keysFor(r.rec.Seed); err != nil {
		return err
	}
	if r.rec.Keys {
		// Drawn outside r.rng, so that a seed replays the same run with keys or without.
		var k [32]byte
		if _, err := cryptorand.Read(k[:]); err != nil {
			return err
		}
		b64 := base64.StdEncoding.EncodeToString(k[:])
		r.keySetting = "faults1:" + b64
		if r.keys, err = seal.Parse("TOKEN_ENCRYPTION_KEYS", r.keySetting, nil); err != nil {
			return err
		}
		r.secrets[b64] = true
	}
	r.logf("seed=%d mode=%s connections=%s keys=%v", r.rec.Seed, r.rec.Mode, strings.Join(r.rec.Conns, ","), r.rec.Keys)

	if r.front, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return err
	}
	base := "http://" + r.front.Addr().String()
	var redirects []string
	for _, c := range r.rec.Conns {
		redirects = append(redirects, base+"/api/callback/"+c)
	}
	auth := oauthserver.AuthMethodBasic
	if r.rec.Mode == Grace {
		auth = oauthserver.AuthMethodPost // the google preset sends the client secret in the form
	}
	o := oauthserver.Options{
		Clients: []oauthserver.Client{{
			ID: "faults-client", Secret: r.clientSecret, RedirectURIs: redirects,
			Scopes: []string{"activity", "sleep", "profile"}, AuthMethod: auth, RequirePKCE: true,
		}},
		AccessTokenLifespan: time.Hour,
		AccountID:           "user-7",
		Now:                 r.simNow,
	}
	if r.rec.Mode == Grace {
		o.GraceWindow = graceWindow
	}
	if r.server, err = oauthserver.New(o); err != nil {
		return err
	}
	if err := r.server.Start(); err != nil {
		return err
	}

	r.table = fmt.Sprintf("F%dx%d", r.rec.Seed%1_000_000_000_000, time.Now().UnixNano()%1_000_000)
	if r.svc, err = aztables.NewServiceClientFromConnectionString(r.h.az.ConnectionString(), nil); err != nil {
		return err
	}
	r.tc = r.svc.NewClient(r.table)

	for _, name := range []string{"A", "B"} {
		s := &slot{name: name}
		if s.azure, err = faultproxy.Start(faultproxy.Options{
			Name: "azure-" + name, Target: r.h.az.Addr(), Classify: faultproxy.AzureKind,
			Decide: r.decide(s, sideAzure), Record: r.record(s, sideAzure),
		}); err != nil {
			return err
		}
		if s.oauth, err = faultproxy.Start(faultproxy.Options{
			Name: "oauth-" + name, Target: strings.TrimPrefix(r.server.URL(), "http://"), Classify: faultproxy.OAuthKind,
			Decide: r.decide(s, sideOAuth), Record: r.record(s, sideOAuth),
		}); err != nil {
			s.azure.Close()
			return err
		}
		s.env = r.env(s, base)
		r.slots = append(r.slots, s)
	}
	if err := r.startHost(r.slots[0], r.front); err != nil {
		return err
	}
	return r.startHost(r.slots[1], nil)
}

// env is a slot's app settings: the table and the token endpoint through the slot's proxies.
// A strict server goes with a custom provider (no repeat window). A grace server goes with
// the google preset, its endpoints pointed at the test server: a custom provider has no
// repeat window setting, and the fitbit preset (a 2-minute window) cannot consent any more
// (its API is shut down: Authorize answers 410).
func (r *runner) env(s *slot, base string) map[string]string {
	env := map[string]string{
		"FUNCTIONS_WORKER_RUNTIME": "custom",
		"AzureWebJobsStorage":      r.h.az.ConnectionStringFor(s.azure.Addr()),
		"TOKEN_TABLE":              r.table,
		"OAUTH_CONNECTIONS":        strings.Join(r.rec.Conns, ","),
		"REFRESH_SCHEDULE":         "0 */15 * * * *",
		"REFRESH_MARGIN":           refreshMargin.String(),
		"LOG_LEVEL":                "debug",
		"TOKEN_REQUEST_TIMEOUT":    tokenTimeout.String(),
		"REFRESH_LEASE":            leaseLength.String(),
	}
	if r.keySetting != "" {
		env["TOKEN_ENCRYPTION_KEYS"] = r.keySetting
	}
	for _, c := range r.rec.Conns {
		p := "OAUTH_" + strings.ToUpper(c) + "_"
		if r.rec.Mode == Strict {
			env[p+"PROVIDER"] = "custom"
			env[p+"AUTH_STYLE"] = "header"
			env[p+"PKCE"] = "true"
		} else {
			env[p+"PROVIDER"] = "google"
		}
		env[p+"CLIENT_ID"] = "faults-client"
		env[p+"CLIENT_SECRET"] = r.clientSecret
		env[p+"SCOPES"] = "activity sleep profile"
		env[p+"AUTH_URL"] = r.server.AuthURL()
		env[p+"TOKEN_URL"] = s.oauth.URL() + oauthserver.TokenPath
		env[p+"REDIRECT_URL"] = base + "/api/callback/" + c
	}
	return env
}

// startHost starts (or restarts, as the host does after a crash) a slot's handler process.
func (r *runner) startHost(s *slot, front net.Listener) error {
	var err error
	for attempt := 1; attempt <= 5; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		var h *funchost.Host
		h, err = r.h.app.Start(ctx, funchost.StartOptions{Executable: r.h.bin, Env: s.env, FrontDoor: front})
		cancel()
		if err == nil {
			r.mu.Lock()
			s.host = h
			s.incarnation++
			s.hosts = append(s.hosts, h)
			r.mu.Unlock()
			return nil
		}
		// Start fails while the table cannot be opened (Azurite restarting); its error holds
		// the handler's last stderr lines, which are searched for secrets like any log.
		r.addText(fmt.Sprintf("handler %s start error", s.name), err.Error())
		time.Sleep(time.Second)
	}
	return fmt.Errorf("start handler %s: %w", s.name, err)
}

// consentAll connects every connection through slot A, without faults.
func (r *runner) consentAll() error {
	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	a := r.slots[0].host
	for _, c := range r.rec.Conns {
		r.mu.Lock()
		r.consenting = c
		r.mu.Unlock()
		resp, err := b.Get(a.URL() + "/api/authorize/" + c + "?code=" + a.FunctionKey())
		r.mu.Lock()
		r.consenting = ""
		r.mu.Unlock()
		if err != nil {
			return fmt.Errorf("consent %s: %w", c, err)
		}
		page, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		r.addText("callback page of "+c, string(page))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("consent %s: the callback answered %d", c, resp.StatusCode)
		}
	}
	r.logf("consented %s", strings.Join(r.rec.Conns, ","))
	return nil
}

// runStep lets time pass, makes connections due, then runs the step's invocations with its
// faults.
func (r *runner) runStep(i int, sp stepSpec) error {
	if sp.passTime {
		if err := r.passTime(r.rec.Conns...); err != nil {
			return err
		}
	}
	for _, c := range sp.expire {
		if err := r.expire(c); err != nil {
			return err
		}
	}
	before, err := r.snapshot()
	if err != nil {
		return err
	}
	recovery, waves, plan := sp.recovery, sp.waves, sp.plan
	st := Step{Index: i, Recovery: recovery, SimStart: r.simNow(), Due: map[string]bool{}, LiveLease: map[string]bool{},
		Before: map[string]Pair{}, After: map[string]Pair{}, DueAfter: map[string]bool{}}
	now := time.Now()
	for c, cs := range before {
		st.Before[c] = cs.Pair
		st.Due[c] = cs.AT == "" || cs.ExpiresAt.Sub(now) <= refreshMargin
		st.LiveLease[c] = cs.LeaseOwner != "" && cs.LeaseUntil.After(now)
	}
	for _, it := range plan {
		st.Plan = append(st.Plan, it.String())
	}
	r.logf("step %d%s: invocations %v; plan [%s]", i, map[bool]string{true: " (recovery)"}[recovery], waves, strings.Join(st.Plan, "; "))

	r.mu.Lock()
	r.step, r.plan, r.counts, r.stepOpen = i, plan, map[string]int{}, true
	r.mu.Unlock()
	var paused []*slot
	for _, it := range plan {
		if it.hook == hookRefuse {
			s := r.slotNamed(it.slot)
			if err := s.oauth.Pause(); err != nil {
				return err
			}
			paused = append(paused, s)
			r.mu.Lock()
			r.rec.Faults["oauth/refresh/refused"]++
			r.mu.Unlock()
		}
	}
	for _, w := range waves {
		st.Invocations = append(st.Invocations, r.invokeWave(w)...)
		if err := r.restartDead(); err != nil {
			return err
		}
	}
	r.mu.Lock()
	r.plan, r.stepOpen = nil, false
	st.Invocations = append(st.Invocations, r.extra...)
	r.extra = nil
	r.mu.Unlock()
	for _, s := range paused {
		if err := s.oauth.Resume(); err != nil {
			return err
		}
	}
	r.restarts.Wait()
	if err := r.restartDead(); err != nil {
		return err
	}
	after, err := r.snapshot()
	if err != nil {
		return err
	}
	now = time.Now()
	for c, cs := range after {
		st.After[c] = cs.Pair
		st.DueAfter[c] = cs.AT == "" || cs.ExpiresAt.Sub(now) <= refreshMargin
	}
	for _, inv := range st.Invocations {
		r.logf("  %s#%d -> %d%s: %s", inv.Slot, inv.Incarnation, inv.Status, map[bool]string{true: " (killed)"}[inv.Killed], strings.Join(outcomes(inv.Lines, r.rec.Conns), ", "))
	}
	r.rec.Steps = append(r.rec.Steps, st)
	return nil
}

func outcomes(lines []string, conns []string) []string {
	var out []string
	for _, c := range conns {
		if l := lineFor(lines, c); l != "" {
			out = append(out, c+" "+outcome(l, c))
		}
	}
	if hasPassFailed(lines) {
		out = append(out, "pass failed")
	}
	return out
}

func (r *runner) slotNamed(name string) *slot {
	for _, s := range r.slots {
		if s.name == name {
			return s
		}
	}
	panic("no slot " + name)
}

// restartDead starts again every slot whose process died, as the host restarts a crashed
// custom handler.
func (r *runner) restartDead() error {
	r.restarts.Wait() // a process cannot start while the table service is down
	for _, s := range r.slots {
		r.mu.Lock()
		h := s.host
		r.mu.Unlock()
		select {
		case <-h.Done():
			if err := r.startHost(s, nil); err != nil {
				return err
			}
		default:
		}
	}
	return nil
}

// invokeWave runs one timer invocation per entry of slots, at once.
func (r *runner) invokeWave(slots []string) []Invocation {
	res := make([]Invocation, len(slots))
	var wg sync.WaitGroup
	for i, name := range slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = r.invokeOne(name)
		}()
	}
	wg.Wait()
	return res
}

// invokeOne runs one timer invocation on a slot's current process.
func (r *runner) invokeOne(name string) Invocation {
	s := r.slotNamed(name)
	r.mu.Lock()
	h, inc := s.host, s.incarnation
	r.mu.Unlock()
	inv := Invocation{Slot: name, Incarnation: inc}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := h.InvokeTimer(ctx, "RefreshTimer", funchost.TimerOptions{})
	if err != nil {
		r.harnessErr("invoke %s: %v", name, err)
		return inv
	}
	inv.Status, inv.Lines = out.Status, out.Logs
	if !is2xx(out.Status) && len(out.Body) > 0 {
		// The host discards the Logs of a failed invocation; the handler sent them.
		var body struct{ Logs []string }
		if json.Unmarshal(out.Body, &body) == nil {
			inv.Lines = body.Logs
		}
	}
	r.addText(fmt.Sprintf("invocation answer of %s#%d", name, inc), string(out.Body))
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range r.rec.Kills {
		if k.Slot == inv.Slot && k.Incarnation == inv.Incarnation {
			inv.Killed = true
		}
	}
	return inv
}

// stopAll stops every handler process; one that does not exit cleanly (other than those the
// suite killed) is recorded.
func (r *runner) stopAll() {
	for _, s := range r.slots {
		for k, h := range s.hosts {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := h.Stop(ctx)
			cancel()
			var ee *funchost.ExitError
			switch {
			case err == nil:
			case errors.As(err, &ee) && ee.Killed:
			case errors.As(err, &ee):
				// The stderr tail is searched as a log, not printed.
				r.rec.Exits = append(r.rec.Exits, fmt.Sprintf("handler %s#%d stopped with code %d signal %q", s.name, k+1, ee.Code, ee.Signal))
			default:
				r.rec.Exits = append(r.rec.Exits, fmt.Sprintf("handler %s#%d: stop failed", s.name, k+1))
			}
		}
	}
}

// collect gathers every text to search and every secret seen.
func (r *runner) collect() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.slots {
		for k, h := range s.hosts {
			var b strings.Builder
			console := 0
			for _, e := range h.Logs() {
				b.WriteString(e.Message)
				b.WriteByte('\n')
				if e.Category == funchost.CategoryConsole {
					console++
				}
			}
			if console == 0 {
				// Every process logs its start at least: an empty capture would make the secret
				// search pass without searching.
				r.errs = append(r.errs, fmt.Sprintf("handler %s#%d: none of its output was captured", s.name, k+1))
			}
			r.rec.Texts = append(r.rec.Texts, Text{Source: fmt.Sprintf("handler %s#%d logs", s.name, k+1), Body: b.String()})
		}
	}
	r.rec.Secrets = append(r.rec.Secrets, r.clientSecret)
	for s := range r.secrets {
		r.rec.Secrets = append(r.rec.Secrets, s)
	}
	sort.Strings(r.rec.Secrets[1:])
	r.rec.Texts = append(r.rec.Texts, Text{Source: "suite output", Body: r.output()})
}

func (r *runner) cleanup() {
	for _, s := range r.slots {
		for _, h := range s.hosts {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			h.Stop(ctx) // no-op after stopAll
			cancel()
		}
	}
	r.closeProxies()
	if r.server != nil {
		r.server.Close()
	}
	if r.front != nil {
		r.front.Close()
	}
	if r.svc != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r.svc.DeleteTable(ctx, r.table, nil)
		cancel()
	}
}
