// Package faults is the fault-injection suite of "never lose a refresh token" (issue 3).
//
// TestFaults runs the built handler, two processes of it under the emulated Functions host
// (funchost), against Azurite (on-disk, so that it can restart without losing data) and a
// rotating OAuth2 server with reuse detection (oauthserver), with a fault-injecting proxy
// (faultproxy) in front of each for each process. Every run is drawn from a seed: the server's
// mode (strict, with a custom provider; or a grace window in which an identical repeated refresh
// gets the same pair, with the google preset, whose repeat window is a day, pointed at it),
// one or two connections, then a sequence of steps, each a few timer invocations (sometimes
// concurrent, from either process) with faults drawn for it on both proxies, sometimes a SIGKILL
// of a handler at a step of a refresh (after the lease write, after the provider answered,
// during the commit) followed by a restart of that process, sometimes an Azurite restart, a pass
// stalled past its lease before its commit while the other process takes over, or the provider
// refusing connections. A run
// ends with fault-free passes, then this package's Evaluate computes its figures from what the
// proxies, the server and the table saw; Summary adds them up over all runs.
//
// Time: tokens are made due by moving the AccessToken row's ExpiresAt to now. A lease left by a
// killed or failed pass is expired by letting simulated time pass: LeaseUntil and InFlightSince
// in the Status row move back by the lease's remaining time and the OAuth2 server's clock moves
// forward by as much, so the repeat and grace windows see the same elapsed time. A retry
// back-off (NextAttempt) is cut short by moving NextAttempt to now, without moving the clocks.
//
// TestScenarios runs fixed sequences of the same faults, one per requirement, so that each
// replays exactly; TestEvaluate checks the evaluator on fabricated runs, broken ones included.
//
// Run it with `make faults` (200 runs) or `go test -run TestFaults -v ./faults/`; FAULT_RUNS or
// -runs sets the count (default 12), FAULT_SEED or -seed the first run's seed (run i uses seed+i),
// so `FAULT_SEED=<seed> FAULT_RUNS=1` replays one run. Runs of odd seeds set
// TOKEN_ENCRYPTION_KEYS (a fresh key per run; FAULT_KEYS=1 for every run, FAULT_KEYS=0 for none):
// the suite then opens the sealed refresh tokens it reads, and also searches every table row, at
// every snapshot, for the refresh tokens in plain text. The proxies act on requests in the order
// they arrive, so a replay of a run with concurrent invocations may interleave differently.
package faults
