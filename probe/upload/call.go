package upload

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// Call sends one request to a collector endpoint other than the probe's
// four (the census endpoints of anycatch-site, for one), with the same
// deadline, signing and error handling as they get. A non-nil in is sent
// as JSON; raw, when in is nil, is sent as NDJSON (gzipped from GzipMin
// bytes). A 2xx JSON answer is decoded into out when out is not nil.
func (c *Client) Call(ctx context.Context, op, method, path string, signed bool, in any, raw []byte, out any) error {
	hdr := http.Header{}
	body := raw
	switch {
	case in != nil:
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		body = b
		hdr.Set("Content-Type", "application/json")
	case raw != nil:
		hdr.Set("Content-Type", "application/x-ndjson")
		if c.opt.GzipMin > 0 && len(raw) >= c.opt.GzipMin {
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
			zw.Write(raw)
			if err := zw.Close(); err != nil {
				return fmt.Errorf("%s: gzip: %w", op, err)
			}
			body = buf.Bytes()
			hdr.Set("Content-Encoding", "gzip")
		}
	}
	res, err := c.do(ctx, op, method, path, hdr, body, signed)
	if err != nil {
		return err
	}
	if out != nil {
		if err := decodeJSON(res, out); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	return nil
}
