package audit

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/translog"
)

// HTTPSource reads a gateway's log over its public routes (proto/SPEC.md
// §15.4). Every answer is bounded in size.
type HTTPSource struct {
	// Base is the gateway's base URL.
	Base string
	// Client sends the requests. Nil means http.DefaultClient.
	Client *http.Client
}

var _ Source = (*HTTPSource)(nil)

func (s *HTTPSource) get(ctx context.Context, path string, q url.Values, max int64) ([]byte, error) {
	u := strings.TrimSuffix(s.Base, "/") + path
	if q != nil {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	c := s.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > max {
		return nil, fmt.Errorf("GET %s: answer over %d bytes", path, max)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", path, resp.StatusCode)
	}
	return body, nil
}

// Checkpoint implements Source.
func (s *HTTPSource) Checkpoint(ctx context.Context) ([]byte, error) {
	return s.get(ctx, proto.PathLogCheckpoint, nil, translog.MaxCheckpointSize)
}

// Entries implements Source.
func (s *HTTPSource) Entries(ctx context.Context, start, end uint64) ([][]byte, error) {
	q := url.Values{"start": {strconv.FormatUint(start, 10)}, "end": {strconv.FormatUint(end, 10)}}
	body, err := s.get(ctx, proto.PathLogEntries, q, proto.MaxLogPageBytes+int64(translog.MaxEntrySize)+4*proto.MaxLogPage)
	if err != nil {
		return nil, err
	}
	entries, err := proto.ParseLogEntries(body, int(min(end-start, proto.MaxLogPage)))
	if err != nil {
		return nil, err
	}
	return entries, nil
}

// Collateral implements Source.
func (s *HTTPSource) Collateral(ctx context.Context, hash [32]byte) ([]byte, error) {
	return s.get(ctx, proto.PathLogCollateral+"/"+hex.EncodeToString(hash[:]), nil, proto.MaxCollateral)
}
