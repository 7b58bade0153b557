// Package faultproxy is an HTTP/1.1 proxy for fault-injection tests. It listens on loopback in
// front of one upstream server (Azurite, an OAuth2 server) and, for each request, does what the
// caller's Decide function says: pass it, answer for the server without forwarding, delay it,
// reset the connection before or after the server processed it, or replace the server's answer
// with a malformed or HTML body. Hooks run an action (such as killing the client process) when
// a request is seen, before or after forwarding. Every request ends as an Exchange given to
// Record, saying whether the server got the request and whether its answer reached the client.
//
// The proxy reads each request whole before acting on it, forwards it on a fresh upstream
// connection, and reads the upstream answer whole before answering, so that "processed" and
// "answered" are separate, observable steps.
package faultproxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// Fault is what the proxy does with one request instead of passing it.
type Fault string

// Faults. Those marked "forward" send the request to the upstream server first, which may act
// on it (a refresh rotates the token pair; a table write commits).
const (
	Pass Fault = "pass"
	// Unavailable answers Action.Status (default 503) with an HTML page, without forwarding.
	Unavailable Fault = "5xx"
	// RateLimited answers 429 with Retry-After: 1, without forwarding.
	RateLimited Fault = "429"
	// ResetBefore resets the client connection without forwarding.
	ResetBefore Fault = "reset-before"
	// SlowDrop holds the request for Action.Delay (past the client's timeout), then resets the
	// connection without forwarding: the client gave up, the server never saw it.
	SlowDrop Fault = "slow-drop"
	// HTMLUnforwarded answers 200 with an HTML page, without forwarding.
	HTMLUnforwarded Fault = "html-200-unforwarded"
	// ResetAfter forwards, lets the server answer, then resets instead of answering.
	ResetAfter Fault = "reset-after"
	// SlowAnswer forwards and holds the server's answer for Action.Delay before sending it: the
	// request was processed and the answer comes late (past the client's timeout).
	SlowAnswer Fault = "slow-answer"
	// Malformed200 forwards, then answers 200 with truncated JSON instead of the server's answer.
	Malformed200 Fault = "malformed-200"
	// HTML200 forwards, then answers 200 with an HTML page instead of the server's answer.
	HTML200 Fault = "html-200"
	// HTML502 forwards, then answers 502 with an HTML page instead of the server's answer, as a
	// gateway does whose upstream connection broke after the request went through.
	HTML502 Fault = "html-502"
)

// Forwards says whether f sends the request to the upstream server.
func (f Fault) Forwards() bool {
	switch f {
	case Unavailable, RateLimited, ResetBefore, SlowDrop, HTMLUnforwarded:
		return false
	}
	return true
}

// Request is one request as read from the client, body included.
type Request struct {
	Proxy  string // Options.Name
	Seq    int    // per proxy, from 1
	Kind   string // from Options.Classify; "" without one
	Method string
	URL    *url.URL // path and query as the client sent them
	Header http.Header
	Body   []byte
	Time   time.Time // when it was read
}

// Response is an HTTP answer, body included.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Action is what to do with one request.
type Action struct {
	Fault  Fault         // "" is Pass
	Status int           // for Unavailable: the status, 500-599 (default 503)
	Delay  time.Duration // for SlowDrop and SlowAnswer
	// Before runs once the request is read, before the fault acts or the request is forwarded.
	Before func()
	// After runs once the upstream server answered, before the client gets anything; only for
	// faults that forward.
	After func()
}

// Exchange is the record of one request.
type Exchange struct {
	Request
	Fault Fault
	// Forwarded: the request was sent to the upstream server, which may have acted on it.
	Forwarded bool
	// Upstream is the server's answer; nil when not forwarded or when none came.
	Upstream    *Response
	UpstreamErr string
	// Delivered: the server's answer was written whole and unchanged to the client, without a
	// delay (with SlowAnswer it is never counted delivered: the client is meant to have given up).
	Delivered bool
	ClientErr string
	Done      time.Time
}

// Options configure a Proxy. Target is required; the zero values of the others work.
type Options struct {
	Name   string
	Target string // the upstream's host:port
	// Addr is where to listen; default 127.0.0.1:0. It must be a loopback address.
	Addr string
	// Classify names a request's kind (see AzureKind, OAuthKind), for Decide and the record.
	Classify func(*Request) string
	// Decide chooses the action for a request; nil passes everything. It is called once per
	// request, from the goroutine serving the client's connection.
	Decide func(*Request) Action
	// Record gets every exchange once it ended.
	Record func(Exchange)
	// UpstreamTimeout bounds one forwarded request. Default 30 s.
	UpstreamTimeout time.Duration
	// MaxBody bounds request and response bodies. Default 4 MiB.
	MaxBody int64
}

// Proxy is a running fault-injecting proxy. Its methods are safe for concurrent use.
type Proxy struct {
	o        Options
	addr     string
	upstream *http.Client
	done     chan struct{}

	mu     sync.Mutex
	ln     net.Listener // nil while paused or closed
	conns  map[net.Conn]struct{}
	seq    int
	closed bool
	wg     sync.WaitGroup
}

// Start listens and serves until Close.
func Start(o Options) (*Proxy, error) {
	if o.Target == "" {
		return nil, errors.New("faultproxy: start: no target")
	}
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: start: address %q: %w", o.Addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("faultproxy: start: address %q is not a loopback IP", o.Addr)
	}
	if o.UpstreamTimeout <= 0 {
		o.UpstreamTimeout = 30 * time.Second
	}
	if o.MaxBody <= 0 {
		o.MaxBody = 4 << 20
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: start: %w", err)
	}
	p := &Proxy{
		o:    o,
		addr: ln.Addr().String(),
		upstream: &http.Client{
			Timeout: o.UpstreamTimeout,
			Transport: &http.Transport{
				// A fresh connection per request: a pooled one broken by an upstream restart would
				// add failures nobody asked for.
				DisableKeepAlives:  true,
				DisableCompression: true,
				DialContext:        (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		done:  make(chan struct{}),
		conns: map[net.Conn]struct{}{},
	}
	p.serve(ln)
	return p, nil
}

// Addr is the proxy's host:port; it stays the same across Pause and Resume.
func (p *Proxy) Addr() string { return p.addr }

// URL is http://Addr.
func (p *Proxy) URL() string { return "http://" + p.addr }

// Pause stops accepting connections, so that new ones are refused (connections already open
// are served). Resume listens again on the same address.
func (p *Proxy) Pause() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		return nil
	}
	err := p.ln.Close()
	p.ln = nil
	if err != nil {
		return fmt.Errorf("faultproxy: pause: %w", err)
	}
	return nil
}

// Resume undoes Pause.
func (p *Proxy) Resume() error {
	p.mu.Lock()
	paused := p.ln == nil && !p.closed
	p.mu.Unlock()
	if !paused {
		return nil
	}
	var ln net.Listener
	var err error
	// The port was ours a moment ago; give the kernel a few tries to release it.
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("faultproxy: resume: %w", err)
	}
	p.serve(ln)
	return nil
}

// Close stops the proxy: the listener and every open connection are closed, delays end.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.done)
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}

func (p *Proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.closed {
				p.mu.Unlock()
				c.Close()
				return
			}
			p.conns[c] = struct{}{}
			p.wg.Add(1)
			p.mu.Unlock()
			go p.serveConn(c)
		}
	}()
}

func (p *Proxy) serveConn(c net.Conn) {
	defer p.wg.Done()
	defer func() {
		c.Close()
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
	}()
	br := bufio.NewReader(c)
	for {
		hr, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, err := io.ReadAll(io.LimitReader(hr.Body, p.o.MaxBody))
		hr.Body.Close()
		if err != nil {
			return
		}
		if !p.handle(c, hr, body) {
			return
		}
	}
}

// handle acts on one request and reports whether the connection may serve another.
func (p *Proxy) handle(c net.Conn, hr *http.Request, body []byte) bool {
	p.mu.Lock()
	p.seq++
	seq := p.seq
	p.mu.Unlock()
	req := Request{
		Proxy: p.o.Name, Seq: seq, Method: hr.Method, URL: hr.URL,
		Header: hr.Header.Clone(), Body: body, Time: time.Now(),
	}
	if p.o.Classify != nil {
		req.Kind = p.o.Classify(&req)
	}
	var act Action
	if p.o.Decide != nil {
		act = p.o.Decide(&req)
	}
	if act.Fault == "" {
		act.Fault = Pass
	}
	ex := Exchange{Request: req, Fault: act.Fault}
	defer func() {
		ex.Done = time.Now()
		if p.o.Record != nil {
			p.o.Record(ex)
		}
	}()
	if act.Before != nil {
		act.Before()
	}
	keep := !hr.Close

	switch act.Fault {
	case Unavailable:
		status := act.Status
		if status < 500 || status > 599 {
			status = http.StatusServiceUnavailable
		}
		ex.ClientErr = errString(writeResponse(c, status, htmlHeader(), htmlPage(status), !keep))
		return keep && ex.ClientErr == ""
	case RateLimited:
		h := http.Header{"Content-Type": {"application/json"}, "Retry-After": {"1"}}
		ex.ClientErr = errString(writeResponse(c, http.StatusTooManyRequests, h, []byte(`{"error":"rate_limited","error_description":"Too many requests"}`), !keep))
		return keep && ex.ClientErr == ""
	case ResetBefore:
		reset(c)
		return false
	case SlowDrop:
		p.sleep(act.Delay)
		reset(c)
		return false
	case HTMLUnforwarded:
		ex.ClientErr = errString(writeResponse(c, http.StatusOK, htmlHeader(), htmlPage(http.StatusOK), !keep))
		return keep && ex.ClientErr == ""
	}

	resp, err := p.forward(hr, body)
	ex.Forwarded = true
	if err != nil {
		// Nothing (or nothing whole) came back: tell the client the way a dead server would.
		ex.UpstreamErr = err.Error()
		reset(c)
		return false
	}
	ex.Upstream = resp
	if act.After != nil {
		act.After()
	}
	switch act.Fault {
	case ResetAfter:
		reset(c)
		return false
	case SlowAnswer:
		p.sleep(act.Delay)
		ex.ClientErr = errString(writeResponse(c, resp.Status, resp.Header, resp.Body, true))
		return false
	case Malformed200:
		h := http.Header{"Content-Type": {"application/json;charset=UTF-8"}}
		ex.ClientErr = errString(writeResponse(c, http.StatusOK, h, []byte(`{"access_token":"`), !keep))
		return keep && ex.ClientErr == ""
	case HTML200:
		ex.ClientErr = errString(writeResponse(c, http.StatusOK, htmlHeader(), htmlPage(http.StatusOK), !keep))
		return keep && ex.ClientErr == ""
	case HTML502:
		ex.ClientErr = errString(writeResponse(c, http.StatusBadGateway, htmlHeader(), htmlPage(http.StatusBadGateway), !keep))
		return keep && ex.ClientErr == ""
	}
	keep = keep && !resp.closes()
	err = writeResponse(c, resp.Status, resp.Header, resp.Body, !keep)
	ex.ClientErr = errString(err)
	ex.Delivered = err == nil
	return keep && err == nil
}

// forward sends the request upstream and reads the whole answer.
func (p *Proxy) forward(hr *http.Request, body []byte) (*Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), p.o.UpstreamTimeout)
	defer cancel()
	out, err := http.NewRequestWithContext(ctx, hr.Method, "http://"+p.o.Target+hr.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, vs := range hr.Header {
		if !hopByHop[http.CanonicalHeaderKey(k)] {
			out.Header[k] = append([]string(nil), vs...)
		}
	}
	out.Host = hr.Host
	resp, err := p.upstream.Do(out)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, p.o.MaxBody))
	if err != nil {
		return nil, err
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

func (r *Response) closes() bool {
	for _, v := range r.Header.Values("Connection") {
		if http.CanonicalHeaderKey(v) == "Close" {
			return true
		}
	}
	return false
}

// sleep waits d or until the proxy closes.
func (p *Proxy) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-p.done:
	}
}

var hopByHop = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"Content-Length": true,
}

// writeResponse writes an HTTP/1.1 answer with a Content-Length.
func writeResponse(c net.Conn, status int, h http.Header, body []byte, closeConn bool) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", status, http.StatusText(status))
	for k, vs := range h {
		if hopByHop[http.CanonicalHeaderKey(k)] {
			continue
		}
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n")
	if closeConn {
		b.WriteString("Connection: close\r\n")
	}
	b.WriteString("\r\n")
	b.Write(body)
	_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.Write(b.Bytes())
	return err
}

// reset closes c with a TCP RST rather than a FIN, as a crashed peer or a middlebox does.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

func htmlHeader() http.Header {
	return http.Header{"Content-Type": {"text/html; charset=utf-8"}}
}

func htmlPage(status int) []byte {
	return []byte("<!DOCTYPE html>\n<html><head><title>" + strconv.Itoa(status) + " " + http.StatusText(status) +
		"</title></head><body><h1>" + http.StatusText(status) + "</h1><p>The gateway could not complete the request.</p></body></html>\n")
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
