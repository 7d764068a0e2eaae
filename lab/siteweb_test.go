package lab

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/probe/ntp"
)

func TestSiteHandler(t *testing.T) {
	srv := httptest.NewServer(siteHandler("cf-ray: 8f1e2d3c4b5a6978-AMS", "AMS"))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/cdn-cgi/trace")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("Cf-Ray") != "8f1e2d3c4b5a6978-AMS" || !strings.Contains(string(body), "\ncolo=AMS\n") {
		t.Errorf("got header %q body %q", resp.Header.Get("Cf-Ray"), body)
	}
	silent := httptest.NewServer(siteHandler("", ""))
	defer silent.Close()
	resp, err = http.Get(silent.URL + "/cdn-cgi/trace")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(body), "colo=") || resp.Header.Get("Cf-Ray") != "" {
		t.Errorf("silent site names itself: %q %v", body, resp.Header)
	}
}

// TestServeNTP: the lab's NTP responder answers the probe's own engine.
func TestServeNTP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); serveNTP(pc, "FRA") }()
	defer func() { pc.Close(); <-done }()
	res, err := ntp.Query(context.Background(), netip.MustParseAddrPort(pc.LocalAddr().String()), measure.NTPSpec{TimeoutMS: 2000}, ntp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Error != "" || res.Stratum != 1 || res.RefID != "FRA" || res.OffsetMS > 100 || res.OffsetMS < -100 {
		t.Errorf("got %+v", res)
	}
}

func TestResponderValidate(t *testing.T) {
	for _, s := range []Site{
		{HTTPHeader: "no colon"},
		{HTTPHeader: "x: a\r\nInjected: 1"},
		{TraceColo: "TOOLONG"},
		{NTPRefID: "A B"},
	} {
		if s.validateResponder() == nil {
			t.Errorf("%+v: accepted", s)
		}
	}
	for _, s := range DefaultTopology().Sites {
		if err := s.validateResponder(); err != nil {
			t.Errorf("default site %s: %v", s.Code, err)
		}
	}
}
