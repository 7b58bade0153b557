package refresh_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/azuritetest"
	"github.com/freshtoken/freshtoken/internal/connection"
	"github.com/freshtoken/freshtoken/internal/provider"
	"github.com/freshtoken/freshtoken/internal/refresh"
	"github.com/freshtoken/freshtoken/internal/server"
	"github.com/freshtoken/freshtoken/internal/store"
	"github.com/freshtoken/freshtoken/internal/tokenclient"
	"github.com/rs/zerolog"
	"golang.org/x/oauth2"
)

// Latencies the benchmarks inject (issue 12, section 5).
const (
	storageLatency  = 10 * time.Millisecond
	providerLatency = 100 * time.Millisecond
)

// latencyProxy is a counting reverse proxy that delays every request by delay.
type latencyProxy struct {
	*httptest.Server
	n             atomic.Int64
	inflight, max atomic.Int64
	answer        atomic.Int64 // nanoseconds spent answering, after the delay
}

func newLatencyProxy(tb testing.TB, target string, delay time.Duration, h http.Handler) *latencyProxy {
	p := &latencyProxy{}
	if h == nil {
		u, err := url.Parse(target)
		if err != nil {
			tb.Fatal(err)
		}
		rp := httputil.NewSingleHostReverseProxy(u)
		// Idle connections are dropped before Azurite (Node: 5 s) closes them, which would reset a
		// request sent on one as it closes.
		rp.Transport = &http.Transport{MaxIdleConnsPerHost: 512, IdleConnTimeout: 4 * time.Second}
		h = rp
	}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.n.Add(1)
		in := p.inflight.Add(1)
		defer p.inflight.Add(-1)
		for m := p.max.Load(); in > m && !p.max.CompareAndSwap(m, in); m = p.max.Load() {
		}
		time.Sleep(delay)
		start := time.Now()
		h.ServeHTTP(w, r)
		p.answer.Add(int64(time.Since(start)))
	}))
	tb.Cleanup(p.Close)
	return p
}

func (p *latencyProxy) hostPort() string { return strings.TrimPrefix(p.URL, "http://") }

// tokenEndpoint answers every refresh with a new rotated pair valid for an hour.
func tokenEndpoint() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "refresh_token" || r.PostForm.Get("refresh_token") == "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"invalid_request"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"access_token": randomToken(), "token_type": "Bearer", "expires_in": 3600, "refresh_token": randomToken(),
		})
	})
}

// benchWorld is Azurite behind a 10 ms counting proxy and a token endpoint behind a 100 ms one.
type benchWorld struct {
	storage, prov *latencyProxy
	seedStore     *store.Store // straight to Azurite: seeding is not measured
	store         *store.Store // through the proxy
	table         string
	preset        provider.Preset
	azurite       *azuritetest.Server
	lastCPU       time.Duration // Azurite's CPU time in the last pass
	lastAnswer    time.Duration // the mean time Azurite took to answer, in the last pass
}

func newBenchWorld(b *testing.B) *benchWorld {
	b.Helper()
	// An Azurite of its own: Azurite slows down as the rows of all its tables add up, which the
	// table service does not.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	azuriteSrv, err := runAzurite(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { azuriteSrv.Stop() })
	// An idle Azurite still uses a few per cent of a core: each phase stops its own (done).
	var rnd [6]byte
	rand.Read(rnd[:])
	w := &benchWorld{table: "bench" + hex.EncodeToString(rnd[:]), azurite: azuriteSrv}
	w.storage = newLatencyProxy(b, "http://"+azuriteSrv.Addr(), storageLatency, nil)
	w.prov = newLatencyProxy(b, "", providerLatency, tokenEndpoint())
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	if w.seedStore, err = store.Open(b.Context(), store.Options{ConnectionString: azuriteSrv.ConnectionString(), Table: w.table, HTTPClient: hc}); err != nil {
		b.Fatal(err)
	}
	if w.store, err = store.Open(b.Context(), store.Options{ConnectionString: azuriteSrv.ConnectionStringFor(w.storage.hostPort()), Table: w.table}); err != nil {
		b.Fatal(err)
	}
	w.preset = provider.Preset{Name: provider.Custom, Title: "bench", Dialect: provider.DialectRFC6749, ScopeSeparator: " ",
		AuthURL: w.prov.URL + "/authorize", TokenURL: w.prov.URL + "/token", AuthStyle: oauth2.AuthStyleInParams}
	return w
}

// done stops w's Azurite, so that it takes no CPU from the phases after it.
func (w *benchWorld) done(b *testing.B) {
	if err := w.azurite.Stop(); err != nil {
		b.Error(err)
	}
}

// seed stores accounts [from, to) of connection name, whose access tokens expire in expiresIn,
// many at once (one request each; transactions do not span partitions).
func (w *benchWorld) seed(b *testing.B, name string, from, to int, expiresIn time.Duration) time.Duration {
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Value
	jobs := make(chan int)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				now := time.Now()
				tk := store.Tokens{AccessToken: randomToken(), TokenType: "Bearer", ExpiresAt: now.Add(expiresIn), RefreshToken: randomToken()}
				st := store.Status{State: store.StateOK, Provider: "custom", ConnectedAt: now, LastSuccess: now}
				if err := w.seedStore.SaveConsent(context.Background(), connection.Partition(name, fmt.Sprintf("p%05d", i)), tk, st); err != nil {
					failed.Store(err)
				}
			}
		}()
	}
	for i := from; i < to; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

func (w *benchWorld) refresher(name string, concurrency int) *refresh.Refresher {
	return w.refresherWith(name, concurrency, w.preset, refresh.Timing{})
}

func (w *benchWorld) refresherWith(name string, concurrency int, preset provider.Preset, timing refresh.Timing) *refresh.Refresher {
	c := &connection.Connection{Name: name, Many: true, Preset: preset, AuthorizeURL: "http://localhost/api/authorize/" + name,
		Client: tokenclient.For(tokenclient.Options{Preset: w.preset, ClientID: "bench", ClientSecret: "bench-secret",
			Timeout: 30 * time.Second, HTTPClient: tokenclient.NewHTTPClient(30 * time.Second)})}
	return refresh.New(refresh.Options{Store: w.store, Connections: []*connection.Connection{c}, Owner: "bench",
		Concurrency: concurrency, Timing: timing, Log: zerolog.Nop()})
}

// cpu is the CPU time Azurite's process (the leader of its group) has used, or 0 when unknown.
func (w *benchWorld) cpu() time.Duration {
	p := w.azurite.Process()
	if p == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid))
	if err != nil {
		return 0
	}
	// After the command name in parentheses: fields 3 onwards; utime and stime are 14 and 15.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	return time.Duration(u+st) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// pass runs one pass under the server's pass timeout and returns its figures.
func (w *benchWorld) pass(b *testing.B, r *refresh.Refresher) (refresh.Summary, time.Duration, int64, int64) {
	ctx, cancel := context.WithTimeout(b.Context(), server.DefaultPassTimeout)
	defer cancel()
	s0, p0, a0 := w.storage.n.Load(), w.prov.n.Load(), w.storage.answer.Load()
	c0 := w.cpu()
	start := time.Now()
	rep := r.Run(ctx)
	took := time.Since(start)
	w.lastCPU = w.cpu() - c0
	if n := w.storage.n.Load() - s0; n > 0 {
		w.lastAnswer = time.Duration((w.storage.answer.Load() - a0) / n)
	}
	if rep.Err != nil {
		b.Fatal(rep.Err)
	}
	return rep.Summaries[0], took, w.storage.n.Load() - s0, w.prov.n.Load() - p0
}

// BenchmarkScale prints the figures of issue 12, section 5 (make bench). It runs once whatever
// b.N says: each figure is one pass.
func BenchmarkScale(b *testing.B) {
	if testing.Short() {
		b.Skip("minutes of Azurite")
	}
	w := newBenchWorld(b)
	out := os.Stdout
	fmt.Fprintf(out, "\nfreshtoken pass figures: Azurite behind a counting proxy (+%v a request), token endpoint +%v\n", storageLatency, providerLatency)

	// Idle passes.
	fmt.Fprintf(out, "\nidle pass (no account due)\n%10s %18s %12s %10s\n", "accounts", "storage requests", "pass time", "seeding")
	r := w.refresher("idle", refresh.DefaultConcurrency)
	seeded := 0
	for _, n := range []int{100, 1000, 10000} {
		took := w.seed(b, "idle", seeded, n, 5*time.Hour)
		seeded = n
		s, d, sreq, preq := w.pass(b, r)
		if s.Counts[refresh.Refreshed] != 0 || preq != 0 {
			b.Fatalf("idle pass refreshed: %s", s.Line())
		}
		fmt.Fprintf(out, "%10d %18d %12v %10v\n", n, sreq, d.Round(time.Millisecond), took.Round(time.Millisecond))
	}
	// The adaptive timing at a provider with a repeat window has no horizon: every AccessToken
	// row is read, keys and expiry only.
	grace := w.preset
	grace.RepeatWindow = 2 * time.Minute
	s, d, sreq, _ := w.pass(b, w.refresherWith("idle", refresh.DefaultConcurrency, grace, refresh.DefaultTiming()))
	if s.Counts[refresh.Refreshed] != 0 {
		b.Fatalf("idle pass refreshed: %s", s.Line())
	}
	fmt.Fprintf(out, "%10d %18d %12v   (adaptive timing, no horizon: every AccessToken row read)\n", seeded, sreq, d.Round(time.Millisecond))
	w.done(b)

	// Concurrency: due passes of 10,000 at several concurrencies. The storage answer is the
	// mean time Azurite took beyond the injected latency, which the ideal leaves out.
	const sweep = 10000
	fmt.Fprintf(out, "\ndue pass of %d accounts by REFRESH_CONCURRENCY (ideal: %d/C x (lease + token request + commit))\n%6s %12s %12s %7s %12s %16s %12s\n",
		sweep, sweep, "C", "pass time", "ideal", "ratio", "per second", "storage answer", "Azurite CPU")
	for i, c := range []int{16, 24, 32, 48} {
		name := "conc" + strconv.Itoa(i)
		w := newBenchWorld(b) // a table of its own, as each phase below
		w.seed(b, name, 0, sweep, 5*time.Minute)
		s, d, _, _ := w.pass(b, w.refresher(name, c))
		if s.Counts[refresh.Refreshed] != sweep {
			b.Fatalf("C=%d: %s", c, s.Line())
		}
		ideal := idealPass(sweep, c)
		fmt.Fprintf(out, "%6d %12v %12v %7.2f %12.1f %16v %12v\n", c, d.Round(time.Millisecond), ideal, float64(d)/float64(ideal),
			sweep/d.Seconds(), w.lastAnswer.Round(10*time.Microsecond), w.lastCPU)
		w.done(b)
	}

	// Due passes at the default concurrency.
	c := refresh.DefaultConcurrency
	fmt.Fprintf(out, "\ndue pass at REFRESH_CONCURRENCY=%d\n%10s %12s %12s %7s %12s %14s %14s %6s %16s %12s\n", c,
		"accounts", "pass time", "ideal", "ratio", "per second", "storage/acct", "provider/acct", "left", "storage answer", "Azurite CPU")
	for _, n := range []int{100, 1000, 10000} {
		name := "due" + strconv.Itoa(n)
		w := newBenchWorld(b)
		w.seed(b, name, 0, n, 5*time.Minute)
		s, d, sreq, preq := w.pass(b, w.refresher(name, c))
		got := s.Counts[refresh.Refreshed]
		ideal := idealPass(n, c)
		fmt.Fprintf(out, "%10d %12v %12v %7.2f %12.1f %14.2f %14.2f %6d %16v %12v\n", n, d.Round(time.Millisecond), ideal,
			float64(d)/float64(ideal), float64(got)/d.Seconds(), float64(sreq)/float64(n), float64(preq)/float64(n), s.Counts[refresh.Deferred],
			w.lastAnswer.Round(10*time.Microsecond), w.lastCPU)
		if got+s.Counts[refresh.Deferred] != n {
			b.Errorf("%d due: %s", n, s.Line())
		}
		w.done(b)
	}

	rss(b, newBenchWorld(b), out, 10000)
}

// idealPass is the latency-bound time of n refreshes at concurrency c: each worker's refresh
// waits for a lease write, the token request and the commit, one after the other. It leaves out
// the scan's pages before the first refresh and the time the store and the endpoint take to
// answer.
func idealPass(n, c int) time.Duration {
	rounds := (n + c - 1) / c
	return time.Duration(rounds) * (2*storageLatency + providerLatency)
}

// rss runs the built handler standalone on 10,000 due accounts and reads its resident memory
// after the pass.
func rss(b *testing.B, w *benchWorld, out io.Writer, n int) {
	bin := filepath.Join(b.TempDir(), "freshtoken")
	build := exec.Command("go", "build", "-o", bin, "../../handler")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		b.Fatal(err)
	}
	// Expired: due under any timing (the adaptive one finds a 5-minute token due only in its last
	// 35%).
	w.seed(b, "mem", 0, n, -time.Minute)
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"AzureWebJobsStorage=" + w.azurite.ConnectionStringFor(w.storage.hostPort()),
		"TOKEN_TABLE=" + w.table,
		"OAUTH_CONNECTIONS=mem",
		"OAUTH_MEM_PROVIDER=custom", "OAUTH_MEM_CLIENT_ID=bench", "OAUTH_MEM_CLIENT_SECRET=bench-secret",
		"OAUTH_MEM_SCOPES=read", "OAUTH_MEM_AUTH_URL=" + w.preset.AuthURL, "OAUTH_MEM_TOKEN_URL=" + w.preset.TokenURL,
		"OAUTH_MEM_AUTH_STYLE=params", "OAUTH_MEM_ACCOUNTS=many",
		"REFRESH_SCHEDULE=*/5 * * * * *", "PORT=0", "LOG_FORMAT=json",
	}
	cmd := exec.Command(bin)
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	done := make(chan string, 1)
	var first atomic.Int64 // unix nanos of the pass's start: the schedule's first tick
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var line struct {
				Connection string    `json:"connection"`
				Message    string    `json:"message"`
				Refreshed  int       `json:"refreshed"`
				Next       time.Time `json:"next"`
			}
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				continue
			}
			if line.Message == "refreshing on the schedule" {
				first.CompareAndSwap(0, line.Next.UnixNano())
			}
			if line.Connection == "mem" && strings.Contains(line.Message, "accounts looked at") && line.Refreshed > 0 {
				select {
				case done <- line.Message:
				default:
				}
			}
		}
	}()
	start := time.Now()
	var summary string
	select {
	case summary = <-done:
	case <-time.After(6 * time.Minute):
		b.Fatal("the handler did not finish a pass")
	}
	took := time.Since(start)
	if first.Load() == 0 {
		b.Fatal("the handler logged no schedule line")
	}
	passTook := time.Since(time.Unix(0, first.Load()))
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	var vmRSS, vmHWM string
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			vmRSS = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			vmHWM = strings.TrimSpace(v)
		}
	}
	fmt.Fprintf(out, "\nthe built handler, standalone (REFRESH_CONCURRENCY and the timing at their defaults), first pass over %d due accounts:\n  %s\n  the pass: %v from the schedule's first tick to its summary (%v from the process start)\n  resident after the pass: VmRSS %s (peak VmHWM %s); at most %d token requests and %d storage requests at once\n",
		n, summary, passTook.Round(time.Second), took.Round(time.Second), vmRSS, vmHWM, w.prov.max.Load(), w.storage.max.Load())
}

// BenchmarkHandlerPass is the handler part of BenchmarkScale alone, over BENCH_ACCOUNTS
// accounts (default 2,000).
func BenchmarkHandlerPass(b *testing.B) {
	n, _ := strconv.Atoi(os.Getenv("BENCH_ACCOUNTS"))
	if n <= 0 {
		n = 2000
	}
	rss(b, newBenchWorld(b), os.Stdout, n)
}
