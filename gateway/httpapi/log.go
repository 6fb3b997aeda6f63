package httpapi

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/sealgate/sealgate/gateway/api"
	"github.com/sealgate/sealgate/proto"
)

// LogService serves the transparency log (proto/SPEC.md §15). Its routes
// need no credential: the log is public.
//
//	GET /v1/log/checkpoint                    -> signed note, text/plain
//	GET /v1/log/entries?start=N&end=M         -> proto.MediaTypeLogEntries
//	GET /v1/log/proof/inclusion?index=I&size=S -> proto.LogProof
//	GET /v1/log/proof/consistency?from=A&to=B  -> proto.LogProof
//	GET /v1/log/collateral/:sha256hex         -> application/octet-stream
//
// Everything but the checkpoint is immutable once served (entries below
// a checkpoint's size and proofs for given sizes never change), so those
// answers are cacheable for a year; the checkpoint for logCheckpointAge.
type LogService interface {
	LogCheckpoint(ctx context.Context) ([]byte, error)
	LogEntries(ctx context.Context, start, end uint64) ([][]byte, error)
	LogInclusionProof(ctx context.Context, index, size uint64) ([][]byte, error)
	LogConsistencyProof(ctx context.Context, from, to uint64) ([][]byte, error)
	LogCollateral(ctx context.Context, hash [32]byte) ([]byte, error)
}

const (
	cacheImmutable   = "public, max-age=31536000, immutable"
	logCheckpointAge = "public, max-age=1"
)

func (h *handler) logRoutes(e *echo.Echo, svc LogService) {
	e.GET(proto.PathLogCheckpoint, func(c echo.Context) error {
		cp, err := svc.LogCheckpoint(c.Request().Context())
		if err != nil {
			return err
		}
		c.Response().Header().Set("Cache-Control", logCheckpointAge)
		return c.Blob(http.StatusOK, "text/plain; charset=utf-8", cp)
	})
	e.GET(proto.PathLogEntries, func(c echo.Context) error {
		start, err := uintParam(c, "start")
		if err != nil {
			return err
		}
		end, err := uintParam(c, "end")
		if err != nil {
			return err
		}
		entries, err := svc.LogEntries(c.Request().Context(), start, end)
		if err != nil {
			return err
		}
		body, err := proto.MarshalLogEntries(entries)
		if err != nil {
			return err
		}
		c.Response().Header().Set("Cache-Control", cacheImmutable)
		return c.Blob(http.StatusOK, proto.MediaTypeLogEntries, body)
	})
	e.GET(proto.PathLogInclusion, func(c echo.Context) error {
		index, err := uintParam(c, "index")
		if err != nil {
			return err
		}
		size, err := uintParam(c, "size")
		if err != nil {
			return err
		}
		p, err := svc.LogInclusionProof(c.Request().Context(), index, size)
		if err != nil {
			return err
		}
		c.Response().Header().Set("Cache-Control", cacheImmutable)
		return c.JSON(http.StatusOK, proto.LogProof{Hashes: p})
	})
	e.GET(proto.PathLogConsistency, func(c echo.Context) error {
		from, err := uintParam(c, "from")
		if err != nil {
			return err
		}
		to, err := uintParam(c, "to")
		if err != nil {
			return err
		}
		p, err := svc.LogConsistencyProof(c.Request().Context(), from, to)
		if err != nil {
			return err
		}
		c.Response().Header().Set("Cache-Control", cacheImmutable)
		return c.JSON(http.StatusOK, proto.LogProof{Hashes: p})
	})
	e.GET(proto.PathLogCollateral+"/:hash", func(c echo.Context) error {
		raw := c.Param("hash")
		var hash [32]byte
		if len(raw) != 64 || hex.EncodeToString(mustHex(raw)) != raw {
			return api.New(api.BadRequest, "hash: want 64 lowercase hex digits")
		}
		copy(hash[:], mustHex(raw))
		data, err := svc.LogCollateral(c.Request().Context(), hash)
		if err != nil {
			return err
		}
		c.Response().Header().Set("Cache-Control", cacheImmutable)
		return c.Blob(http.StatusOK, "application/octet-stream", data)
	})
}

// mustHex decodes hex, nil when it is not.
func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil
	}
	return b
}

// uintParam reads exactly one decimal query parameter.
func uintParam(c echo.Context, name string) (uint64, error) {
	vs := c.Request().URL.Query()[name]
	if len(vs) != 1 {
		return 0, api.New(api.BadRequest, fmt.Sprintf("%s: want exactly one %s parameter", name, name))
	}
	n, err := strconv.ParseUint(vs[0], 10, 63)
	if err != nil {
		return 0, api.New(api.BadRequest, fmt.Sprintf("%s: want a decimal integer", name))
	}
	return n, nil
}
