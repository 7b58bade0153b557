// Package store keeps each connection's token pair and status in Azure Table Storage.
//
// A connection is one partition (PartitionKey = connection name) with three rows: AccessToken,
// RefreshToken and Status (see types.go for their properties), plus short-lived AuthState-<hash>
// rows for pending authorizations. Writes are optimistic: every write of a read connection is
// conditional on the ETags held in its Connection, and losing a race returns ErrConflict, after
// which the caller re-reads. The token rows are only written together with the Status row, in one
// entity group transaction, so a reader never sees half of a rotated pair.
//
// Every call is bounded by Options.Timeout and retried by azcore (Options.Retry) on time-outs,
// transport errors and 408/429/5xx. Retrying a conditional write is safe because If-Match guards
// it; the price is that a write which committed but whose answer was lost comes back from its
// retry as ErrConflict. The caller's re-read then shows its own write.
package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/freshtoken/freshtoken/internal/seal"
)

// DefaultTable is the table used when Options.Table is empty.
const DefaultTable = "OAuthTokens"

// Options says where the table is and how to reach it. Exactly one of ConnectionString and
// Endpoint is set; the zero values of the other fields work.
type Options struct {
	// ConnectionString is an Azure Storage connection string, including
	// `UseDevelopmentStorage=true` (Azurite on 127.0.0.1:10002).
	ConnectionString string
	// Endpoint is the table service URL (https://<account>.table.core.windows.net), used with
	// Credential (Microsoft Entra ID, e.g. a managed identity from azidentity).
	Endpoint   string
	Credential azcore.TokenCredential
	// Table is created if missing. Default DefaultTable.
	Table string

	// HTTPClient sends the requests. Default: a client with dial, TLS-handshake,
	// response-header and overall time-outs.
	HTTPClient *http.Client
	// Retry overrides the default retry policy: 2 retries, 250 ms to 2 s apart, 10 s per try.
	Retry *policy.RetryOptions
	// Timeout bounds each Store call, retries included. Default 30 s.
	Timeout time.Duration
	// Now is the clock for UpdatedAt. Default time.Now.
	Now func() time.Time
	// Keys seals the secrets at rest (see SecretProperty); nil stores them as plain text. Either
	// way plain values written before keys were set are read as they are, and sealed values that
	// cannot be opened are reported per connection (Record.SecretErr), never read as plain text.
	Keys *seal.Keyring
}

// Store reads and writes connections in one table. It is safe for concurrent use.
type Store struct {
	client  *aztables.Client
	table   string
	keys    *seal.Keyring
	timeout time.Duration
	now     func() time.Time
}

var tableNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]{2,62}$`)

// Open connects to the table service and creates the table if it does not exist.
func Open(ctx context.Context, o Options) (*Store, error) {
	svc, table, err := o.serviceClient()
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	s := &Store{client: svc.NewClient(table), table: table, keys: o.Keys, timeout: o.Timeout, now: o.Now}
	if s.timeout <= 0 {
		s.timeout = 30 * time.Second
	}
	if s.now == nil {
		s.now = time.Now
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	if _, err := svc.CreateTable(ctx, table, nil); err != nil {
		var re *azcore.ResponseError
		if !errors.As(err, &re) || re.StatusCode != http.StatusConflict || re.ErrorCode == "TableBeingDeleted" {
			return nil, fmt.Errorf("store: open: create table %s: %w", table, classify(err))
		}
	}
	return s, nil
}

func (o Options) serviceClient() (*aztables.ServiceClient, string, error) {
	table := o.Table
	if table == "" {
		table = DefaultTable
	}
	if !tableNameRE.MatchString(table) {
		return nil, "", fmt.Errorf("table name %q: want a letter then 2-62 letters or digits", table)
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = defaultHTTPClient()
	}
	retry := policy.RetryOptions{MaxRetries: 2, RetryDelay: 250 * time.Millisecond, MaxRetryDelay: 2 * time.Second, TryTimeout: 10 * time.Second}
	if o.Retry != nil {
		retry = *o.Retry
	}
	copts := &aztables.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: hc, Retry: retry}}

	switch {
	case o.ConnectionString != "" && o.Endpoint != "":
		return nil, "", errors.New("both a connection string and an endpoint are set; want one")
	case o.ConnectionString != "":
		a, err := parseConnectionString(o.ConnectionString)
		if err != nil {
			return nil, "", err
		}
		if a.sas != "" {
			svc, err := aztables.NewServiceClientWithNoCredential(a.endpoint+"/?"+a.sas, copts)
			if err != nil {
				return nil, "", errors.New("connection string: SharedAccessSignature makes no valid URL")
			}
			return svc, table, nil
		}
		cred, err := aztables.NewSharedKeyCredential(a.name, a.key)
		if err != nil {
			return nil, "", errors.New("connection string: AccountKey is not valid")
		}
		svc, err := aztables.NewServiceClientWithSharedKey(a.endpoint, cred, copts)
		if err != nil {
			return nil, "", fmt.Errorf("table client: %w", err)
		}
		return svc, table, nil
	case o.Endpoint != "":
		if o.Credential == nil {
			return nil, "", errors.New("an endpoint is set without a credential")
		}
		svc, err := aztables.NewServiceClient(o.Endpoint, o.Credential, copts)
		if err != nil {
			return nil, "", fmt.Errorf("table client for endpoint %s: %w", redactURL(o.Endpoint), err)
		}
		return svc, table, nil
	}
	return nil, "", errors.New("neither a connection string nor an endpoint is set")
}

func defaultHTTPClient() *http.Client {
	return &http.Client{
		Timeout: 15 * time.Second,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: 10 * time.Second,
			IdleConnTimeout:       60 * time.Second,
			// Enough for a pass's concurrent refreshes and reads to find a connection to reuse,
			// rather than open (and over TLS, handshake) a new one per request.
			MaxIdleConnsPerHost: 64,
			ForceAttemptHTTP2:   true,
		},
	}
}

// keepsAll says whether a conditional write of props over a row read as old drops none of old's
// properties. Such a write is sent as a merge: under If-Match it leaves the row Replace would
// (keeping only properties freshtoken never wrote), and the table does less work for it than
// for a replace. A write that drops a property (a lease's LeaseUntil, cleared) replaces.
func keepsAll(old, props map[string]any) bool {
	for k := range old {
		if _, ok := props[k]; !ok {
			return false
		}
	}
	return true
}

func (s *Store) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// connectionRows selects a connection's three rows, leaving AuthState rows out.
var connectionRows = map[string]string{"a": RowAccessToken, "r": RowRefreshToken, "s": RowStatus}

// List reads every connection in one query (following continuation pages).
func (s *Store) List(ctx context.Context) (map[string]*Record, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	f, err := filter("RowKey eq {a} or RowKey eq {r} or RowKey eq {s}", connectionRows)
	if err != nil {
		return nil, fmt.Errorf("store: list: %w", err)
	}
	m, err := s.query(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("store: list: %w", err)
	}
	return m, nil
}

// Get reads one connection in one query. A partition with none of its three rows is ErrNotFound.
func (s *Store) Get(ctx context.Context, name string) (*Record, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	args := map[string]string{"pk": name}
	for k, v := range connectionRows {
		args[k] = v
	}
	f, err := filter("PartitionKey eq {pk} and (RowKey eq {a} or RowKey eq {r} or RowKey eq {s})", args)
	if err != nil {
		return nil, fmt.Errorf("store: get %q: %w", name, err)
	}
	m, err := s.query(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("store: get %q: %w", name, err)
	}
	c, ok := m[name]
	if len(m) > 1 || len(m) == 1 && !ok {
		// The filter is built to make this impossible; refuse rather than trust a wider answer.
		return nil, fmt.Errorf("store: get %q: query returned other partitions", name)
	}
	if !ok {
		return nil, fmt.Errorf("store: get %q: %w", name, ErrNotFound)
	}
	return c, nil
}

// query runs one filtered query and groups the rows it returns by partition.
func (s *Store) query(ctx context.Context, f string) (map[string]*Record, error) {
	m := make(map[string]*Record)
	pager := s.client.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &f})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, classify(err)
		}
		for _, raw := range page.Entities {
			e, err := decodeEntity(raw)
			if err != nil {
				return nil, err
			}
			c := m[e.PartitionKey]
			if c == nil {
				c = &Record{Name: e.PartitionKey}
				m[e.PartitionKey] = c
			}
			if err := s.openRow(&e); err != nil && c.SecretErr == nil {
				c.SecretErr = fmt.Errorf("connection %q: %w", e.PartitionKey, err)
			}
			if err := c.apply(e); err != nil {
				return nil, fmt.Errorf("connection %q: %w", e.PartitionKey, err)
			}
		}
	}
	return m, nil
}

// Lease writes st as c's Status row, conditional on the Status row c holds: replaced if its ETag
// still matches (merged where that drops no property, see keepsAll), inserted if c had none.
// Losing the race is ErrConflict. On success c holds st and the new ETag.
func (s *Store) Lease(ctx context.Context, c *Record, st Status) error {
	return s.writeStatus(ctx, "lease", c, st)
}

// SetStatus writes st as c's Status row with the same conditions as Lease; used to record
// failures without touching the tokens.
func (s *Store) SetStatus(ctx context.Context, c *Record, st Status) error {
	return s.writeStatus(ctx, "set status", c, st)
}

func (s *Store) writeStatus(ctx context.Context, op string, c *Record, st Status) error {
	if c == nil {
		return fmt.Errorf("store: %s: nil connection", op)
	}
	if err := checkName(c.Name); err != nil {
		return fmt.Errorf("store: %s: %w", op, err)
	}
	if c.HasStatus && c.ETags.Status == "" {
		return fmt.Errorf("store: %s %s: Status row has no known ETag: %w", op, c.Name, ErrConflict)
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	props := statusProps(st, c.Tokens.ExpiresAt)
	body, err := s.encodeRow(c.Name, RowStatus, props)
	if err != nil {
		return fmt.Errorf("store: %s %s: %w", op, c.Name, err)
	}
	var etag azcore.ETag
	if c.HasStatus {
		var resp aztables.UpdateEntityResponse
		mode := aztables.UpdateModeReplace
		if keepsAll(statusProps(c.Status, c.Tokens.ExpiresAt), props) {
			mode = aztables.UpdateModeMerge
		}
		resp, err = s.client.UpdateEntity(ctx, body, &aztables.UpdateEntityOptions{IfMatch: &c.ETags.Status, UpdateMode: mode})
		etag = resp.ETag
	} else {
		var resp aztables.AddEntityResponse
		format := aztables.MetadataFormatNone
		resp, err = s.client.AddEntity(ctx, body, &aztables.AddEntityOptions{Format: &format})
		etag = resp.ETag
	}
	if err != nil {
		return fmt.Errorf("store: %s %s: %w", op, c.Name, classify(err))
	}
	c.Status, c.HasStatus, c.ETags.Status = normStatus(st), true, etag
	return nil
}

// Commit stores a refreshed pair and its status in one entity group transaction: the three rows
// are written together or not at all. Each write is conditional on the ETag c holds for that row
// (or is an insert where c had no row), so any change since c was read, such as a concurrent
// SaveConsent, makes the whole transaction fail with ErrConflict. A retried transaction that had
// in fact committed also comes back ErrConflict; the caller re-reads and finds its own pair.
// The RefreshToken row is written even when t has no refresh token (Value ""). On success c
// holds t, st and the new ETags.
func (s *Store) Commit(ctx context.Context, c *Record, t Tokens, st Status) error {
	if c == nil {
		return errors.New("store: commit: nil connection")
	}
	if err := checkName(c.Name); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	st.RefreshDeadline = t.RefreshExpiresAt
	now := s.now()
	rows := []struct {
		rk         string
		props, old map[string]any // old: the row as c holds it
		has        bool
		etag       azcore.ETag
	}{
		{RowAccessToken, accessProps(t, now), accessProps(c.Tokens, now), c.HasAccess, c.ETags.Access},
		{RowRefreshToken, refreshProps(t, now), refreshProps(c.Tokens, now), c.HasRefresh, c.ETags.Refresh},
		{RowStatus, statusProps(st, t.ExpiresAt), statusProps(c.Status, c.Tokens.ExpiresAt), c.HasStatus, c.ETags.Status},
	}
	actions := make([]aztables.TransactionAction, len(rows))
	for i, r := range rows {
		if r.has && r.etag == "" {
			return fmt.Errorf("store: commit %s: %s row has no known ETag: %w", c.Name, r.rk, ErrConflict)
		}
		body, err := s.encodeRow(c.Name, r.rk, r.props)
		if err != nil {
			return fmt.Errorf("store: commit %s: %w", c.Name, err)
		}
		actions[i] = aztables.TransactionAction{ActionType: aztables.TransactionTypeAdd, Entity: body}
		if r.has {
			etag := r.etag
			typ := aztables.TransactionTypeUpdateReplace
			if keepsAll(r.old, r.props) {
				typ = aztables.TransactionTypeUpdateMerge
			}
			actions[i] = aztables.TransactionAction{ActionType: typ, Entity: body, IfMatch: &etag}
		}
	}
	etags, err := s.transact(ctx, actions)
	if err != nil {
		return fmt.Errorf("store: commit %s: %w", c.Name, err)
	}
	c.Tokens, c.Status = normTokens(t), normStatus(st)
	c.HasAccess, c.HasRefresh, c.HasStatus = true, true, true
	c.SecretErr = nil
	// An unknown ETag ("") makes the next conditional write ErrConflict, and so a re-read.
	c.ETags.Access, c.ETags.Refresh, c.ETags.Status = etags[0], etags[1], etags[2]
	return nil
}

// SaveConsent stores the pair from a fresh consent and its status in one transaction, replacing
// whatever the three rows held: a new consent always wins, and a refresh racing it then fails its
// conditional Commit with ErrConflict.
func (s *Store) SaveConsent(ctx context.Context, name string, t Tokens, st Status) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("store: save consent: %w", err)
	}
	st.RefreshDeadline = t.RefreshExpiresAt
	now := s.now()
	var actions []aztables.TransactionAction
	for _, r := range []struct {
		rk    string
		props map[string]any
	}{
		{RowAccessToken, accessProps(t, now)},
		{RowRefreshToken, refreshProps(t, now)},
		{RowStatus, statusProps(st, t.ExpiresAt)},
	} {
		body, err := s.encodeRow(name, r.rk, r.props)
		if err != nil {
			return fmt.Errorf("store: save consent %s: %w", name, err)
		}
		actions = append(actions, aztables.TransactionAction{ActionType: aztables.TransactionTypeInsertReplace, Entity: body})
	}
	if _, err := s.transact(ctx, actions); err != nil {
		return fmt.Errorf("store: save consent %s: %w", name, err)
	}
	return nil
}

// transact submits one entity group transaction and returns the ETag of each action's row ("" where
// the answer did not say). A failed changeset is reported as the failing operation's status, so
// that a precondition failure is ErrConflict.
func (s *Store) transact(ctx context.Context, actions []aztables.TransactionAction) ([]azcore.ETag, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var raw *http.Response
	_, err := s.client.SubmitTransaction(policy.WithCaptureResponse(ctx, &raw), actions, nil)
	var results []batchResult
	if raw != nil && raw.StatusCode == http.StatusAccepted {
		results, _ = parseBatch(raw)
	}
	if err != nil {
		var re *azcore.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusAccepted {
			for _, r := range results {
				if r.status >= 400 {
					return nil, &StatusError{StatusCode: r.status, Code: r.code}
				}
			}
			return nil, errors.New("transaction failed; its answer could not be read")
		}
		return nil, classify(err)
	}
	etags := make([]azcore.ETag, len(actions))
	if len(results) == len(actions) {
		for i, r := range results {
			etags[i] = r.etag
		}
	}
	return etags, nil
}

// checkName rejects partition keys the table service or aztables cannot write: empty, too long,
// holding '/', '\', '#', '?', control characters, or a quote (aztables does not escape it in
// transaction URLs).
func checkName(name string) error {
	if name == "" || len(name) > 512 {
		return fmt.Errorf("invalid connection name (length %d)", len(name))
	}
	for _, r := range name {
		if r < 0x20 || r >= 0x7f && r <= 0x9f || r == '/' || r == '\\' || r == '#' || r == '?' || r == '\'' {
			return fmt.Errorf("invalid connection name %q", name)
		}
	}
	return nil
}
