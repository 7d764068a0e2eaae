package pgstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anycatch/anycatch/census"
	"github.com/anycatch/anycatch/collector"
	"github.com/anycatch/anycatch/collector/pgstore"
	"github.com/anycatch/anycatch/internal/pgtest"
	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/probe/upload"
	"github.com/anycatch/anycatch/store"
)

// enrollSite enrolls a site agent for site through the collector, the way
// anycatch-site does, and returns its client.
func enrollSite(t *testing.T, r *rig, site, token string) *upload.Client {
	t.Helper()
	id, err := upload.NewIdentity(r.srv.URL, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c, err := upload.New(r.srv.URL, id, upload.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var er measure.EnrollResponse
	req := measure.EnrollRequest{Token: token, PublicKey: id.PublicKey(), Version: "it"}
	if err := c.Call(context.Background(), "enroll", "POST", measure.PathCensusEnroll, false, req, nil, &er); err != nil {
		t.Fatalf("enroll %s: %v", site, err)
	}
	id.Probe = er.Probe
	return c
}

func replyLine(t *testing.T, rep measure.CensusReply) []byte {
	t.Helper()
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func TestCensusIngest(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	r := newRig(t, pgtest.NewURL(t), func(c *collector.Config) { c.Census = nil })
	ctx := context.Background()
	// A collector without a census store has no census endpoints.
	anon, _ := upload.New(r.srv.URL, &upload.Identity{}, upload.Options{})
	if err := anon.Call(ctx, "enroll", "POST", measure.PathCensusEnroll, false, measure.EnrollRequest{Token: "x"}, nil, nil); !isStatus(err, http.StatusNotFound) {
		t.Fatalf("census without store: %v", err)
	}

	r = newRig(t, pgtest.NewURL(t), func(c *collector.Config) { c.Census = pgstore.New(c.Store.(pgstore.Adapter).DB) })
	for _, s := range []string{"ams", "fra"} {
		if err := r.db.PutSite(ctx, r.tg.ID, store.Site{Code: s}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.db.SetCensusConfig(ctx, store.CensusConfig{TargetID: r.tg.ID, Enabled: true, MaxPPS: 200}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"ams", "fra"} {
		if err := r.db.IssueSiteToken(ctx, r.tg.ID, s, sha256.Sum256([]byte("acs_"+s))); err != nil {
			t.Fatal(err)
		}
	}
	ams := enrollSite(t, r, "ams", "acs_ams")
	fra := enrollSite(t, r, "fra", "acs_fra")
	anon, _ = upload.New(r.srv.URL, &upload.Identity{}, upload.Options{})
	// A used token does not enroll twice; a volunteer's token is no site token.
	if err := anon.Call(ctx, "enroll", "POST", measure.PathCensusEnroll, false,
		measure.EnrollRequest{Token: "acs_ams", PublicKey: make([]byte, 32)}, nil, nil); !isStatus(err, http.StatusUnauthorized) {
		t.Errorf("reused site token: %v", err)
	}

	rd := &store.CensusRound{TargetID: r.tg.ID, Sender: "ams", Hitlist: "lab", RatePPS: 100, Prefix4: 24, Prefix6: 48,
		Secret: []byte("0123456789abcdef"), Start: now.Add(-10 * time.Second), Closes: now.Add(-time.Second), LateUntil: now.Add(time.Hour)}
	if err := r.db.CreateCensusRound(ctx, rd); err != nil {
		t.Fatal(err)
	}
	var sched measure.CensusSchedule
	if err := fra.Call(ctx, "census", "GET", measure.PathCensus, true, nil, nil, &sched); err != nil {
		t.Fatal(err)
	}
	if sched.Site != "fra" || sched.Target != "k-root" || sched.Addr4 != "198.18.53.53" || sched.MaxPPS != 200 ||
		len(sched.Rounds) != 1 || sched.Rounds[0].ID != rd.ID || sched.Rounds[0].Secret != nil ||
		string(sched.Rounds[0].SiteKey) != string(census.SiteKey(rd.Secret)) {
		t.Fatalf("schedule %+v (a receiving site gets the site key, not the secret)", sched)
	}
	var senderSched measure.CensusSchedule
	if err := ams.Call(ctx, "census", "GET", measure.PathCensus, true, nil, nil, &senderSched); err != nil {
		t.Fatal(err)
	}
	if string(senderSched.Rounds[0].Secret) != "0123456789abcdef" {
		t.Fatalf("the sender's schedule has no secret: %+v", senderSched)
	}
	mac := func(addr string, sent time.Time) string {
		return hex.EncodeToString(census.MAC(rd.Secret, census.Tag{Kind: census.KindICMP, Round: rd.ID, Sent: sent, Dst: netip.MustParseAddr(addr)}))
	}

	rtt := 21.5
	sent := now.Add(-5 * time.Second)
	var body []byte
	body = append(body, replyLine(t, measure.CensusReply{ID: measure.NewUUIDv7(now), Round: rd.ID, Addr: "198.18.128.2",
		Sent: sent, Received: sent.Add(20 * time.Millisecond), MAC: mac("198.18.128.2", sent)})...) // in time
	body = append(body, replyLine(t, measure.CensusReply{ID: measure.NewUUIDv7(now), Round: rd.ID, Addr: "2001:db8:c1:1::2",
		Sent: sent, Received: now, MAC: mac("2001:db8:c1:1::2", sent)})...) // after the round closed: late, kept
	body = append(body, replyLine(t, measure.CensusReply{ID: measure.NewUUIDv7(now), Round: rd.ID, Addr: "198.18.129.2",
		Sent: sent, Received: now, RTTMS: &rtt, MAC: mac("198.18.129.2", sent)})...) // fra is not the sender: no RTT
	body = append(body, replyLine(t, measure.CensusReply{ID: measure.NewUUIDv7(now), Round: rd.ID + 1, Addr: "198.18.130.2",
		Sent: sent, Received: now, MAC: mac("198.18.130.2", sent)})...) // no such round
	body = append(body, []byte("{\"id\":\"x\"\n")...) // not JSON
	var ur measure.UploadResponse
	if err := fra.Call(ctx, "census replies", "POST", measure.PathCensusReplies, true, nil, body, &ur); err != nil {
		t.Fatal(err)
	}
	if ur.Accepted != 2 || ur.Rejected != 3 || len(ur.Lines) != 5 {
		t.Fatalf("verdicts %+v", ur)
	}
	for i, want := range []string{"", "", "rtt_ms", "not a live census round", "json"} {
		if !strings.Contains(ur.Lines[i].Reason, want) {
			t.Errorf("line %d: reason %q, want %q", i+1, ur.Lines[i].Reason, want)
		}
	}
	// The same upload again (a lost answer): duplicates, nothing twice.
	if err := fra.Call(ctx, "census replies", "POST", measure.PathCensusReplies, true, nil, body, &ur); err != nil || ur.Duplicate != 2 {
		t.Fatalf("re-upload: %+v %v", ur, err)
	}
	// The sender reports its RTT.
	line := replyLine(t, measure.CensusReply{ID: measure.NewUUIDv7(now), Round: rd.ID, Addr: "198.18.129.2",
		Sent: sent, Received: sent.Add(21 * time.Millisecond), RTTMS: &rtt, MAC: mac("198.18.129.2", sent)})
	if err := ams.Call(ctx, "census replies", "POST", measure.PathCensusReplies, true, nil, line, &ur); err != nil || ur.Accepted != 1 {
		t.Fatalf("sender upload: %+v %v", ur, err)
	}
	got, err := r.db.CensusReplies(ctx, rd.ID)
	if err != nil || len(got) != 3 {
		t.Fatalf("stored %+v %v", got, err)
	}
	byAddr := map[string]store.CensusReply{}
	for _, g := range got {
		byAddr[g.Addr.String()] = g
	}
	if g := byAddr["2001:db8:c1:1::2"]; !g.Late || g.Site != "fra" || g.Prefix.String() != "2001:db8:c1::/48" {
		t.Errorf("late reply %+v", g)
	}
	if g := byAddr["198.18.128.2"]; g.Late || g.Prefix.String() != "198.18.128.0/24" {
		t.Errorf("in-time reply %+v", g)
	}
	if g := byAddr["198.18.129.2"]; g.Site != "ams" || g.RTTMS == nil || *g.RTTMS != 21.5 {
		t.Errorf("sender reply %+v", g)
	}
	// Opting the target out stops the agents.
	if err := r.db.SetCensusConfig(ctx, store.CensusConfig{TargetID: r.tg.ID, Enabled: false, MaxPPS: 200}); err != nil {
		t.Fatal(err)
	}
	if err := fra.Call(ctx, "census", "GET", measure.PathCensus, true, nil, nil, &sched); !isStatus(err, http.StatusForbidden) {
		t.Errorf("schedule after opt-out: %v", err)
	}
}

func isStatus(err error, code int) bool {
	var se *upload.StatusError
	return errors.As(err, &se) && se.StatusCode == code
}

func FuzzDecodeCensusUpload(f *testing.F) {
	f.Add([]byte(`{"id":"01890000-0000-7000-8000-000000000001","round":1,"addr":"198.18.128.2","sent":"2026-12-03T05:00:00Z","received":"2026-12-03T05:00:01Z"}` + "\n")) // a valid reply
	f.Add([]byte("{}\n\n{\"round\":-1}\n"))                                                                                                                               // missing fields, blank line
	f.Add([]byte(`{"id":"x","round":1}{"trailing":true}` + "\n"))                                                                                                         // two values on a line
	f.Add([]byte{0x1f, 0x8b, 0, 0})                                                                                                                                       // truncated gzip header as plain text
	f.Fuzz(func(t *testing.T, b []byte) {
		lines, err := collector.DecodeCensusUpload(b, false, collector.UploadLimits{MaxDecompressed: 1 << 16, MaxLine: 4 << 10, MaxLines: 100})
		if err != nil {
			return
		}
		for _, l := range lines {
			if (l.Reply == nil) == (l.Reason == "") {
				t.Fatalf("line %d: reply %v with reason %q", l.N, l.Reply, l.Reason)
			}
			if l.Reply != nil && (l.Reply.Round <= 0 || l.Reply.ID.IsZero()) {
				t.Fatalf("line %d accepted without round or id: %+v", l.N, l.Reply)
			}
		}
	})
}

// TestCensusRepliesNeedTheRoundsMAC: a site agent cannot report a reply
// for an address the round never probed (issue 23: 127.0.0.1 and
// 10.1.2.3 used to be stored): without the sender's MAC, with a MAC of
// another address, round or transmit time, or with a MAC made with the
// site key every agent holds, the reply is refused, counted and not
// stored; the probed address with its MAC is.
func TestCensusRepliesNeedTheRoundsMAC(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	r := newRig(t, pgtest.NewURL(t), func(c *collector.Config) { c.Census = pgstore.New(c.Store.(pgstore.Adapter).DB) })
	ctx := context.Background()
	for _, s := range []string{"ams", "fra"} {
		if err := r.db.PutSite(ctx, r.tg.ID, store.Site{Code: s}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.db.SetCensusConfig(ctx, store.CensusConfig{TargetID: r.tg.ID, Enabled: true, MaxPPS: 200}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"ams", "fra"} {
		if err := r.db.IssueSiteToken(ctx, r.tg.ID, s, sha256.Sum256([]byte("acs_"+s))); err != nil {
			t.Fatal(err)
		}
	}
	enrollSite(t, r, "ams", "acs_ams")
	fra := enrollSite(t, r, "fra", "acs_fra")
	rd := &store.CensusRound{TargetID: r.tg.ID, Sender: "ams", Hitlist: "lab", RatePPS: 100, Prefix4: 24, Prefix6: 48,
		Secret: []byte("0123456789abcdef"), Start: now.Add(-10 * time.Second), Closes: now.Add(time.Minute), LateUntil: now.Add(time.Hour)}
	if err := r.db.CreateCensusRound(ctx, rd); err != nil {
		t.Fatal(err)
	}
	sent := now.Add(-5 * time.Second)
	tag := func(addr string, round int64, at time.Time) census.Tag {
		return census.Tag{Kind: census.KindICMP, Round: round, Sent: at, Dst: netip.MustParseAddr(addr)}
	}
	macOf := func(key []byte, tg census.Tag) string { return hex.EncodeToString(census.MAC(key, tg)) }
	probed := "198.18.128.2"
	lines := []struct {
		addr, mac string
	}{
		{"127.0.0.1", ""},                                                            // no MAC at all
		{"10.1.2.3", "00112233445566778899"},                                         // not hex of the right length
		{"10.1.2.3", macOf(rd.Secret, tag(probed, rd.ID, sent))},                     // the MAC of another address
		{"127.0.0.1", macOf(rd.Secret, tag("127.0.0.1", rd.ID+1, sent))},             // of another round
		{probed, macOf(rd.Secret, tag(probed, rd.ID, sent.Add(time.Millisecond)))},   // of another transmit time
		{"10.1.2.3", macOf(census.SiteKey(rd.Secret), tag("10.1.2.3", rd.ID, sent))}, // made with the site key
		{probed, macOf(rd.Secret, tag(probed, rd.ID, sent))},                         // the real reply
	}
	var body []byte
	for _, l := range lines {
		body = append(body, replyLine(t, measure.CensusReply{ID: measure.NewUUIDv7(now), Round: rd.ID, Addr: l.addr,
			Sent: sent, Received: sent.Add(10 * time.Millisecond), MAC: l.mac})...)
	}
	var ur measure.UploadResponse
	if err := fra.Call(ctx, "census replies", "POST", measure.PathCensusReplies, true, nil, body, &ur); err != nil {
		t.Fatal(err)
	}
	if ur.Accepted != 1 || ur.Rejected != len(lines)-1 {
		t.Errorf("verdicts %+v: want the one probed reply accepted, %d refused", ur, len(lines)-1)
	}
	for i, v := range ur.Lines[:len(lines)-1] {
		if v.Verdict != measure.Rejected || !strings.HasPrefix(v.Reason, "mac:") {
			t.Errorf("line %d (%s): %s %q, want rejected for its MAC", i+1, lines[i].addr, v.Verdict, v.Reason)
		}
	}
	got, err := r.db.CensusReplies(ctx, rd.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Addr.String() != probed {
		t.Errorf("stored %+v, want only %s", got, probed)
	}
	if n := metricValue(t, r, `anycatch_collector_census_replies_total{reason="mac",verdict="rejected"}`); n != float64(len(lines)-1) {
		t.Errorf("refused-by-MAC metric %v, want %d", n, len(lines)-1)
	}
}

// metricValue reads one sample (name with its labels, as exposed) from
// the collector's metrics; 0 when absent.
func metricValue(t *testing.T, r *rig, sample string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	r.c.Metrics().Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, l := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(l, sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", l, err)
			}
			return f
		}
	}
	return 0
}
