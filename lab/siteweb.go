package lab

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"
)

// The site responder: every site also serves HTTP on the anycast
// addresses (port 80), naming itself in the style its topology entry asks
// for (a CDN-like response header, a Cloudflare-like /cdn-cgi/trace body,
// or nothing at all), and NTP (port 123) with a site-specific reference
// id. It is a small role of the lab binary rather than nginx/chrony from
// Debian because it needs one listener pair per site namespace bound to
// the anycast address with per-site answers and nothing else: no config
// files, pid files or clock discipline, and nothing more for CI to install.

// runSiteWeb is the "siteweb" daemon.
func runSiteWeb(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("siteweb", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		instance = fs.String("instance", "", "lab instance name (marks the process for cleanup)")
		_        = fs.String("state-dir", "", "lab state dir (marks the process for cleanup)")
		ns       = fs.String("ns", "", "site netns to serve in")
		addrs    = fs.String("addrs", "", "comma-separated anycast addresses to listen on")
		header   = fs.String("header", "", `response header naming the site, "name: value"; empty for none`)
		colo     = fs.String("trace-colo", "", "colo code /cdn-cgi/trace prints; empty for none")
		refid    = fs.String("ntp-refid", "", "NTP reference id (up to 4 ASCII characters); empty: no NTP")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *instance == "" || *ns == "" || *addrs == "" {
		return errors.New("siteweb: missing --instance, --ns or --addrs")
	}
	h := siteHandler(*header, *colo)
	var lns []net.Listener
	var pcs []net.PacketConn
	err := inNetns(*ns, func() error {
		for _, a := range strings.Split(*addrs, ",") {
			ln, err := net.Listen("tcp", net.JoinHostPort(a, "80"))
			if err != nil {
				return err
			}
			lns = append(lns, ln)
			if *refid != "" {
				pc, err := net.ListenPacket("udp", net.JoinHostPort(a, "123"))
				if err != nil {
					return err
				}
				pcs = append(pcs, pc)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("siteweb: listen in %s: %w", *ns, err)
	}
	fmt.Fprintln(stdout, "ready")
	if f, ok := stdout.(*os.File); ok {
		f.Close()
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	var wg sync.WaitGroup
	for _, ln := range lns {
		wg.Add(1)
		go func() { defer wg.Done(); _ = srv.Serve(ln) }()
	}
	for _, pc := range pcs {
		wg.Add(1)
		go func() { defer wg.Done(); serveNTP(pc, *refid) }()
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	for _, pc := range pcs {
		pc.Close()
	}
	wg.Wait()
	return nil
}

// siteHandler answers every request with 200, header (when set) on every
// response, and on /cdn-cgi/trace a Cloudflare-like key=value body.
func siteHandler(header, colo string) http.Handler {
	name, value, _ := strings.Cut(header, ":")
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if name != "" {
			w.Header().Set(name, value)
		}
		w.Header().Set("Server", "anycatch-lab")
		w.Header().Set("Content-Type", "text/plain")
		if r.URL.Path == "/cdn-cgi/trace" {
			host, _, _ := net.SplitHostPort(r.RemoteAddr)
			fmt.Fprintf(w, "h=%s\nip=%s\nts=%d\nvisit_scheme=http\n", r.Host, host, time.Now().Unix())
			if colo != "" {
				fmt.Fprintf(w, "colo=%s\n", colo)
			}
			fmt.Fprintf(w, "http=%s\n", strings.ToLower(r.Proto))
			return
		}
		fmt.Fprintln(w, "anycatch lab")
	})
}

// serveNTP answers NTP client requests on pc as a stratum-1 server with
// reference id refid until pc is closed. Anything that is not a client
// request is ignored.
func serveNTP(pc net.PacketConn, refid string) {
	buf := make([]byte, 512)
	var id [4]byte
	copy(id[:], refid)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if n < 48 || buf[0]&7 != 3 {
			continue
		}
		rx := ntpNow()
		out := make([]byte, 48)
		out[0] = 0<<6 | 4<<3 | 4 // no warning, v4, server
		out[1] = 1               // stratum 1
		out[2] = buf[2]          // poll
		out[3] = 0xec            // precision 2^-20
		binary.BigEndian.PutUint32(out[8:], 0x10)
		copy(out[12:16], id[:])
		binary.BigEndian.PutUint64(out[16:], rx)
		copy(out[24:32], buf[40:48]) // origin = the client's transmit
		binary.BigEndian.PutUint64(out[32:], rx)
		binary.BigEndian.PutUint64(out[40:], ntpNow())
		_, _ = pc.WriteTo(out, from)
	}
}

func ntpNow() uint64 {
	t := time.Now()
	sec := uint64(t.Unix() + 2208988800)
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return sec<<32 | frac
}

var (
	responderHeaderRE = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}:[ -~]{1,200}$`)
	responderCodeRE   = regexp.MustCompile(`^[A-Za-z0-9]{1,4}$`)
)

// validateResponder checks the site's HTTP and NTP responder settings.
func (s *Site) validateResponder() error {
	if s.HTTPHeader != "" && !responderHeaderRE.MatchString(s.HTTPHeader) {
		return fmt.Errorf(`http_header %q: want "name: value" in printable ASCII`, s.HTTPHeader)
	}
	if s.TraceColo != "" && !responderCodeRE.MatchString(s.TraceColo) {
		return fmt.Errorf("trace_colo %q: want 1-4 letters or digits", s.TraceColo)
	}
	if s.NTPRefID != "" && !responderCodeRE.MatchString(s.NTPRefID) {
		return fmt.Errorf("ntp_refid %q: want 1-4 letters or digits", s.NTPRefID)
	}
	return nil
}
