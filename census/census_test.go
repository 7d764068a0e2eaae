package census

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var secret = []byte("0123456789abcdef")

var siteKey = SiteKey(secret)

func TestPayloadRoundTrip(t *testing.T) {
	dst := netip.MustParseAddr("198.18.128.2")
	p := Probe{Round: 42, Sent: time.Unix(1700000000, 123456789)}
	b := Payload(secret, siteKey, p, dst, "contact noc@example.net")
	if !bytes.Contains(b, []byte("anycast catchment census")) || !bytes.HasSuffix(b, []byte("noc@example.net")) {
		t.Errorf("payload text missing: %q", b)
	}
	got, mac, err := Verify(siteKey, b, dst)
	if err != nil {
		t.Fatal(err)
	}
	if got.Round != 42 || !got.Sent.Equal(p.Sent) {
		t.Errorf("got %+v, want %+v", got, p)
	}
	// The MAC a site reports is the collector's to check: it holds for
	// the probed address, round and transmit time only.
	tag := Tag{Kind: KindICMP, Round: 42, Sent: got.Sent, Dst: dst}
	if err := CheckMAC(secret, tag, mac); err != nil {
		t.Errorf("reported MAC: %v", err)
	}
	for _, bad := range []Tag{
		{Kind: KindICMP, Round: 42, Sent: got.Sent, Dst: netip.MustParseAddr("127.0.0.1")},
		{Kind: KindICMP, Round: 43, Sent: got.Sent, Dst: dst},
		{Kind: KindICMP, Round: 42, Sent: got.Sent.Add(time.Nanosecond), Dst: dst},
		{Kind: KindTCP, Round: 42, Dst: dst},
	} {
		if err := CheckMAC(secret, bad, mac[:bad.Kind.MACLen()]); !errors.Is(err, ErrMAC) {
			t.Errorf("MAC accepted for %+v: %v", bad, err)
		}
	}
	// The site key checks site tags but cannot make the sender's MAC.
	if err := CheckMAC(siteKey, tag, mac); !errors.Is(err, ErrMAC) {
		t.Errorf("MAC made with the site key accepted: %v", err)
	}
	// A reply from another address than the probe went to (spoofed or
	// reflected) fails, as do another round's key and any flipped byte
	// of the header up to the site tag.
	if _, _, err := Verify(siteKey, b, netip.MustParseAddr("198.18.128.3")); !errors.Is(err, ErrBadMAC) {
		t.Errorf("other source: got %v, want ErrBadMAC", err)
	}
	if _, _, err := Verify(SiteKey([]byte("another-secret!!")), b, dst); !errors.Is(err, ErrBadMAC) {
		t.Errorf("other secret: got %v, want ErrBadMAC", err)
	}
	for i := len(Magic); i < headerLen-macLen; i++ {
		c := bytes.Clone(b)
		c[i] ^= 1
		if _, _, err := Verify(siteKey, c, dst); err == nil {
			t.Errorf("byte %d flipped: accepted", i)
		}
	}
	// A flipped MAC byte passes the site (it cannot tell) and fails at the
	// collector.
	c := bytes.Clone(b)
	c[headerLen-1] ^= 1
	if _, m, err := Verify(siteKey, c, dst); err != nil || CheckMAC(secret, tag, m) == nil {
		t.Errorf("flipped MAC: site %v, collector accepted", err)
	}
	if _, err := ParseHeader([]byte("ACENSUS2short")); !errors.Is(err, ErrNotCensus) {
		t.Errorf("short payload: got %v", err)
	}
	if _, err := ParseHeader(bytes.Repeat([]byte{'x'}, 100)); !errors.Is(err, ErrNotCensus) {
		t.Errorf("foreign payload: got %v", err)
	}
	// IPv4-mapped and plain IPv4 are the same address for the MAC.
	if _, _, err := Verify(siteKey, b, netip.MustParseAddr("::ffff:198.18.128.2")); err != nil {
		t.Errorf("mapped source: %v", err)
	}
}

func TestTCPAndDNSTags(t *testing.T) {
	dst := netip.MustParseAddr("2001:db8:c1::2")
	for _, k := range []Kind{KindTCP, KindDNS} {
		tag := Tag{Kind: k, Round: 9, Dst: dst, Port: k.DefaultPort()}
		sp := SourcePort(siteKey, tag)
		if sp < 0x8000 {
			t.Errorf("%s: source port %d below the ephemeral range", k, sp)
		}
		mac := MAC(secret, tag)
		if len(mac) != k.MACLen() || CheckMAC(secret, tag, mac) != nil {
			t.Errorf("%s: MAC %x does not check", k, mac)
		}
		other := tag
		other.Port++
		if CheckMAC(secret, other, mac) == nil && SourcePort(siteKey, other) == sp {
			t.Errorf("%s: tags do not depend on the port", k)
		}
		if err := CheckMAC(secret, tag, append(mac, 0)); !errors.Is(err, ErrMAC) {
			t.Errorf("%s: long MAC: %v", k, err)
		}
	}
	if err := CheckMAC(secret, Tag{Kind: "udp"}, nil); err == nil {
		t.Error("unknown kind checked")
	}
}

func FuzzParsePayload(f *testing.F) {
	dst := netip.MustParseAddr("2001:db8:c1::2")
	f.Add(Payload(secret, siteKey, Probe{Round: 1, Sent: time.Unix(1, 0)}, dst, "")) // a valid probe
	f.Add([]byte(Magic))                                                             // magic only
	f.Add(append([]byte(Magic), make([]byte, 32)...))                                // round 0
	f.Add([]byte{})                                                                  // empty echo
	f.Fuzz(func(t *testing.T, b []byte) {
		p, mac, err := Verify(siteKey, b, dst)
		if err == nil && (p.Round <= 0 || len(mac) != macLen || !bytes.Equal(Payload(secret, siteKey, p, dst, "")[:headerLen-macLen], b[:headerLen-macLen])) {
			t.Fatalf("accepted %x as %+v", b, p)
		}
	})
}

func TestParseHitlist(t *testing.T) {
	opt, err := ParseOptOut(strings.NewReader("# networks that asked not to be probed\n198.18.130.0/24\n2001:db8:c1:5::7\n"))
	if err != nil {
		t.Fatal(err)
	}
	in := `# lab hitlist
198.18.128.2
198.18.128.9   # same /24: dropped
198.18.130.2   # opted out
2001:db8:c1:1::2
2001:db8:c1:1::3  # same /64
2001:db8:c1:5::7  # opted out
::ffff:198.18.129.2

`
	h, err := ParseHitlist(strings.NewReader(in), 24, 64, opt)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range h.Addrs {
		got = append(got, a.String())
	}
	want := "198.18.128.2 2001:db8:c1:1::2 198.18.129.2"
	if strings.Join(got, " ") != want || h.Duplicates != 2 || h.OptedOut != 2 {
		t.Errorf("got %v dup %d opted %d, want %s dup 2 opted 2", got, h.Duplicates, h.OptedOut, want)
	}
	for _, tc := range []struct{ in, err string }{
		{"198.18.0.1\nnot-an-address\n", "hitlist line 2: \"not-an-address\" is not an IP address"},
		{"224.0.0.1\n", "hitlist line 1: 224.0.0.1 is not a unicast address"},
		{"fe80::1%eth0\n", "hitlist line 1: \"fe80::1%eth0\" is not an IP address"},
		{"0.0.0.0\n", "hitlist line 1: 0.0.0.0 is not a unicast address"},
		{strings.Repeat("1", 300) + "\n", "hitlist line 1: bufio.Scanner: token too long"},
	} {
		if _, err := ParseHitlist(strings.NewReader(tc.in), 24, 48, nil); err == nil || err.Error() != tc.err {
			t.Errorf("%.20q: got %v, want %s", tc.in, err, tc.err)
		}
	}
	// Other prefix lengths: the IPv4 bitmap (up to /24) and the set.
	for _, tc := range []struct {
		bits4, want int
	}{{16, 2}, {24, 3}, {32, 4}} {
		h, err := ParseHitlist(strings.NewReader("10.1.2.3\n10.1.2.4\n10.1.3.3\n10.2.0.1\n10.1.2.3\n"), tc.bits4, 48, nil)
		if err != nil || h.Listed != tc.want || len(h.Addrs) != tc.want || h.Duplicates != 5-tc.want {
			t.Errorf("/%d: %+v %v, want %d listed", tc.bits4, h, err, tc.want)
		}
	}
	// Opt-out entries of many lengths, both families.
	opt2, err := ParseOptOut(strings.NewReader("10.0.0.0/8\n192.0.2.7\n2001:db8::/32\n2001:db8:1::/48\n0.0.0.0/1\n"))
	if err != nil || opt2.Len() != 5 {
		t.Fatal(opt2, err)
	}
	for a, want := range map[string]bool{"10.9.9.9": true, "192.0.2.7": true, "192.0.2.8": false, "100.64.0.1": true,
		"2001:db8:ff::1": true, "2001:db9::1": false, "::ffff:10.1.1.1": true} {
		if got := opt2.Contains(netip.MustParseAddr(a)); got != want {
			t.Errorf("opt-out contains %s: %v, want %v", a, got, want)
		}
	}
	if _, err := ParseHitlist(strings.NewReader(""), 4, 48, nil); err == nil {
		t.Error("prefix /4 accepted")
	}
	if _, err := ParseOptOut(strings.NewReader("10.0.0.0/33\n")); err == nil || !strings.Contains(err.Error(), "opt-out line 1") {
		t.Errorf("bad opt-out prefix: %v", err)
	}
}

func FuzzParseHitlist(f *testing.F) {
	f.Add("198.18.128.2\n2001:db8::1\n")         // both families
	f.Add("# comment only\n\n")                  // nothing to probe
	f.Add("10.0.0.0/8\n")                        // a prefix is not a hitlist address
	f.Add("1.2.3.4 # trailing comment\r\n::1\n") // CRLF and comments
	f.Fuzz(func(t *testing.T, s string) {
		opt, _ := ParseOptOut(strings.NewReader(s))
		h, err := ParseHitlist(strings.NewReader(s), 24, 48, opt)
		if err != nil {
			return
		}
		seen := map[netip.Prefix]bool{}
		for _, a := range h.Addrs {
			p := Prefix(a, 24, 48)
			if seen[p] || !usable(a) || opt.Contains(a) {
				t.Fatalf("hitlist kept %s twice, unusable or opted out", a)
			}
			seen[p] = true
		}
	})
}

// fakeClock advances only when the pacer sleeps, by the time asked plus
// an oversleep (a late wake-up).
type fakeClock struct {
	t         time.Time
	oversleep time.Duration
}

func (c *fakeClock) now() time.Time { return c.t }
func (c *fakeClock) sleep(_ context.Context, d time.Duration) error {
	c.t = c.t.Add(d + c.oversleep)
	return nil
}

func TestPacerRate(t *testing.T) {
	for _, tc := range []struct {
		name       string
		pps, burst int
		oversleep  time.Duration
		sends      int
		want       time.Duration // from the first send to the last
		slack      time.Duration
	}{
		{"100pps", 100, 1, 0, 1001, 10 * time.Second, 0},
		{"burst unused when on time", 100, 10, 0, 1001, 10 * time.Second, 0},
		// Every sleep wakes 15 ms late (more than an interval): without a
		// burst the sender falls behind for good...
		{"late wake-ups, no burst: slower", 100, 1, 15 * time.Millisecond, 1001, 12500 * time.Millisecond, 0},
		// ...with one, sends go back to back to catch up, and the run
		// still takes no less than 1000 intervals.
		{"late wake-ups caught up by the burst", 100, 10, 15 * time.Millisecond, 1001, 10 * time.Second, 20 * time.Millisecond},
		{"above the hard ceiling", 50000, 1, 0, HardMaxPPS + 1, time.Second, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &fakeClock{t: time.Unix(1000, 0), oversleep: tc.oversleep}
			p := NewPacer(tc.pps, tc.burst, c.now, c.sleep)
			var first time.Time
			for i := range tc.sends {
				if err := p.Wait(context.Background()); err != nil {
					t.Fatal(err)
				}
				if i == 0 {
					first = c.t
				}
			}
			got := c.t.Sub(first)
			if got < tc.want || got > tc.want+tc.slack {
				t.Errorf("%d sends took %s, want %s (never less)", tc.sends, got, tc.want)
			}
		})
	}
	if got := EffectivePPS(0, 0); got != DefaultPPS {
		t.Errorf("default rate %d", got)
	}
	if got := EffectivePPS(5000, 200); got != 200 {
		t.Errorf("site ceiling: got %d, want 200", got)
	}
	if got := EffectivePPS(1e6, 0); got != HardMaxPPS {
		t.Errorf("hard ceiling: got %d", got)
	}
}

func TestPacerCancel(t *testing.T) {
	p := NewPacer(1, 1, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	_ = p.Wait(ctx) // first token is free
	cancel()
	if err := p.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestSummarizeAndDiff(t *testing.T) {
	r1 := []Row{
		{Prefix: pfx("198.18.128.0/24"), Site: "ams", ASN: 65101, Country: "GB"},
		{Prefix: pfx("198.18.128.0/24"), Site: "ams", ASN: 65101, Country: "GB"}, // second reply
		{Prefix: pfx("198.18.129.0/24"), Site: "ams", ASN: 65101, Country: "FR", Late: true},
		{Prefix: pfx("198.18.131.0/24"), Site: "iad"},
		{Prefix: pfx("198.18.132.0/24"), Site: "iad"},
		{Prefix: pfx("198.18.132.0/24"), Site: "fra"}, // reached two sites
	}
	s := Summarize(r1)
	if s.Prefixes != 4 || s.MultiSite != 1 || s.Late != 1 || len(s.Sites) != 3 {
		t.Fatalf("summary %+v", s)
	}
	if s.Sites[0].Site != "ams" || s.Sites[0].Prefixes != 2 || s.Sites[0].ByASN[0] != (Count{"AS65101", 2}) ||
		len(s.Sites[0].ByCountry) != 2 {
		t.Errorf("ams: %+v", s.Sites[0])
	}
	if s.Sites[1].Site != "iad" || s.Sites[1].ByASN[0] != (Count{"unknown", 2}) {
		t.Errorf("iad: %+v", s.Sites[1])
	}
	if got := Catchment(r1)[pfx("198.18.132.0/24")]; got != "fra+iad" {
		t.Errorf("multi-site prefix: %q", got)
	}
	r2 := []Row{
		{Prefix: pfx("198.18.128.0/24"), Site: "fra"},
		{Prefix: pfx("198.18.129.0/24"), Site: "ams"},
		{Prefix: pfx("198.18.132.0/24"), Site: "iad"},
		{Prefix: pfx("198.18.140.0/24"), Site: "sin"},
	}
	got := Diff(r1, r2)
	want := []Move{
		{pfx("198.18.128.0/24"), "ams", "fra"},
		{pfx("198.18.131.0/24"), "iad", ""},
		{pfx("198.18.132.0/24"), "fra+iad", "iad"},
		{pfx("198.18.140.0/24"), "", "sin"},
	}
	if len(got) != len(want) {
		t.Fatalf("diff %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("move %d: got %v, want %v", i, got[i], want[i])
		}
	}
}
