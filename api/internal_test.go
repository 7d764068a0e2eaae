package api

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/anycatch/anycatch/catchment"
)

func TestKeyFormat(t *testing.T) {
	secret, prefix, hash := NewKey()
	if got, ok := KeyPrefix(secret); !ok || got != prefix {
		t.Fatalf("KeyPrefix(new key) = %q, %v; want %q", got, ok, prefix)
	}
	if len(hash) != 32 {
		t.Errorf("hash is %d bytes, want 32", len(hash))
	}
	tests := []struct{ name, key string }{
		{"empty", ""},
		{"other scheme", "act_" + secret[4:]},
		{"upper hex", "ack_ABCDEF12_" + secret[13:]},
		{"short", secret[:len(secret)-1]},
		{"long", secret + "x"},
		{"no separator", strings.Replace(secret, "_", "-", 2)},
		{"sql", "ack_' OR 1=1--" + strings.Repeat("a", 42)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if p, ok := KeyPrefix(tc.key); ok {
				t.Errorf("KeyPrefix(%q) = %q, true; want false", tc.key, p)
			}
		})
	}
}

func TestProbeStatus(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { v := now.Add(-d); return &v }
	tests := []struct {
		name string
		seen *time.Time
		want string
	}{
		{"never", nil, "abandoned"},
		{"just now", at(0), "connected"},
		{"9m59s", at(ConnectedWithin - time.Second), "connected"},
		{"10m", at(ConnectedWithin), "disconnected"},
		{"6 days", at(6 * 24 * time.Hour), "disconnected"},
		{"7 days", at(AbandonedAfter), "abandoned"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := probeStatus(tc.seen, now); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestGroupingParam(t *testing.T) {
	tests := []struct {
		name, query string
		defaults    map[string][]string
		wantBy      catchment.GroupBy
		wantRegion  map[string]string // country -> region
		wantErr     string            // param
	}{
		{"default country", "", nil, catchment.GroupCountry, nil, ""},
		{"asn", "group=asn", nil, catchment.GroupASN, nil, ""},
		{"regions param", "group=region&regions=west%3Dnl,BE%3Bcentral%3DDE", nil, catchment.GroupRegion, map[string]string{"NL": "west", "BE": "west", "DE": "central"}, ""},
		{"configured regions", "group=region", map[string][]string{"eu": {"FR"}}, catchment.GroupRegion, map[string]string{"FR": "eu"}, ""},
		{"no region set", "group=region", nil, "", nil, "regions"},
		{"regions without group", "regions=a%3DDE", nil, "", nil, "regions"},
		{"bad country", "group=region&regions=a%3DDEU", nil, "", nil, "regions"},
		{"control character in a region name", "group=region&regions=a%00b%3DDE", nil, "", nil, "regions"},
		{"unknown group", "group=planet", nil, "", nil, "group"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := newQuery(httptest.NewRequest("GET", "/x?"+tc.query, nil))
			g := q.grouping(tc.defaults)
			if tc.wantErr != "" {
				if q.err == nil || q.err.Param != tc.wantErr {
					t.Fatalf("got error %v, want one on %s", q.err, tc.wantErr)
				}
				return
			}
			if q.err != nil {
				t.Fatalf("unexpected error %v", q.err)
			}
			if g.By != tc.wantBy {
				t.Errorf("got by %q, want %q", g.By, tc.wantBy)
			}
			for cc, region := range tc.wantRegion {
				if g.Regions[cc] != region {
					t.Errorf("region of %s: got %q, want %q", cc, g.Regions[cc], region)
				}
			}
		})
	}
}
