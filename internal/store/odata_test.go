package store

import (
	"strings"
	"testing"
)

func TestFilter(t *testing.T) {
	tests := []struct {
		name string
		tmpl string
		args map[string]string
		want string
	}{
		{"plain", "PartitionKey eq {pk}", map[string]string{"pk": "gmail"}, "PartitionKey eq 'gmail'"},
		{"two params", "PartitionKey eq {pk} and (RowKey eq {a} or RowKey eq {b})",
			map[string]string{"pk": "p", "a": "A", "b": "B"},
			"PartitionKey eq 'p' and (RowKey eq 'A' or RowKey eq 'B')"},
		{"param used twice", "RowKey ge {x} and RowKey le {x}", map[string]string{"x": "k"}, "RowKey ge 'k' and RowKey le 'k'"},
		{"quote doubled", "PartitionKey eq {pk}", map[string]string{"pk": "o'brien"}, "PartitionKey eq 'o''brien'"},
		{"injection stays a literal", "PartitionKey eq {pk}", map[string]string{"pk": "x' or '1' eq '1"},
			"PartitionKey eq 'x'' or ''1'' eq ''1'"},
		{"closing paren and keywords", "(PartitionKey eq {pk})", map[string]string{"pk": "a') or (RowKey ne '"},
			"(PartitionKey eq 'a'') or (RowKey ne ''')"},
		{"only quotes", "PartitionKey eq {pk}", map[string]string{"pk": "''"}, "PartitionKey eq ''''''"},
		{"empty value", "PartitionKey eq {pk}", map[string]string{"pk": ""}, "PartitionKey eq ''"},
		{"unicode", "PartitionKey eq {pk}", map[string]string{"pk": "Ωmega’s ✓ 名前"}, "PartitionKey eq 'Ωmega’s ✓ 名前'"},
		{"braces in value", "PartitionKey eq {pk}", map[string]string{"pk": "{pk}"}, "PartitionKey eq '{pk}'"},
		{"no params", "RowKey ne PartitionKey", nil, "RowKey ne PartitionKey"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := filter(tt.tmpl, tt.args)
			if err != nil {
				t.Fatalf("filter: %v", err)
			}
			if got != tt.want {
				t.Errorf("got %s; want %s", got, tt.want)
			}
		})
	}
}

// TestFilterLiteralsAreClosed checks, for hostile values, that the quotes in the built filter pair
// up exactly around each value: outside the literals only the template's own text remains.
func TestFilterLiteralsAreClosed(t *testing.T) {
	for _, v := range []string{"x' or '1' eq '1", "'", "''", "a''b'", "' or PartitionKey ne '", "é'\u2019\u0000"} {
		got, err := filter("PartitionKey eq {pk} and RowKey eq {rk}", map[string]string{"pk": v, "rk": v})
		if err != nil {
			t.Fatalf("filter: %v", err)
		}
		outside := stripLiterals(t, got)
		if want := "PartitionKey eq  and RowKey eq "; outside != want {
			t.Errorf("value %q: text outside literals %q; want %q", v, outside, want)
		}
	}
}

// stripLiterals removes OData string literals from f, failing on an unterminated one.
func stripLiterals(t *testing.T, f string) string {
	t.Helper()
	var b strings.Builder
	in := false
	for i := 0; i < len(f); i++ {
		switch {
		case !in && f[i] == '\'':
			in = true
		case in && f[i] == '\'' && i+1 < len(f) && f[i+1] == '\'':
			i++ // escaped quote inside a literal
		case in && f[i] == '\'':
			in = false
		case !in:
			b.WriteByte(f[i])
		}
	}
	if in {
		t.Fatalf("unterminated literal in %q", f)
	}
	return b.String()
}

func TestFilterErrors(t *testing.T) {
	tests := []struct {
		name string
		tmpl string
		args map[string]string
	}{
		{"literal in template", "PartitionKey eq 'x'", nil},
		{"quoted placeholder", "PartitionKey eq '{pk}'", map[string]string{"pk": "a"}},
		{"missing value", "PartitionKey eq {pk}", nil},
		{"unused value", "PartitionKey eq {pk}", map[string]string{"pk": "a", "rk": "b"}},
		{"unterminated", "PartitionKey eq {pk", map[string]string{"pk": "a"}},
		{"stray close", "PartitionKey eq pk}", nil},
		{"nested", "PartitionKey eq {p{k}}", map[string]string{"k": "a"}},
		{"empty name", "PartitionKey eq {}", nil},
		{"bad name", "PartitionKey eq {p k}", map[string]string{"p k": "a"}},
		{"invalid utf-8", "PartitionKey eq {pk}", map[string]string{"pk": "a\xffb"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := filter(tt.tmpl, tt.args); err == nil {
				t.Errorf("got %q, nil error; want an error", got)
			}
		})
	}
}
