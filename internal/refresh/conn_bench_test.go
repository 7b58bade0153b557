package refresh_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/tokenclient"
)

// BenchmarkConnections measures what a new TCP and TLS connection per token request costs
// (tokenclient.NewHTTPClient sets DisableKeepAlives) against a reused one, on loopback TLS 1.3:
// the handshake's time on this machine, and the connections opened. On a real network each new
// connection also costs two more round trips (TCP, then TLS 1.3) before the request is sent.
func BenchmarkConnections(b *testing.B) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(tokenEndpoint())
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())

	const n = 300
	run := func(keepAlive bool) (time.Duration, int64) {
		hc := tokenclient.NewHTTPClient(10 * time.Second)
		tr := hc.Transport.(*http.Transport).Clone()
		tr.TLSClientConfig.RootCAs = pool
		tr.DisableKeepAlives = !keepAlive
		hc.Transport = tr
		conns.Store(0)
		start := time.Now()
		for range n {
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL+"/token",
				strings.NewReader("grant_type=refresh_token&refresh_token=x"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := hc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		tr.CloseIdleConnections()
		return time.Since(start) / n, conns.Load()
	}
	fresh, freshConns := run(false)
	reused, reusedConns := run(true)
	fmt.Fprintf(os.Stdout, "\ntoken requests on loopback TLS 1.3, %d in a row\n  a new connection each (today): %v a request, %d connections\n  one reused connection:         %v a request, %d connections\n  the handshake costs %v a request here, plus 2 round trips to the provider on a real network\n",
		n, fresh.Round(time.Microsecond), freshConns, reused.Round(time.Microsecond), reusedConns, (fresh - reused).Round(time.Microsecond))
}
