package config

import (
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/freshtoken/freshtoken/internal/provider"
)

// hostSet are settings the Functions host (or func start) sets itself: listing them in
// local.settings.json would clash (func start adds WEBSITE_HOSTNAME to the same dictionary).
var hostSet = []string{SettingCustomHandlerPort, SettingWebsiteHostname, SettingWorkerID}

func readSample(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../../local.settings.json.sample")
	if err != nil {
		t.Fatal(err)
	}
	var sample struct {
		IsEncrypted *bool
		Values      map[string]string
	}
	if err := json.Unmarshal(b, &sample); err != nil {
		t.Fatalf("local.settings.json.sample is not valid JSON: %v", err)
	}
	if sample.IsEncrypted == nil || *sample.IsEncrypted {
		t.Error("IsEncrypted is missing or true; want false")
	}
	return sample.Values
}

func TestSampleNamesEverySetting(t *testing.T) {
	values := readSample(t)
	fixed := map[string]string{
		"FUNCTIONS_WORKER_RUNTIME": "custom",
		"AzureWebJobsStorage":      "UseDevelopmentStorage=true",
		"REFRESH_SCHEDULE":         defaultSchedule,
	}
	for k, want := range fixed {
		if got := values[k]; got != want {
			t.Errorf("%s = %q; want %q", k, got, want)
		}
	}

	known := []string{"FUNCTIONS_WORKER_RUNTIME"}
	for _, s := range SettingNames() {
		if slices.Contains(hostSet, s) {
			if _, ok := values[s]; ok {
				t.Errorf("the sample sets %s, which the host sets itself", s)
			}
			continue
		}
		known = append(known, s)
	}
	conns := provider.SplitScopes(values[SettingConnections]) // the same splitting serves here
	if len(conns) == 0 {
		t.Errorf("the sample lists no connection in %s", SettingConnections)
	}
	for _, c := range conns {
		known = append(known, ConnectionSettingNames(c)...)
	}
	for _, s := range known {
		if _, ok := values[s]; !ok {
			t.Errorf("the sample does not list %s", s)
		}
	}
	for k := range values {
		if !slices.Contains(known, k) {
			t.Errorf("the sample lists %s, which Load does not read", k)
		}
	}
}

func TestSampleLoadsOnceFilledIn(t *testing.T) {
	values := readSample(t)
	_, _, err := Load(env(values).getenv)
	var se *SettingsError
	if !errors.As(err, &se) {
		t.Fatalf("Load(sample) = %v; want the placeholders reported", err)
	}
	for _, p := range se.Problems {
		if !strings.Contains(p.Message, "placeholder") {
			t.Errorf("problem %q; want only placeholders reported", p)
		}
	}
	if len(se.Problems) == 0 {
		t.Error("no problems; want the placeholders reported")
	}

	for k, v := range values {
		if strings.HasPrefix(v, "<") {
			values[k] = "filled-in"
		}
	}
	_, warnings, err := Load(env(values).getenv)
	if err != nil {
		t.Fatalf("Load(filled-in sample): %v", err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings = %q; want none", warnings)
	}
}
