package collector

import (
	"encoding/hex"
	"net/netip"
	"testing"
	"time"

	"github.com/anycatch/anycatch/census"
	"github.com/anycatch/anycatch/measure"
)

// FuzzCensusRow: whatever a site agent uploads, a reply becomes a row to
// store only when it carries the sender's MAC for its address, round and
// transmit time.
func FuzzCensusRow(f *testing.F) {
	start := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	rd := measure.CensusRound{ID: 5, Sender: "ams", Prefix4: 24, Prefix6: 48, Secret: []byte("0123456789abcdef"),
		Start: start, Closes: start.Add(time.Hour), LateUntil: start.Add(2 * time.Hour)}
	agent := CensusAgent{Target: "t", Site: "fra", Addr4: "198.18.53.53", Addr6: "2001:db8:53::53", Enabled: true}
	rounds := map[int64]measure.CensusRound{rd.ID: rd}
	sent := start.Add(time.Minute)
	good := hex.EncodeToString(census.MAC(rd.Secret, census.Tag{Kind: census.KindICMP, Round: 5, Sent: sent, Dst: netip.MustParseAddr("198.18.128.2")}))
	line := func(addr, mac string) []byte {
		return []byte(`{"id":"01890000-0000-7000-8000-000000000001","round":5,"addr":"` + addr + `","sent":"` +
			sent.Format(time.RFC3339Nano) + `","received":"` + sent.Add(time.Second).Format(time.RFC3339Nano) + `","mac":"` + mac + `"}`)
	}
	f.Add(line("198.18.128.2", good))        // a real reply
	f.Add(line("127.0.0.1", good))           // another address with that MAC
	f.Add(line("10.1.2.3", ""))              // no MAC
	f.Add(line("198.18.128.2", "zz"))        // not hex
	f.Add(line("::ffff:198.18.128.2", good)) // mapped form of the probed address
	f.Fuzz(func(t *testing.T, b []byte) {
		l := parseCensusLine(1, b)
		if l.Reply == nil {
			return
		}
		row, reason := censusRow(agent, rounds, l.Reply, start.Add(90*time.Minute))
		if reason != "" {
			return
		}
		mac, err := hex.DecodeString(l.Reply.MAC)
		if err != nil || census.CheckMAC(rd.Secret, census.Tag{Kind: census.KindICMP, Round: rd.ID, Sent: l.Reply.Sent, Dst: row.Addr}, mac) != nil {
			t.Fatalf("stored %+v without the round's MAC (%q)", row, l.Reply.MAC)
		}
		if !row.Prefix.Contains(row.Addr) || row.Site != "fra" {
			t.Fatalf("row %+v", row)
		}
	})
}
