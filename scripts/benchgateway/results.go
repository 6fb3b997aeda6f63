package main

import (
	"encoding/json"
	"os"
)

// results are the figures of one run that scripts/bench puts in its
// report (-json); each mode fills its own part. Times are in µs, memory
// in bytes.
type results struct {
	Hop    *hopResults    `json:"hop,omitempty"`
	Stream *streamResults `json:"stream,omitempty"`
	Idle   *idleResults   `json:"idle,omitempty"`
}

// hopResults are mode hop's: medians over the rounds, latency over every
// round's samples.
type hopResults struct {
	Conns                  int     `json:"conns"`
	Rounds                 int     `json:"rounds"`
	DirectRPS              float64 `json:"direct_rps"`
	GatewayRPS             float64 `json:"gateway_rps"`
	NginxRPS               float64 `json:"nginx_rps"`                  // zero without nginx
	GatewayOverNginx       float64 `json:"gateway_over_nginx"`         // median of the rounds' throughput ratios; zero without nginx
	GatewayOverNginxPerCPU float64 `json:"gateway_over_nginx_per_cpu"` // the same per CPU second
	DirectP50              float64 `json:"direct_p50_us"`
	GatewayP50             float64 `json:"gateway_p50_us"`
	NginxP50               float64 `json:"nginx_p50_us"`
	GatewayAddedP50        float64 `json:"gateway_added_p50_us"`
	NginxAddedP50          float64 `json:"nginx_added_p50_us"`
}

// writeJSON writes r to file; an empty name writes nothing.
func writeJSON(file string, r results) error {
	if file == "" {
		return nil
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(file, append(b, '\n'), 0o644)
}
