package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestBoundBodyReads: a body trickled slower than the limit is cut off,
// while a handler that has read its whole body may go on streaming past
// the limit with its context intact.
func TestBoundBodyReads(t *testing.T) {
	readErr := make(chan error, 1)
	streamed := make(chan error, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /slow", func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		readErr <- err
	})
	mux.HandleFunc("POST /stream", func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		select {
		case <-r.Context().Done():
			streamed <- fmt.Errorf("context cancelled while streaming: %w", r.Context().Err())
		case <-time.After(600 * time.Millisecond): // twice the limit
			streamed <- nil
		}
		fmt.Fprint(w, "done")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: boundBodyReads(mux, 300*time.Millisecond), ReadHeaderTimeout: time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nab")
	select {
	case err := <-readErr:
		if err == nil {
			t.Fatal("trickled body read without error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("trickled body still being read after 5 s (limit 300 ms)")
	}

	resp, err := http.Post("http://"+ln.Addr().String()+"/stream", "text/plain", strings.NewReader("whole body"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(bufio.NewReader(resp.Body))
	if err := <-streamed; err != nil {
		t.Fatal(err)
	}
	if string(b) != "done" {
		t.Errorf("stream answer: got %q, want %q", b, "done")
	}
}
